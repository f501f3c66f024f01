"""Relapse or progression before infusion, suspected graft failure, and reinstating a withdrawn
patient (docs/disease-course.md, docs/decisions.md), through the service on both backends.

Expectations follow the rules: a relapse before Day 0 is the disease status at transplant and
does not stop the pathway; a suspicion may be raised at any Day after infusion on chimerism or
counts and waits for a decision [F:ASTCT]; a reinstatement is a linked new pathway of the same
transplant, never a way out of `withdrawn`.
"""

from __future__ import annotations

from datetime import timedelta

from states.policy import Policy
from states.vocabulary import Phase
from tests.helpers_core import fire, on, problems, reach, refused, rejected
from tests.walks import LAB, PHYS, WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService

POLICY = Policy()

# --- relapse or progression before infusion, and in graft failure -----------------------------


def test_relapse_in_conditioning_is_recorded_and_the_transplant_goes_on(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.CONDITIONING)
    found = clock.now() + timedelta(minutes=30)
    fire(service, clock, pid, found, PHYS, "report_relapse", {"method": "pet_ct", "kind": "relapse"})
    snapshot = service.snapshot(pid)
    assert snapshot.facts.relapse_before_infusion is not None
    assert snapshot.facts.relapse_before_infusion.on == found.date()
    assert "relapse_before_infusion" in snapshot.flags
    # No rule stops a transplant for a relapse found before it: the rest of the walk proceeds.
    start = next(i for i, step in enumerate(walk.steps) if step[2] == "start_conditioning")
    for at, actor, command, payload in walk.steps[start + 1 :]:
        fire(service, clock, pid, at, actor, command, payload)
    final = service.snapshot(pid)
    assert final.phase is Phase.DAY100_COMPLETE
    assert final.facts.relapse_on is None  # not a relapse after the transplant
    assert "relapse" not in final.flags
    assert "relapse_before_infusion" in final.flags


def test_progression_in_evaluation_is_told_apart_from_relapse(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "matched_unrelated", Phase.EVALUATION)
    at = clock.now() + timedelta(hours=1)
    fire(service, clock, pid, at, PHYS, "report_relapse", {"method": "ct", "kind": "progression"})
    flags = service.snapshot(pid).flags
    assert "progression_before_infusion" in flags
    assert "relapse_before_infusion" not in flags


def test_relapse_is_not_reported_at_referral(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.REFERRED)
    reasons = refused(service, clock, pid, clock.now() + timedelta(hours=1), PHYS, "report_relapse", {"method": "ct"})
    assert reasons == ("event_not_allowed_in_phase",)


def test_relapse_in_graft_failure_is_a_relapse_after_day0(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = reach(service, clock, "matched_unrelated", Phase.GRAFT_FAILURE)
    late = on(walk.day0, 34)
    fire(service, clock, pid, late, PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    snapshot = service.snapshot(pid)
    assert snapshot.facts.relapse_on == late.date()
    assert "relapse" in snapshot.flags
    # Dated before Day 0 once Day 0 is set: refused, it would have been reported before infusion.
    early = on(walk.day0, -1)
    other = reach(service, clock, "matched_unrelated", Phase.GRAFT_FAILURE)
    assert "relapse_before_day0" in refused(
        service, clock, other, early, PHYS, "report_relapse", {"method": "ct"}, now=on(walk.day0, 35)
    )


# --- suspected graft failure -------------------------------------------------------------------


def test_suspicion_is_shown_asks_for_a_decision_and_is_confirmed_by_the_declaration(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    raised = on(walk.day0, 21)
    evidence = {"donor_chimerism_pct": 3.0, "anc_x10e9_per_l": 0.05}
    fire(service, clock, pid, raised, PHYS, "suspect_graft_failure", evidence)
    snapshot = service.snapshot(pid)
    assert "graft_failure_suspected" in snapshot.flags
    suspicion = snapshot.facts.graft_failure_suspicion
    assert suspicion is not None
    assert suspicion.donor_chimerism_pct == 3.0
    window = POLICY.graft_failure_suspicion_review_days
    last_day = on(walk.day0, 21 + window)
    assert "graft_failure_suspicion_review" in {m.name for m in service.due(pid, at=last_day)}
    assert "graft_failure_suspicion_review" in {m.name for m in service.overdue(pid, at=last_day + timedelta(days=1))}
    assert refused(service, clock, pid, on(walk.day0, 22), PHYS, "suspect_graft_failure", evidence) == (
        "graft_failure_already_suspected",
    )
    # Day +30 with a documented pancytopenia: the primary graft failure is declared [F:ASTCT].
    for day in (27, 29):
        fire(service, clock, pid, on(walk.day0, day, 7), LAB, "record_lab", {"anc_x10e9_per_l": 0.05})
    fire(service, clock, pid, on(walk.day0, 30), PHYS, "declare_graft_failure", {"kind": "primary"})
    after = service.snapshot(pid)
    assert after.facts.graft_failure_suspicion is None
    assert {"graft_failure_suspected", "primary_graft_failure"} & after.flags == {"primary_graft_failure"}
    assert "graft_failure_suspicion_review" not in {m.name for m in service.milestones(pid, at=on(walk.day0, 40))}


def test_autologous_reconstitution_suspected_then_cleared_with_a_reason(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_sibling"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    evidence = {"kind": "autologous_reconstitution", "donor_chimerism_pct": 40.0}
    fire(service, clock, pid, on(walk.day0, 45), PHYS, "suspect_graft_failure", evidence)
    assert "autologous_reconstitution_suspected" in service.snapshot(pid).flags
    fire(
        service,
        clock,
        pid,
        on(walk.day0, 50),
        PHYS,
        "clear_graft_failure_suspicion",
        {"reason": "repeat chimerism 92 % donor after tapering immunosuppression"},
    )
    snapshot = service.snapshot(pid)
    assert snapshot.facts.graft_failure_suspicion is None
    assert snapshot.phase is Phase.FOLLOW_UP
    assert not {f for f in snapshot.flags if f.endswith("_suspected")}
    assert refused(
        service, clock, pid, on(walk.day0, 51), PHYS, "clear_graft_failure_suspicion", {"reason": "again"}
    ) == ("graft_failure_not_suspected",)


def test_donor_evidence_needs_an_allogeneic_graft(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    at = on(walk.day0, 20)
    for evidence in ({"donor_chimerism_pct": 10.0}, {"kind": "autologous_reconstitution", "anc_x10e9_per_l": 1.0}):
        assert refused(service, clock, pid, at, PHYS, "suspect_graft_failure", evidence) == (
            "suspicion_needs_donor_graft",
        )
    fire(service, clock, pid, at, PHYS, "suspect_graft_failure", {"anc_x10e9_per_l": 0.02})
    assert "graft_failure_suspected" in service.snapshot(pid).flags


def test_a_suspicion_without_evidence_is_malformed(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    clock.set(on(walk.day0, 10))
    error = rejected(
        service,
        pid,
        lambda: service.fire(pid, "suspect_graft_failure", {"evidence": "feels off"}, actor=PHYS, at=clock.now()),
    )
    assert problems(error) == {("payload.donor_chimerism_pct", "suspicion_evidence_missing")}


# --- reinstating a withdrawn patient -----------------------------------------------------------


def _withdrawn_after_workup(service: PathwayService, clock: ManualClock) -> str:
    pid = reach(service, clock, "matched_unrelated", Phase.READY_FOR_CONDITIONING)
    at = clock.now() + timedelta(hours=1)
    fire(service, clock, pid, at, PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    fire(service, clock, pid, at + timedelta(hours=1), PHYS, "withdraw", {"reason": "patient withdrew consent"})
    return pid


def test_reinstatement_opens_a_linked_pathway_of_the_same_transplant(
    service: PathwayService, clock: ManualClock
) -> None:
    old = _withdrawn_after_workup(service, clock)
    before = service.snapshot(old)
    last_day = clock.now() + timedelta(days=POLICY.reinstatement_window_days)
    result = fire(service, clock, old, last_day, PHYS, "reinstate", {"reason": "patient asks to go ahead"})
    new = result.entry.payload["new_pathway_id"]
    linked = service.snapshot(new)
    assert linked.phase is Phase.EVALUATION
    assert (linked.facts.hct_number, linked.facts.previous_pathway) == (before.facts.hct_number, old)
    assert (linked.facts.route, linked.facts.donor_type) == (before.facts.route, before.facts.donor_type)
    # Still valid: the patient's typing and disease history. Not carried: consent (withdrawn),
    # eligibility, donors and their clearance.
    assert linked.facts.hla_samples == before.facts.hla_samples
    assert len(linked.facts.hla_samples) == 2
    assert linked.facts.abo_samples == before.facts.abo_samples
    assert linked.facts.relapse_before_infusion == before.facts.relapse_before_infusion is not None
    assert linked.facts.consent_on is None
    assert not linked.facts.eligibility_documented
    assert linked.facts.selected_donors == ()
    assert linked.facts.cleared_donors == ()
    closed = service.snapshot(old)
    assert closed.phase is Phase.WITHDRAWN
    assert closed.facts.next_pathway == new
    # The withdrawn pathway is closed by its link, and the linked one is the patient's open pathway.
    assert set(refused(service, clock, old, last_day, PHYS, "reinstate", {"reason": "twice"})) == {
        "pathway_superseded",
        "patient_has_open_pathway",
    }


def test_reinstatement_after_the_window_is_refused(service: PathwayService, clock: ManualClock) -> None:
    old = _withdrawn_after_workup(service, clock)
    late = clock.now() + timedelta(days=POLICY.reinstatement_window_days + 1)
    assert refused(service, clock, old, late, PHYS, "reinstate", {"reason": "back after a year"}) == (
        "reinstatement_window_passed",
    )


def test_reinstatement_beside_a_new_referral_is_refused(service: PathwayService, clock: ManualClock) -> None:
    old = _withdrawn_after_workup(service, clock)
    walk = WALKS["matched_unrelated"]()
    patient = service.snapshot(old).facts.patient_ref
    referral = {**walk.refer, "patient_ref": patient}
    at = clock.now() + timedelta(days=2)
    clock.set(at)
    service.refer(referral, actor=PHYS, at=at)
    assert refused(service, clock, old, at, PHYS, "reinstate", {"reason": "patient changed mind"}) == (
        "patient_has_open_pathway",
    )


# --- conditioning length: the plan's span is planned Day 0 minus the start ---------------------


def _plan(first_day: int, day0: str) -> dict[str, object]:
    plan = [{"day": n, "drug": "busulfan", "dose": "3.2 mg/kg"} for n in range(first_day, -1)]
    return {"regimen": {"name": "Bu", "intensity": "MAC", "plan": plan}, "planned_day0": day0}


def test_conditioning_starts_with_its_first_planned_dose(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    day0 = (clock.now() + timedelta(days=20)).date()
    # A 7-day plan (Day -7..-1) recorded as started on Day -3: four doses would precede the start.
    late_start = on(day0, -3, 8)
    assert refused(service, clock, pid, late_start, PHYS, "start_conditioning", _plan(-7, day0.isoformat())) == (
        "conditioning_plan_before_start",
    )
    # Recorded again with its true date, the first dose's day: accepted (7 days, no reason needed).
    plan = _plan(-7, day0.isoformat())
    started = fire(service, clock, pid, on(day0, -7, 8), PHYS, "start_conditioning", plan, now=on(day0, -3, 9))
    assert started.phase is Phase.CONDITIONING
    assert "conditioning_length_outside_policy" not in service.snapshot(pid).flags


def test_reinstatement_carries_the_stored_products_with_the_patient(
    service: PathwayService, clock: ManualClock
) -> None:
    old = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    stored = {p.product_id for p in service.snapshot(old).facts.stored_products()}
    assert stored, "the autologous walk freezes its collection before conditioning"
    withdrawn = clock.now() + timedelta(hours=1)
    fire(service, clock, old, withdrawn, PHYS, "withdraw", {"reason": "patient withdrew consent"})
    asked = withdrawn + timedelta(days=10)
    assert "product_disposition" in {m.name for m in service.milestones(old, at=asked)}
    result = fire(service, clock, old, asked, PHYS, "reinstate", {"reason": "patient asks to go ahead"})
    assert set(result.entry.payload["carried_products"]) == stored
    new = result.entry.payload["new_pathway_id"]
    # The cells go with the patient: stored on the new pathway, none left to dispose of on the old.
    assert {p.product_id for p in service.snapshot(new).facts.stored_products()} == stored
    assert service.snapshot(old).facts.stored_products() == []
    assert "product_disposition" not in {m.name for m in service.milestones(old, at=asked)}
