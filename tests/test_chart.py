"""The chart as data: validated when built, pinned to PATHWAY.md, and run by one shared machine.

`build_chart` must refuse a chart a clinician could not trust (a duplicated command, a guard or
route predicate that does not exist, an edge out of a final phase, an unreachable phase, a
role table that disagrees with the chart) and name the problem. The tables below are copied
from PATHWAY.md, so tests/test_conformance.py, which trusts CHART, is anchored to the design.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest
from transitions import Machine, MachineError

from states import payloads as pl
from states.chart import CHART, Command, Edge, build_chart
from states.errors import ChartError
from states.facts import PathwayFacts
from states.policy import Policy
from states.vocabulary import CLOSED_PHASES, FINAL_PHASES, Phase, Role
from tests.helpers_core import WALKS, reach
from tests.walks import run_walk
from workflow.clock import ManualClock
from workflow.engine import EngineMismatch, PathwayEngine
from workflow.service import PathwayService

Ph = Phase
PRE = (Ph.REFERRED, Ph.EVALUATION, Ph.DONOR_SEARCH, Ph.DONOR_WORKUP, Ph.COLLECTION, Ph.READY_FOR_CONDITIONING)
OPEN = tuple(p for p in Phase if p not in {Ph.DAY100_COMPLETE, Ph.WITHDRAWN, Ph.DECEASED, Ph.TRANSFERRED})
NOT_FINAL = (*OPEN, Ph.DAY100_COMPLETE)
POST_INFUSION = (Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP)
# Long-term follow-up: after Day +100 the events of life after transplant stay recordable.
LONG_TERM = (*POST_INFUSION, Ph.DAY100_COMPLETE)
LAB_PHASES = (Ph.CONDITIONING, *POST_INFUSION, Ph.GRAFT_FAILURE)
# A relapse or progression before infusion is the disease status at transplant (issue #11).
RELAPSE_BEFORE_INFUSION = (*PRE[1:], Ph.ON_HOLD, Ph.CONDITIONING)

# PATHWAY.md "Phase-changing triggers": (from, to) of every trigger. `clear_donor` inside
# conditioning is the emergency donor's clearance ("Events": select_emergency_donor).
PATHWAY_TRIGGERS: dict[str, set[tuple[Phase, Phase]]] = {
    "begin_evaluation": {(Ph.REFERRED, Ph.EVALUATION)},
    "complete_evaluation": {(Ph.EVALUATION, Ph.DONOR_SEARCH), (Ph.EVALUATION, Ph.COLLECTION)},
    "select_donor": {(Ph.DONOR_SEARCH, Ph.DONOR_WORKUP)},
    "release_donor": {(p, Ph.DONOR_SEARCH) for p in (Ph.DONOR_WORKUP, Ph.COLLECTION, Ph.READY_FOR_CONDITIONING)},
    "clear_donor": {
        (Ph.DONOR_WORKUP, Ph.COLLECTION),
        (Ph.DONOR_WORKUP, Ph.READY_FOR_CONDITIONING),
        (Ph.CONDITIONING, Ph.CONDITIONING),
    },
    "complete_collection": {(Ph.COLLECTION, Ph.READY_FOR_CONDITIONING)},
    "hold": {(p, Ph.ON_HOLD) for p in PRE},
    "resume": {(Ph.ON_HOLD, p) for p in PRE},
    "start_conditioning": {(Ph.READY_FOR_CONDITIONING, Ph.CONDITIONING)},
    "infuse": {(Ph.CONDITIONING, Ph.AWAITING_ENGRAFTMENT)},
    "confirm_engraftment": {(Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP)},
    "declare_graft_failure": {(p, Ph.GRAFT_FAILURE) for p in POST_INFUSION},
    "rescue_infusion": {(Ph.GRAFT_FAILURE, Ph.AWAITING_ENGRAFTMENT)},
    "complete_day100": {(Ph.FOLLOW_UP, Ph.DAY100_COMPLETE)},
    "withdraw": {(p, Ph.WITHDRAWN) for p in (*PRE, Ph.ON_HOLD)},
    "record_death": {(p, Ph.DECEASED) for p in NOT_FINAL},
}

# PATHWAY.md "Events": where each may be recorded. `start_subsequent_transplant` is an event on
# the old pathway (docs/decisions.md "Follow-up and subsequent transplants").
PATHWAY_EVENTS: dict[str, set[Phase]] = {
    "record_consent": {Ph.REFERRED, Ph.EVALUATION},
    "record_eligibility": {Ph.REFERRED, Ph.EVALUATION},
    "record_hla_typing": {Ph.EVALUATION, Ph.DONOR_SEARCH},
    "record_abo_typing": {Ph.EVALUATION},
    "record_donor_candidate": {Ph.DONOR_SEARCH, Ph.DONOR_WORKUP},
    # After Day 0 too: a donor collected again for a DLI or boost is tested again.
    "record_donor_idm": {
        Ph.DONOR_WORKUP,
        Ph.COLLECTION,
        Ph.READY_FOR_CONDITIONING,
        Ph.ON_HOLD,
        Ph.CONDITIONING,
        *LONG_TERM,
    },
    "start_mobilization": {Ph.COLLECTION},
    "report_mobilization_failure": {Ph.COLLECTION},
    # PATHWAY.md lists collection, conditioning and graft_failure; a DLI or boost bag collected
    # after Day 0 is recorded too, so `record_infusion` can name a known bag (docs/clinical-rules.md).
    "record_collection": {Ph.COLLECTION, Ph.CONDITIONING, *LONG_TERM, Ph.GRAFT_FAILURE},
    # In conditioning too: a graft the patient cannot receive fresh in time (docs/products.md).
    "cryopreserve_product": {Ph.COLLECTION, Ph.READY_FOR_CONDITIONING, Ph.ON_HOLD, Ph.CONDITIONING},
    "record_conditioning_dose": {Ph.CONDITIONING},
    "report_donor_unavailable": {Ph.CONDITIONING},
    "select_emergency_donor": {Ph.CONDITIONING},
    "record_lab": set(LAB_PHASES),
    "record_transfusion": set(LAB_PHASES),
    "confirm_platelet_engraftment": set(POST_INFUSION),
    "record_chimerism": {*LONG_TERM, Ph.GRAFT_FAILURE},
    "record_gvhd_assessment": set(LONG_TERM),
    "record_vod_assessment": {Ph.CONDITIONING, *POST_INFUSION},
    # Before infusion (evaluation to conditioning, on hold) and in graft failure too (issue #11;
    # docs/disease-course.md).
    "report_relapse": {*RELAPSE_BEFORE_INFUSION, Ph.GRAFT_FAILURE, *LONG_TERM},
    "record_infusion": set(LONG_TERM),
    "record_adverse_event": set(NOT_FINAL),
    "discharge": set(POST_INFUSION),
    "readmit": set(POST_INFUSION),
    "record_assessment": {Ph.FOLLOW_UP, Ph.DAY100_COMPLETE},
    "start_subsequent_transplant": {Ph.GRAFT_FAILURE, Ph.FOLLOW_UP, Ph.DAY100_COMPLETE},
    "correct_entry": set(Phase),
}
# Commands the project added where PATHWAY.md is silent (docs/decisions.md); only their
# presence is pinned here.
DOCUMENTED_ADDITIONS = {
    "record_registry_form",
    "adopt_policy",
    "change_route",
    # Long-term follow-up, transfer and product disposition (docs/long-term-follow-up.md).
    "transfer",
    "record_chronic_gvhd",
    "record_product_disposition",
    # A suspected graft failure and a withdrawn patient's reinstatement (docs/disease-course.md).
    "suspect_graft_failure",
    "clear_graft_failure_suspicion",
    "reinstate",
    # Donor mobilisation in conditioning, per-patient cryopreservation, bags (docs/products.md).
    "record_donor_mobilization",
    "decide_cryopreservation",
    "quarantine_bag",
    "release_bag",
    "discard_bag",
    "record_thaw",
    # GVHD prophylaxis and supportive care (docs/supportive-care.md).
    "plan_gvhd_prophylaxis",
    "record_prophylaxis_dose",
    "admit",
    "start_growth_factor",
    "record_infection",
    "record_mucositis",
}


def _commands(**replaced: dict[str, Any]) -> tuple[Command, ...]:
    """The real chart's commands, with the named ones changed."""
    return tuple(
        dataclasses.replace(c, **replaced[c.name]) if c.name in replaced else c for c in CHART.commands.values()
    )


def _chart_error(commands: tuple[Command, ...]) -> str:
    with pytest.raises(ChartError) as info:
        build_chart(commands)
    return str(info.value)


# --- the chart itself ---------------------------------------------------------------------


def test_the_chart_builds_from_its_own_commands() -> None:
    rebuilt = build_chart(tuple(CHART.commands.values()))
    assert dict(rebuilt.commands) == dict(CHART.commands)
    assert rebuilt.initial_phase is CHART.initial_phase is Phase.REFERRED


def test_triggers_match_pathway_md() -> None:
    triggers = [c for c in CHART.triggers if c.name not in DOCUMENTED_ADDITIONS]
    edges = {c.name: {(e.source, e.dest) for e in c.edges} for c in triggers}
    assert edges == PATHWAY_TRIGGERS


def test_events_match_pathway_md() -> None:
    events = {c.name: set(c.allowed_in) for c in CHART.events if c.name not in DOCUMENTED_ADDITIONS}
    assert events == PATHWAY_EVENTS
    assert set(CHART.commands) >= DOCUMENTED_ADDITIONS


def test_final_phases_have_no_edge_out_and_every_phase_is_reachable() -> None:
    assert {Ph.WITHDRAWN, Ph.DECEASED, Ph.TRANSFERRED} == FINAL_PHASES
    assert FINAL_PHASES | {Ph.DAY100_COMPLETE} == CLOSED_PHASES
    edges = [e for c in CHART.triggers for e in c.edges]
    assert not [e for e in edges if e.source in FINAL_PHASES]
    reached, frontier = {CHART.initial_phase}, [CHART.initial_phase]
    while frontier:
        here = frontier.pop()
        for edge in edges:
            if edge.source is here and edge.dest not in reached:
                reached.add(edge.dest)
                frontier.append(edge.dest)
    assert reached == set(Phase)


def test_role_table_follows_pathway_md_roles() -> None:
    roles = Policy().roles
    physician = frozenset({Role.TRANSPLANT_PHYSICIAN})
    # "only a physician starts conditioning, declares graft failure or engraftment"
    for trigger in ("start_conditioning", "declare_graft_failure", "confirm_engraftment"):
        assert roles[trigger] == physician, trigger
    # "`infuse` needs an infusion nurse or physician"
    assert roles["infuse"] <= {Role.INFUSION_NURSE, Role.TRANSPLANT_PHYSICIAN}
    # "laboratory values come from `laboratory` or `system`"
    assert roles["record_lab"] <= {Role.LABORATORY, Role.SYSTEM}
    # "`quality_manager` reads and corrects with a reason but never moves a patient"
    assert Role.QUALITY_MANAGER in roles["correct_entry"]
    assert not [c.name for c in CHART.triggers if Role.QUALITY_MANAGER in roles[c.name]]
    assert set(roles) == set(CHART.commands) | {"refer"}


# --- broken charts are refused, naming the problem ----------------------------------------


def test_a_duplicated_command_is_named() -> None:
    message = _chart_error((*CHART.commands.values(), CHART.commands["hold"]))
    assert "hold: defined twice" in message


def test_a_second_way_to_refer_is_refused() -> None:
    """One initial phase, entered by `refer` only."""
    second = Command("refer", pl.Refer, edges=(Edge(Ph.EVALUATION, Ph.REFERRED),))
    assert "refer: defined twice" in _chart_error((*CHART.commands.values(), second))


def test_an_unknown_guard_is_named() -> None:
    guards = (*CHART.commands["infuse"].guards, "two_nurses_present")
    message = _chart_error(_commands(infuse={"guards": guards}))
    assert "infuse: unknown guard 'two_nurses_present'" in message


def test_an_unknown_route_predicate_is_named() -> None:
    edges = (Edge(Ph.EVALUATION, Ph.DONOR_SEARCH, "is_allo"), Edge(Ph.EVALUATION, Ph.COLLECTION, "autologous"))
    message = _chart_error(_commands(complete_evaluation={"edges": edges}))
    assert "complete_evaluation: unknown route predicate 'is_allo'" in message


def test_an_edge_reopening_day100_complete_is_named() -> None:
    edges = (*CHART.commands["complete_day100"].edges, Edge(Ph.DAY100_COMPLETE, Ph.FOLLOW_UP))
    message = _chart_error(_commands(complete_day100={"edges": edges}))
    assert "complete_day100: edge from closed phase day100_complete to follow_up, not a final phase" in message


@pytest.mark.parametrize("final", sorted(FINAL_PHASES))
def test_an_edge_out_of_a_final_phase_is_named(final: Phase) -> None:
    edges = (*CHART.commands["transfer"].edges, Edge(final, Ph.TRANSFERRED))
    message = _chart_error(_commands(transfer={"edges": edges}))
    assert f"transfer: edge out of final phase {final}" in message


def test_an_unreachable_phase_is_named() -> None:
    message = _chart_error(_commands(declare_graft_failure={"edges": ()}))
    assert "phase graft_failure is unreachable from referred" in message
    assert message.count("unreachable") == 1


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_a_role_table_and_chart_mismatch_is_named(change: str) -> None:
    if change == "missing":
        commands = tuple(c for c in CHART.commands.values() if c.name != "record_assessment")
        name = "record_assessment"
    else:
        commands = (*CHART.commands.values(), Command("teleport", pl.Empty, edges=(Edge(Ph.REFERRED, Ph.FOLLOW_UP),)))
        name = "teleport"
    assert f"{name}: in the role table xor the chart" in _chart_error(commands)


def test_a_command_with_edges_and_phases_or_a_foreign_payload_is_named() -> None:
    message = _chart_error(
        _commands(
            hold={"allowed_in": frozenset({Ph.REFERRED})},
            discharge={"payload": dict},
        )
    )
    assert "hold: a trigger has edges, an event has phases, not both" in message
    assert "discharge: payload is not a Payload model" in message


def test_every_problem_is_named_at_once() -> None:
    edges = (*CHART.commands["complete_day100"].edges, Edge(Ph.WITHDRAWN, Ph.REFERRED, "nowhere"))
    message = _chart_error(_commands(complete_day100={"edges": edges}, infuse={"guards": ("no_such_guard",)}))
    for part in ("unknown route predicate 'nowhere'", "edge out of final phase withdrawn", "no_such_guard"):
        assert part in message


# --- the shared transitions machine ---------------------------------------------------------


class _Token:
    def __init__(self, state: str) -> None:
        self.state = state


def _facts(**changes: Any) -> PathwayFacts:
    base = {"phase": Ph.EVALUATION, "route": "autologous", "graft_source": "pbsc", "patient_ref": "PT-8F3A21"}
    return PathwayFacts.model_validate({**base, **changes})


def test_the_machine_has_no_auto_transitions_no_queue_and_only_chart_triggers() -> None:
    machine = PathwayEngine().machine
    assert machine.auto_transitions is False
    assert machine.has_queue is False
    assert machine.ignore_invalid_triggers is False
    assert not [name for name in machine.events if name.startswith("to_")]
    assert set(machine.events) == {c.name for c in CHART.triggers}
    assert set(machine.states) == {p.value for p in Phase}
    assert machine.initial == Ph.REFERRED.value
    assert machine.models == []


def test_an_invalid_trigger_raises() -> None:
    engine = PathwayEngine()
    with pytest.raises(MachineError):
        engine.machine.events["infuse"].trigger(_Token(Ph.REFERRED.value), facts=_facts(), policy=Policy())
    with pytest.raises(EngineMismatch):
        engine.fire(Ph.REFERRED, "infuse", _facts(phase=Ph.REFERRED), Policy())
    with pytest.raises(EngineMismatch):
        engine.fire(Ph.REFERRED, "teleport", _facts(phase=Ph.REFERRED), Policy())
    # An edge exists, but its route predicate fails: never a silent False.
    with pytest.raises(EngineMismatch):
        engine.fire(Ph.COLLECTION, "release_donor", _facts(phase=Ph.COLLECTION), Policy())


def test_route_predicates_pick_the_edge() -> None:
    engine = PathwayEngine()
    allo = {"route": "allogeneic", "donor_type": "matched_unrelated"}
    assert engine.fire(Ph.EVALUATION, "complete_evaluation", _facts(), Policy()) is Ph.COLLECTION
    assert engine.fire(Ph.EVALUATION, "complete_evaluation", _facts(**allo), Policy()) is Ph.DONOR_SEARCH
    held = _facts(phase=Ph.ON_HOLD, held_from=Ph.DONOR_WORKUP, **allo)
    assert engine.fire(Ph.ON_HOLD, "resume", held, Policy()) is Ph.DONOR_WORKUP
    workup = _facts(phase=Ph.DONOR_WORKUP, **allo)
    assert engine.fire(Ph.DONOR_WORKUP, "clear_donor", workup, Policy()) is Ph.READY_FOR_CONDITIONING
    cryo = Policy(cryopreserve_before_conditioning=True)
    assert engine.fire(Ph.DONOR_WORKUP, "clear_donor", workup, cryo) is Ph.COLLECTION


def test_one_machine_serves_every_pathway(
    service: PathwayService, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    original_init, original_add = Machine.__init__, Machine.add_model

    def counting_init(self: Machine, *args: Any, **kwargs: Any) -> None:
        calls["init"] += 1
        original_init(self, *args, **kwargs)

    def counting_add(self: Machine, *args: Any, **kwargs: Any) -> None:
        calls["add_model"] += 1
        original_add(self, *args, **kwargs)

    monkeypatch.setattr(Machine, "__init__", counting_init)
    monkeypatch.setattr(Machine, "add_model", counting_add)
    shared = PathwayService(service.engine, clock=clock)
    engine = shared._machine
    assert calls == {"init": 1}
    for name in ("autologous", "cord_blood"):
        run_walk(shared, clock, WALKS[name]())
    reach(shared, clock, "matched_unrelated", Ph.ON_HOLD)
    assert calls == {"init": 1}
    assert shared._machine is engine
    assert engine.machine.models == []
    assert len(shared.pathway_ids(phase=Ph.DAY100_COMPLETE)) == 2
