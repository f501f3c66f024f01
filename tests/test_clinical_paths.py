"""Clinical paths beyond the happy walks: the donor lost during conditioning, extra infusions,
relapse, VOD and GVHD as derived facts (PATHWAY.md events; reference section 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from states.errors import Refused
from states.vocabulary import Phase
from tests.walks import COL, LAB, PATIENT, PHYS, REG, RN, VERIFIERS, WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService


def act(service: PathwayService, clock: ManualClock, pid: str, when, actor, command, payload=None):  # type: ignore[no-untyped-def]
    clock.set(when)
    return service.fire(pid, command, payload or {}, actor=actor, at=when)


def test_donor_unavailable_after_conditioning_needs_emergency_donor_cleared(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_unrelated"]()
    # Play the walk up to the infusion, every conditioning dose given, the donor not collected.
    steps = [s for s in walk.steps if s[2] not in ("record_collection",)]
    referral = min(step[0] for step in steps) - timedelta(days=1)  # every step after the referral
    clock.set(referral)
    pid = service.refer(walk.refer, actor=PHYS, at=referral).pathway_id
    for at, actor, command, payload in steps:
        if command == "infuse":
            break
        act(service, clock, pid, at, actor, command, payload)
    day_minus_1 = walk.day0 - timedelta(days=1)
    act(service, clock, pid, t(day_minus_1, 8), REG, "report_donor_unavailable", {"reason": "donor illness"})
    assert "donor_unavailable_after_conditioning" in service.snapshot(pid).flags

    # Collection from the lost donor is refused; infusion is impossible without a cleared donor.
    with pytest.raises(Refused) as lost:
        act(
            service,
            clock,
            pid,
            t(day_minus_1, 9),
            COL,
            "record_collection",
            {"product_id": "DIN-X", "cd34_x10e6_per_kg": 5.0},
        )
    assert "donor_not_cleared" in lost.value.reasons

    haplo = {
        "donor_ref": "HAPLO-1",
        "donor_type": "haploidentical",
        "haplotype_shared": True,
        "dsa": "negative",
        "hla": {"A": "antigen_mismatch", "B": "antigen_mismatch", "C": "match", "DRB1": "antigen_mismatch"},
    }
    with pytest.raises(Refused) as early:  # clear_donor in conditioning needs the emergency donor first
        act(service, clock, pid, t(day_minus_1, 10), PHYS, "clear_donor", {"planned_collection_on": str(walk.day0)})
    assert "emergency_donor_not_selected" in early.value.reasons
    act(
        service,
        clock,
        pid,
        t(day_minus_1, 11),
        PHYS,
        "select_emergency_donor",
        {"donor_ref": "HAPLO-1", "candidate": haplo},
    )
    act(
        service,
        clock,
        pid,
        t(day_minus_1, 12),
        LAB,
        "record_donor_idm",
        {"donor_ref": "HAPLO-1", "drawn_on": str(day_minus_1), "result": "negative"},
    )
    result = act(
        service, clock, pid, t(day_minus_1, 13), PHYS, "clear_donor", {"planned_collection_on": str(walk.day0)}
    )
    assert result.phase is Phase.CONDITIONING
    act(
        service,
        clock,
        pid,
        t(walk.day0, 8),
        COL,
        "record_collection",
        {"product_id": "DIN-H1", "cd34_x10e6_per_kg": 4.1, "donor_ref": "HAPLO-1"},
    )
    infused = act(
        service,
        clock,
        pid,
        t(walk.day0, 14),
        RN,
        "infuse",
        {"products": ["DIN-H1"], "label_recipient_ref": PATIENT, "verifiers": VERIFIERS},
    )
    assert infused.phase is Phase.AWAITING_ENGRAFTMENT
    assert service.snapshot(pid).day0 == walk.day0


def test_second_infusion_day_and_dli_never_move_day0(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_sibling"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    day1 = walk.day0 + timedelta(days=1)
    # The second day's bag is collected and recorded, then infused with the bedside checks.
    act(service, clock, pid, t(day1, 8), COL, "record_collection", {"product_id": "DIN-D2", "cd34_x10e6_per_kg": 1.4})
    bedside = {"label_recipient_ref": PATIENT, "verifiers": VERIFIERS}
    act(service, clock, pid, t(day1), RN, "record_infusion", {"kind": "second_day", "products": ["DIN-D2"], **bedside})
    snap = service.snapshot(pid, at=t(day1))
    assert snap.day0 == walk.day0  # one HCT, Day 0 is the first infusion date [F:CIBMTR-HCT]
    assert snap.day_label == "D+1"


def test_relapse_is_a_flag_and_the_pathway_goes_on_to_day100(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    with pytest.raises(Refused) as early:  # late documentation of a relapse dated before Day 0
        service.fire(
            pid, "report_relapse", {"method": "bone_marrow_biopsy"}, actor=PHYS, at=t(walk.day0 - timedelta(days=1))
        )
    assert "relapse_before_day0" in early.value.reasons
    act(
        service, clock, pid, t(walk.day0 + timedelta(days=60)), PHYS, "report_relapse", {"method": "bone_marrow_biopsy"}
    )
    assert "relapse" in service.snapshot(pid).flags
    done = act(service, clock, pid, t(walk.day0 + timedelta(days=100)), PHYS, "complete_day100", {})
    assert done.phase is Phase.DAY100_COMPLETE


def test_vod_is_derived_from_findings_not_asserted(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    when = t(walk.day0 + timedelta(days=10))
    # Baltimore: bilirubin >= 2 with one other finding is not VOD [F:VOD] ...
    act(
        service,
        clock,
        pid,
        when,
        PHYS,
        "record_vod_assessment",
        {"criteria": "baltimore", "bilirubin_mg_per_dl": 2.5, "ascites": True},
    )
    assert "vod" not in service.snapshot(pid).flags
    # ... with two of painful hepatomegaly, weight gain > 5 %, ascites it is.
    act(
        service,
        clock,
        pid,
        when,
        PHYS,
        "record_vod_assessment",
        {"criteria": "baltimore", "bilirubin_mg_per_dl": 2.5, "ascites": True, "weight_gain_pct": 6},
    )
    assert "vod" in service.snapshot(pid).flags


def test_gvhd_grade_is_derived_magic(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    # S17: skin 30 % BSA (stage 2), bilirubin 1.4 (liver 0), stool 1200 mL/day (lower GI 2) -> grade III.
    act(
        service,
        clock,
        pid,
        t(walk.day0 + timedelta(days=28)),
        PHYS,
        "record_gvhd_assessment",
        {"skin_bsa_pct": 30, "bilirubin_mg_per_dl": 1.4, "stool_ml_per_day": 1200},
    )
    act(
        service,
        clock,
        pid,
        t(walk.day0 + timedelta(days=45)),
        PHYS,
        "record_gvhd_assessment",
        {"skin_bsa_pct": 10, "stool_ml_per_day": 400},
    )
    assert service.snapshot(pid).gvhd_max_grade == 3


def test_autologous_has_no_gvhd_assessment(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    with pytest.raises(Refused) as refused:
        act(service, clock, pid, t(walk.day0 + timedelta(days=20)), PHYS, "record_gvhd_assessment", {"skin_bsa_pct": 5})
    assert refused.value.reasons == ("route_not_allogeneic",)
