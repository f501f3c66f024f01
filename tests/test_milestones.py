"""Milestones: what is due or overdue, with the days taken from the reference (section 4)."""

from __future__ import annotations

from datetime import timedelta

from states.vocabulary import Phase
from tests.walks import COORD, LAB, PHYS, WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService


def names(service: PathwayService, pid: str, day: object, status: str) -> set[str]:
    found = service.milestones(pid, at=t(day))  # type: ignore[arg-type]
    return {m.name for m in found if m.status == status}


def test_no_engraftment_by_day28_and_graft_failure_review(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["cord_blood"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    day0 = walk.day0
    # No labs after infusion: recovery is not reached.
    assert "neutrophil_recovery_day28" not in names(service, pid, day0 + timedelta(days=28), "overdue")
    assert "neutrophil_recovery_day28" in names(service, pid, day0 + timedelta(days=29), "overdue")
    # Cord blood: the primary graft failure threshold is Day +42, not +30 [F:ASTCT].
    assert "primary_graft_failure_review" not in names(service, pid, day0 + timedelta(days=35), "due")
    assert "primary_graft_failure_review" in names(service, pid, day0 + timedelta(days=42), "due")


def test_day30_and_day100_windows(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    day0 = walk.day0
    assert "day100_assessment" not in names(service, pid, day0 + timedelta(days=84), "due")
    assert "day100_assessment" in names(service, pid, day0 + timedelta(days=85), "due")
    assert "day100_assessment" in names(service, pid, day0 + timedelta(days=115), "due")
    assert "day100_assessment" in names(service, pid, day0 + timedelta(days=116), "overdue")
    assert "day30_assessment" in names(service, pid, day0 + timedelta(days=30), "due")
    clock.set(t(day0 + timedelta(days=31)))
    service.fire(pid, "record_assessment", {"kind": "day30"}, actor=PHYS, at=t(day0 + timedelta(days=31)))
    assert "day30_assessment" not in names(service, pid, day0 + timedelta(days=33), "due")


def test_registry_forms(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.CONDITIONING)
    day0 = walk.day0  # conditioning started 2026-02-02: Pre-TED may go 2 weeks before, due Day 0
    assert "pre_transplant_form" in names(service, pid, day0 - timedelta(days=1), "due")
    assert "pre_transplant_form" in names(service, pid, day0 + timedelta(days=1), "overdue")
    clock.set(t(day0 - timedelta(days=1)))
    service.fire(pid, "record_registry_form", {"form": "pre_transplant"}, actor=COORD, at=t(day0 - timedelta(days=1)))
    assert "pre_transplant_form" not in names(service, pid, day0 + timedelta(days=1), "overdue")


def test_missing_conditioning_dose_is_overdue(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.CONDITIONING)  # Mel200 planned on Day -2, not yet given
    day_minus_2 = walk.day0 - timedelta(days=2)
    assert "conditioning_dose" not in names(service, pid, day_minus_2, "overdue")
    assert "conditioning_dose" in names(service, pid, day_minus_2 + timedelta(days=1), "overdue")


def test_donor_idm_expiring_before_planned_collection(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.DONOR_WORKUP)  # planned collection 2026-04-07 (S07)
    assert "donor_idm_repeat" in names(service, pid, walk.day0 - timedelta(days=60), "due")
    when = t(walk.day0 - timedelta(days=40))
    clock.set(when)
    # S07: an IDM drawn 03-03 is 35 days before the 04-07 collection: still due.
    service.fire(pid, "record_donor_idm", {"donor_ref": "DONOR-A", "drawn_on": "2026-03-03", "result": "negative"},
                 actor=LAB, at=when)
    assert "donor_idm_repeat" in names(service, pid, walk.day0 - timedelta(days=30), "due")
    service.fire(pid, "record_donor_idm", {"donor_ref": "DONOR-A", "drawn_on": "2026-03-10", "result": "negative"},
                 actor=LAB, at=when)
    assert "donor_idm_repeat" not in names(service, pid, walk.day0 - timedelta(days=30), "due")


def test_all_pathways_in_one_call(service: PathwayService, clock: ManualClock) -> None:
    first = run_walk(service, clock, WALKS["cord_blood"](), until=Phase.AWAITING_ENGRAFTMENT)
    done = run_walk(service, clock, WALKS["autologous"]().for_patient("PT-AUTO0002"))
    found = service.all_milestones(at=t(WALKS["cord_blood"]().day0 + timedelta(days=45)))
    assert "neutrophil_recovery_day28" in {m.name for m in found[first]}
    # A completed pathway keeps only its unsent registry forms open (the walks send none).
    assert {m.name for m in found.get(done, [])} <= {"pre_transplant_form", "post_transplant_form_day100"}
