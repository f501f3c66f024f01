"""Engraftment, graft failure, conditioning, Day +100 and subsequent-HCT rules, second pass
(docs/engraftment-rules.md), through the service on both backends.

Every expectation is built from the published rule, not from what the code returns:
neutrophil recovery and "ANC never below 0.5" [F:CIBMTR-ANC]; platelets >= 20 and >= 50 with
7 transfusion-free days [F:CIBMTR-PLT]; primary graft failure by Day +30/+42 with pancytopenia
[F:ASTCT]; secondary failure and the Form 2100 reasons for a subsequent HCT [F:CIBMTR-SUBSEQ];
the approximate Day +100 window 85..115 [F:CIBMTR-CONTACT].
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from states.vocabulary import Phase
from tests.helpers_core import fire, on, play, reach, refused
from tests.walks import LAB, PATIENT, PHYS, RN, VERIFIERS, WALKS, Step, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService


def _anc(day0: date, values: list[tuple[int, float]]) -> list[Step]:
    """ANC values (x10^9/L) drawn at 07:00 on the given Days."""
    return [(on(day0, n, 7), LAB, "record_lab", {"anc_x10e9_per_l": v}) for n, v in values]


def _infusion(products: list[str]) -> dict[str, Any]:
    return {"products": products, "label_recipient_ref": PATIENT, "verifiers": VERIFIERS}


# --- 1. ANC never below 0.5 (non-myeloablative) ------------------------------------------------

# Lowest ANC 0.6 on D+7; never below 0.5 through D+28.
NEVER_BELOW = [(1, 2.1), (4, 1.3), (7, 0.6), (9, 0.8), (11, 1.1), (14, 1.6), (21, 2.0), (28, 2.2)]


def test_anc_never_below_threshold_has_no_recovery_date_and_no_overdue_day28(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    play(service, clock, pid, _anc(walk.day0, NEVER_BELOW[:5]))
    # D+11: three values >= 0.5 after the lowest one (D+9) are not a recovery: there was no fall.
    assert service.snapshot(pid, at=on(walk.day0, 11, 12)).neutrophil_recovery_on is None
    assert refused(service, clock, pid, on(walk.day0, 11, 12), PHYS, "confirm_engraftment") == (
        "neutrophil_recovery_not_met",
    )
    play(service, clock, pid, _anc(walk.day0, NEVER_BELOW[5:]))
    snapshot = service.snapshot(pid, at=on(walk.day0, 29))
    assert snapshot.neutrophil_recovery_on is None
    assert "anc_never_below_threshold" in snapshot.flags
    clock.set(on(walk.day0, 29))
    assert "neutrophil_recovery_day28" not in {m.name for m in service.overdue(pid, at=on(walk.day0, 29))}

    result = fire(service, clock, pid, on(walk.day0, 29), PHYS, "confirm_engraftment")
    assert result.phase is Phase.FOLLOW_UP
    assert (result.entry.payload.get("recovery_on"), result.entry.payload["anc_never_below"]) == (None, True)
    done = fire(service, clock, pid, on(walk.day0, 100), PHYS, "complete_day100")
    assert done.phase is Phase.DAY100_COMPLETE


def test_no_recovery_and_no_flag_while_aplastic(service: PathwayService, clock: ManualClock) -> None:
    """The day-28 milestone still goes overdue for a patient who fell and never recovered."""
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    play(service, clock, pid, _anc(walk.day0, [(2, 0.9), (6, 0.05), (14, 0.1), (28, 0.2)]))
    at = on(walk.day0, 29)
    clock.set(at)
    assert "anc_never_below_threshold" not in service.snapshot(pid, at=at).flags
    assert "neutrophil_recovery_day28" in {m.name for m in service.overdue(pid, at=at)}


# --- 2. Re-engraftment after a rescue infusion ---------------------------------------------------


def test_rescue_then_re_engraftment_counts_only_labs_after_the_rescue(
    service: PathwayService, clock: ManualClock
) -> None:
    """S01-like: engrafted D+11, secondary failure D+21..23, rescue with stored DIN-B on D+25."""
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    day0 = walk.day0
    assert service.snapshot(pid).facts.neutrophil_recovery_on == day0 + timedelta(days=11)
    play(service, clock, pid, _anc(day0, [(21, 0.3), (22, 0.2), (23, 0.1)]))
    fire(service, clock, pid, on(day0, 23, 12), PHYS, "declare_graft_failure", {"kind": "secondary"})
    fire(service, clock, pid, on(day0, 25, 11), RN, "rescue_infusion", _infusion(["DIN-B"]))

    # The failed graft's recovery (D+11) no longer counts.
    assert refused(service, clock, pid, on(day0, 25, 12), PHYS, "confirm_engraftment") == (
        "neutrophil_recovery_not_met",
    )
    assert service.snapshot(pid, at=on(day0, 25, 12)).neutrophil_recovery_on is None
    play(service, clock, pid, _anc(day0, [(26, 0.3), (28, 0.05), (35, 0.6), (36, 0.8)]))
    assert refused(service, clock, pid, on(day0, 36, 12), PHYS, "confirm_engraftment") == (
        "neutrophil_recovery_not_met",
    )
    play(service, clock, pid, _anc(day0, [(37, 1.0)]))
    result = fire(service, clock, pid, on(day0, 37, 12), PHYS, "confirm_engraftment")
    assert result.phase is Phase.FOLLOW_UP
    assert result.entry.payload["recovery_on"] == (day0 + timedelta(days=35)).isoformat()
    assert service.snapshot(pid).day0 == day0  # a rescue is not a new transplant


# --- 3. Primary graft failure rests on recent counts ----------------------------------------------


def test_primary_graft_failure_needs_recent_low_anc(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()  # PBSC: threshold Day +30 [F:ASTCT]
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    primary = {"kind": "primary"}
    # No ANC recorded at all.
    assert refused(service, clock, pid, on(walk.day0, 30), PHYS, "declare_graft_failure", primary) == (
        "recent_anc_missing",
    )
    # Aplasia, then ANC rising on D+29 and D+30: not a failure, a recovery under way.
    play(service, clock, pid, _anc(walk.day0, [(6, 0.02), (20, 0.1), (29, 0.7), (30, 0.9)]))
    assert refused(service, clock, pid, on(walk.day0, 30, 12), PHYS, "declare_graft_failure", primary) == (
        "anc_recovery_in_progress",
    )


def test_primary_graft_failure_counts_the_week_ending_on_the_declaration_day(
    service: PathwayService, clock: ManualClock
) -> None:
    """The recent counts are those of the 7 days ending on the declaration day (policy)."""
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    primary = {"kind": "primary"}
    play(service, clock, pid, _anc(walk.day0, [(6, 0.02), (23, 0.1), (30, 0.2)]))
    # D+23 is 8 days before D+30: one recent value only.
    assert refused(service, clock, pid, on(walk.day0, 30, 12), PHYS, "declare_graft_failure", primary) == (
        "recent_anc_missing",
    )
    play(service, clock, pid, _anc(walk.day0, [(31, 0.1)]))
    result = fire(service, clock, pid, on(walk.day0, 31, 12), PHYS, "declare_graft_failure", primary)
    assert result.phase is Phase.GRAFT_FAILURE


def test_primary_graft_failure_waits_on_a_recent_anc_of_exactly_0_5(
    service: PathwayService, clock: ManualClock
) -> None:
    """ANC >= 0.5 is the recovery threshold [F:CIBMTR-ANC]: a recent 0.5 may be a recovery under way."""
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    play(service, clock, pid, _anc(walk.day0, [(6, 0.02), (28, 0.2), (29, 0.5), (30, 0.2)]))
    assert refused(service, clock, pid, on(walk.day0, 30, 12), PHYS, "declare_graft_failure", {"kind": "primary"}) == (
        "anc_recovery_in_progress",
    )


def test_primary_graft_failure_on_recent_low_counts_is_declared(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    play(service, clock, pid, _anc(walk.day0, [(6, 0.02), (20, 0.1), (27, 0.1), (30, 0.2)]))
    result = fire(service, clock, pid, on(walk.day0, 30, 12), PHYS, "declare_graft_failure", {"kind": "primary"})
    assert (result.phase, result.day_label) == (Phase.GRAFT_FAILURE, "D+30")


# --- 4. Secondary graft failure on twice-weekly labs ----------------------------------------------


def test_secondary_graft_failure_on_twice_weekly_outpatient_labs(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    secondary = {"kind": "secondary"}
    play(service, clock, pid, _anc(walk.day0, [(30, 0.3), (33, 0.2)]))
    assert refused(service, clock, pid, on(walk.day0, 33, 12), PHYS, "declare_graft_failure", secondary) == (
        "secondary_graft_failure_not_met",
    )
    play(service, clock, pid, _anc(walk.day0, [(37, 0.1)]))
    result = fire(service, clock, pid, on(walk.day0, 37, 12), PHYS, "declare_graft_failure", secondary)
    assert result.phase is Phase.GRAFT_FAILURE


# --- 10. Conditioning: dose dates and regimen length ----------------------------------------------


def test_a_dose_is_given_on_its_planned_day(service: PathwayService, clock: ManualClock) -> None:
    """Bu/Cy planned for Day 0 2026-04-08: busulfan Day -7 is 04-01, not 04-05."""
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.CONDITIONING)
    dose = {"drug": "busulfan", "dose": "3.2 mg/kg", "plan_day": -7}
    assert refused(service, clock, pid, on(walk.day0, -3, 10), RN, "record_conditioning_dose", dose) == (
        "dose_date_off_plan",
    )
    assert fire(service, clock, pid, on(walk.day0, -7, 10), RN, "record_conditioning_dose", dose).phase is (
        Phase.CONDITIONING
    )


def _regimen(days: list[int], reason: str | None = None) -> dict[str, Any]:
    plan = [{"day": n, "drug": "melphalan", "dose": "100 mg/m2"} for n in days]
    payload: dict[str, Any] = {
        "regimen": {"name": "test", "intensity": "MAC", "plan": plan},
        "planned_day0": "2026-03-01",
    }
    if reason is not None:
        payload["length_reason"] = reason
    return payload


def test_regimen_outside_the_usual_length_needs_a_reason_and_is_flagged(
    service: PathwayService, clock: ManualClock
) -> None:
    pid = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    at = on(date(2026, 3, 1), -14, 8)
    for days in ([-2], [-12, -1]):  # 2 days and 12 days: outside 5..10
        assert refused(service, clock, pid, at, PHYS, "start_conditioning", _regimen(days)) == (
            "regimen_length_outside_policy",
        )
    result = fire(service, clock, pid, at, PHYS, "start_conditioning", _regimen([-2], "Mel200, one dose"))
    assert result.phase is Phase.CONDITIONING
    assert "conditioning_length_outside_policy" in service.snapshot(pid).flags


def test_regimen_of_usual_length_needs_no_reason(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    at = on(date(2026, 3, 1), -14, 8)
    # BEAM-like D-6..D-1 (6 days); Bu/Cy-like D-7..D-2 with a rest day (7 days).
    assert fire(service, clock, pid, at, PHYS, "start_conditioning", _regimen([-7, -2])).phase is Phase.CONDITIONING
    assert "conditioning_length_outside_policy" not in service.snapshot(pid).flags


# --- 11. Day +100 after the window, with a reason ------------------------------------------------


def test_day100_after_the_window_needs_a_reason_and_is_flagged_late(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    assert refused(service, clock, pid, on(walk.day0, 120), PHYS, "complete_day100") == ("day100_late_reason_missing",)
    early = {"late_reason": "travelling"}
    assert refused(service, clock, pid, on(walk.day0, 80), PHYS, "complete_day100", early) == ("outside_day100_window",)
    late = {"late_reason": "patient abroad until Day +118"}
    result = fire(service, clock, pid, on(walk.day0, 120, 10), PHYS, "complete_day100", late)
    assert result.phase is Phase.DAY100_COMPLETE
    assert "day100_late" in service.snapshot(pid).flags


def test_day100_in_the_window_is_not_flagged(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.DAY100_COMPLETE)
    assert "day100_late" not in service.snapshot(pid).flags


# --- 12. Subsequent HCT reasons (CIBMTR Form 2100) ------------------------------------------------


def _subsequent(reason: str) -> dict[str, Any]:
    return {"reason": reason, "route": "autologous", "graft_source": "pbsc", "begin_in": "evaluation"}


def test_planned_tandem_after_engraftment(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    for reason, code in [
        ("persistent_disease", "persistent_disease_not_assessed"),
        ("new_malignancy", "new_malignancy_not_assessed"),
        ("relapse", "relapse_not_recorded"),
        ("graft_failure", "graft_failure_not_declared"),
    ]:
        at = on(walk.day0, 60)
        assert refused(service, clock, pid, at, PHYS, "start_subsequent_transplant", _subsequent(reason)) == (code,)
    result = fire(service, clock, pid, on(walk.day0, 60), PHYS, "start_subsequent_transplant", _subsequent("planned"))
    second = service.snapshot(result.entry.payload["new_pathway_id"])
    assert (second.phase, second.facts.hct_number) == (Phase.EVALUATION, 2)


def test_planned_transplant_is_refused_after_graft_failure(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.GRAFT_FAILURE)
    at = clock.now() + timedelta(days=1)
    assert refused(service, clock, pid, at, PHYS, "start_subsequent_transplant", _subsequent("planned")) == (
        "planned_transplant_not_engrafted",
    )


def test_persistent_disease_needs_an_assessment_saying_so(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    fire(service, clock, pid, on(walk.day0, 30), PHYS, "record_assessment", {"kind": "day30", "disease_status": "vgpr"})
    assert refused(
        service, clock, pid, on(walk.day0, 31), PHYS, "start_subsequent_transplant", _subsequent("persistent_disease")
    ) == ("persistent_disease_not_assessed",)
    fire(
        service,
        clock,
        pid,
        on(walk.day0, 60),
        PHYS,
        "record_assessment",
        {"kind": "other", "disease_status": "persistent_disease"},
    )
    result = fire(
        service, clock, pid, on(walk.day0, 61), PHYS, "start_subsequent_transplant", _subsequent("persistent_disease")
    )
    assert result.entry.payload["new_pathway_id"]


# --- 14. Platelet recovery >= 50 in the snapshot ----------------------------------------------------

# The worked table of tests/states/test_recovery.py (platelet transfusions on Day 0 and D+5):
# >= 20 on D+12, >= 50 on D+14 [F:CIBMTR-PLT].
PLT_TABLE = [(0, 30), (3, 12), (5, 8), (9, 22), (10, 35), (11, 52), (12, 55), (13, 48), (14, 60), (15, 66), (16, 71)]


def test_snapshot_shows_platelet_recovery_at_20_and_at_50(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    steps: list[Step] = []
    for n, value in PLT_TABLE:
        steps.append((on(walk.day0, n, 12), LAB, "record_lab", {"platelets_x10e9_per_l": float(value)}))
        if n in (0, 5):
            steps.append((on(walk.day0, n, 14), RN, "record_transfusion", {"product": "platelets"}))
    play(service, clock, pid, steps)
    snapshot = service.snapshot(pid, at=on(walk.day0, 16, 13))
    assert snapshot.platelet_recovery_on == walk.day0 + timedelta(days=12)
    assert snapshot.platelet_recovery_50_on == walk.day0 + timedelta(days=14)


def test_platelet_engraftment_is_confirmed_only_once_the_counts_show_it(
    service: PathwayService, clock: ManualClock
) -> None:
    """`confirm_platelet_engraftment` is judged on the recorded counts [F:CIBMTR-PLT]: the first of
    three values >= 20 with no platelet transfusion in the 7 days before. The D+5 transfusion rules
    out D+9..D+11, so on D+13 (values to D+13) it is refused; once D+14 is in, the recovery is D+12."""
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    steps: list[Step] = []
    for n, value in PLT_TABLE[:6]:  # D0..D+11
        steps.append((on(walk.day0, n, 12), LAB, "record_lab", {"platelets_x10e9_per_l": float(value)}))
        if n in (0, 5):
            steps.append((on(walk.day0, n, 14), RN, "record_transfusion", {"product": "platelets"}))
    play(service, clock, pid, steps)
    play(
        service,
        clock,
        pid,
        [
            (on(walk.day0, n, 12), LAB, "record_lab", {"platelets_x10e9_per_l": float(value)})
            for n, value in PLT_TABLE[6:8]
        ],
    )  # D+12, D+13
    assert refused(service, clock, pid, on(walk.day0, 13, 15), PHYS, "confirm_platelet_engraftment", {}) == (
        "platelet_recovery_not_met",
    )
    n, value = PLT_TABLE[8]  # D+14
    play(service, clock, pid, [(on(walk.day0, n, 12), LAB, "record_lab", {"platelets_x10e9_per_l": float(value)})])
    result = fire(service, clock, pid, on(walk.day0, 14, 15), PHYS, "confirm_platelet_engraftment", {})
    assert result.entry.payload["recovery_on"] == (walk.day0 + timedelta(days=12)).isoformat()
    assert service.snapshot(pid).facts.platelet_recovery_on == walk.day0 + timedelta(days=12)
