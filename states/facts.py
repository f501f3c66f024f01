"""The pathway snapshot: every fact the log has recorded, folded into one frozen value.

The snapshot is what guards judge and what `hsct pathway show` prints. It is a pure function
of the log (see `states.fold`), stored beside the pathway row only so that a load does not
replay the whole log; invariant I1 checks that replaying gives the same value.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from states.care_facts import (
    AgentCourse,
    GrowthFactorStart,
    Infection,
    MucositisCourse,
    PlannedAgent,
    Stay,
)
from states.frozen import Frozen
from states.vocabulary import DonorType, GraftSource, Locus, Phase, Route

Short = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
"""A short label typed by a person (regimen, drug, dose): bounded, no NUL."""


class LabMethod(StrEnum):
    AUTOMATED = "automated"
    MANUAL_DIFFERENTIAL = "manual_differential"


class HlaResult(StrEnum):
    """The first per-locus vocabulary: one comparison per locus, so at most one mismatch.

    Still accepted (stored payloads and a short form for callers): each value reads as the
    `LocusMatch` it means.
    """

    MATCH = "match"
    ALLELE_MISMATCH = "allele_mismatch"
    ANTIGEN_MISMATCH = "antigen_mismatch"


class LocusMatch(BaseModel):
    """Donor-recipient comparison at one HLA locus: how many of its two alleles mismatch, and
    at which level (allele or antigen). 0, 1 or 2 mismatches in all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allele_mismatches: int = Field(0, ge=0, le=2)
    antigen_mismatches: int = Field(0, ge=0, le=2)

    @model_validator(mode="after")
    def _two_alleles(self) -> LocusMatch:
        if self.mismatches > 2:
            raise ValueError("a locus has two alleles: at most 2 mismatches in all")
        return self

    @property
    def mismatches(self) -> int:
        return self.allele_mismatches + self.antigen_mismatches


_LEGACY_LOCUS: dict[str, dict[str, int]] = {
    HlaResult.MATCH: {},
    HlaResult.ALLELE_MISMATCH: {"allele_mismatches": 1},
    HlaResult.ANTIGEN_MISMATCH: {"antigen_mismatches": 1},
}


def _legacy_locus(value: object) -> object:
    """An `HlaResult` value (old entries, or the short form) reads as the `LocusMatch` it means."""
    if isinstance(value, str) and value in _LEGACY_LOCUS:
        return _LEGACY_LOCUS[value]
    return value


HlaLocus = Annotated[LocusMatch, BeforeValidator(_legacy_locus, json_schema_input_type=LocusMatch | HlaResult)]


class DsaResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    NOT_TESTED = "not_tested"


class LabValue(Frozen):
    """One blood count sample (ANC and/or platelets, x10^9/L)."""

    at: AwareDatetime
    anc_x10e9_per_l: float | None = None
    platelets_x10e9_per_l: float | None = None
    method: LabMethod = LabMethod.AUTOMATED
    sequence: int = 0


class Transfusion(Frozen):
    at: AwareDatetime
    product: Literal["platelets", "red_cells"]
    sequence: int = 0


class DonorCandidate(Frozen):
    """A donor or a cord unit under consideration (HLA per locus, DSA, cord doses)."""

    donor_ref: str
    donor_type: DonorType
    hla: dict[Locus, HlaLocus] = Field(default_factory=dict)
    dsa: DsaResult = DsaResult.NOT_TESTED
    desensitization_plan: bool = False
    justification: str | None = None
    haplotype_shared: bool = False
    tnc_x10e7_per_kg: float | None = None
    cd34_x10e5_per_kg: float | None = None
    attached_segment: bool = False
    segment_typed: bool = False


DonorEligibility = Literal["eligible", "ineligible_related_exception", "ineligible_urgent_need"]
"""How a donor was cleared: eligible, or ineligible and used under an exception of 21 CFR 1271.65(b)."""


class IdmResult(Frozen):
    """A donor infectious-disease marker panel: when the specimen was drawn and the result."""

    donor_ref: str
    drawn_on: date
    result: Literal["negative", "positive"]


ProductDisposition = Literal["discard", "transfer", "research"]
"""What becomes of a product not infused on this pathway: discarded, sent to a named centre, or
given to research with the donor's (or patient's) consent."""

DeathCause = Literal["relapse", "gvhd", "infection", "organ_toxicity", "graft_failure", "other"]
"""The primary cause of death, in the categories transplant registries report."""

CgvhdSeverity = Literal["none", "mild", "moderate", "severe"]


QuarantineReason = Literal[
    "sterility_positive", "label_discrepancy", "temperature_excursion", "bag_integrity", "idm_pending", "other"
]
"""Why a bag is held back from infusion until the quality manager releases (or it is discarded)."""

CryopreservationReason = Literal["planned", "patient_not_ready", "logistics", "donor_availability"]
"""Why one patient's allogeneic graft is frozen when the programme's policy would infuse it fresh."""


class Bag(Frozen):
    """One bag of a cryopreserved product: quarantined, thawed, infused or carried on its own
    (docs/products.md). A product frozen before bags were named has none."""

    bag_id: str
    quarantine: QuarantineReason | None = None
    discarded: bool = False
    infused: bool = False
    post_thaw_viability_pct: float | None = None
    carried_to: str | None = None

    @property
    def available(self) -> bool:
        """Still here to infuse: not infused, discarded or carried to a linked pathway."""
        return not (self.infused or self.discarded or self.carried_to is not None)


class CryopreservationDecision(Frozen):
    """A physician's decision to freeze this patient's allogeneic graft before conditioning."""

    reason: CryopreservationReason
    decided_on: date


class DonorMobilization(Frozen):
    """A donor's G-CSF course as of the morning of apheresis, kept apart from the patient's own
    (autologous) mobilisation."""

    episode_id: str
    donor_ref: str
    at: AwareDatetime
    gcsf_days: int
    cd34_per_ul: float | None = None


class Product(Frozen):
    """A collected cellular product (one mobilization episode or harvest is one product)."""

    product_id: str
    graft_source: GraftSource
    collected_at: AwareDatetime
    cd34_x10e6_per_kg: float | None = None
    tnc_x10e7_per_kg: float | None = None
    donor_ref: str | None = None
    episode_id: str | None = None
    cryopreserved: bool = False
    infused: bool = False
    # What became of a product that will not be infused here (docs/long-term-follow-up.md).
    disposition: ProductDisposition | None = None
    disposition_centre: str | None = None
    disposed_on: date | None = None
    # Named at cryopreservation (docs/products.md); a tandem carries the bags left to the next HCT.
    bags: tuple[Bag, ...] = ()
    origin_pathway: str | None = None
    carried_to: str | None = None

    def available_bags(self) -> tuple[Bag, ...]:
        return tuple(b for b in self.bags if b.available)

    @property
    def left(self) -> float:
        """The share still here: all of it without named bags, else its available bags' share."""
        return len(self.available_bags()) / len(self.bags) if self.bags else 1.0


class Episode(Frozen):
    episode_id: str
    started_at: AwareDatetime
    failed: bool = False


class PlannedDose(Frozen):
    day: int = Field(ge=-30, le=0, description="Day of the plan, -30..0 (a Day 0 TBI fraction is allowed)")
    drug: Short
    dose: Short


class Regimen(Frozen):
    name: Short
    intensity: Literal["MAC", "RIC", "NMA"]
    plan: tuple[PlannedDose, ...] = Field(min_length=1)


class GivenDose(Frozen):
    at: AwareDatetime
    drug: str
    dose: str
    plan_day: int


class Chimerism(Frozen):
    at: AwareDatetime
    sample: Literal["peripheral_blood", "bone_marrow"]
    lineage: Literal["myeloid", "cd3", "whole_blood"]
    donor_pct: float
    unit_ref: str | None = None


RelapseKind = Literal["relapse", "progression"]
"""Relapse: the disease returns after a remission; progression: disease never in remission grows."""


class RelapseReport(Frozen):
    """A relapse or progression of the disease: the day it was found and which of the two it was."""

    on: date
    kind: RelapseKind


class GraftFailureSuspicion(Frozen):
    """A suspected graft failure (or autologous reconstitution) awaiting a physician's decision:
    `declare_graft_failure` confirms it, `clear_graft_failure_suspicion` clears it."""

    on: date
    kind: Literal["graft_failure", "autologous_reconstitution"]
    donor_chimerism_pct: float | None = None
    anc_x10e9_per_l: float | None = None


class GvhdAssessment(Frozen):
    """One acute GVHD assessment; `states.gvhd` derives the MAGIC stages from it.

    `skin_bullae` (bullae seen, extent not given) is what entries recorded before the extent
    was asked for carry; skin stage 4 needs the extent, `skin_bullae_bsa_pct` > 5 % BSA.
    """

    at: AwareDatetime
    skin_bsa_pct: float = 0.0
    skin_bullae: bool = False
    skin_bullae_bsa_pct: float = 0.0
    bilirubin_mg_per_dl: float = 0.0
    stool_ml_per_day: float = 0.0
    stool_episodes_per_day: int | None = None
    weight_kg: float | None = None
    lower_gi_severe: bool = False
    upper_gi: bool = False


VodCriteria = Literal["baltimore", "modified_seattle", "ebmt_adult", "ebmt_paediatric"]


class VodAssessment(Frozen):
    """The findings of one VOD/SOS assessment under a named criteria set (`states.vod`)."""

    at: AwareDatetime
    criteria: VodCriteria
    bilirubin_mg_per_dl: float
    hepatomegaly: bool = False
    ruq_pain: bool = False
    ascites: bool = False
    weight_gain_pct: float = 0.0
    # EBMT adult late onset: imaging (ultrasound) or haemodynamic evidence; histology.
    imaging_evidence: bool = False
    histology_proven: bool = False
    # EBMT paediatric findings.
    refractory_thrombocytopenia: bool = False
    weight_gain_3_days_despite_diuretics: bool = False
    bilirubin_rising_3_days: bool = False


class Infusion(Frozen):
    at: AwareDatetime
    kind: Literal["day0", "second_day", "boost", "dli", "rescue"]
    products: tuple[str, ...]
    bags: tuple[str, ...] = ()


AssessmentKind = Literal["day30", "day100", "month6", "year1", "other"]


class Assessment(Frozen):
    at: AwareDatetime
    kind: AssessmentKind
    disease_status: str | None = None


class ChronicGvhdAssessment(Frozen):
    """NIH 2014 organ scores (0-3) and the global severity `states.cgvhd` derives from them."""

    at: AwareDatetime
    scores: dict[str, int]
    severity: CgvhdSeverity


class PathwayFacts(Frozen):
    """Everything known about one pathway, as of its last entry."""

    phase: Phase
    route: Route
    donor_type: DonorType | None = None
    graft_source: GraftSource
    patient_ref: str = Field(repr=False)
    timezone: str = "UTC"
    hct_number: int = 1
    previous_pathway: str | None = None
    next_pathway: str | None = None
    held_from: Phase | None = None
    last_effective_at: AwareDatetime | None = None
    # The opening entry's effective time: no later entry may be effective before it
    # (effective_time_before_referral). None only in snapshots written before it was kept.
    referred_at: AwareDatetime | None = None
    # The policy version the pathway is judged under: the one its first entry was judged
    # under, until an `adopt_policy` moves it (docs/versioning.md). None only in snapshots
    # written before the policy registry.
    policy_version: str | None = None

    consent_on: date | None = None
    eligibility_documented: bool = False
    hla_samples: tuple[str, ...] = ()
    abo_samples: tuple[str, ...] = ()

    candidates: dict[str, DonorCandidate] = Field(default_factory=dict)
    selected_donors: tuple[str, ...] = ()
    cleared_donors: tuple[str, ...] = ()
    # The eligibility determination each donor was cleared under (21 CFR 1271.50 / 1271.65(b)):
    # collection re-checks IDM against it, not against "eligible".
    donor_eligibility: dict[str, DonorEligibility] = Field(default_factory=dict)
    released_donors: tuple[str, ...] = ()
    planned_collection_on: date | None = None
    idm: tuple[IdmResult, ...] = ()
    donor_unavailable: bool = False
    emergency_donor: str | None = None

    episodes: tuple[Episode, ...] = ()
    products: dict[str, Product] = Field(default_factory=dict)
    donor_mobilizations: tuple[DonorMobilization, ...] = ()
    cryopreservation_decision: CryopreservationDecision | None = None

    regimen: Regimen | None = None
    conditioning_started_on: date | None = None
    planned_day0: date | None = None
    doses: tuple[GivenDose, ...] = ()
    day0: date | None = None
    infusions: tuple[Infusion, ...] = ()

    labs: tuple[LabValue, ...] = ()
    transfusions: tuple[Transfusion, ...] = ()
    neutrophil_recovery_on: date | None = None
    platelet_recovery_on: date | None = None
    graft_failure: Literal["primary", "secondary"] | None = None
    chimerism: tuple[Chimerism, ...] = ()
    gvhd: tuple[GvhdAssessment, ...] = ()
    vod: tuple[VodAssessment, ...] = ()
    relapse_on: date | None = None
    assessments: tuple[Assessment, ...] = ()
    adverse_events: int = 0
    discharged: bool = False
    day100_on: date | None = None
    forms: tuple[str, ...] = ()
    ended_on: date | None = None
    chronic_gvhd: tuple[ChronicGvhdAssessment, ...] = ()
    death_cause: DeathCause | None = None
    transferred_to: str | None = None
    # docs/disease-course.md: the kind of the first relapse after Day 0; one found before infusion
    # (kept apart: it is the disease status at transplant, not a relapse after it).
    relapse_kind: RelapseKind | None = None
    relapse_before_infusion: RelapseReport | None = None
    graft_failure_suspicion: GraftFailureSuspicion | None = None
    # docs/supportive-care.md: GVHD prophylaxis and supportive care, one compact value per item.
    prophylaxis_plan: tuple[PlannedAgent, ...] = ()
    prophylaxis_given: dict[str, AgentCourse] = Field(default_factory=dict)
    stays: tuple[Stay, ...] = ()
    growth_factor: GrowthFactorStart | None = None
    infections: tuple[Infection, ...] = ()
    mucositis: MucositisCourse | None = None

    @property
    def is_allogeneic(self) -> bool:
        return self.route is Route.ALLOGENEIC

    @property
    def current_donors(self) -> tuple[str, ...]:
        """The donors (or cord units) this pathway now relies on: the emergency one wins."""
        if self.emergency_donor is not None:
            return (self.emergency_donor,)
        return self.selected_donors

    @property
    def flags(self) -> frozenset[str]:
        found: set[str] = set()
        if self.relapse_on is not None:
            found.add(self.relapse_kind or "relapse")
        if self.relapse_before_infusion is not None:
            found.add(f"{self.relapse_before_infusion.kind}_before_infusion")
        if self.graft_failure_suspicion is not None:
            found.add(f"{self.graft_failure_suspicion.kind}_suspected")
        if self.donor_unavailable:
            found.add("donor_unavailable_after_conditioning")
        if self.graft_failure is not None:
            found.add(f"{self.graft_failure}_graft_failure")
        return frozenset(found)

    def stored_products(self) -> list[Product]:
        """Cryopreserved products not yet infused and not disposed of."""
        return [
            p
            for p in self.products.values()
            if p.cryopreserved and not p.infused and p.disposition is None and p.carried_to is None and p.left
        ]

    def bag(self, bag_id: str) -> tuple[Product, Bag] | None:
        """The product holding bag `bag_id`, and the bag."""
        for product in self.products.values():
            for bag in product.bags:
                if bag.bag_id == bag_id:
                    return product, bag
        return None

    def undisposed_products(self) -> list[Product]:
        """Products neither infused nor given a disposition: each needs one once the pathway ends
        (a product whose named bags were each infused, discarded or carried needs none)."""
        return [
            p
            for p in self.products.values()
            if not p.infused and p.disposition is None and p.carried_to is None and p.left
        ]
