"""Clinically valid walks from `refer` to `day100_complete`, one per route and donor type.

Each step is (date-time, actor, command, payload). Dates follow the reference's worked
scenarios (S01 for autologous, S05/S07 for allogeneic PBSC, S14 for cord blood), so every
guard sees data a transplant program would record. Tests use them to reach any phase.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from states.vocabulary import Phase
from workflow.clock import ManualClock
from workflow.service import PathwayService, Result

PATIENT = "PT-8F3A21"

PHYS = {"id": "dr-ross", "role": "transplant_physician"}
COORD = {"id": "co-ames", "role": "transplant_coordinator"}
LAB = {"id": "lab-feed", "role": "laboratory"}
COL = {"id": "apheresis-1", "role": "collection_facility"}
PRO = {"id": "cell-lab-1", "role": "processing_facility"}
REG = {"id": "registry-1", "role": "donor_registry"}
RN = {"id": "rn-lee", "role": "infusion_nurse"}
VERIFIERS = [{"id": "rn-lee", "role": "infusion_nurse"}, {"id": "rn-kim", "role": "infusion_nurse"}]

Step = tuple[datetime, dict[str, str], str, dict[str, Any]]


def t(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


@dataclass(frozen=True)
class Walk:
    name: str
    refer: dict[str, Any]
    steps: tuple[Step, ...]
    day0: date

    def phases(self) -> list[Phase]:
        """Phases in the order the walk reaches them."""
        return WALK_PHASES[self.name]

    def for_patient(self, patient: str) -> Walk:
        """The same walk for another patient (a patient has one open pathway at a time): the
        referral's patient_ref and the infusion labels' recipient."""

        def relabel(payload: Any) -> Any:
            if isinstance(payload, dict) and "label_recipient_ref" in payload:
                return {**payload, "label_recipient_ref": patient}
            return payload

        steps = tuple((at, actor, command, relabel(payload)) for at, actor, command, payload in self.steps)
        return Walk(self.name, {**self.refer, "patient_ref": patient}, steps, self.day0)


def _evaluation(start: date, allogeneic: bool) -> list[Step]:
    steps: list[Step] = [
        (t(start + timedelta(days=1)), COORD, "begin_evaluation", {}),
        (t(start + timedelta(days=2)), COORD, "record_consent", {"consent_version": "v3"}),
        (t(start + timedelta(days=2)), PHYS, "record_eligibility", {"evidence": "performance status 1"}),
    ]
    if allogeneic:
        for n in (1, 2):
            steps += [
                (t(start + timedelta(days=2 + n)), LAB, "record_hla_typing", {"sample_id": f"HLA-{n}"}),
                (
                    t(start + timedelta(days=2 + n)),
                    LAB,
                    "record_abo_typing",
                    {"sample_id": f"ABO-{n}", "abo": "A", "rh": "positive"},
                ),
            ]
    steps.append((t(start + timedelta(days=7)), PHYS, "complete_evaluation", {}))
    return steps


def _conditioning(
    start: date, day0: date, plan: list[tuple[int, str, str]], length_reason: str | None = None
) -> list[Step]:
    regimen = {
        "name": "regimen",
        "intensity": "MAC",
        "plan": [{"day": day, "drug": drug, "dose": dose} for day, drug, dose in plan],
    }
    start_payload: dict[str, Any] = {"regimen": regimen, "planned_day0": day0.isoformat()}
    if length_reason is not None:  # a plan outside the policy's usual 5-10 days says why
        start_payload["length_reason"] = length_reason
    steps: list[Step] = [(t(start, 8), PHYS, "start_conditioning", start_payload)]
    for day, drug, dose in plan:
        steps.append(
            (
                t(day0 + timedelta(days=day), 10),
                RN,
                "record_conditioning_dose",
                {"drug": drug, "dose": dose, "plan_day": day},
            )
        )
    return steps


def _engraftment(day0: date, recovery_day: int, allogeneic: bool) -> list[Step]:
    steps: list[Step] = [
        (t(day0 + timedelta(days=n), 7), LAB, "record_lab", {"anc_x10e9_per_l": anc, "platelets_x10e9_per_l": plt})
        for n, anc, plt in [(1, 1.2, 40), (3, 0.6, 25), (5, 0.02, 9)]
    ]
    steps.append((t(day0 + timedelta(days=8), 12), RN, "record_transfusion", {"product": "platelets"}))
    steps += [
        (
            t(day0 + timedelta(days=recovery_day + k), 7),
            LAB,
            "record_lab",
            {"anc_x10e9_per_l": 0.6 + k, "platelets_x10e9_per_l": 24 + 5 * k},
        )
        for k in range(3)
    ]
    steps.append((t(day0 + timedelta(days=recovery_day + 3)), PHYS, "confirm_engraftment", {}))
    if allogeneic:
        steps += [
            (t(day0 + timedelta(days=90)), PHYS, "record_gvhd_assessment", {"skin_bsa_pct": 10}),
            (
                t(day0 + timedelta(days=90)),
                LAB,
                "record_chimerism",
                {"sample": "peripheral_blood", "lineage": "myeloid", "donor_pct": 98},
            ),
        ]
    steps.append((t(day0 + timedelta(days=100)), PHYS, "complete_day100", {}))
    return steps


def _infuse(at: datetime, products: list[str]) -> Step:
    return (at, RN, "infuse", {"products": products, "label_recipient_ref": PATIENT, "verifiers": VERIFIERS})


def autologous() -> Walk:
    day0 = d("2026-02-04")
    steps: list[Step] = [
        *_evaluation(d("2026-01-05"), allogeneic=False),
        (t(d("2026-01-14")), COL, "start_mobilization", {"episode_id": "EP-1", "agents": ["g_csf"]}),
        (
            t(d("2026-01-18")),
            COL,
            "record_collection",
            {"product_id": "DIN-A", "cd34_x10e6_per_kg": 3.4, "episode_id": "EP-1"},
        ),
        (
            t(d("2026-01-19")),
            COL,
            "record_collection",
            {"product_id": "DIN-B", "cd34_x10e6_per_kg": 2.9, "episode_id": "EP-1"},
        ),
        (t(d("2026-01-19"), 15), PRO, "cryopreserve_product", {"product_id": "DIN-A", "bags": 3, "location": "tank-2"}),
        (t(d("2026-01-19"), 16), PRO, "cryopreserve_product", {"product_id": "DIN-B", "bags": 2, "location": "tank-2"}),
        (t(d("2026-01-20")), COORD, "complete_collection", {}),
        *_conditioning(
            d("2026-02-02"), day0, [(-2, "melphalan", "200 mg/m2")], length_reason="Mel200: one dose on Day -2"
        ),
        _infuse(t(day0, 11), ["DIN-A"]),
        *_engraftment(day0, 11, allogeneic=False),
    ]
    refer = {"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc", "diagnosis": "multiple_myeloma"}
    return Walk("autologous", refer, tuple(steps), day0)


FULL_HLA = {"A": "match", "B": "match", "C": "match", "DRB1": "match", "DQB1": "match"}
BU_CY = [
    (-7, "busulfan", "3.2 mg/kg"),
    (-6, "busulfan", "3.2 mg/kg"),
    (-5, "busulfan", "3.2 mg/kg"),
    (-4, "busulfan", "3.2 mg/kg"),
    (-3, "cyclophosphamide", "60 mg/kg"),
    (-2, "cyclophosphamide", "60 mg/kg"),
]


def _allogeneic_pbsc(name: str, donor_type: str, candidate: dict[str, Any], graft_source: str = "pbsc") -> Walk:
    day0 = d("2026-04-08")
    collection = day0 - timedelta(days=1)
    steps: list[Step] = [
        *_evaluation(d("2026-01-05"), allogeneic=True),
        (
            t(d("2026-02-03")),
            REG,
            "record_donor_candidate",
            {"donor_ref": "DONOR-A", "donor_type": donor_type, **candidate},
        ),
        (
            t(d("2026-02-06")),
            PHYS,
            "select_donor",
            {"donor_refs": ["DONOR-A"], "planned_collection_on": collection.isoformat()},
        ),
        (
            t(d("2026-03-10")),
            LAB,
            "record_donor_idm",
            {"donor_ref": "DONOR-A", "drawn_on": "2026-03-10", "result": "negative"},
        ),
        (t(d("2026-03-17")), PHYS, "clear_donor", {}),
        *_conditioning(d("2026-03-31"), day0, BU_CY),
        (
            t(collection, 14),
            COL,
            "record_collection",
            {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2, "graft_source": graft_source},
        ),
        _infuse(t(day0, 11), ["DIN-D1"]),
        *_engraftment(day0, 15, allogeneic=True),
    ]
    refer = {"patient_ref": PATIENT, "route": "allogeneic", "donor_type": donor_type, "graft_source": graft_source}
    return Walk(name, refer, tuple(steps), day0)


def cord_blood() -> Walk:
    day0 = d("2026-03-11")
    unit = {
        "donor_type": "cord_blood",
        "hla": {"A": "match", "B": "antigen_mismatch", "C": "match", "DRB1": "match"},
        "attached_segment": True,
    }
    steps: list[Step] = [
        *_evaluation(d("2026-01-05"), allogeneic=True),
        (
            t(d("2026-02-09")),
            REG,
            "record_donor_candidate",
            {"donor_ref": "CBU-A", **unit, "tnc_x10e7_per_kg": 2.2, "cd34_x10e5_per_kg": 1.3},
        ),
        (
            t(d("2026-02-09")),
            REG,
            "record_donor_candidate",
            {"donor_ref": "CBU-B", **unit, "tnc_x10e7_per_kg": 1.7, "cd34_x10e5_per_kg": 1.1},
        ),
        (t(d("2026-02-10")), PHYS, "select_donor", {"donor_refs": ["CBU-A", "CBU-B"]}),
        (
            t(d("2026-02-16")),
            LAB,
            "record_donor_candidate",
            {"donor_ref": "CBU-A", "donor_type": "cord_blood", "segment_typed": True},
        ),
        (
            t(d("2026-02-16")),
            LAB,
            "record_donor_candidate",
            {"donor_ref": "CBU-B", "donor_type": "cord_blood", "segment_typed": True},
        ),
        (t(d("2026-02-17")), PHYS, "clear_donor", {}),
        *_conditioning(d("2026-03-03"), day0, [(-8, "fludarabine", "25 mg/m2"), (-1, "tbi", "2 Gy")]),
        _infuse(t(day0, 11), ["CBU-A", "CBU-B"]),
        *_engraftment(day0, 24, allogeneic=True),
    ]
    refer = {"patient_ref": PATIENT, "route": "allogeneic", "donor_type": "cord_blood", "graft_source": "cord_blood"}
    return Walk("cord_blood", refer, tuple(steps), day0)


WALKS: dict[str, Callable[[], Walk]] = {
    "autologous": autologous,
    "matched_sibling": lambda: _allogeneic_pbsc("matched_sibling", "matched_sibling", {"hla": FULL_HLA}),
    "matched_unrelated": lambda: _allogeneic_pbsc("matched_unrelated", "matched_unrelated", {"hla": FULL_HLA}),
    "mismatched_unrelated": lambda: _allogeneic_pbsc(
        "mismatched_unrelated",
        "mismatched_unrelated",
        {
            "hla": {**FULL_HLA, "C": "allele_mismatch"},
            "dsa": "negative",
            "justification": "no 8/8 donor available in time",
        },
    ),
    "haploidentical": lambda: _allogeneic_pbsc(
        "haploidentical",
        "haploidentical",
        {
            "hla": {"A": "antigen_mismatch", "B": "antigen_mismatch", "C": "match", "DRB1": "antigen_mismatch"},
            "haplotype_shared": True,
            "dsa": "negative",
        },
        graft_source="bone_marrow",
    ),
    "cord_blood": cord_blood,
}

_ALLO = [
    Phase.REFERRED,
    Phase.EVALUATION,
    Phase.DONOR_SEARCH,
    Phase.DONOR_WORKUP,
    Phase.READY_FOR_CONDITIONING,
    Phase.CONDITIONING,
    Phase.AWAITING_ENGRAFTMENT,
    Phase.FOLLOW_UP,
    Phase.DAY100_COMPLETE,
]
WALK_PHASES: dict[str, list[Phase]] = {
    "autologous": [
        Phase.REFERRED,
        Phase.EVALUATION,
        Phase.COLLECTION,
        Phase.READY_FOR_CONDITIONING,
        Phase.CONDITIONING,
        Phase.AWAITING_ENGRAFTMENT,
        Phase.FOLLOW_UP,
        Phase.DAY100_COMPLETE,
    ],
    **{name: _ALLO for name in WALKS if name != "autologous"},
}


def played(service: PathwayService, clock: ManualClock, walk: Walk) -> Iterator[tuple[str, str, Result]]:
    """Refer and play the walk's steps (clock following them), yielding (pathway id, command,
    result) after the referral and after each step."""
    start = t(d("2026-01-05"))
    clock.set(start)
    referred = service.refer(walk.refer, actor=PHYS, at=start)
    yield referred.pathway_id, "refer", referred
    for at, actor, command, payload in walk.steps:
        clock.set(at)
        yield referred.pathway_id, command, service.fire(referred.pathway_id, command, payload, actor=actor, at=at)


def run_walk(service: PathwayService, clock: ManualClock, walk: Walk, *, until: Phase | None = None) -> str:
    """Refer and play the walk's steps (clock following them); stop on reaching `until`."""
    for pathway_id, _, result in played(service, clock, walk):
        if until is not None and result.phase is until:
            return pathway_id
    assert until is None or until is Phase.DAY100_COMPLETE, f"{walk.name} never reached {until}"
    return pathway_id
