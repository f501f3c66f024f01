"""Life after Day +100 on both backends: long-term follow-up events, NIH 2014 chronic GVHD,
the 6-month and 1-year milestones with their registry forms, death with its cause.

Expectations come from the rules in docs/long-term-follow-up.md (NIH 2014 global severity
[F:NIH-CGVHD], CIBMTR contact windows [F:CIBMTR-CONTACT], Post-TED due dates [F:CIBMTR-2450]),
not from what the code returns.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from states.cgvhd import ORGANS, global_severity
from states.vocabulary import Phase
from tests.helpers_core import fire, problems, refused, rejected
from tests.walks import COL, COORD, LAB, PATIENT, PHYS, RN, VERIFIERS, WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService

# --- NIH 2014 global severity: a pure function of the organ scores --------------------------


@pytest.mark.parametrize(
    ("scores", "severity"),
    [
        ({}, "none"),
        ({"skin": 1}, "mild"),
        ({"skin": 1, "mouth": 1}, "mild"),  # 1-2 organs, none above 1, lungs 0
        ({"skin": 1, "mouth": 1, "eyes": 1}, "moderate"),  # 3 or more organs at 1
        ({"lungs": 1}, "moderate"),  # lungs 1 alone
        ({"mouth": 1, "lungs": 1}, "moderate"),
        ({"liver": 2}, "moderate"),  # any organ other than the lungs at 2
        ({"joints_fascia": 2, "skin": 1, "mouth": 1, "eyes": 1}, "moderate"),
        ({"lungs": 2}, "severe"),  # lungs 2 or more
        ({"genital_tract": 3}, "severe"),  # any organ at 3
        ({"skin": 3, "lungs": 1}, "severe"),
    ],
)
def test_nih_2014_global_severity(scores: dict[str, int], severity: str) -> None:
    assert global_severity(scores) == severity


def test_the_nih_organs_are_the_eight_the_consensus_scores() -> None:
    assert set(ORGANS) == {"skin", "mouth", "eyes", "gi_tract", "liver", "lungs", "joints_fascia", "genital_tract"}


# --- after Day +100 ----------------------------------------------------------------------------


def _day(walk_day0: date, n: int) -> date:
    return walk_day0 + timedelta(days=n)


def test_chronic_gvhd_is_graded_after_day100(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk)
    assert service.snapshot(pid).phase is Phase.DAY100_COMPLETE
    at = t(_day(walk.day0, 160))
    fire(service, clock, pid, at, PHYS, "record_chronic_gvhd", {"skin": 2, "mouth": 1})
    fire(service, clock, pid, at, PHYS, "record_chronic_gvhd", {"lungs": 2})
    facts = service.snapshot(pid).facts
    assert [a.severity for a in facts.chronic_gvhd] == ["moderate", "severe"]
    assert facts.chronic_gvhd[0].scores["skin"] == 2
    assert service.snapshot(pid).phase is Phase.DAY100_COMPLETE


def test_chronic_gvhd_is_refused_after_an_autologous_transplant(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    reasons = refused(service, clock, pid, t(_day(walk.day0, 160)), PHYS, "record_chronic_gvhd", {"skin": 1})
    assert reasons == ("route_not_allogeneic",)


def test_an_organ_score_outside_0_to_3_is_bad_input(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk)
    at = t(_day(walk.day0, 160))
    clock.set(at)
    error = rejected(service, pid, lambda: service.fire(pid, "record_chronic_gvhd", {"lungs": 4}, actor=PHYS, at=at))
    assert ("payload.lungs", "less_than_equal") in problems(error)


def test_relapse_acute_gvhd_and_a_dli_stay_recordable_after_day100(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk)
    fire(service, clock, pid, t(_day(walk.day0, 120)), PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    fire(service, clock, pid, t(_day(walk.day0, 121)), PHYS, "record_gvhd_assessment", {"skin_bsa_pct": 30})
    # A DLI: the donor is tested again, collected, the bag checked at the bedside [F:CIBMTR-DLI].
    idm = {"donor_ref": "DONOR-A", "drawn_on": _day(walk.day0, 125).isoformat(), "result": "negative"}
    fire(service, clock, pid, t(_day(walk.day0, 125)), LAB, "record_donor_idm", idm)
    collect = {"product_id": "DLI-1", "cd34_x10e6_per_kg": 0.1}
    fire(service, clock, pid, t(_day(walk.day0, 130)), COL, "record_collection", collect)
    dli = {"kind": "dli", "products": ["DLI-1"], "label_recipient_ref": PATIENT, "verifiers": VERIFIERS}
    fire(service, clock, pid, t(_day(walk.day0, 131)), RN, "record_infusion", dli)
    facts = service.snapshot(pid).facts
    assert facts.relapse_on == _day(walk.day0, 120)
    assert facts.infusions[-1].kind == "dli"
    assert facts.products["DLI-1"].infused
    assert len(facts.gvhd) == 2
    assert facts.phase is Phase.DAY100_COMPLETE


def test_death_after_day100_with_its_cause(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid = run_walk(service, clock, walk)
    at = t(_day(walk.day0, 300))
    result = fire(service, clock, pid, at, PHYS, "record_death", {"primary_cause": "gvhd"})
    assert result.phase is Phase.DECEASED
    facts = service.snapshot(pid).facts
    assert (facts.death_cause, facts.ended_on) == ("gvhd", _day(walk.day0, 300))
    # Nothing clinical follows a death: a final phase has no event of follow-up.
    reasons = refused(service, clock, pid, at, PHYS, "record_chronic_gvhd", {"skin": 1})
    assert "event_not_allowed_in_phase" in reasons


def test_an_unknown_cause_of_death_is_bad_input(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(_day(walk.day0, 200))
    clock.set(at)
    error = rejected(
        service, pid, lambda: service.fire(pid, "record_death", {"primary_cause": "old_age"}, actor=PHYS, at=at)
    )
    assert {path for path, _ in problems(error)} == {"payload.primary_cause"}


def test_death_is_not_dated_before_the_last_entry(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)  # Day +100 completed on Day +100
    reasons = refused(service, clock, pid, t(_day(walk.day0, 99)), PHYS, "record_death", {"primary_cause": "relapse"})
    assert reasons == ("effective_time_before_previous_entry",)


# --- 6-month and 1-year visits and Post-TED forms ------------------------------------------------


def _names(service: PathwayService, pid: str, day: date, status: str) -> set[str]:
    return {m.name for m in service.milestones(pid, at=t(day)) if m.status == status}


def test_month6_and_year1_visits(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    day0 = walk.day0
    # 6 months: Day 150-210 [F:CIBMTR-CONTACT].
    assert "month6_followup" not in _names(service, pid, _day(day0, 149), "due")
    assert "month6_followup" in _names(service, pid, _day(day0, 150), "due")
    assert "month6_followup" in _names(service, pid, _day(day0, 210), "due")
    assert "month6_followup" in _names(service, pid, _day(day0, 211), "overdue")
    fire(service, clock, pid, t(_day(day0, 182)), PHYS, "record_assessment", {"kind": "month6"})
    assert "month6_followup" not in _names(service, pid, _day(day0, 211), "overdue")
    # 1 year: Day 365-425 [F:CIBMTR-CONTACT, F:CIBMTR-UPD].
    assert "year1_followup" not in _names(service, pid, _day(day0, 364), "due")
    assert "year1_followup" in _names(service, pid, _day(day0, 365), "due")
    assert "year1_followup" in _names(service, pid, _day(day0, 426), "overdue")
    fire(service, clock, pid, t(_day(day0, 370)), PHYS, "record_assessment", {"kind": "year1"})
    assert "year1_followup" not in _names(service, pid, _day(day0, 426), "overdue")


def test_post_transplant_forms_at_6_months_and_1_year(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    day0 = walk.day0
    # Post-TED due at 6 months (Day 180) and 1 year (Day 365); past due 120 days later [F:CIBMTR-2450].
    assert "post_transplant_form_month6" not in _names(service, pid, _day(day0, 179), "due")
    assert "post_transplant_form_month6" in _names(service, pid, _day(day0, 180), "due")
    assert "post_transplant_form_month6" in _names(service, pid, _day(day0, 300), "due")
    assert "post_transplant_form_month6" in _names(service, pid, _day(day0, 301), "overdue")
    assert "post_transplant_form_year1" in _names(service, pid, _day(day0, 365), "due")
    assert "post_transplant_form_year1" in _names(service, pid, _day(day0, 486), "overdue")
    at = t(_day(day0, 200))
    fire(service, clock, pid, at, COORD, "record_registry_form", {"form": "post_transplant_month6"})
    fire(service, clock, pid, at, COORD, "record_registry_form", {"form": "post_transplant_year1"})
    assert not {"post_transplant_form_month6", "post_transplant_form_year1"} & _names(
        service, pid, _day(day0, 500), "overdue"
    )


def test_a_final_pathway_has_no_follow_up_milestones(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()  # its one product was infused: nothing left to dispose of
    pid = run_walk(service, clock, walk)
    fire(service, clock, pid, t(_day(walk.day0, 140)), PHYS, "record_death", {"primary_cause": "infection"})
    assert service.milestones(pid, at=t(_day(walk.day0, 400))) == []
