"""Payloads of GVHD prophylaxis and supportive care (docs/supportive-care.md).

Kept apart from `states.payloads` (one model per command, already long); the chart names them
like any other payload. Discharge and readmission stay `states.payloads.Discharge` and
`Readmit`: they close and open the stays that `Admit` begins.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from states import care_facts as cf
from states.care_facts import GrowthFactorAgent, InfectionSite, ProphylaxisAgent
from states.days import day_number
from states.facts import PathwayFacts
from states.payloads import ClinicalDate, Ctx, DoseText, Payload

PlanDay = Annotated[int, Field(strict=True, ge=-30, le=100)]
"""A Day of the prophylaxis plan, counted from Day 0 (ATG before it, methotrexate after)."""

Organism = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9 .()/-]{0,63}$")
]  # fmt: skip
"""An organism as the laboratory names it ("Staphylococcus epidermidis", "CMV", "unknown")."""


class PlannedAgentIn(BaseModel):
    """One agent of the plan: fixed-day agents (PTCy, methotrexate, ATG) name their `days`, the
    others (calcineurin inhibitor, MMF, sirolimus) the Day they start `from_day`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: ProphylaxisAgent
    days: tuple[PlanDay, ...] = Field((), max_length=10)
    from_day: PlanDay | None = None

    @model_validator(mode="after")
    def _schedule_shape(self) -> PlannedAgentIn:
        fixed = self.agent in cf.FIXED_DAY_AGENTS
        if fixed and (not self.days or self.from_day is not None):
            raise PydanticCustomError("prophylaxis_schedule_shape", f"{self.agent} is planned by its `days` only")
        if not fixed and (self.days or self.from_day is None):
            raise PydanticCustomError("prophylaxis_schedule_shape", f"{self.agent} is planned by `from_day` only")
        if len(set(self.days)) != len(self.days):
            raise PydanticCustomError("prophylaxis_schedule_shape", "a Day is named twice")
        return self


class PlanGvhdProphylaxis(Payload):
    """The GVHD prophylaxis plan of an allogeneic HCT (PTCy, a calcineurin inhibitor, MMF,
    methotrexate, ATG, sirolimus). A later plan replaces it; doses already given stay."""

    agents: tuple[PlannedAgentIn, ...] = Field(min_length=1, max_length=7)

    @model_validator(mode="after")
    def _each_agent_once(self) -> PlanGvhdProphylaxis:
        names = [a.agent for a in self.agents]
        if len(set(names)) != len(names):
            raise PydanticCustomError("prophylaxis_agent_twice", "each agent is planned once")
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        plan = tuple(
            cf.PlannedAgent(agent=a.agent, days=tuple(sorted(a.days)), from_day=a.from_day) for a in self.agents
        )
        return facts.model_copy(update={"prophylaxis_plan": plan})


def plan_day_of(facts: PathwayFacts, on: date) -> int | None:
    """The Day of `on`: from Day 0 once infused, before it from the planned Day 0."""
    day0 = facts.day0 or facts.planned_day0
    return None if day0 is None else day_number(on, day0)


class RecordProphylaxisDose(Payload):
    """One dose of a planned prophylaxis agent; its Day is the entry's date counted from Day 0."""

    agent: ProphylaxisAgent
    dose: DoseText

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        course = cf.given(facts.prophylaxis_given.get(self.agent), self.agent, ctx.on, plan_day_of(facts, ctx.on))
        return facts.model_copy(update={"prophylaxis_given": {**facts.prophylaxis_given, self.agent: course}})


class Admit(Payload):
    """The transplant admission (conditioning, or an outpatient transplant's admission later):
    the stay that `discharge` ends; a stay after a discharge is `readmit`."""

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return facts.model_copy(update={"stays": cf.admitted(facts.stays, ctx.on), "discharged": False})


class StartGrowthFactor(Payload):
    """G-CSF after the infusion, until neutrophil recovery."""

    agent: GrowthFactorAgent = "filgrastim"
    dose: DoseText | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return facts.model_copy(update={"growth_factor": cf.GrowthFactorStart(agent=self.agent, started_on=ctx.on)})


class RecordInfection(Payload):
    """A documented infection: organism, site, and its onset (the entry's date unless given)."""

    organism: Organism
    site: InfectionSite
    onset_on: ClinicalDate | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        found = cf.Infection(on=self.onset_on or ctx.on, organism=self.organism, site=self.site)
        return facts.model_copy(update={"infections": (*facts.infections, found)})


class RecordMucositis(Payload):
    """Oral mucositis graded on the WHO scale: 0 none, 1 soreness and erythema, 2 ulcers but
    solid food, 3 liquid diet only, 4 alimentation not possible."""

    who_grade: Annotated[int, Field(strict=True, ge=0, le=4)]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return facts.model_copy(update={"mucositis": cf.graded(facts.mucositis, self.who_grade, ctx.on)})
