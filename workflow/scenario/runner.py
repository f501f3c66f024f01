"""Running scenarios: every step through the embedding API, on a clock that follows the file.

Each scenario gets a fresh SQLite database in a temporary folder unless `db_url` names one
to keep (its pathways and audit log then stay there). Scenario runs never touch live data:
every entry they write carries the origin "scenario:<file name>", and a database that holds
any other entry is refused (`LiveDatabaseRefused`) before anything is written. Time:

- A step's effective time is its `on`. A date alone means the start of that clinical day in
  the scenario's timezone plus as many seconds as the step's index in the file (0, 1, 2, ...),
  so that steps on the same day keep file order; a date-time is taken as written (naive:
  in the scenario's timezone).
- The clock (the recorded time) is set to each step's time, and never moves back: a step
  dated before the previous one is late documentation, recorded now with its own, earlier,
  effective time.
- A `check` is evaluated as of its own `on` (Day number, recoveries from labs drawn by then) on
  everything recorded so far; `final` at the latest time the clock reached.

A `refer` step opens the pathway its name stands for; after a successful
`start_subsequent_transplant` (or `reinstate`) the name follows the linked pathway it opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from persistence.engine import create_engine
from persistence.origins import SCENARIO_PREFIX, has_live_entries
from states.care_summary import care_summary
from states.days import clinical_date, day_label, day_number
from states.entry import ORIGIN_LENGTH
from states.errors import HsctError, InvalidCommand, Refused
from states.gvhd import max_grade
from states.milestones import milestones
from states.policy import Policy
from states.product_summary import product_summary
from states.vocabulary import EntryKind
from workflow.clock import ManualClock
from workflow.scenario.loader import load_paths, load_scenario
from workflow.scenario.models import (
    ActionStep,
    Assertions,
    CheckStep,
    RefusedWith,
    Scenario,
    ScenarioInvalid,
    check_references,
    effective_policy,
    step_time,
)
from workflow.service import PathwayService, Snapshot, command_name
from workflow.validation import on_surface

__all__ = ["AssertionOutcome", "LiveDatabaseRefused", "ScenarioResult", "StepRow", "run_paths", "run_scenario",
           "scenario_origin"]

Outcome = Literal["succeeded", "refused", "invalid", "error", "checked"]

SETS = frozenset({"flags", "due", "overdue", "carried_products"})  # compared as whole sets of names


@dataclass(frozen=True)
class AssertionOutcome:
    """One assertion of a `check` or `final`: what was expected, what was found."""

    key: str
    expected: Any
    actual: Any
    held: bool
    message: str = ""


@dataclass(frozen=True)
class StepRow:
    """One line of the report: a step (numbered from 1) or a pathway's final assertions."""

    number: int | None
    kind: Literal["action", "check", "final"]
    at: datetime | None
    on: date | None
    day_label: str | None
    actor: str | None
    pathway: str
    trigger: str
    outcome: Outcome
    reasons: tuple[str, ...]
    held: bool
    message: str = ""
    assertions: tuple[AssertionOutcome, ...] = ()

    @property
    def name(self) -> str:
        """How a person refers to the row: "step 3 (start_conditioning)", "final (p1)"."""
        if self.kind == "final":
            return f"final ({self.pathway})"
        return f"step {self.number} ({self.trigger})"


@dataclass
class ScenarioResult:
    """The rows of one scenario and its verdict: passed when every expectation held."""

    title: str
    file: str | None
    rows: list[StepRow] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    """The run stopped at its first failed expectation (fail-fast): later steps did not run."""

    @property
    def passed(self) -> bool:
        return all(row.held for row in self.rows)

    @property
    def verdict(self) -> Literal["passed", "failed"]:
        return "passed" if self.passed else "failed"

    @property
    def failures(self) -> list[StepRow]:
        return [row for row in self.rows if not row.held]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (times ISO 8601, tuples as lists)."""

        def row(r: StepRow) -> dict[str, Any]:
            values = asdict(r)
            values["at"] = r.at.isoformat() if r.at else None
            values["on"] = r.on.isoformat() if r.on else None
            values["reasons"] = list(r.reasons)
            values["assertions"] = [
                {**asdict(a), "expected": _jsonable(a.expected), "actual": _jsonable(a.actual)} for a in r.assertions
            ]
            return values

        return {
            "scenario": self.title,
            "file": self.file,
            "verdict": self.verdict,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "steps": [row(r) for r in self.rows],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    return value


# --- the Python API ------------------------------------------------------------------------


def run_scenario(
    path_or_model: str | os.PathLike[str] | Scenario,
    *,
    db_url: str | None = None,
    policy: Policy | None = None,
    source: str | None = None,
    fail_fast: bool = False,
) -> ScenarioResult:
    """Run one scenario (a file, or a model already built); raise `ScenarioInvalid` first if
    the file is invalid. `policy` is the base the file's `policy` overrides apply to;
    `source` names a model's file in the result; `fail_fast` stops at the first expectation
    that does not hold (the result is then `stopped`)."""
    if isinstance(path_or_model, Scenario):
        problems = check_references(path_or_model, file=source)
        if problems:
            raise ScenarioInvalid(problems)
        return _run(path_or_model, source, db_url=db_url, policy=policy, fail_fast=fail_fast)
    return _run(load_scenario(path_or_model), os.fspath(path_or_model), db_url=db_url, policy=policy,
                fail_fast=fail_fast)


def run_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    db_url: str | None = None,
    policy: Policy | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
    fail_fast: bool = False,
) -> list[ScenarioResult]:
    """Run files and folders (their *.yaml / *.yml, sorted). Every file is validated before
    the first runs: one `ScenarioInvalid` lists the problems of all invalid files. With
    `fail_fast`, the first failed expectation ends the run: no later step or file runs."""
    results = []
    for path, scenario in load_paths(paths):
        result = _run(scenario, os.fspath(path), db_url=db_url, policy=policy, fail_fast=fail_fast)
        if on_result is not None:
            on_result(result)
        results.append(result)
        if result.stopped:
            break
    return results


# --- running ---------------------------------------------------------------------------------


@contextmanager
def _database(db_url: str | None) -> Iterator[str]:
    if db_url is not None:
        yield db_url
        return
    with tempfile.TemporaryDirectory(prefix="hsct-scenario-") as folder:
        yield "sqlite:///" + Path(folder, "scenario.sqlite").as_posix()


class LiveDatabaseRefused(HsctError):
    """The database holds live entries: a scenario run would write fictional patients into the real log."""

    def __init__(self) -> None:
        super().__init__("the database holds live entries; scenario runs write only to a database of their own "
                         "(a fresh temporary one by default, or one that only scenario runs have written to)")


def scenario_origin(file: str | None) -> str:
    """The origin recorded on a run's entries: "scenario:" and the file's name (characters an origin
    does not allow become "_"; cut to fit), or "scenario:unnamed" for a model without a file."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(file).name) if file else ""
    return SCENARIO_PREFIX + (name or "unnamed")[: ORIGIN_LENGTH - len(SCENARIO_PREFIX)]


def _run(
    scenario: Scenario, file: str | None, *, db_url: str | None, policy: Policy | None, fail_fast: bool = False
) -> ScenarioResult:
    started = time.perf_counter()
    rules = effective_policy(scenario, policy)
    zone = rules.timezone
    first = step_time(scenario, 0, zone)
    clock = ManualClock(first)
    result = ScenarioResult(scenario.scenario, file)
    with _database(db_url) as url:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                if has_live_entries(connection):
                    raise LiveDatabaseRefused
            # The database is the run's own, so an empty one is set up whatever the backend.
            service = PathwayService(engine, policy=rules, clock=clock, origin=scenario_origin(file),
                                     auto_upgrade=True)
            run = _Run(scenario, service, clock, zone, _run_key(scenario, rules))
            for index, step in enumerate(scenario.steps):
                at = step_time(scenario, index, zone)
                if at > clock.now():
                    clock.set(at)
                result.rows.append(run.step(index, step, at))
                if fail_fast and not result.rows[-1].held:
                    break
            else:
                for name, assertions in scenario.final_by_pathway().items():
                    result.rows.append(run.final(name, assertions))
                    if fail_fast and not result.rows[-1].held:
                        break
            result.stopped = fail_fast and not result.passed
        finally:
            engine.dispose()
    result.seconds = time.perf_counter() - started
    return result


def _run_key(scenario: Scenario, rules: Policy) -> str:
    """The idempotency key prefix of a run: the same file under the same policy sends the same
    keys, so running it again into its database replays every step instead of writing twice."""
    content = scenario.model_dump_json(by_alias=True) + rules.version_id
    return "scenario:" + hashlib.sha256(content.encode()).hexdigest()[:24]


class _Run:
    """The state of one scenario run: which pathway id each scenario name stands for."""

    def __init__(self, scenario: Scenario, service: PathwayService, clock: ManualClock, zone: str, key: str) -> None:
        self.scenario = scenario
        self.key = key
        # A run sent again into its database replays every step (same idempotency keys): its
        # checks then read each pathway as it stood after the last entry this run has reached.
        self.replaying = False
        self.reached: dict[str, int] = {}
        self.service = service
        self.clock = clock
        self.zone = zone
        self.ids: dict[str, str] = {}

    def step(self, index: int, step: ActionStep | CheckStep, at: datetime) -> StepRow:
        name = self.scenario.pathway_of(step)
        if isinstance(step, CheckStep):
            return self._assert(index + 1, "check", name, step.check, at)
        return self._act(index + 1, step, name, at)

    def final(self, name: str, assertions: Assertions) -> StepRow:
        return self._assert(None, "final", name, assertions, self.clock.now())

    # --- actions -----------------------------------------------------------------------

    def _act(self, number: int, step: ActionStep, name: str, at: datetime) -> StepRow:
        actor = {"id": step.by, "role": self.scenario.actors[step.by].role.value}
        pathway_id = self.ids.get(name)
        label: str | None = None
        reasons: tuple[str, ...] = ()
        message = ""
        try:
            if step.do == "refer":
                if pathway_id is not None:
                    raise _StepError(f"pathway {name!r} is already referred")
                payload = {**self.scenario.pathways[name].referral(), **step.with_}
                done = self.service.refer(payload, actor=actor, at=at, idempotency_key=f"{self.key}:{number}")
                self.ids[name] = done.pathway_id
                self.replaying = self.replaying or done.replayed
            else:
                if pathway_id is None:
                    raise _StepError(f"pathway {name!r} was never opened (its referral did not succeed)")
                done = self.service.fire(pathway_id, command_name(step.do), step.with_, actor=actor, at=at,
                                         idempotency_key=f"{self.key}:{number}")
                self.reached[name] = done.entry.sequence
                linked = done.entry.payload.get("new_pathway_id")
                if isinstance(linked, str):  # start_subsequent_transplant, reinstate
                    self.ids[name] = linked
                    self.reached[name] = 1  # the linked pathway's opening entry
            outcome: Outcome = "succeeded"
            label = done.day_label
        except Refused as exc:
            outcome, reasons = "refused", exc.reasons
            if exc.sequence is not None:
                self.reached[name] = exc.sequence
            label = self._label(name, at)
        except InvalidCommand as exc:
            outcome = "invalid"
            worded = on_surface(exc, "with")  # the step's `with:`, where the service says `payload`
            message = "invalid command: " + "; ".join(str(p) for p in worded.problems)
            label = self._label(name, at)
        except (_StepError, HsctError) as exc:
            outcome, message = "error", str(exc)
        held, expectation = _judge_expectation(step.expect, outcome, reasons)
        if not held:
            message = f"{expectation}; {message}" if message else expectation
        return StepRow(
            number=number,
            kind="action",
            at=at,
            on=clinical_date(at, self.zone),
            day_label=label,
            actor=step.by,
            pathway=name,
            trigger=step.do,
            outcome=outcome,
            reasons=reasons,
            held=held,
            message=message,
        )

    def _label(self, name: str, at: datetime) -> str | None:
        pathway_id = self.ids.get(name)
        if pathway_id is None:
            return None
        return self.service.snapshot(pathway_id, at=at).day_label

    # --- assertions ----------------------------------------------------------------------

    def _assert(
        self, number: int | None, kind: Literal["check", "final"], name: str, assertions: Assertions, at: datetime
    ) -> StepRow:
        pathway_id = self.ids.get(name)
        on = clinical_date(at, self.zone)
        if pathway_id is None:
            return StepRow(number, kind, at, on, None, None, name, kind, "error", (), False,
                           f"pathway {name!r} was never opened (its referral did not succeed)")
        snapshot = (
            self.service.state_at(pathway_id, at, until_sequence=self.reached.get(name, 1))
            if self.replaying
            else self.service.snapshot(pathway_id, at=at)
        )
        outcomes = tuple(self._evaluate(pathway_id, snapshot, assertions))
        failed = [o for o in outcomes if not o.held]
        return StepRow(
            number=number,
            kind=kind,
            at=at,
            on=on,
            day_label=snapshot.day_label,
            actor=None,
            pathway=name,
            trigger=kind,
            outcome="checked",
            reasons=(),
            held=not failed,
            message="; ".join(o.message for o in failed),
            assertions=outcomes,
        )

    def _evaluate(self, pathway_id: str, snapshot: Snapshot, assertions: Assertions) -> Iterator[AssertionOutcome]:
        wanted = {"entries", "refusals"} & assertions.model_fields_set
        history = self.service.history(pathway_id)[: snapshot.version] if wanted else []
        facts = snapshot.facts

        def recovery_day(on: date | None) -> int | None:
            return None if on is None or facts.day0 is None else day_number(on, facts.day0)

        def care() -> dict[str, Any]:
            return care_summary(facts, clinical_date(snapshot.at, facts.timezone))

        actual: dict[str, Callable[[], Any]] = {
            "phase": lambda: snapshot.phase.value,
            "day": lambda: snapshot.day,
            "planned_day0": lambda: facts.planned_day0,
            "day0": lambda: facts.day0,
            "neutrophil_recovery_day": lambda: recovery_day(snapshot.neutrophil_recovery_on),
            "platelet_recovery_day": lambda: recovery_day(snapshot.platelet_recovery_on),
            "platelet_recovery_50_day": lambda: recovery_day(snapshot.platelet_recovery_50_on),
            "gvhd_max_grade": lambda: max_grade(facts.gvhd),
            "chronic_gvhd_severity": lambda: facts.chronic_gvhd[-1].severity if facts.chronic_gvhd else None,
            "length_of_stay_days": lambda: care()["length_of_stay_days"],
            "growth_factor_day": lambda: recovery_day(facts.growth_factor.started_on if facts.growth_factor else None),
            "mucositis_peak_who_grade": lambda: care()["mucositis_peak_who_grade"],
            "infections": lambda: len(facts.infections),
            "transfusions": lambda: care()["transfusions"],
            "prophylaxis_doses": lambda: {a: p["doses"] for a, p in care()["gvhd_prophylaxis"].items()},
            "cryopreservation_reason": lambda: product_summary(facts)["cryopreservation_reason"],
            "bags": lambda: product_summary(facts)["bags"],
            "carried_products": lambda: product_summary(facts)["carried_in"],
            "donor_mobilizations": lambda: len(facts.donor_mobilizations),
            "hct_number": lambda: facts.hct_number,
            "entries": lambda: len(history),
            "refusals": lambda: sum(1 for e in history if e.kind is EntryKind.REFUSAL),
            "flags": lambda: sorted(snapshot.flags),
            "due": lambda: self._milestones(pathway_id, snapshot, "due"),
            "overdue": lambda: self._milestones(pathway_id, snapshot, "overdue"),
        }
        for key, expected in assertions.asserted().items():
            found = actual[key]()
            if key == "phase":
                expected = expected.value
            if key in SETS:
                expected = sorted(set(expected))
            held = found == expected
            yield AssertionOutcome(key, expected, found, held,
                                   "" if held else f"{key}: expected {_show(key, expected)}, got {_show(key, found)}")


    def _milestones(self, pathway_id: str, snapshot: Snapshot, status: str) -> list[str]:
        """Milestone names with `status` (due / overdue) at the snapshot's time: from the facts as
        they stood then when replaying, else as the service reports them."""
        if self.replaying:
            found = milestones(snapshot.facts, self.service.policy, clinical_date(snapshot.at, snapshot.facts.timezone))
        else:
            found = self.service.milestones(pathway_id, at=snapshot.at)
        return sorted({m.name for m in found if m.status == status})


class _StepError(HsctError):
    """A step the runner could not attempt (its pathway is not open)."""


def _show(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key in {"day", "neutrophil_recovery_day", "platelet_recovery_day", "platelet_recovery_50_day"} and isinstance(
        value, int
    ):
        return f"{value} ({day_label(value)})"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


_HAPPENED = {
    "succeeded": "it succeeded",
    "refused": "it was refused",
    "invalid": "the command was invalid",
    "error": "it could not run",
}


def _judge_expectation(
    expect: Literal["refused"] | RefusedWith | None, outcome: Outcome, reasons: tuple[str, ...]
) -> tuple[bool, str]:
    """Whether the outcome is what the step expected; if not, the mismatch in words."""
    happened = _HAPPENED.get(outcome, outcome)
    if reasons:
        happened += f" ({', '.join(reasons)})"
    if expect is None:
        return outcome == "succeeded", f"expected success, {happened}"
    if expect == "refused":
        return outcome == "refused", f"expected a refusal, {happened}"
    wanted = ", ".join(expect.refused)
    missing = [code for code in expect.refused if code not in reasons]
    if outcome != "refused":
        return False, f"expected a refusal with {wanted}, {happened}"
    if missing:
        return False, f"expected a refusal with {wanted}, {happened}: missing {', '.join(missing)}"
    return True, ""
