"""Transfer to another centre, on both backends: a final phase reached from any phase that is
not final, by a reasoned command with the right roles; its milestones close (except a product
disposition) and the patient may be referred anew (docs/long-term-follow-up.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from states.chart import CHART
from states.errors import Refused
from states.vocabulary import CLOSED_PHASES, FINAL_PHASES, Phase
from tests.helpers_core import fire, problems, reach, refused, rejected
from tests.walks import COORD, LAB, PATIENT, PHYS, WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService

TRANSFER = {"destination_centre": "CENTRE-NORTH", "reason": "family moved closer to the northern centre"}


def test_transfer_leaves_every_phase_that_is_not_final() -> None:
    sources = {edge.source for edge in CHART.commands["transfer"].edges}
    assert sources == set(Phase) - FINAL_PHASES
    assert {edge.dest for edge in CHART.commands["transfer"].edges} == {Phase.TRANSFERRED}


@pytest.mark.parametrize("phase", [Phase.DONOR_SEARCH, Phase.AWAITING_ENGRAFTMENT, Phase.DAY100_COMPLETE])
def test_a_transfer_records_the_destination(service: PathwayService, clock: ManualClock, phase: Phase) -> None:
    pid = reach(service, clock, "matched_unrelated", phase)
    at = clock.now() + timedelta(hours=1)
    result = fire(service, clock, pid, at, COORD, "transfer", TRANSFER)
    assert result.phase is Phase.TRANSFERRED
    facts = service.snapshot(pid).facts
    assert (facts.transferred_to, facts.ended_on) == ("CENTRE-NORTH", at.date())  # the programme's zone is UTC


def test_only_a_physician_or_coordinator_transfers(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    reasons = refused(service, clock, pid, clock.now() + timedelta(hours=1), LAB, "transfer", TRANSFER)
    assert reasons == ("role_not_permitted",)


def test_a_transfer_is_not_dated_before_the_last_entry(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    reasons = refused(service, clock, pid, clock.now() - timedelta(days=1), COORD, "transfer", TRANSFER)
    assert reasons == ("effective_time_before_previous_entry",)


@pytest.mark.parametrize("final", sorted(FINAL_PHASES))
def test_nothing_moves_a_final_pathway(service: PathwayService, clock: ManualClock, final: Phase) -> None:
    pid = reach(service, clock, "autologous", final)
    at = clock.now() + timedelta(hours=2)
    assert "trigger_not_allowed_in_phase" in refused(service, clock, pid, at, COORD, "transfer", TRANSFER)
    death = {"primary_cause": "other"}
    assert "trigger_not_allowed_in_phase" in refused(service, clock, pid, at, PHYS, "record_death", death)


def test_a_transfer_needs_a_reason_and_a_centre_reference(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    at = clock.now() + timedelta(hours=1)
    clock.set(at)
    sent = {"destination_centre": "North Hospital"}  # a name with a space, no reason
    error = rejected(service, pid, lambda: service.fire(pid, "transfer", sent, actor=COORD, at=at))
    assert {path for path, _ in problems(error)} == {"payload.destination_centre", "payload.reason"}


def test_transfer_closes_the_milestones(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    day90 = walk.day0 + timedelta(days=90)
    assert "day100_assessment" in {m.name for m in service.milestones(pid, at=t(day90))}
    fire(service, clock, pid, t(walk.day0 + timedelta(days=80)), PHYS, "transfer", TRANSFER)
    assert service.milestones(pid, at=t(day90)) == []
    assert pid not in service.all_milestones(at=t(day90))


def test_a_transferred_patient_may_be_referred_anew(service: PathwayService, clock: ManualClock) -> None:
    assert Phase.TRANSFERRED in CLOSED_PHASES
    pid = reach(service, clock, "autologous", Phase.EVALUATION)
    referral = dict(WALKS["autologous"]().refer)
    with pytest.raises(Refused) as info:
        service.refer(referral, actor=PHYS, at=clock.now())
    assert info.value.reasons == ("patient_has_open_pathway",)
    fire(service, clock, pid, clock.now() + timedelta(hours=1), COORD, "transfer", TRANSFER)
    clock.set(clock.now() + timedelta(days=1))
    again = service.refer(referral, actor=PHYS, at=clock.now())
    assert again.phase is Phase.REFERRED
    assert set(service.find(PATIENT)) == {pid, again.pathway_id}
