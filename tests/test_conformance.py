"""T1 of RELIABILITY.md: every (phase, command) pair tried on real pathways, on both backends.

A pair is allowed when the chart has an edge for the trigger out of the phase (its route
predicate holding for the pathway) or lists the phase for the event. Allowed pairs must never
be refused for the phase; every other pair must be refused with the phase's reason code, write
exactly one refusal entry and change nothing else. tests/test_chart.py pins the chart's tables
to PATHWAY.md, so the expectations here trace back to the design, not to the code under test.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from states.chart import CHART, Command
from states.errors import Refused
from states.policy import Policy
from states.vocabulary import EntryKind, Phase, Role
from tests.helpers_core import COMMANDS, PHYS, Written, fire, reach, refused, rejected, walk_phases
from workflow.clock import ManualClock
from workflow.service import PathwayService

PHASE_CODES = frozenset({"trigger_not_allowed_in_phase", "event_not_allowed_in_phase"})
# Codes that must never refuse an allowed pair tried by a permitted role at the current time.
NOT_GUARD_CODES = PHASE_CODES | {"role_not_permitted", "effective_time_in_future", "pathway_superseded"}
# Between them these walks pass through every phase (autologous: collection; allogeneic: the
# donor phases; cord blood: the route predicates of a banked graft).
CONFORMANCE_WALKS = ("autologous", "matched_unrelated", "cord_blood")
# Commands that no walk fires and whose allowed pairs the generic payload of COMMANDS cannot
# pass: the pairs are still tried here (phase rule), and the test named says where each one is
# accepted. Every other command is accepted at least once on these walks, so a new command is
# exercised, not only refused by its guards.
ONLY_REFUSED_BY_GUARDS: dict[str, str] = {
    "adopt_policy": "the payload names the policy in force (policy_differs): tests/versions/test_policy_change.py",
    "clear_graft_failure_suspicion": "needs a standing suspicion: tests/test_disease_course.py",
    "quarantine_bag": "the walks name no bags: tests/test_products.py",
    "release_bag": "the walks name no bags: tests/test_products.py",
    "discard_bag": "the walks name no bags: tests/test_products.py",
    "record_thaw": "the walks name no bags: tests/test_products.py",
    "record_infusion": "needs a second-day, boost or DLI product: tests/test_infusion_and_donor_rules.py",
    "record_prophylaxis_dose": "needs a prophylaxis plan: tests/test_supportive_care.py",
    "rescue_infusion": "needs a stored backup after graft failure: tests/test_engraftment_rules.py",
    "select_emergency_donor": "needs an unavailable donor: tests/test_allogeneic_dose_and_emergency_donor.py",
    "start_subsequent_transplant": "needs evidence for its reason: tests/test_engraftment_rules.py",
}
# The service's public surface. Only `refer` and `fire` write; a new public method must be
# reviewed (added here) so that nothing can move a pathway around the judge.
PUBLIC_API = {
    "refer",
    "fire",
    "can_fire",
    "available",
    "snapshot",
    "state_at",
    "state_on",
    "open_work",
    "history",
    "log",
    "listing",
    "pathway_ids",
    "resolve_id",
    "find",
    "milestones",
    "due",
    "overdue",
    "all_milestones",
}


def _allowed(command: Command, phase_facts: Any, policy: Policy) -> bool:
    if command.changes_phase:
        return CHART.destination(command, phase_facts, policy) is not None
    return phase_facts.phase in command.allowed_in


def _phase_code(command: Command) -> str:
    return "trigger_not_allowed_in_phase" if command.changes_phase else "event_not_allowed_in_phase"


def _try_forbidden(
    service: PathwayService,
    clock: ManualClock,
    pathway_id: str,
    at: datetime,
    command: Command,
    actor: Mapping[str, str],
    payload: dict[str, Any],
) -> str | None:
    """None when the pair was refused for the phase with nothing else changed; else why not."""
    try:
        reasons = refused(service, clock, pathway_id, at, actor, command.name, payload)
    except (AssertionError, pytest.fail.Exception) as exc:
        return f"not a clean refusal: {str(exc).splitlines()[0]}"
    return None if _phase_code(command) in reasons else f"refused for {reasons}, not the phase"


def _try_allowed(
    service: PathwayService,
    clock: ManualClock,
    walk_name: str,
    phase: Phase,
    at: datetime,
    command: Command,
    actor: Mapping[str, str],
    payload: dict[str, Any],
) -> str | None:
    """On a pathway of its own: success as the chart says, or a refusal by guards only."""
    pathway_id = reach(service, clock, walk_name, phase)
    facts = service.snapshot(pathway_id).facts
    before = Written.of(service, pathway_id)
    try:
        result = fire(service, clock, pathway_id, at, actor, command.name, payload)
    except Refused as exc:
        if Written.of(service, pathway_id).entries != before.entries + 1:
            return "refusal not logged exactly once"
        wrong = sorted(set(exc.reasons) & NOT_GUARD_CODES)
        return f"allowed pair refused for {wrong}" if wrong else None
    expected = CHART.destination(command, facts, service.policy) if command.changes_phase else phase
    if result.phase is not expected:
        return f"went to {result.phase}, the chart says {expected}"
    kind = EntryKind.TRANSITION if command.changes_phase else EntryKind.EVENT
    if command.name == "correct_entry":
        kind = EntryKind.CORRECTION
    if result.entry.kind is not kind or Written.of(service, pathway_id).entries != before.entries + 1:
        return f"wrote {result.entry.kind}, expected one {kind} entry"
    return None


def test_every_command_has_a_valid_payload_and_a_permitted_actor() -> None:
    assert set(COMMANDS) == set(CHART.commands)
    policy = Policy()
    for name, (actor, payload) in COMMANDS.items():
        assert policy.may(Role(actor["role"]), name), name
        CHART.commands[name].payload.model_validate(payload)


def test_each_command_refused_here_is_accepted_in_the_test_named() -> None:
    for name, why in ONLY_REFUSED_BY_GUARDS.items():
        path = Path(__file__).parent.parent / why.rsplit(": ", 1)[1]
        assert name in CHART.commands
        assert f'"{name}"' in path.read_text(encoding="utf-8"), name


def test_the_walks_reach_every_phase() -> None:
    reached = {phase for name in CONFORMANCE_WALKS for phase in walk_phases(name)}
    assert reached == set(Phase)


def _phase_command_pairs(service: PathwayService, clock: ManualClock, walk_name: str, allowed: set[str]) -> list[str]:
    """Every (phase, command) pair of one walk tried; the mismatches, and `allowed` extended
    by the commands the chart allows somewhere on the walk."""
    phases = walk_phases(walk_name)
    tried: set[tuple[Phase, str]] = set()
    mismatches: list[str] = []
    for phase in phases:
        # Refused pairs change nothing (checked each time), so one pathway serves them all.
        shared = reach(service, clock, walk_name, phase)
        at = clock.now()
        facts = service.snapshot(shared).facts
        for name, command in CHART.commands.items():
            actor, payload = COMMANDS[name]
            if _allowed(command, facts, service.policy):
                allowed.add(name)
                problem = _try_allowed(service, clock, walk_name, phase, at, command, actor, payload)
            else:
                problem = _try_forbidden(service, clock, shared, at, command, actor, payload)
            tried.add((phase, name))
            if problem:
                mismatches.append(f"{walk_name}: {phase} x {name}: {problem}")
        assert service.snapshot(shared).phase is phase
    assert len(tried) == len(set(phases)) * len(CHART.commands)
    return mismatches


def test_every_phase_command_pair(service: PathwayService, clock: ManualClock) -> None:
    allowed: set[str] = set()
    mismatches = [m for walk in CONFORMANCE_WALKS for m in _phase_command_pairs(service, clock, walk, allowed)]
    assert mismatches == []
    # Every command is accepted somewhere (on a walk or as an allowed pair), unless the table
    # above says why not and where it is.
    accepted = {e.trigger for p in service.pathway_ids() for e in service.history(p) if e.kind is not EntryKind.REFUSAL}
    assert allowed == set(CHART.commands)
    assert set(CHART.commands) - accepted == ONLY_REFUSED_BY_GUARDS.keys()


def test_no_to_phase_method_or_other_bypass(service: PathwayService, clock: ManualClock) -> None:
    machine = service._machine.machine
    assert {name for name in vars(PathwayService) if not name.startswith("_")} == PUBLIC_API
    assert not any(event.startswith("to_") for event in machine.events)
    for phase in Phase:
        for holder in (service, service._machine, machine):
            assert not hasattr(holder, f"to_{phase.value}")
    for name in CHART.commands:
        assert not hasattr(service, name), name
    pathway_id = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    for phase in Phase:
        error = rejected(
            service,
            pathway_id,
            lambda phase=phase: service.fire(pathway_id, f"to_{phase.value}", {}, actor=PHYS, at=clock.now()),
        )
        assert [(p.path, p.rule) for p in error.problems] == [("command", "unknown_command")]
    assert service.snapshot(pathway_id).phase is Phase.READY_FOR_CONDITIONING
