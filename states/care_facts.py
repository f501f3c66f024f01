"""Snapshot values of GVHD prophylaxis and supportive care (docs/supportive-care.md).

Each item keeps a compact value, never the payload that recorded it: a calcineurin inhibitor
given daily for months is one `AgentCourse` with a count and its first and last dates, daily
mucositis grades are one `MucositisCourse`. The snapshot therefore stays bounded however long
the course runs. Pure values and the small folds that build them; `states.facts` holds them.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from states.frozen import Frozen

ProphylaxisAgent = Literal["ptcy", "tacrolimus", "cyclosporine", "mmf", "methotrexate", "atg", "sirolimus"]
"""GVHD prophylaxis agents: post-transplant cyclophosphamide, the calcineurin inhibitors,
mycophenolate mofetil, methotrexate, anti-thymocyte globulin, sirolimus."""

FIXED_DAY_AGENTS: frozenset[str] = frozenset({"ptcy", "methotrexate", "atg"})
"""Given on named Days only (PTCy Day +3/+4, methotrexate Day +1/+3/+6/+11, ATG before Day 0)."""

CALCINEURIN_INHIBITORS: frozenset[str] = frozenset({"tacrolimus", "cyclosporine"})

GrowthFactorAgent = Literal["filgrastim", "lenograstim", "pegfilgrastim"]

InfectionSite = Literal[
    "bloodstream", "central_line", "lung", "upper_respiratory", "urinary", "gastrointestinal",
    "skin_soft_tissue", "oral", "sinus", "cns", "disseminated", "other",
]  # fmt: skip

Blood = Literal["platelets", "red_cells"]


class PlannedAgent(Frozen):
    """One agent of the prophylaxis plan: the Days it is given on (fixed-day agents) or the Day
    it starts from and continues (calcineurin inhibitors, MMF, sirolimus)."""

    agent: ProphylaxisAgent
    days: tuple[int, ...] = ()
    from_day: int | None = None


class AgentCourse(Frozen):
    """The doses of one agent given so far. `days` lists the Days given for fixed-day agents
    only (bounded by the plan); a continuous agent keeps its count and first and last dates."""

    agent: ProphylaxisAgent
    doses: int
    first_on: date
    last_on: date
    days: tuple[int, ...] = ()


class Stay(Frozen):
    """One inpatient stay. `admitted_on` is None for a discharge recorded without an admission
    (entries written before `admit` existed); `discharged_on` is None while the patient is in."""

    admitted_on: date | None = None
    discharged_on: date | None = None


class GrowthFactorStart(Frozen):
    agent: GrowthFactorAgent
    started_on: date


class Infection(Frozen):
    """One documented infection: onset date, organism as reported, site."""

    on: date
    organism: str
    site: InfectionSite


class MucositisCourse(Frozen):
    """WHO oral mucositis grades (0-4): the worst so far and the latest, with their dates."""

    peak_grade: int
    peak_on: date
    latest_grade: int
    latest_on: date


def admitted(stays: tuple[Stay, ...], on: date) -> tuple[Stay, ...]:
    """A new stay from `on`."""
    return (*stays, Stay(admitted_on=on))


def discharged(stays: tuple[Stay, ...], on: date) -> tuple[Stay, ...]:
    """The open stay ends on `on`; without one, a stay of unknown admission ends on `on`."""
    if stays and stays[-1].discharged_on is None:
        return (*stays[:-1], stays[-1].model_copy(update={"discharged_on": on}))
    return (*stays, Stay(discharged_on=on))


def in_hospital(stays: tuple[Stay, ...]) -> bool:
    return bool(stays) and stays[-1].discharged_on is None


def length_of_stay_days(stays: tuple[Stay, ...], today: date) -> int | None:
    """Inpatient days over every stay, an open one counted to `today`; None while any stay's
    admission is unknown (a legacy discharge): the total would be too small."""
    if not stays or any(s.admitted_on is None for s in stays):
        return None
    return sum(((s.discharged_on or today) - s.admitted_on).days for s in stays if s.admitted_on is not None)


def given(course: AgentCourse | None, agent: ProphylaxisAgent, on: date, day: int | None) -> AgentCourse:
    """`course` with one more dose on `on` (Day `day`, kept for fixed-day agents)."""
    days = (day,) if agent in FIXED_DAY_AGENTS and day is not None else ()
    if course is None:
        return AgentCourse(agent=agent, doses=1, first_on=on, last_on=on, days=days)
    return course.model_copy(update={"doses": course.doses + 1, "last_on": on, "days": course.days + days})


def graded(course: MucositisCourse | None, grade: int, on: date) -> MucositisCourse:
    """`course` with the grade found on `on`: the peak is the first date of the worst grade."""
    if course is None or grade > course.peak_grade:
        return MucositisCourse(peak_grade=grade, peak_on=on, latest_grade=grade, latest_on=on)
    return course.model_copy(update={"latest_grade": grade, "latest_on": on})
