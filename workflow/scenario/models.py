"""The scenario file format (docs/scenarios.md) as closed pydantic models, and its cross-checks.

The format is public API, so every model forbids unknown keys: a typo must reject the file,
never be ignored. Pydantic checks shapes and types; `check_references` then checks what one
key says about another (a declared actor, a known pathway, a payload valid for its trigger),
so that a file is rejected as a whole before any step runs.

Conventions (kept in the messages and in `ScenarioProblem`): steps are numbered from 1 as a
person counts them; a problem inside a step carries that number and a field path relative to
the step (`with.cd34_x10e6_per_kg`); other paths start at the top of the file
(`actors.dr_ross.role`, `final.phase`).

Two choices the format leaves open, made here:
- `final` is one set of assertions when the file declares one pathway; with several pathways
  it maps pathway names to assertion sets (`final: {p1: {phase: ...}, p2: {...}}`).
- An actor's name becomes its recorded actor id; an underscore, which actor ids do not allow,
  becomes a hyphen (`dr_ross` is recorded as `dr-ross`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from states.actor import Actor
from states.chart import CHART, INITIAL_COMMAND
from states.days import is_zone_name
from states.errors import HsctError, PolicyError
from states.facts import CryopreservationReason
from states.payloads import Refer
from states.policy import Policy, policy_from_mapping
from states.product_summary import BagStatus
from states.vocabulary import DonorType, GraftSource, Phase, Role, Route

__all__ = [
    "ASSERTION_KEYS",
    "COMMAND_NAMES",
    "REFERRAL_STEP_FIELDS",
    "ActionStep",
    "ActorSpec",
    "Assertions",
    "CheckStep",
    "PathwaySpec",
    "RefusedWith",
    "Scenario",
    "ScenarioInvalid",
    "ScenarioProblem",
    "Step",
    "check_references",
    "effective_policy",
    "problem_at",
    "problems_from_validation",
    "step_time",
]

COMMAND_NAMES: tuple[str, ...] = (INITIAL_COMMAND, *CHART.commands)
"""Every name a step may `do`: the referral, then the chart's triggers and events."""

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Milestone = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- problems --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioProblem:
    """One reason a file is invalid: where (file, line, step number and its `do`, field path)
    and which rule. `do` is a chart command's name or "check", never other text of the file."""

    path: str
    rule: str
    message: str
    step: int | None = None
    file: str | None = None
    line: int | None = None
    do: str | None = None

    def __str__(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        if self.step is not None:
            where += f": step {self.step}" + (f" ({self.do})" if self.do else "")
        path = f"{self.path}: " if self.path else ""
        return f"{where}: {path}{self.message} [{self.rule}]"


class ScenarioInvalid(HsctError):
    """A scenario file was rejected before anything ran. `problems` lists every reason found."""

    def __init__(self, problems: list[ScenarioProblem] | tuple[ScenarioProblem, ...]) -> None:
        if not problems:
            raise ValueError("ScenarioInvalid needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("invalid scenario: " + "; ".join(str(p) for p in self.problems))

    @property
    def file(self) -> str | None:
        return self.problems[0].file

    @property
    def step(self) -> int | None:
        return self.problems[0].step

    @property
    def path(self) -> str:
        return self.problems[0].path


# --- value types ---------------------------------------------------------------------------


def _parse_on(value: Any) -> Any:
    """ISO date or date-time text (YAML gives `date`/`datetime` objects for most spellings)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if _DATE_ONLY.match(text):
                return date.fromisoformat(text)
            return datetime.fromisoformat(text)
        except ValueError:
            if _DATE_ONLY.match(text[:10]):
                raise PydanticCustomError(
                    "impossible_date", "is not a calendar date or time (month 1-12, a day the month has, "
                    "hours under 24, an offset under 24 hours)"
                ) from None
            raise PydanticCustomError(
                "iso_date_or_datetime", "must be an ISO 8601 date (2026-01-05) or date-time (2026-01-05T08:00)"
            ) from None
    return value


On = Annotated[datetime | date, BeforeValidator(_parse_on)]
"""A step's time: a date (the start of that clinical day) or a date-time (naive: scenario zone)."""


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- declarations --------------------------------------------------------------------------


class ActorSpec(_Closed):
    """A named actor of the scenario; every action step acts as one of them."""

    role: Role


class PathwaySpec(_Closed):
    """One pathway the scenario refers: who and which route (validated like a referral)."""

    patient: str = Field(description="Pseudonymous patient reference (never a name or record number).")
    route: Route
    donor_type: DonorType | None = None
    graft_source: GraftSource
    diagnosis: str | None = None

    def referral(self) -> dict[str, Any]:
        """The referral payload this declaration stands for."""
        body: dict[str, Any] = {
            "patient_ref": self.patient,
            "route": self.route.value,
            "graft_source": self.graft_source.value,
        }
        if self.donor_type is not None:
            body["donor_type"] = self.donor_type.value
        if self.diagnosis is not None:
            body["diagnosis"] = self.diagnosis
        return body


# Referral fields and the pathway-declaration keys that hold them.
_DECLARED_AS = {"patient_ref": "patient", "route": "route", "donor_type": "donor_type",
                "graft_source": "graft_source", "diagnosis": "diagnosis"}

REFERRAL_STEP_FIELDS = frozenset(
    field for field, key in _DECLARED_AS.items() if not PathwaySpec.model_fields[key].is_required()
)
"""Referral fields a `refer` step's `with:` may give: those its pathway declaration may leave out."""


# --- assertions ----------------------------------------------------------------------------

_NOT_NULL = ("phase", "gvhd_max_grade", "hct_number", "entries", "refusals", "flags", "due", "overdue")


class Assertions(_Closed):
    """What must be true of a pathway at a `check` step or at the end (`final`).

    Keys left out are not checked. `null` is an assertion too where a value may be absent
    ("no Day 0 yet", "no neutrophil recovery yet"). `flags`, `due` and `overdue` must equal the
    pathway's whole set of flags, due milestones and overdue milestones (`[]`: none).
    """

    phase: Phase | None = None
    day: int | None = Field(None, description="Day number on the step's date (Day 0 = 0).")
    planned_day0: date | None = None
    day0: date | None = None
    neutrophil_recovery_day: int | None = None
    platelet_recovery_day: int | None = None
    platelet_recovery_50_day: int | None = Field(None, description="Day of platelet recovery at >= 50 x10^9/L.")
    gvhd_max_grade: int | None = Field(None, ge=0, le=4)
    chronic_gvhd_severity: Literal["none", "mild", "moderate", "severe"] | None = Field(
        None, description="NIH 2014 global severity of the latest chronic GVHD assessment; null: none recorded."
    )
    # Supportive care and GVHD prophylaxis (docs/supportive-care.md), as `hsct pathway show` gives them.
    length_of_stay_days: int | None = Field(None, ge=0, description="Inpatient days over every stay; null: unknown.")
    growth_factor_day: int | None = Field(None, description="Day G-CSF started after the infusion; null: not started.")
    mucositis_peak_who_grade: int | None = Field(None, ge=0, le=4, description="Worst WHO oral mucositis grade.")
    infections: int | None = Field(None, ge=0, description="Number of infections recorded.")
    transfusions: dict[Literal["red_cells", "platelets"], int] | None = Field(
        None, description="Transfusions given, by product (both keys)."
    )
    prophylaxis_doses: dict[str, int] | None = Field(
        None, description="GVHD prophylaxis doses given, by planned agent (every planned agent)."
    )
    # The graft (docs/products.md), as `hsct pathway show` gives it.
    cryopreservation_reason: CryopreservationReason | None = Field(
        None,
        description="Why this patient's allogeneic graft is frozen (`decide_cryopreservation`); null: no decision.",
    )
    bags: dict[BagStatus, int] | None = Field(None, description="Named bags by status (every status).")
    carried_products: list[str] | None = Field(
        None, description="Products a planned tandem carried in from the previous pathway ([]: none)."
    )
    donor_mobilizations: int | None = Field(None, ge=0, description="Donor G-CSF courses recorded.")
    hct_number: int | None = Field(None, ge=1)
    entries: int | None = Field(None, ge=0, description="Number of log entries, refusals included.")
    refusals: int | None = Field(None, ge=0)
    flags: list[str] | None = None
    due: list[Milestone] | None = None
    overdue: list[Milestone] | None = None

    @field_validator(*_NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("not_nullable", "cannot be null (leave the key out to skip it)")
        return value

    def asserted(self) -> dict[str, Any]:
        """The assertions given, in the order of the format."""
        return {k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set}


ASSERTION_KEYS: tuple[str, ...] = tuple(Assertions.model_fields)


# --- steps ---------------------------------------------------------------------------------


class RefusedWith(_Closed):
    """`expect: {refused: [codes]}`: the step must be refused with at least these reasons."""

    refused: list[ReasonCode] = Field(min_length=1)


def _expect_kind(value: Any) -> str:
    return "any" if isinstance(value, str) else "codes"


Expect = Annotated[
    Annotated[Literal["refused"], Tag("any")] | Annotated[RefusedWith, Tag("codes")],
    Discriminator(_expect_kind),
]


class ActionStep(_Closed):
    """An actor does a trigger or records an event at a time, with a payload."""

    on: On
    by: Name
    do: Annotated[str, Field(json_schema_extra={"enum": list(COMMAND_NAMES)})]
    pathway: Name | None = None
    with_: Annotated[dict[str, Any], BeforeValidator(_none_is_empty)] = Field(default_factory=dict, alias="with")
    expect: Expect | None = None

    @field_validator("do")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in COMMAND_NAMES:
            raise PydanticCustomError("unknown_command", "not a trigger or event of the chart")
        return value


class CheckStep(_Closed):
    """Assertions about one pathway at a moment, between actions."""

    on: On
    pathway: Name | None = None
    check: Assertions


def _step_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "check" if "check" in value else "action"
    return "check" if isinstance(value, CheckStep) else "action"


Step = Annotated[
    Annotated[ActionStep, Tag("action")] | Annotated[CheckStep, Tag("check")],
    Discriminator(_step_kind),
]


def _final_kind(value: Any) -> str:
    if isinstance(value, Mapping) and value and not set(value) & set(ASSERTION_KEYS):
        return "by_pathway"
    return "assertions"


Final = Annotated[
    Annotated[Assertions, Tag("assertions")] | Annotated[dict[Name, Assertions], Tag("by_pathway")],
    Discriminator(_final_kind),
]


class Scenario(_Closed):
    """A scenario script: declarations, steps in file order, and final assertions."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="HSCT pathway scenario",
        json_schema_extra={"description": "A scenario script for hsct-pathway (docs/scenarios.md)."},
    )

    scenario: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    timezone: str | None = Field(None, description="IANA zone of the clinical dates (default: the policy's).")
    policy: Annotated[dict[str, Any], BeforeValidator(_none_is_empty)] = Field(
        default_factory=dict, description="Overrides of the default policy (the keys of a policy file)."
    )
    actors: dict[Name, ActorSpec] = Field(min_length=1)
    pathways: dict[Name, PathwaySpec] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    final: Final | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not is_zone_name(value):
            raise PydanticCustomError("unknown_timezone", "not an IANA timezone name")
        return value

    def pathway_of(self, step: ActionStep | CheckStep) -> str:
        """The pathway a step acts on (the only one when the file declares one)."""
        if step.pathway is not None:
            return step.pathway
        return next(iter(self.pathways))

    def final_by_pathway(self) -> dict[str, Assertions]:
        if self.final is None:
            return {}
        if isinstance(self.final, Assertions):
            return {next(iter(self.pathways)): self.final}
        return dict(self.final)


# --- helpers shared by the loader and the runner -------------------------------------------


def effective_policy(scenario: Scenario, base: Policy | None = None) -> Policy:
    """`base` (default: the library's defaults) with the file's overrides and timezone on top.

    A declared `version` of `base` does not survive overrides: the rules changed, so the
    entries carry the content hash instead (unless the overrides declare their own version).
    """
    overrides = dict(scenario.policy)
    if scenario.timezone is not None:
        overrides.setdefault("timezone", scenario.timezone)
    if base is None:
        return policy_from_mapping(overrides, origin="policy")
    if not overrides:
        return base
    merged = {**base.model_dump(), "version": None, **overrides}
    return policy_from_mapping(merged, origin="policy")


def problems_from_validation(exc: ValidationError, *, file: str | None = None) -> list[ScenarioProblem]:
    """Pydantic's errors as problems: union tags dropped, step numbers counted from 1."""
    found = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = list(err["loc"])
        if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int):
            del loc[2]  # the union tag ("action" / "check")
        if len(loc) >= 2 and loc[0] == "final":
            del loc[1]  # the union tag ("assertions" / "by_pathway")
        if len(loc) >= 3 and loc[0] == "steps" and loc[2] == "expect" and len(loc) >= 4:
            del loc[3]  # the union tag ("any" / "codes")
        found.append(problem_at(loc, err["type"], err["msg"], file=file))
    return found


_PLAIN_KEY = re.compile(r"^(?:[A-Za-z0-9_-]{1,64}|\[key\])$")


def _shown(part: Any) -> str:
    """A path part as shown: a plain name or index, else `<key>` (keys may be any text of the file)."""
    text = str(part) if isinstance(part, str | int) and not isinstance(part, bool) else ""
    return text if _PLAIN_KEY.match(text) else "<key>"


def problem_at(loc: list[Any], rule: str, message: str, *, file: str | None) -> ScenarioProblem:
    """A problem at `loc` (a path from the top of the file, step indexes from 0)."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        path = ".".join(_shown(part) for part in loc[2:])
        return ScenarioProblem(path=path, rule=rule, message=message, step=loc[1] + 1, file=file)
    return ScenarioProblem(path=".".join(_shown(p) for p in loc), rule=rule, message=message, file=file)


def raw_loc(problem: ScenarioProblem) -> list[Any]:
    """The path from the top of the file of a problem (step index from 0), for line lookup."""
    parts: list[Any] = [
        int(p) if p.isascii() and p.isdigit() else p for p in problem.path.split(".") if p
    ] if problem.path else []
    if problem.step is not None:
        return ["steps", problem.step - 1, *parts]
    return parts


def check_references(scenario: Scenario, *, file: str | None = None) -> list[ScenarioProblem]:
    """What the shapes cannot say: declared names, referral order, payloads, the policy."""
    problems: list[ScenarioProblem] = []

    def add(loc: list[Any], rule: str, message: str) -> None:
        problems.append(problem_at(loc, rule, message, file=file))

    zone = "UTC"
    try:
        zone = effective_policy(scenario).timezone
    except PolicyError as exc:
        add(["policy"], "invalid_policy", str(exc).removeprefix("policy: "))
    for index in range(len(scenario.steps)):
        try:
            step_time(scenario, index, zone).astimezone(UTC).astimezone(ZoneInfo(zone))
        except OverflowError:
            add(["steps", index, "on"], "out_of_range", "is too near the ends of the calendar to use")
    if scenario.timezone is not None and scenario.policy.get("timezone") not in (None, scenario.timezone):
        add(["policy", "timezone"], "timezone_conflict", "differs from the scenario's `timezone`")

    for name, spec in scenario.actors.items():
        try:
            Actor(id=name, role=spec.role)
        except ValidationError:
            add(["actors", name], "invalid_actor_id", f"{name!r} is not a valid actor id")

    several = len(scenario.pathways) > 1
    referred: set[str] = set()
    for index, step in enumerate(scenario.steps):
        here: list[Any] = ["steps", index]
        if isinstance(step, ActionStep):
            if step.by not in scenario.actors:
                add([*here, "by"], "undeclared_actor", f"{step.by!r} is not declared under `actors`")
            if step.do != INITIAL_COMMAND:
                problems += _payload_problems(step, index, file)
        if step.pathway is None and several:
            add([*here, "pathway"], "pathway_required", "the file declares several pathways: name one")
            continue
        name = scenario.pathway_of(step)
        if name not in scenario.pathways:
            add([*here, "pathway"], "undeclared_pathway", f"{name!r} is not declared under `pathways`")
        elif isinstance(step, ActionStep) and step.do == INITIAL_COMMAND:
            referred.add(name)
            problems += _referral_problems(scenario, name, step, index, file)
        elif name not in referred:
            add(here, "not_referred_yet", f"pathway {name!r} has no `refer` step before this one")

    never = [name for name in scenario.pathways if name not in referred]
    for name in never:
        add(["pathways", name], "never_referred", "no step does `refer` for this pathway")

    if scenario.final is not None:
        if isinstance(scenario.final, Assertions):
            if several:
                add(["final"], "pathway_required",
                    "the file declares several pathways: map each pathway name to its assertions")
        else:
            for name in scenario.final:
                if name not in scenario.pathways:
                    add(["final", name], "undeclared_pathway", f"{name!r} is not declared under `pathways`")
    return problems


def _referral_problems(
    scenario: Scenario, name: str, step: ActionStep, index: int, file: str | None
) -> list[ScenarioProblem]:
    """A `refer` step's `with` adds referral fields the declaration leaves out; the merged
    referral must be valid."""
    declared = scenario.pathways[name].referral()
    found: list[ScenarioProblem] = []
    for key in step.with_:
        if key not in _DECLARED_AS:
            found.append(problem_at(["steps", index, "with", key], "extra_forbidden",
                                  "not a referral field (patient, route, donor_type, graft_source go under "
                                  "`pathways`)", file=file))
        elif key in declared:
            found.append(problem_at(["steps", index, "with", key], "declared_twice",
                                  f"already given under `pathways.{name}`", file=file))
    if found:
        return found
    try:
        Refer.model_validate({**declared, **step.with_})
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in step.with_:
                loc: list[Any] = ["steps", index, "with", *err["loc"]]
            else:
                loc = ["pathways", name, *([_DECLARED_AS.get(field, field), *err["loc"][1:]] if field else [])]
            found.append(problem_at(loc, err["type"], err["msg"], file=file))
    return found


def _payload_problems(step: ActionStep, index: int, file: str | None) -> list[ScenarioProblem]:
    """The step's `with` checked against its command's payload model, derived fields refused."""
    spec = CHART.commands[step.do]
    found = [
        problem_at(["steps", index, "with", key], "derived_field", "is derived by the library", file=file)
        for key in sorted(set(step.with_) & spec.payload.derived_fields)
    ]
    try:
        spec.payload.model_validate(step.with_)
    except ValidationError as exc:
        found += [
            problem_at(["steps", index, "with", *err["loc"]], err["type"], err["msg"], file=file)
            for err in exc.errors(include_input=False, include_url=False)
        ]
    return found


def step_time(scenario: Scenario, index: int, zone: str) -> datetime:
    """The effective time of step `index` (from 0), timezone-aware.

    A date-only `on` is the start of that clinical day in `zone` plus `index` seconds, so steps
    on the same day keep file order. A naive date-time is read in `zone`.
    """
    on = scenario.steps[index].on
    tz = ZoneInfo(zone)
    if isinstance(on, datetime):
        return on if on.tzinfo is not None and on.utcoffset() is not None else on.replace(tzinfo=tz)
    return datetime.combine(on, time(0, 0, 0), tzinfo=tz) + timedelta(seconds=index)

