"""Every guard of PATHWAY.md's phase-changing table: a passing case and a refused case each.

Dates, doses and expected outcomes come from HSCT_REFERENCE.md §5 (S01, S02, S07, S09, S10,
S13, S14, S15, S19) and the thresholds of §0-§2; the reason codes are those of
docs/reason-codes.md. Most cases run end to end through the service (both backends, I1-I5
checked afterwards); a few judge a hand-built snapshot where that reads more clearly.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from states.chart import CHART
from states.facts import PathwayFacts
from states.judge import judge
from states.policy import Policy
from states.vocabulary import Phase, Role
from tests.helpers_core import (
    COL,
    COORD,
    LAB,
    PATIENT,
    PHYS,
    PRO,
    REG,
    RN,
    VERIFIERS,
    WALKS,
    d,
    fire,
    on,
    open_walk,
    play,
    problems,
    reach,
    refused,
    rejected,
    steps_before,
    steps_of,
    t,
)
from tests.walks import BU_CY, FULL_HLA, Step, Walk, _conditioning, _evaluation, _infuse, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService

HLA_8 = {"A": "match", "B": "match", "C": "match", "DRB1": "match"}
HLA_7 = {**HLA_8, "C": "allele_mismatch"}
HLA_6 = {**HLA_8, "A": "antigen_mismatch", "C": "allele_mismatch"}
HAPLO_HLA = {"A": "antigen_mismatch", "B": "antigen_mismatch", "C": "match", "DRB1": "antigen_mismatch"}
# S14 cord units: A 5/6, B 4/6, C 5/6 (one mismatch per "/6" point), each with an attached segment.
CORD_5_OF_6 = {**HLA_8, "B": "antigen_mismatch"}
CORD_4_OF_6 = {**CORD_5_OF_6, "DRB1": "allele_mismatch"}
S14_UNITS = {
    "CBU-A": {"hla": CORD_5_OF_6, "tnc_x10e7_per_kg": 2.2, "cd34_x10e5_per_kg": 1.3},
    "CBU-B": {"hla": CORD_4_OF_6, "tnc_x10e7_per_kg": 1.7, "cd34_x10e5_per_kg": 1.1},
    "CBU-C": {"hla": CORD_5_OF_6, "tnc_x10e7_per_kg": 1.2},
}
RN_KIM = VERIFIERS[1]


def _regimen(plan: list[tuple[int, str, str]], planned_day0: str) -> dict[str, Any]:
    return {
        "regimen": {
            "name": "regimen",
            "intensity": "MAC",
            "plan": [{"day": n, "drug": g, "dose": s} for n, g, s in plan],
        },
        "planned_day0": planned_day0,
    }


def _infusion(products: list[str], *, label: str = PATIENT, verifiers: Any = VERIFIERS) -> dict[str, Any]:
    return {"products": products, "label_recipient_ref": label, "verifiers": verifiers}


def _labs(day0: date, values: list[tuple[int, float]]) -> list[Step]:
    """ANC values (x10^9/L) drawn at 07:00 on the given Days."""
    return [(on(day0, n, 7), LAB, "record_lab", {"anc_x10e9_per_l": anc}) for n, anc in values]


def _judge(
    command: str, facts: dict[str, Any], payload: dict[str, Any], policy: Policy | None = None
) -> tuple[str, ...]:
    """Judge a hand-built snapshot (pure: no database) as a physician at 2026-03-31 08:00 UTC."""
    at = t(d("2026-03-31"), 8)
    spec = CHART.commands[command]
    base = {
        "route": "allogeneic",
        "donor_type": "matched_unrelated",
        "graft_source": "pbsc",
        "patient_ref": PATIENT,
        "consent_on": "2026-01-07",
    }
    return judge(
        spec,
        PathwayFacts.model_validate({**base, **facts}),
        spec.payload.model_validate(payload),
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        at=at,
        now=at,
        policy=policy or Policy(),
    ).verdict.reasons


# --- complete_evaluation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ("record_consent", "consent_missing"),
        ("record_eligibility", "eligibility_missing"),
        ("HLA-2", "hla_typing_incomplete"),
        ("ABO-2", "abo_typing_incomplete"),
    ],
)
def test_complete_evaluation_needs_its_evidence(
    service: PathwayService, clock: ManualClock, missing: str, reason: str
) -> None:
    """Consent, eligibility, and for allogeneic HLA and ABO/Rh on two samples [F:FACT-B6]."""
    walk = WALKS["matched_unrelated"]()
    evaluation = steps_before(walk, "complete_evaluation")
    kept = [s for s in evaluation if missing not in (s[2], s[3].get("sample_id"))]
    assert len(kept) == len(evaluation) - 1
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, kept)
    at = steps_of(walk, "complete_evaluation")[0][0]
    assert refused(service, clock, pathway_id, at, PHYS, "complete_evaluation") == (reason,)
    late = next(s for s in evaluation if s not in kept)
    play(service, clock, pathway_id, [(at, *late[1:])])
    assert fire(service, clock, pathway_id, at, PHYS, "complete_evaluation").phase is Phase.DONOR_SEARCH


def test_autologous_evaluation_needs_no_typing(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    assert not steps_of(walk, "record_hla_typing")
    pathway_id = run_walk(service, clock, walk, until=Phase.COLLECTION)
    assert service.snapshot(pathway_id).phase is Phase.COLLECTION


# --- select_donor ---------------------------------------------------------------------------


SELECTIONS = [
    # (donor type of the pathway, {donor_ref: candidate fields}, refs selected, expected reasons)
    ("matched_sibling", {"SIB-1": {"hla": HLA_8}}, ["SIB-1"], ()),
    ("matched_sibling", {"SIB-1": {"hla": HLA_7}}, ["SIB-1"], ("hla_match_insufficient",)),
    ("matched_unrelated", {"DONOR-A": {"hla": FULL_HLA}}, ["DONOR-A"], ()),
    ("matched_unrelated", {"DONOR-A": {"hla": HLA_7}}, ["DONOR-A"], ("hla_match_insufficient",)),
    (
        "mismatched_unrelated",
        {"DONOR-M": {"hla": HLA_7, "dsa": "negative", "justification": "no 8/8 in time"}},
        ["DONOR-M"],
        (),
    ),
    (
        "mismatched_unrelated",
        {"DONOR-M": {"hla": HLA_7, "dsa": "negative"}},
        ["DONOR-M"],
        ("mismatch_justification_missing",),
    ),
    (
        "mismatched_unrelated",
        {"DONOR-M": {"hla": HLA_7, "dsa": "positive", "justification": "no 8/8 in time"}},
        ["DONOR-M"],
        ("dsa_not_negative",),
    ),
    (
        "mismatched_unrelated",
        {"DONOR-M": {"hla": HLA_7, "justification": "no 8/8 in time"}},
        ["DONOR-M"],
        ("dsa_not_negative",),
    ),
    (
        "mismatched_unrelated",
        {"DONOR-M": {"hla": HLA_6, "dsa": "negative", "justification": "no 8/8 in time"}},
        ["DONOR-M"],
        ("hla_match_insufficient",),
    ),
    ("haploidentical", {"HAPLO-1": {"hla": HAPLO_HLA, "haplotype_shared": True, "dsa": "negative"}}, ["HAPLO-1"], ()),
    (
        "haploidentical",
        {"HAPLO-1": {"hla": HAPLO_HLA, "haplotype_shared": True, "dsa": "positive", "desensitization_plan": True}},
        ["HAPLO-1"],
        (),
    ),
    (
        "haploidentical",
        {"HAPLO-1": {"hla": HAPLO_HLA, "haplotype_shared": False, "dsa": "negative"}},
        ["HAPLO-1"],
        ("haplotype_not_shared",),
    ),
    (
        "haploidentical",
        {"HAPLO-1": {"hla": HAPLO_HLA, "haplotype_shared": True, "dsa": "positive"}},
        ["HAPLO-1"],
        ("dsa_not_negative",),
    ),
    ("cord_blood", S14_UNITS, ["CBU-A", "CBU-B"], ()),
    ("cord_blood", S14_UNITS, ["CBU-A", "CBU-C"], ("cord_unit_dose_insufficient",)),
    ("cord_blood", S14_UNITS, ["CBU-A"], ("cord_unit_dose_insufficient",)),
    (
        "cord_blood",
        {"CBU-S": {"hla": CORD_5_OF_6, "tnc_x10e7_per_kg": 3.4, "cd34_x10e5_per_kg": 1.6}},
        ["CBU-S"],
        (),
    ),
    (
        "cord_blood",
        {"CBU-X": {"hla": {**CORD_4_OF_6, "A": "antigen_mismatch"}, "tnc_x10e7_per_kg": 3.4, "cd34_x10e5_per_kg": 1.6}},
        ["CBU-X"],
        ("cord_unit_hla_mismatch_excess",),
    ),
    (
        "matched_unrelated",
        {"SIB-1": {"hla": HLA_8, "donor_type": "matched_sibling"}},
        ["SIB-1"],
        ("donor_type_mismatch",),
    ),
    ("matched_unrelated", {"DONOR-A": {"hla": HLA_8}}, ["DONOR-Z"], ("donor_candidate_unknown",)),
]


@pytest.mark.parametrize(
    ("donor_type", "candidates", "selected", "reasons"),
    SELECTIONS,
    ids=[f"{case[0]}-{'-'.join(case[3]) or 'passes'}" for case in SELECTIONS],
)
def test_select_donor_applies_the_donor_rules(
    service: PathwayService,
    clock: ManualClock,
    donor_type: str,
    candidates: dict[str, dict[str, Any]],
    selected: list[str],
    reasons: tuple[str, ...],
) -> None:
    """PATHWAY.md "Donor rules"; cord doses and S14's unit C from [F:CORD-SEL]."""
    pathway_id = run_walk(service, clock, WALKS[donor_type](), until=Phase.DONOR_SEARCH)
    for ref, fields in candidates.items():
        unit = {"attached_segment": True} if donor_type == "cord_blood" else {}
        candidate = {"donor_ref": ref, "donor_type": donor_type, **unit, **fields}
        fire(service, clock, pathway_id, t(d("2026-02-09")), REG, "record_donor_candidate", candidate)
    at, payload = t(d("2026-02-10")), {"donor_refs": selected}
    if reasons:
        assert refused(service, clock, pathway_id, at, PHYS, "select_donor", payload) == reasons
    else:
        assert fire(service, clock, pathway_id, at, PHYS, "select_donor", payload).phase is Phase.DONOR_WORKUP


# --- clear_donor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drawn_on", "stale"),
    [("2026-03-03", True), ("2026-03-07", True), ("2026-03-08", False)],
)
def test_clear_donor_needs_idm_within_30_days_of_collection_s07(
    service: PathwayService, clock: ManualClock, drawn_on: str, stale: bool
) -> None:
    """S07: collection 04-07, so IDM must be drawn on or after 03-08 [F:CFR-1271.80]."""
    walk = WALKS["matched_unrelated"]()
    assert steps_of(walk, "select_donor")[0][3]["planned_collection_on"] == "2026-04-07"
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_donor_idm"))
    idm = {"donor_ref": "DONOR-A", "drawn_on": drawn_on, "result": "negative"}
    fire(service, clock, pathway_id, t(d(drawn_on), 15), LAB, "record_donor_idm", idm)
    at = t(d("2026-03-17"))
    if stale:
        assert refused(service, clock, pathway_id, at, PHYS, "clear_donor") == ("donor_idm_stale",)
        play(service, clock, pathway_id, [(at, *steps_of(walk, "record_donor_idm")[0][1:])])  # repeated 03-10
    assert fire(service, clock, pathway_id, at, PHYS, "clear_donor").phase is Phase.READY_FOR_CONDITIONING


def test_clear_donor_without_idm_is_refused(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_donor_idm"))
    assert refused(service, clock, pathway_id, t(d("2026-03-17")), PHYS, "clear_donor") == ("donor_idm_missing",)


def test_clear_donor_needs_segment_typing_of_every_cord_unit_s14(service: PathwayService, clock: ManualClock) -> None:
    """S14: confirmatory typing on attached segments of A and B before clearance [F:CORD-SEL]."""
    walk = WALKS["cord_blood"]()
    typings = [s for s in walk.steps if s[3].get("segment_typed")]
    assert len(typings) == 2
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, [s for s in steps_before(walk, "clear_donor") if s not in typings])
    at = t(d("2026-02-17"))
    assert refused(service, clock, pathway_id, at, PHYS, "clear_donor") == ("cord_segment_typing_missing",)
    play(service, clock, pathway_id, typings[:1])
    assert refused(service, clock, pathway_id, at, PHYS, "clear_donor") == ("cord_segment_typing_missing",)
    play(service, clock, pathway_id, typings[1:])
    assert fire(service, clock, pathway_id, at, PHYS, "clear_donor").phase is Phase.READY_FOR_CONDITIONING


# --- complete_collection and start_conditioning -----------------------------------------------------

BEAM = [
    (-6, "carmustine", "300 mg/m2"),
    (-5, "etoposide", "200 mg/m2"),
    (-4, "etoposide", "200 mg/m2"),
    (-3, "etoposide", "200 mg/m2"),
    (-2, "etoposide", "200 mg/m2"),
    (-1, "melphalan", "140 mg/m2"),
]


def test_complete_collection_needs_two_million_stored_cd34_s02(service: PathwayService, clock: ManualClock) -> None:
    """S02: 1.2 x10^6/kg < 2.0 [F:RUSSELL-2013]; after the second apheresis 1.2 + 1.0 = 2.2."""
    walk = WALKS["autologous"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_collection"))
    play(
        service,
        clock,
        pathway_id,
        [
            (t(d("2026-01-16"), 10), COL, "record_collection", {"product_id": "DIN-1", "cd34_x10e6_per_kg": 1.2}),
            (
                t(d("2026-01-16"), 15),
                PRO,
                "cryopreserve_product",
                {"product_id": "DIN-1", "bags": 2, "location": "t-1"},
            ),
        ],
    )
    at = t(d("2026-01-16"), 16)
    assert refused(service, clock, pathway_id, at, COORD, "complete_collection") == ("insufficient_cd34_dose",)
    beam = _regimen(BEAM, "2026-02-16")
    reasons = refused(service, clock, pathway_id, at, PHYS, "start_conditioning", beam)
    assert {"insufficient_cd34_dose", "trigger_not_allowed_in_phase"} <= set(reasons)
    fire(
        service,
        clock,
        pathway_id,
        t(d("2026-01-17"), 10),
        COL,
        "record_collection",
        {"product_id": "DIN-2", "cd34_x10e6_per_kg": 1.0},
    )
    # Not yet cryopreserved: only stored product counts.
    at = t(d("2026-01-17"), 12)
    assert refused(service, clock, pathway_id, at, COORD, "complete_collection") == ("insufficient_cd34_dose",)
    fire(
        service,
        clock,
        pathway_id,
        t(d("2026-01-17"), 15),
        PRO,
        "cryopreserve_product",
        {"product_id": "DIN-2", "bags": 1, "location": "t-1"},
    )
    result = fire(service, clock, pathway_id, t(d("2026-01-17"), 16), COORD, "complete_collection")
    assert result.phase is Phase.READY_FOR_CONDITIONING
    result = fire(service, clock, pathway_id, t(d("2026-02-10"), 8), PHYS, "start_conditioning", beam)
    assert (result.phase, result.day_label) == (Phase.CONDITIONING, "D-6")


def test_start_conditioning_before_donor_clearance_is_refused_s09(service: PathwayService, clock: ManualClock) -> None:
    """S09: conditioning attempted while the donor's clearance is pending [F:DKMS-CLEAR]."""
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "clear_donor"))
    regimen = steps_of(walk, "start_conditioning")[0][3]
    reasons = refused(service, clock, pathway_id, t(d("2026-03-12")), PHYS, "start_conditioning", regimen)
    assert {"donor_not_cleared", "trigger_not_allowed_in_phase"} <= set(reasons)
    play(service, clock, pathway_id, steps_of(walk, "clear_donor"))
    result = play(service, clock, pathway_id, steps_of(walk, "start_conditioning"))
    assert result is not None
    assert result.phase is Phase.CONDITIONING


ALLO_READY = {"phase": "ready_for_conditioning", "selected_donors": ["DONOR-A"]}
FROZEN_D1 = {
    "DIN-D1": {
        "product_id": "DIN-D1",
        "graft_source": "pbsc",
        "collected_at": "2026-03-20T09:00:00Z",
        "cd34_x10e6_per_kg": 5.2,
        "donor_ref": "DONOR-A",
        "cryopreserved": True,
    }
}
AUTO_READY = {"phase": "ready_for_conditioning", "route": "autologous", "donor_type": None}


def _stored(*doses: float) -> dict[str, Any]:
    return {
        f"DIN-{n}": {
            "product_id": f"DIN-{n}",
            "graft_source": "pbsc",
            "collected_at": "2026-01-16T09:00:00Z",
            "cd34_x10e6_per_kg": dose,
            "cryopreserved": True,
        }
        for n, dose in enumerate(doses)
    }


@pytest.mark.parametrize(
    ("facts", "policy", "reasons"),
    [
        ({**ALLO_READY, "cleared_donors": []}, Policy(), ("donor_not_cleared",)),
        ({**ALLO_READY, "cleared_donors": ["DONOR-A"]}, Policy(), ()),
        (
            {**ALLO_READY, "cleared_donors": ["DONOR-A"]},
            Policy(cryopreserve_before_conditioning=True),
            ("product_not_cryopreserved",),
        ),
        (
            {**ALLO_READY, "cleared_donors": ["DONOR-A"], "products": FROZEN_D1},
            Policy(cryopreserve_before_conditioning=True),
            (),
        ),
        ({**AUTO_READY, "products": _stored(1.2)}, Policy(), ("insufficient_cd34_dose",)),
        ({**AUTO_READY, "products": _stored(1.2, 1.0)}, Policy(), ()),
    ],
)
def test_start_conditioning_needs_the_graft_secured(
    facts: dict[str, Any], policy: Policy, reasons: tuple[str, ...]
) -> None:
    """Allogeneic: donor cleared (and frozen where policy says) [F:NMDP-CRYO]; auto: >= 2.0 stored."""
    assert _judge("start_conditioning", facts, _regimen(BU_CY, "2026-04-08"), policy) == reasons


def test_start_conditioning_under_a_cryopreservation_policy(service: PathwayService, clock: ManualClock) -> None:
    """With cryopreserve_before_conditioning the graft is collected and frozen first [F:NMDP-CRYO]."""
    walk = WALKS["matched_unrelated"]()
    ready = run_walk(service, clock, walk, until=Phase.READY_FOR_CONDITIONING)
    frozen = PathwayService(service.engine, clock=clock, policy=Policy(cryopreserve_before_conditioning=True))
    regimen = steps_of(walk, "start_conditioning")[0][3]
    at = t(d("2026-03-31"), 8)
    # The running pathway moves to the new policy only by adopting it (docs/versioning.md).
    adopt = {"version": frozen.policy.version_id, "reason": "freeze every graft"}
    clock.set(at)
    frozen.fire(ready, "adopt_policy", adopt, actor=PHYS, at=at)
    assert refused(frozen, clock, ready, at, PHYS, "start_conditioning", regimen) == ("product_not_cryopreserved",)

    pathway_id = open_walk(frozen, clock, walk.for_patient("PT-FROZEN02"))
    result = play(frozen, clock, pathway_id, steps_before(walk, "start_conditioning"))
    assert result is not None
    assert result.phase is Phase.COLLECTION
    fire(
        frozen,
        clock,
        pathway_id,
        t(d("2026-03-20")),
        COL,
        "record_collection",
        {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2},
    )
    reasons = refused(frozen, clock, pathway_id, t(d("2026-03-20"), 12), PHYS, "start_conditioning", regimen)
    assert {"product_not_cryopreserved", "trigger_not_allowed_in_phase"} <= set(reasons)
    fire(
        frozen,
        clock,
        pathway_id,
        t(d("2026-03-20"), 15),
        PRO,
        "cryopreserve_product",
        {"product_id": "DIN-D1", "bags": 2, "location": "tank-1"},
    )
    assert fire(frozen, clock, pathway_id, t(d("2026-03-21")), COORD, "complete_collection").phase is (
        Phase.READY_FOR_CONDITIONING
    )
    assert fire(frozen, clock, pathway_id, at, PHYS, "start_conditioning", regimen).phase is Phase.CONDITIONING


def test_only_a_physician_starts_conditioning(service: PathwayService, clock: ManualClock) -> None:
    """PATHWAY.md Roles: a coordinator's attempt is refused and logged."""
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.READY_FOR_CONDITIONING)
    at, _, _, regimen = steps_of(walk, "start_conditioning")[0]
    assert refused(service, clock, pathway_id, at, COORD, "start_conditioning", regimen) == ("role_not_permitted",)
    assert fire(service, clock, pathway_id, at, PHYS, "start_conditioning", regimen).phase is Phase.CONDITIONING


# --- infuse -------------------------------------------------------------------------------------


def test_infuse_guards_s01(service: PathwayService, clock: ManualClock) -> None:
    """Conditioning complete, label matches, two distinct verifiers, a known product [F:NMDP-CLEAR]."""
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.CONDITIONING)
    day0 = d("2026-02-04")
    valid = _infusion(["DIN-A"])
    assert refused(service, clock, pathway_id, t(d("2026-02-02"), 9), RN, "infuse", valid) == (
        "conditioning_incomplete",
    )
    play(service, clock, pathway_id, steps_of(walk, "record_conditioning_dose"))
    at = t(day0, 11)
    for payload, reason in [
        (_infusion(["DIN-A"], label="PT-77C4D0"), "recipient_label_mismatch"),
        (_infusion(["DIN-A"], verifiers=[VERIFIERS[0], VERIFIERS[0]]), "identity_verification_incomplete"),
        (_infusion(["DIN-Q"]), "product_unknown"),
    ]:
        assert refused(service, clock, pathway_id, at, RN, "infuse", payload) == (reason,)
    result = fire(service, clock, pathway_id, at, RN, "infuse", valid)
    assert (result.phase, result.day_label) == (Phase.AWAITING_ENGRAFTMENT, "D0")
    assert service.snapshot(pathway_id).day0 == day0


@pytest.mark.parametrize(
    ("collected_at", "too_old"),
    [
        (datetime.fromisoformat("2026-04-05T10:00:00+00:00"), True),  # 73 h
        (datetime.fromisoformat("2026-04-06T10:00:00+00:00"), True),  # 49 h
        (datetime.fromisoformat("2026-04-06T11:00:00+00:00"), False),  # 48 h: "within 48 h"
        (datetime.fromisoformat("2026-04-07T14:00:00+00:00"), False),  # 21 h (S07)
    ],
)
def test_fresh_product_within_48_hours(
    service: PathwayService, clock: ManualClock, collected_at: datetime, too_old: bool
) -> None:
    """NMDP: infuse a fresh product within 48 h of collection [F:NMDP-48H]; infusion 04-08 11:00."""
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_collection"))
    fire(
        service,
        clock,
        pathway_id,
        collected_at,
        COL,
        "record_collection",
        {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2},
    )
    at, payload = t(d("2026-04-08"), 11), _infusion(["DIN-D1"])
    if too_old:
        assert refused(service, clock, pathway_id, at, RN, "infuse", payload) == ("fresh_product_too_old",)
    else:
        assert fire(service, clock, pathway_id, at, RN, "infuse", payload).phase is Phase.AWAITING_ENGRAFTMENT


def test_record_collection_checks_the_idm_against_the_collection_date(
    service: PathwayService, clock: ManualClock
) -> None:
    """IDM of 03-10: a collection on 04-10 needs tests on or after 03-11 [F:CFR-1271.80]."""
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_collection"))
    payload = {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2}
    assert refused(service, clock, pathway_id, t(d("2026-04-10")), COL, "record_collection", payload) == (
        "donor_idm_stale",
    )
    assert fire(service, clock, pathway_id, t(d("2026-04-09")), COL, "record_collection", payload).phase is (
        Phase.CONDITIONING
    )


# --- confirm_engraftment -----------------------------------------------------------------------

S01_ANC = [(1, 1.2), (2, 0.8), (3, 0.6), (5, 0.02), (11, 0.6), (12, 0.9), (13, 1.6)]


def test_confirm_engraftment_ignores_pre_nadir_values_and_records_the_derived_date_s01(
    service: PathwayService, clock: ManualClock
) -> None:
    """S01: D+1..D+3 values >= 0.5 are pre-nadir; recovery is D+11 (2026-02-15) [F:CIBMTR-ANC]."""
    day0 = d("2026-02-04")
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    claim = {"claimed_on": "2026-02-05"}
    labs = _labs(day0, S01_ANC)
    play(service, clock, pathway_id, labs[:1])
    assert refused(service, clock, pathway_id, t(d("2026-02-05"), 12), PHYS, "confirm_engraftment", claim) == (
        "neutrophil_recovery_not_met",
    )
    play(service, clock, pathway_id, labs[1:3])  # three values >= 0.5 on different days, before the nadir
    assert refused(service, clock, pathway_id, t(d("2026-02-07"), 12), PHYS, "confirm_engraftment", claim) == (
        "neutrophil_recovery_not_met",
    )
    play(service, clock, pathway_id, labs[3:])
    result = fire(service, clock, pathway_id, t(d("2026-02-17")), PHYS, "confirm_engraftment", claim)
    assert result.phase is Phase.FOLLOW_UP
    assert result.entry.payload["recovery_on"] == "2026-02-15"
    assert result.entry.payload["claimed_on"] == "2026-02-05"
    snapshot = service.snapshot(pathway_id)
    assert snapshot.facts.neutrophil_recovery_on == date(2026, 2, 15)
    assert snapshot.day_of(date(2026, 2, 15)) == 11


# --- declare_graft_failure -------------------------------------------------------------------------


def _s13_first_transplant() -> Walk:
    """S13 HCT#1: MUD bone marrow, Day 0 2026-02-25, ANC < 0.5 throughout."""
    day0 = d("2026-02-25")
    steps: list[Step] = [
        *_evaluation(d("2026-01-05"), allogeneic=True),
        (
            t(d("2026-01-20")),
            REG,
            "record_donor_candidate",
            {"donor_ref": "DONOR-A", "donor_type": "matched_unrelated", "hla": FULL_HLA},
        ),
        (t(d("2026-01-22")), PHYS, "select_donor", {"donor_refs": ["DONOR-A"], "planned_collection_on": "2026-02-25"}),
        (
            t(d("2026-02-10")),
            LAB,
            "record_donor_idm",
            {"donor_ref": "DONOR-A", "drawn_on": "2026-02-10", "result": "negative"},
        ),
        (t(d("2026-02-12")), PHYS, "clear_donor", {}),
        *_conditioning(d("2026-02-18"), day0, BU_CY),
        (
            t(day0, 8),
            COL,
            "record_collection",
            {"product_id": "DIN-BM1", "graft_source": "bone_marrow", "tnc_x10e7_per_kg": 30},
        ),
        _infuse(t(day0, 11), ["DIN-BM1"]),
        *_labs(day0, [(1, 0.3), (5, 0.02), (12, 0.05), (19, 0.1), (24, 0.2)]),
    ]
    refer = {
        "patient_ref": PATIENT,
        "route": "allogeneic",
        "donor_type": "matched_unrelated",
        "graft_source": "bone_marrow",
    }
    return Walk("s13_marrow", refer, tuple(steps), day0)


def _s13_graft_failure(service: PathwayService, clock: ManualClock) -> str:
    """S13 to its declared primary graft failure; checks the D+25 refusal on the way."""
    walk = _s13_first_transplant()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, walk.steps)
    primary = {"kind": "primary"}
    assert refused(service, clock, pathway_id, on(walk.day0, 25), PHYS, "declare_graft_failure", primary) == (
        "primary_graft_failure_too_early",
    )
    play(service, clock, pathway_id, _labs(walk.day0, [(28, 0.1)]))
    result = fire(service, clock, pathway_id, on(walk.day0, 30), PHYS, "declare_graft_failure", primary)
    assert result.phase is Phase.GRAFT_FAILURE
    assert result.day_label == "D+30"
    return pathway_id


def test_primary_graft_failure_of_marrow_not_before_day_30_s13(service: PathwayService, clock: ManualClock) -> None:
    """S13: refused at D+25 (03-22), declared at D+30 (03-27) [F:ASTCT]."""
    pathway_id = _s13_graft_failure(service, clock)
    assert "primary_graft_failure" in service.snapshot(pathway_id).flags


def test_primary_graft_failure_of_cord_blood_not_before_day_42_s15(service: PathwayService, clock: ManualClock) -> None:
    """S15: cord blood's threshold is D+42, so D+35 (2026-04-15 for Day 0 03-11) is refused [F:ASTCT]."""
    walk = WALKS["cord_blood"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    play(service, clock, pathway_id, _labs(walk.day0, [(1, 0.2), (7, 0.02), (21, 0.1), (31, 0.2), (34, 0.3)]))
    primary = {"kind": "primary"}
    assert refused(service, clock, pathway_id, on(walk.day0, 35), PHYS, "declare_graft_failure", primary) == (
        "primary_graft_failure_too_early",
    )
    play(service, clock, pathway_id, _labs(walk.day0, [(38, 0.1), (41, 0.2)]))
    result = fire(service, clock, pathway_id, on(walk.day0, 42), PHYS, "declare_graft_failure", primary)
    assert (result.phase, result.day_label) == (Phase.GRAFT_FAILURE, "D+42")


def test_secondary_graft_failure_needs_three_low_days_after_recovery(
    service: PathwayService, clock: ManualClock
) -> None:
    """ANC >= 0.5 on 3 days, then < 0.5 on 3 consecutive days [F:CIBMTR-SUBSEQ]."""
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    secondary = {"kind": "secondary"}
    assert refused(service, clock, pathway_id, on(walk.day0, 20), PHYS, "declare_graft_failure", secondary) == (
        "secondary_graft_failure_not_met",
    )
    play(service, clock, pathway_id, _labs(walk.day0, [(21, 0.3), (22, 0.2)]))
    assert refused(service, clock, pathway_id, on(walk.day0, 22, 12), PHYS, "declare_graft_failure", secondary) == (
        "secondary_graft_failure_not_met",
    )
    play(service, clock, pathway_id, _labs(walk.day0, [(23, 0.2)]))
    result = fire(service, clock, pathway_id, on(walk.day0, 23, 12), PHYS, "declare_graft_failure", secondary)
    assert result.phase is Phase.GRAFT_FAILURE
    assert "secondary_graft_failure" in service.snapshot(pathway_id).flags


def test_rescue_infusion_uses_a_stored_product_and_keeps_day0(service: PathwayService, clock: ManualClock) -> None:
    """S01 keeps DIN-B (2.9) stored; a rescue is not a new transplant: Day 0 stays 02-04."""
    pathway_id = reach(service, clock, "autologous", Phase.GRAFT_FAILURE)
    at = clock.now() + timedelta(days=1)
    assert refused(service, clock, pathway_id, at, RN, "rescue_infusion", _infusion(["DIN-A"])) == (
        "no_stored_product_available",
    )
    result = fire(service, clock, pathway_id, at, RN, "rescue_infusion", _infusion(["DIN-B"]))
    assert (result.phase, result.day_label) == (Phase.AWAITING_ENGRAFTMENT, "D+31")
    snapshot = service.snapshot(pathway_id)
    assert snapshot.day0 == d("2026-02-04")
    assert snapshot.facts.hct_number == 1


# --- complete_day100 ------------------------------------------------------------------------------


def test_day100_outside_the_window_is_refused_s07(service: PathwayService, clock: ManualClock) -> None:
    """S07: D+75 (06-22) is outside D+85..D+115 [F:CIBMTR-CONTACT]; D+100 (07-17) passes."""
    walk = WALKS["matched_unrelated"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    reasons = refused(service, clock, pathway_id, t(d("2026-06-22")), PHYS, "complete_day100")
    # At D+75 there can be no GVHD status or chimerism "since Day +85" either.
    assert set(reasons) == {"outside_day100_window", "gvhd_status_missing", "chimerism_missing"}
    result = play(
        service, clock, pathway_id, steps_before(walk, "complete_day100")[-2:] + steps_of(walk, "complete_day100")
    )
    assert result is not None
    assert (result.phase, result.day_label) == (Phase.DAY100_COMPLETE, "D+100")


GVHD = (PHYS, "record_gvhd_assessment", {"skin_bsa_pct": 10})
CHIMERISM = (LAB, "record_chimerism", {"sample": "peripheral_blood", "lineage": "myeloid", "donor_pct": 98})


@pytest.mark.parametrize(
    ("evidence", "reasons"),
    [
        ([(90, *GVHD)], ("chimerism_missing",)),
        ([(90, *CHIMERISM)], ("gvhd_status_missing",)),
        ([(80, *GVHD), (90, *CHIMERISM)], ("gvhd_status_missing",)),
        ([(85, *GVHD), (85, *CHIMERISM)], ()),
    ],
)
def test_allogeneic_day100_needs_gvhd_status_and_chimerism_since_day85(
    service: PathwayService, clock: ManualClock, evidence: list[tuple[Any, ...]], reasons: tuple[str, ...]
) -> None:
    walk = WALKS["matched_unrelated"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    play(service, clock, pathway_id, [(on(walk.day0, n), actor, cmd, body) for n, actor, cmd, body in evidence])
    at = on(walk.day0, 100)
    if reasons:
        assert refused(service, clock, pathway_id, at, PHYS, "complete_day100") == reasons
    else:
        assert fire(service, clock, pathway_id, at, PHYS, "complete_day100").phase is Phase.DAY100_COMPLETE


@pytest.mark.parametrize(
    ("day", "refusal"),
    [(84, "outside_day100_window"), (85, None), (115, None), (116, "day100_late_reason_missing")],
)
def test_day100_window_bounds(service: PathwayService, clock: ManualClock, day: int, refusal: str | None) -> None:
    """Autologous needs no GVHD or chimerism evidence; only the window matters here. After it,
    a visit needs a stated reason (tests/test_engraftment_rules.py)."""
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    at = on(walk.day0, day)
    if refusal is None:
        assert fire(service, clock, pathway_id, at, PHYS, "complete_day100").phase is Phase.DAY100_COMPLETE
    else:
        assert refused(service, clock, pathway_id, at, PHYS, "complete_day100") == (refusal,)


# --- hold, resume, withdraw, death ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("walk_name", "phase"),
    [
        ("autologous", Phase.REFERRED),
        ("autologous", Phase.EVALUATION),
        ("autologous", Phase.COLLECTION),
        ("autologous", Phase.READY_FOR_CONDITIONING),
        ("matched_unrelated", Phase.DONOR_SEARCH),
        ("matched_unrelated", Phase.DONOR_WORKUP),
    ],
)
def test_resume_returns_to_the_phase_it_was_held_in(
    service: PathwayService, clock: ManualClock, walk_name: str, phase: Phase
) -> None:
    pathway_id = reach(service, clock, walk_name, phase)
    held = fire(service, clock, pathway_id, clock.now() + timedelta(hours=1), COORD, "hold", {"reason": "infection"})
    assert held.phase is Phase.ON_HOLD
    assert service.snapshot(pathway_id).facts.held_from is phase
    resumed = fire(service, clock, pathway_id, clock.now() + timedelta(days=3), COORD, "resume")
    assert resumed.phase is phase
    assert service.snapshot(pathway_id).facts.held_from is None


def test_resume_with_a_new_collection_date_opens_the_donor_idm_milestone_s19(
    service: PathwayService, clock: ManualClock
) -> None:
    """S19: IDM 06-01 is stale for a 07-15 collection (tests must be >= 06-15); repeated 07-06."""
    walk = WALKS["matched_sibling"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_donor_candidate"))
    result = play(
        service,
        clock,
        pathway_id,
        [
            (
                t(d("2026-05-20")),
                REG,
                "record_donor_candidate",
                {"donor_ref": "SIB-1", "donor_type": "matched_sibling", "hla": FULL_HLA},
            ),
            (
                t(d("2026-05-25")),
                PHYS,
                "select_donor",
                {"donor_refs": ["SIB-1"], "planned_collection_on": "2026-06-24"},
            ),
            (
                t(d("2026-06-01")),
                LAB,
                "record_donor_idm",
                {"donor_ref": "SIB-1", "drawn_on": "2026-06-01", "result": "negative"},
            ),
            (t(d("2026-06-05")), PHYS, "clear_donor", {}),
            (t(d("2026-06-12")), PHYS, "hold", {"reason": "pneumonia"}),
        ],
    )
    assert result is not None
    assert result.phase is Phase.ON_HOLD
    reasons = refused(
        service, clock, pathway_id, t(d("2026-06-17")), PHYS, "start_conditioning", _regimen(BU_CY, "2026-06-24")
    )
    assert "trigger_not_allowed_in_phase" in reasons
    # S19 resumes on 07-03 and repeats the IDM on 07-06: the re-check on resume does not block
    # the resume, it opens the donor IDM milestone (docs/decisions.md).
    new_date = {"planned_collection_on": "2026-07-15"}
    result = fire(service, clock, pathway_id, t(d("2026-07-03")), PHYS, "resume", new_date)
    assert result.phase is Phase.READY_FOR_CONDITIONING
    assert service.snapshot(pathway_id).facts.planned_collection_on == date(2026, 7, 15)
    assert "donor_idm_repeat" in {m.name for m in service.due(pathway_id, at=t(d("2026-07-03")))}
    fire(
        service,
        clock,
        pathway_id,
        t(d("2026-07-06")),
        LAB,
        "record_donor_idm",
        {"donor_ref": "SIB-1", "drawn_on": "2026-07-06", "result": "negative"},
    )
    assert "donor_idm_repeat" not in {m.name for m in service.due(pathway_id, at=t(d("2026-07-06"), 12))}


@pytest.mark.parametrize("command", ["withdraw", "hold"])
@pytest.mark.parametrize(("payload", "rule"), [({}, "missing"), ({"reason": "   "}, "string_too_short")])
def test_withdraw_and_hold_need_a_reason(
    service: PathwayService, clock: ManualClock, command: str, payload: dict[str, Any], rule: str
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    error = rejected(
        service, pathway_id, lambda: service.fire(pathway_id, command, payload, actor=PHYS, at=clock.now())
    )
    assert problems(error) == {("payload.reason", rule)}


def test_release_donor_needs_a_reason(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "matched_unrelated", Phase.DONOR_WORKUP)
    error = rejected(
        service, pathway_id, lambda: service.fire(pathway_id, "release_donor", {}, actor=PHYS, at=clock.now())
    )
    assert problems(error) == {("payload.reason", "missing")}


def test_record_death_not_before_the_previous_entry(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    infused_at = service.history(pathway_id)[-1].effective_at
    assert refused(service, clock, pathway_id, infused_at - timedelta(minutes=1), PHYS, "record_death") == (
        "effective_time_before_previous_entry",
    )
    assert fire(service, clock, pathway_id, infused_at, PHYS, "record_death").phase is Phase.DECEASED


def test_effective_time_in_the_future_is_refused(service: PathwayService, clock: ManualClock) -> None:
    """Policy future_tolerance_minutes (5) allows clock skew, not an hour ahead."""
    pathway_id = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    lab = {"anc_x10e9_per_l": 0.4}
    now = clock.now()
    assert refused(service, clock, pathway_id, now + timedelta(hours=1), LAB, "record_lab", lab, now=now) == (
        "effective_time_in_future",
    )
    skewed = now + timedelta(minutes=4)
    assert fire(service, clock, pathway_id, skewed, LAB, "record_lab", lab, now=now).phase is (
        Phase.AWAITING_ENGRAFTMENT
    )


# --- donors released, subsequent transplants ----------------------------------------------------------


def test_a_released_donor_is_no_longer_current_s10(service: PathwayService, clock: ManualClock) -> None:
    """S10: donor A withdraws 04-06; B selected 04-08, cleared 05-29; Day 0 06-24."""
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(service, clock, walk)
    play(service, clock, pathway_id, steps_before(walk, "record_donor_candidate"))
    candidate = {"donor_type": "matched_unrelated", "hla": FULL_HLA}
    result = play(
        service,
        clock,
        pathway_id,
        [
            (t(d("2026-02-20")), REG, "record_donor_candidate", {"donor_ref": "DONOR-A", **candidate}),
            (
                t(d("2026-03-02")),
                PHYS,
                "select_donor",
                {"donor_refs": ["DONOR-A"], "planned_collection_on": "2026-04-19"},
            ),
            (t(d("2026-03-20")), REG, "record_donor_candidate", {"donor_ref": "DONOR-B", **candidate}),
            (t(d("2026-04-06")), REG, "release_donor", {"reason": "donor_withdrew"}),
        ],
    )
    assert result is not None
    assert result.phase is Phase.DONOR_SEARCH
    fire(
        service,
        clock,
        pathway_id,
        t(d("2026-04-08")),
        PHYS,
        "select_donor",
        {"donor_refs": ["DONOR-B"], "planned_collection_on": "2026-06-23"},
    )
    bu_cy = _regimen(BU_CY, "2026-06-24")
    reasons = refused(service, clock, pathway_id, t(d("2026-04-20")), PHYS, "start_conditioning", bu_cy)
    assert "donor_not_cleared" in reasons
    play(
        service,
        clock,
        pathway_id,
        [
            (
                t(d("2026-05-28")),
                LAB,
                "record_donor_idm",
                {"donor_ref": "DONOR-B", "drawn_on": "2026-05-28", "result": "negative"},
            ),
            (t(d("2026-05-29")), PHYS, "clear_donor", {}),
            *_conditioning(d("2026-06-17"), d("2026-06-24"), BU_CY),
        ],
    )
    product = {"product_id": "DIN-A1", "cd34_x10e6_per_kg": 4.8, "donor_ref": "DONOR-A"}
    at = t(d("2026-06-23"), 14)
    assert refused(service, clock, pathway_id, at, COL, "record_collection", product) == ("donor_not_current",)
    fire(
        service,
        clock,
        pathway_id,
        at,
        COL,
        "record_collection",
        {**product, "product_id": "DIN-B1", "donor_ref": "DONOR-B"},
    )
    result = fire(service, clock, pathway_id, t(d("2026-06-24"), 11), RN, "infuse", _infusion(["DIN-B1"]))
    assert (result.phase, result.day_label) == (Phase.AWAITING_ENGRAFTMENT, "D0")


def test_subsequent_transplant_needs_graft_failure_or_relapse(service: PathwayService, clock: ManualClock) -> None:
    """PATHWAY.md: after graft failure, or from follow-up / Day +100 after a recorded relapse."""
    pathway_id = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    second = {"route": "autologous", "graft_source": "pbsc"}
    at = clock.now() + timedelta(days=5)
    assert refused(
        service, clock, pathway_id, at, PHYS, "start_subsequent_transplant", {"reason": "graft_failure", **second}
    ) == ("graft_failure_not_declared",)
    assert refused(
        service, clock, pathway_id, at, PHYS, "start_subsequent_transplant", {"reason": "relapse", **second}
    ) == ("relapse_not_recorded",)
    fire(service, clock, pathway_id, at, PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    result = fire(service, clock, pathway_id, at, PHYS, "start_subsequent_transplant", {"reason": "relapse", **second})
    new_id = result.entry.payload["new_pathway_id"]
    assert service.snapshot(new_id).facts.hct_number == 2


S13_SECOND: list[tuple[datetime, dict[str, str], str, dict[str, Any]]] = [
    (t(d("2026-04-02"), 10), COORD, "record_consent", {"consent_version": "v4"}),
    (t(d("2026-04-02"), 10), PHYS, "record_eligibility", {"evidence": "fit for second HCT"}),
    *[(t(d("2026-04-02"), 11), LAB, "record_hla_typing", {"sample_id": f"HLA-2{n}"}) for n in (1, 2)],
    *[
        (t(d("2026-04-02"), 11), LAB, "record_abo_typing", {"sample_id": f"ABO-2{n}", "abo": "A", "rh": "positive"})
        for n in (1, 2)
    ],
    (t(d("2026-04-02"), 12), PHYS, "complete_evaluation", {}),
    (
        t(d("2026-04-02"), 13),
        REG,
        "record_donor_candidate",
        {
            "donor_ref": "SISTER-H",
            "donor_type": "haploidentical",
            "hla": HAPLO_HLA,
            "haplotype_shared": True,
            "dsa": "negative",
        },
    ),
    (t(d("2026-04-02"), 14), PHYS, "select_donor", {"donor_refs": ["SISTER-H"], "planned_collection_on": "2026-04-06"}),
    (
        t(d("2026-04-02"), 15),
        LAB,
        "record_donor_idm",
        {"donor_ref": "SISTER-H", "drawn_on": "2026-03-30", "result": "negative"},
    ),
    (t(d("2026-04-02"), 16), PHYS, "clear_donor", {}),
    *_conditioning(
        d("2026-04-03"),
        d("2026-04-06"),
        [(-3, "fludarabine", "30 mg/m2"), (-2, "cyclophosphamide", "14.5 mg/kg"), (-1, "tbi", "2 Gy")],
        length_reason="second HCT after graft failure: 3-day Flu/Cy/TBI 2 Gy",
    ),
    (t(d("2026-04-06"), 8), COL, "record_collection", {"product_id": "DIN-H1", "cd34_x10e6_per_kg": 5.0}),
    _infuse(t(d("2026-04-06"), 11), ["DIN-H1"]),
    *_labs(d("2026-04-06"), [(1, 0.8), (5, 0.02), (16, 0.6), (17, 0.9), (18, 1.4)]),
    (t(d("2026-04-25")), PHYS, "confirm_engraftment", {}),
]


def test_a_subsequent_transplant_is_a_linked_pathway_with_its_own_day0_s13(
    service: PathwayService, clock: ManualClock
) -> None:
    """S13: HCT#1 Day 0 02-25 fails; HCT#2 (haplo) Day 0' 04-06, neutrophils D'+16 (04-22)."""
    first = _s13_graft_failure(service, clock)
    result = fire(
        service,
        clock,
        first,
        t(d("2026-04-02")),
        PHYS,
        "start_subsequent_transplant",
        {
            "reason": "graft_failure",
            "route": "allogeneic",
            "donor_type": "haploidentical",
            "graft_source": "pbsc",
            "begin_in": "evaluation",
            "last_contact_on": "2026-04-02",
        },
    )
    second = result.entry.payload["new_pathway_id"]
    assert result.phase is Phase.GRAFT_FAILURE
    old = service.snapshot(first).facts
    assert (old.next_pathway, old.ended_on, old.day0) == (second, date(2026, 4, 2), date(2026, 2, 25))
    new = service.snapshot(second)
    assert (new.phase, new.facts.hct_number, new.facts.previous_pathway) == (Phase.EVALUATION, 2, first)
    assert (new.day0, new.planned_day0, new.facts.patient_ref) == (None, None, PATIENT)
    assert refused(service, clock, first, t(d("2026-04-02"), 9), LAB, "record_lab", {"anc_x10e9_per_l": 0.1}) == (
        "pathway_superseded",
    )

    day0 = d("2026-04-06")
    conditioning_from = next(at for at, _, command, _ in S13_SECOND if command == "start_conditioning")
    for at, actor, command, payload in S13_SECOND:
        step = fire(service, clock, second, at, actor, command, payload)
        # No label before a (planned) Day 0 of this pathway exists; never one from HCT#1's Day 0.
        expected = (at.date() - day0).days if at >= conditioning_from else None
        label = None if expected is None else ("D0" if expected == 0 else f"D{expected:+d}")
        assert step.day_label == label, (command, at)
    snapshot = service.snapshot(second, at=t(d("2026-04-25")))
    assert (snapshot.phase, snapshot.day0, snapshot.day, snapshot.day_label) == (Phase.FOLLOW_UP, day0, 19, "D+19")
    assert snapshot.facts.neutrophil_recovery_on == date(2026, 4, 22)
    assert snapshot.day_of(date(2026, 4, 22)) == 16
    assert service.snapshot(first).day0 == date(2026, 2, 25)
