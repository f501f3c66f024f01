"""Command payloads: one closed, frozen model per trigger and event of the chart.

Each model validates what a caller sends (units in field names, aware datetimes, bounded
doses) and knows what its fact does to the snapshot (`apply`). Guards live in
`states.guards`; whether a command may run in a phase lives in `states.chart`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from states import care_facts, cgvhd
from states.facts import (
    Assessment,
    AssessmentKind,
    Bag,
    Chimerism,
    ChronicGvhdAssessment,
    CryopreservationDecision,
    CryopreservationReason,
    DeathCause,
    DonorCandidate,
    DonorEligibility,
    DonorMobilization,
    DsaResult,
    Episode,
    GivenDose,
    GvhdAssessment,
    HlaLocus,
    IdmResult,
    Infusion,
    LabMethod,
    LabValue,
    PathwayFacts,
    Product,
    ProductDisposition,
    QuarantineReason,
    Regimen,
    RelapseKind,
    RelapseReport,
    Transfusion,
    VodAssessment,
    VodCriteria,
)
from states.vocabulary import DonorType, GraftSource, Locus, Phase, Role, Route

Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
"""An opaque identifier (product, donor, sample, episode): no spaces, at most 64 characters."""

PatientRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{3,63}$")]
"""A pseudonymous patient reference supplied by the host (never a name or record number)."""

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True, pattern=r"^[^\x00]*$")]
"""Free text a person typed: stored verbatim, never interpreted; NUL refused (no database keeps it)."""
Drug = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=r"^[^\x00]*$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
DoseText = Annotated[
    str, StringConstraints(max_length=64, pattern=r"^\d+(\.\d+)?\s*[A-Za-z%µ/0-9.]+( [A-Za-z/]+)*$")
]
Pct = Annotated[float, Field(strict=True, ge=0, le=100)]
Anc = Annotated[float, Field(strict=True, ge=0, le=200)]
"""An absolute neutrophil count, x10^9/L (a lab value, or the evidence of a suspected graft failure)."""

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def _date_only(value: object) -> object:
    """Clinical dates are calendar days: a datetime (naive or not) or a number is refused."""
    if isinstance(value, datetime | bool | int | float):
        raise PydanticCustomError("date_only", "must be a date (YYYY-MM-DD), not a time or a number")
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PydanticCustomError("date_only", "must be a date written YYYY-MM-DD")
    return value


def _plausible(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError("date_out_of_range", "must lie between 1900-01-01 and 2199-12-31")
    return value


ClinicalDate = Annotated[date, BeforeValidator(_date_only), AfterValidator(_plausible)]

# Cross-field rules raised by model validators, and the field each one is about: the error
# path names that field (workflow.validation), as for any single-field rule.
RULE_FIELDS: dict[str, str] = {
    "donor_type_for_autologous": "donor_type",
    "donor_type_missing": "donor_type",
    "graft_source_inconsistent": "graft_source",
    "donor_type_inconsistent": "donor_type",
    "begin_in_inconsistent": "begin_in",
    "consent_version_missing": "consent_version",
    "dose_missing": "cd34_x10e6_per_kg",
    "lab_value_missing": "anc_x10e9_per_l",
    "disposition_centre_missing": "centre",
    "disposition_consent_missing": "research_consent_version",
    "bag_ids_count": "bag_ids",
    "suspicion_evidence_missing": "donor_chimerism_pct",
    "prophylaxis_schedule_shape": "days",
    "prophylaxis_agent_twice": "agents",
}


@dataclass(frozen=True)
class Ctx:
    """Where an entry sits: its effective time, clinical date and sequence number."""

    at: datetime
    on: date
    sequence: int


class Payload(BaseModel):
    """Base of every payload: closed, frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fields the library fills in (derived facts); a caller may not send them.
    derived_fields: ClassVar[frozenset[str]] = frozenset()
    # Fields that say who the patient is or which transplant this is: `correct_entry` refuses
    # them (identity_not_correctable, docs/decisions.md "Identity is not corrected").
    identity_fields: ClassVar[frozenset[str]] = frozenset()

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        """What this fact does to the snapshot (the phase itself is moved by the fold)."""
        return facts


def require_any(payload: BaseModel, rule: str, *fields: str) -> None:
    """Bad input `rule` (reported on the first field) unless at least one of `fields` is given:
    a dose, a count, the evidence of a suspicion."""
    if all(getattr(payload, name) is None for name in fields):
        raise PydanticCustomError(rule, "give " + " and/or ".join(fields))


def _upd(facts: PathwayFacts, **changes: Any) -> PathwayFacts:
    return facts.model_copy(update=changes)


# --- referral and evaluation -------------------------------------------------------------


class Refer(Payload):
    patient_ref: PatientRef = Field(repr=False)
    route: Route
    donor_type: DonorType | None = None
    graft_source: GraftSource
    diagnosis: Code | None = None

    identity_fields: ClassVar[frozenset[str]] = frozenset({"patient_ref", "route", "donor_type", "graft_source"})

    @model_validator(mode="after")
    def _consistent(self) -> Refer:
        _check_route(self.route, self.donor_type, self.graft_source)
        return self


def _check_route(route: Route, donor_type: DonorType | None, graft_source: GraftSource) -> None:
    """Route, donor type and graft source agree (a referral, a route change)."""
    # Raised as pydantic errors whose type is the rule name (see workflow.validation).
    if route is Route.AUTOLOGOUS and donor_type is not None:
        raise PydanticCustomError("donor_type_for_autologous", "an autologous route has no donor_type")
    if route is Route.ALLOGENEIC and donor_type is None:
        raise PydanticCustomError("donor_type_missing", "an allogeneic route needs a donor_type")
    if route is Route.AUTOLOGOUS and graft_source is GraftSource.CORD_BLOOD:
        raise PydanticCustomError("graft_source_inconsistent", "cord blood is never autologous")
    cord_type = donor_type is DonorType.CORD_BLOOD
    if cord_type != (graft_source is GraftSource.CORD_BLOOD) and route is Route.ALLOGENEIC:
        raise PydanticCustomError(
            "graft_source_inconsistent", "donor_type cord_blood goes with graft_source cord_blood only"
        )


class Empty(Payload):
    """A trigger that carries nothing but its actor and time."""


class RecordConsent(Payload):
    consent_version: Label

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, consent_on=ctx.on)


class RecordEligibility(Payload):
    eligible: bool = True
    evidence: Text

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, eligibility_documented=self.eligible)


class RecordTyping(Payload):
    """An HLA or ABO/Rh typing of the patient on one sample (two independent samples needed)."""

    sample_id: Ref


class RecordHlaTyping(RecordTyping):
    loci: tuple[Locus, ...] = (Locus.A, Locus.B, Locus.C, Locus.DRB1, Locus.DQB1)
    resolution: Literal["high", "low"] = "high"

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, hla_samples=_add_unique(facts.hla_samples, self.sample_id))


class RecordAboTyping(RecordTyping):
    abo: Literal["A", "B", "AB", "O"]
    rh: Literal["positive", "negative"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, abo_samples=_add_unique(facts.abo_samples, self.sample_id))


def _add_unique(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return values if value in values else (*values, value)


# --- donors ------------------------------------------------------------------------------


class RecordDonorCandidate(Payload):
    """A donor or cord unit, or new results for one already recorded (fields merge)."""

    donor_ref: Ref
    donor_type: DonorType
    hla: dict[Locus, HlaLocus] | None = None
    dsa: DsaResult | None = None
    desensitization_plan: bool | None = None
    justification: Text | None = None
    haplotype_shared: bool | None = None
    tnc_x10e7_per_kg: Annotated[float, Field(strict=True, gt=0, le=100)] | None = None
    cd34_x10e5_per_kg: Annotated[float, Field(strict=True, gt=0, le=1000)] | None = None
    attached_segment: bool | None = None
    segment_typed: bool | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        known = facts.candidates.get(self.donor_ref)
        base = known.model_dump() if known else {}
        news = self.model_dump(exclude_none=True)
        candidate = DonorCandidate.model_validate({**base, **news})
        return _upd(facts, candidates={**facts.candidates, self.donor_ref: candidate})


class SelectDonor(Payload):
    donor_refs: tuple[Ref, ...] = Field(min_length=1, max_length=2)
    planned_collection_on: ClinicalDate | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(
            facts,
            selected_donors=self.donor_refs,
            cleared_donors=(),
            planned_collection_on=self.planned_collection_on,
        )


class ReleaseDonor(Payload):
    reason: Literal["donor_withdrew", "unsuitable", "unavailable", "other"]
    note: Text | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(
            facts,
            released_donors=facts.released_donors + facts.selected_donors,
            selected_donors=(),
            cleared_donors=(),
            planned_collection_on=None,
        )


class ClearDonor(Payload):
    """Donor eligibility determined (21 CFR 1271.50) and the donor cleared for collection."""

    eligibility: DonorEligibility = "eligible"
    planned_collection_on: ClinicalDate | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(
            facts,
            cleared_donors=facts.current_donors,
            donor_eligibility={**facts.donor_eligibility, **dict.fromkeys(facts.current_donors, self.eligibility)},
            planned_collection_on=self.planned_collection_on or facts.planned_collection_on,
        )


class RecordDonorIdm(Payload):
    donor_ref: Ref
    drawn_on: ClinicalDate
    result: Literal["negative", "positive"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        idm = IdmResult(donor_ref=self.donor_ref, drawn_on=self.drawn_on, result=self.result)
        return _upd(facts, idm=(*facts.idm, idm))


class ReportDonorUnavailable(Payload):
    reason: Text

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, donor_unavailable=True, cleared_donors=())


class SelectEmergencyDonor(Payload):
    """An alternative graft after `report_donor_unavailable`: a recorded donor or cord unit, a
    stored product, or a new donor described in `candidate` (no donor search in conditioning)."""

    donor_ref: Ref
    candidate: RecordDonorCandidate | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        if self.candidate is not None:
            facts = self.candidate.apply(facts, ctx)
        return _upd(facts, emergency_donor=self.donor_ref, cleared_donors=())


# --- collection ----------------------------------------------------------------------------


class StartMobilization(Payload):
    episode_id: Ref
    agents: tuple[Literal["g_csf", "plerixafor", "chemotherapy"], ...] = Field(min_length=1)

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, episodes=(*facts.episodes, Episode(episode_id=self.episode_id, started_at=ctx.at)))


class ReportMobilizationFailure(Payload):
    episode_id: Ref

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        episodes = tuple(
            e.model_copy(update={"failed": True}) if e.episode_id == self.episode_id else e for e in facts.episodes
        )
        return _upd(facts, episodes=episodes)


class RecordDonorMobilization(Payload):
    """A donor's G-CSF course on the morning of apheresis: the days given so far and the
    peripheral-blood CD34+ pre-count. Donor-side: it never adds a patient mobilisation episode."""

    episode_id: Ref
    donor_ref: Ref | None = None
    gcsf_days: Annotated[int, Field(strict=True, ge=1, le=10)]
    cd34_per_ul: Annotated[float, Field(strict=True, ge=0, le=10000)] | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        donor = self.donor_ref or (facts.current_donors[0] if facts.current_donors else "")
        course = DonorMobilization(
            episode_id=self.episode_id,
            donor_ref=donor,
            at=ctx.at,
            gcsf_days=self.gcsf_days,
            cd34_per_ul=self.cd34_per_ul,
        )
        return _upd(facts, donor_mobilizations=(*facts.donor_mobilizations, course))


class RecordCollection(Payload):
    """A collected product; its effective time is the (first) collection day."""

    product_id: Ref
    graft_source: GraftSource | None = None
    cd34_x10e6_per_kg: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    tnc_x10e7_per_kg: Annotated[float, Field(strict=True, ge=0, le=1000)] | None = None
    viability_pct: Pct | None = None
    episode_id: Ref | None = None
    donor_ref: Ref | None = None

    @model_validator(mode="after")
    def _has_dose(self) -> RecordCollection:
        require_any(self, "dose_missing", "cd34_x10e6_per_kg", "tnc_x10e7_per_kg")
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        earlier = facts.products.get(self.product_id)
        if earlier is not None:  # a further apheresis day of the same episode: one product, doses add up
            product = earlier.model_copy(
                update={
                    "cd34_x10e6_per_kg": _sum(earlier.cd34_x10e6_per_kg, self.cd34_x10e6_per_kg),
                    "tnc_x10e7_per_kg": _sum(earlier.tnc_x10e7_per_kg, self.tnc_x10e7_per_kg),
                }
            )
            return _upd(facts, products={**facts.products, self.product_id: product})
        donor = self.donor_ref
        if donor is None and facts.is_allogeneic and facts.current_donors:
            donor = facts.current_donors[0]
        product = Product(
            product_id=self.product_id,
            graft_source=self.graft_source or facts.graft_source,
            collected_at=ctx.at,
            cd34_x10e6_per_kg=self.cd34_x10e6_per_kg,
            tnc_x10e7_per_kg=self.tnc_x10e7_per_kg,
            donor_ref=donor,
            episode_id=self.episode_id,
        )
        return _upd(facts, products={**facts.products, self.product_id: product})


def _sum(first: float | None, second: float | None) -> float | None:
    if first is None or second is None:
        return first if second is None else second
    return first + second


class CryopreserveProduct(Payload):
    """A product frozen in `bags` bags; naming them (`bag_ids`) lets each be quarantined, thawed
    and infused on its own (docs/products.md). Entries written before bag ids fold as before."""

    product_id: Ref
    bags: Annotated[int, Field(strict=True, ge=1, le=50)]
    location: Label
    bag_ids: tuple[Ref, ...] | None = None

    @model_validator(mode="after")
    def _one_id_per_bag(self) -> CryopreserveProduct:
        if self.bag_ids is not None and len(set(self.bag_ids)) != self.bags:
            raise PydanticCustomError("bag_ids_count", "name each of the `bags` bags once")
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        bags = tuple(Bag(bag_id=b) for b in self.bag_ids or ())
        product = facts.products[self.product_id].model_copy(update={"cryopreserved": True, "bags": bags})
        return _upd(facts, products={**facts.products, self.product_id: product})


class DecideCryopreservation(Payload):
    """A physician freezes this patient's allogeneic graft although the policy would infuse it
    fresh: planned, the patient cannot start on time, transport, or the donor's dates [F:NMDP-CRYO]."""

    reason: CryopreservationReason
    note: Text | None = Field(None, repr=False)

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        decision = CryopreservationDecision(reason=self.reason, decided_on=ctx.on)
        return _upd(facts, cryopreservation_decision=decision)


class BagAction(Payload):
    """One step in a bag's chain of custody. `needs_quarantine`: True, the bag must be in
    quarantine; False, it must not be; None, either (the guard `bag_action_allowed`)."""

    bag_id: Ref

    needs_quarantine: ClassVar[bool | None] = None

    def bag_changes(self) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _with_bags(facts, {self.bag_id}, self.bag_changes())


def _with_bags(facts: PathwayFacts, bag_ids: set[str], changes: dict[str, Any]) -> PathwayFacts:
    """`changes` applied to the named bags; a product is infused once every bag of it is."""
    products = dict(facts.products)
    for pid, product in facts.products.items():
        if not any(b.bag_id in bag_ids for b in product.bags):
            continue
        bags = tuple(b.model_copy(update=changes) if b.bag_id in bag_ids else b for b in product.bags)
        products[pid] = product.model_copy(update={"bags": bags, "infused": all(b.infused for b in bags)})
    return _upd(facts, products=products)


class QuarantineBag(BagAction):
    """A bag held back (positive sterility culture, label discrepancy, ...): it cannot be infused."""

    reason: QuarantineReason
    note: Text | None = Field(None, repr=False)

    needs_quarantine: ClassVar[bool | None] = False

    def bag_changes(self) -> dict[str, Any]:
        return {"quarantine": self.reason}


class ReleaseBag(BagAction):
    """The investigation closed and the bag is fit for infusion again."""

    note: Text = Field(repr=False)

    needs_quarantine: ClassVar[bool | None] = True

    def bag_changes(self) -> dict[str, Any]:
        return {"quarantine": None}


class DiscardBag(BagAction):
    """The bag is destroyed (a failed investigation, a broken bag): never infused."""

    reason: Text = Field(repr=False)

    def bag_changes(self) -> dict[str, Any]:
        return {"discarded": True}


class RecordThaw(BagAction):
    """The bag thawed at the bedside and its post-thaw viability (percent viable cells)."""

    viability_pct: Pct

    def bag_changes(self) -> dict[str, Any]:
        return {"post_thaw_viability_pct": self.viability_pct}


class CompleteCollection(Empty):
    pass


# --- holds, withdrawal, death ----------------------------------------------------------------


class WithReason(Payload):
    reason: Text = Field(repr=False)  # free text: never in a repr


class Hold(WithReason):
    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, held_from=facts.phase)


class Resume(Payload):
    planned_collection_on: ClinicalDate | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(
            facts,
            held_from=None,
            planned_collection_on=self.planned_collection_on or facts.planned_collection_on,
        )


class Withdraw(WithReason):
    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, ended_on=ctx.on, held_from=None)


class RecordDeath(Payload):
    # The primary cause in the registry categories; `cause` is an optional finer code ("sepsis").
    primary_cause: DeathCause | None = None
    cause: Code | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, ended_on=ctx.on, death_cause=self.primary_cause)


class Transfer(WithReason):
    """Care continues at another centre: a reference to that centre, never patient data."""

    destination_centre: Ref

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, ended_on=ctx.on, transferred_to=self.destination_centre, held_from=None)


class RecordProductDisposition(Payload):
    """What became of a product that will not be infused here (docs/long-term-follow-up.md)."""

    product_id: Ref
    disposition: ProductDisposition
    centre: Ref | None = None
    research_consent_version: Label | None = None

    @model_validator(mode="after")
    def _complete(self) -> RecordProductDisposition:
        if (self.disposition == "transfer") != (self.centre is not None):
            raise PydanticCustomError("disposition_centre_missing", "a transfer, and only a transfer, names the centre")
        if (self.disposition == "research") != (self.research_consent_version is not None):
            raise PydanticCustomError(
                "disposition_consent_missing", "research use, and only research use, names the consent version"
            )
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        product = facts.products[self.product_id].model_copy(
            update={"disposition": self.disposition, "disposition_centre": self.centre, "disposed_on": ctx.on}
        )
        return _upd(facts, products={**facts.products, self.product_id: product})


# --- conditioning and infusion ---------------------------------------------------------------


class StartConditioning(Payload):
    regimen: Regimen
    planned_day0: ClinicalDate
    # Why a plan spans fewer or more days than the policy's usual length (a single-dose Mel200).
    length_reason: Text | None = Field(None, repr=False)

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, regimen=self.regimen, planned_day0=self.planned_day0, conditioning_started_on=ctx.on)


class RecordConditioningDose(Payload):
    drug: Drug
    dose: DoseText
    plan_day: Annotated[int, Field(strict=True, ge=-30, le=0)]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        given = GivenDose(at=ctx.at, drug=self.drug, dose=self.dose, plan_day=self.plan_day)
        return _upd(facts, doses=(*facts.doses, given))


class Verifier(Payload):
    id: Ref
    role: Role


class BedsideCheck(Payload):
    """What every infusion records at the bedside: the products (bags or cord units), the
    recipient named on their label and the two people who verified identity. One shape, so
    one set of guards judges `infuse`, `rescue_infusion` and `record_infusion` alike."""

    products: tuple[Ref, ...] = Field(min_length=1, max_length=4)
    # Each bag infused, of the products above (docs/products.md); none in entries written before.
    bag_ids: tuple[Ref, ...] = Field((), max_length=50)
    label_recipient_ref: PatientRef | None = Field(None, repr=False)
    verifiers: tuple[Verifier, ...] = Field((), max_length=2)

    # The bedside identity check as it was done: a wrong label is never corrected into a right one.
    identity_fields: ClassVar[frozenset[str]] = frozenset({"label_recipient_ref", "verifiers"})


class Infuse(BedsideCheck):
    """Day 0: the products infused, the label check and the two-person identity verification."""

    label_recipient_ref: PatientRef = Field(repr=False)
    verifiers: tuple[Verifier, ...] = Field(min_length=2, max_length=2)

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _infused(facts, ctx, self, "day0")


def _infused(facts: PathwayFacts, ctx: Ctx, check: BedsideCheck, kind: str) -> PathwayFacts:
    """Named bags are infused one by one; a product named without its bags, whole."""
    facts = _with_bags(facts, set(check.bag_ids), {"infused": True})
    products = dict(facts.products)
    for pid in check.products:
        product = products.get(pid)
        if product is not None and not any(b.bag_id in check.bag_ids for b in product.bags):
            products[pid] = product.model_copy(update={"infused": True})
    infusion = Infusion.model_validate({"at": ctx.at, "kind": kind, "products": check.products, "bags": check.bag_ids})
    changes: dict[str, Any] = {"products": products, "infusions": (*facts.infusions, infusion)}
    if kind == "day0":
        changes["day0"] = ctx.on
    return _upd(facts, **changes)


class RescueInfusion(Infuse):
    """A stored autologous backup or a same-donor boost after graft failure: Day 0 stays."""

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(_infused(facts, ctx, self, "rescue"), graft_failure=None)


class RecordInfusion(BedsideCheck):
    """A further infusion of the same HCT: a second infusion day, a boost or a DLI.

    The label and verifiers are optional in the shape only so that entries written before they
    were asked for still replay; the guards refuse a new infusion without them.
    """

    kind: Literal["second_day", "boost", "dli"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _infused(facts, ctx, self, self.kind)


# --- engraftment and follow-up -------------------------------------------------------------


class RecordLab(Payload):
    anc_x10e9_per_l: Anc | None = None
    platelets_x10e9_per_l: Annotated[float, Field(strict=True, ge=0, le=3000)] | None = None
    method: LabMethod = LabMethod.AUTOMATED

    @model_validator(mode="after")
    def _some_value(self) -> RecordLab:
        require_any(self, "lab_value_missing", "anc_x10e9_per_l", "platelets_x10e9_per_l")
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        lab = LabValue(
            at=ctx.at,
            anc_x10e9_per_l=self.anc_x10e9_per_l,
            platelets_x10e9_per_l=self.platelets_x10e9_per_l,
            method=self.method,
            sequence=ctx.sequence,
        )
        return _upd(facts, labs=(*facts.labs, lab))


class RecordTransfusion(Payload):
    product: Literal["platelets", "red_cells"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        given = Transfusion(at=ctx.at, product=self.product, sequence=ctx.sequence)
        return _upd(facts, transfusions=(*facts.transfusions, given))


class ConfirmRecovery(Payload):
    """The caller may state the date it believes; the entry records the derived one."""

    claimed_on: ClinicalDate | None = None
    recovery_on: ClinicalDate | None = Field(None, description="Derived by the library; never sent by a caller.")

    derived_fields: ClassVar[frozenset[str]] = frozenset({"recovery_on"})


class ConfirmEngraftment(ConfirmRecovery):
    anc_never_below: bool | None = Field(
        None, description="Derived by the library: ANC never fell below 0.5, so there is no recovery date."
    )

    derived_fields: ClassVar[frozenset[str]] = frozenset({"recovery_on", "anc_never_below"})

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, neutrophil_recovery_on=self.recovery_on)


class ConfirmPlateletEngraftment(ConfirmRecovery):
    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, platelet_recovery_on=self.recovery_on)


class DeclareGraftFailure(Payload):
    kind: Literal["primary", "secondary"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        # A standing suspicion is confirmed by the declaration: it is no longer open.
        return _upd(facts, graft_failure=self.kind, graft_failure_suspicion=None)


class RecordChimerism(Payload):
    sample: Literal["peripheral_blood", "bone_marrow"]
    lineage: Literal["myeloid", "cd3", "whole_blood"]
    donor_pct: Pct
    unit_ref: Ref | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        value = Chimerism(at=ctx.at, **self.model_dump())
        return _upd(facts, chimerism=(*facts.chimerism, value))


class RecordGvhdAssessment(Payload):
    """MAGIC inputs: skin erythema and bullae/desquamation % BSA, bilirubin, stool volume
    (3-day average) and episodes, weight (child lower GI bands at <= 50 kg), upper GI."""

    skin_bsa_pct: Pct = 0.0
    skin_bullae: bool = False
    skin_bullae_bsa_pct: Pct = 0.0
    bilirubin_mg_per_dl: Annotated[float, Field(strict=True, ge=0, le=100)] = 0.0
    stool_ml_per_day: Annotated[float, Field(strict=True, ge=0, le=20000)] = 0.0
    stool_episodes_per_day: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None
    weight_kg: Annotated[float, Field(strict=True, gt=0, le=400)] | None = None
    lower_gi_severe: bool = False
    upper_gi: bool = False

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        value = GvhdAssessment(at=ctx.at, **self.model_dump())
        return _upd(facts, gvhd=(*facts.gvhd, value))


OrganScore = Annotated[int, Field(strict=True, ge=0, le=3)]


class RecordChronicGvhd(Payload):
    """NIH 2014 organ scores, 0-3 each [F:NIH-CGVHD]; the global severity is derived, not sent."""

    skin: OrganScore = 0
    mouth: OrganScore = 0
    eyes: OrganScore = 0
    gi_tract: OrganScore = 0
    liver: OrganScore = 0
    lungs: OrganScore = 0
    joints_fascia: OrganScore = 0
    genital_tract: OrganScore = 0

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        scores = {organ: getattr(self, organ) for organ in cgvhd.ORGANS}
        value = ChronicGvhdAssessment(at=ctx.at, scores=scores, severity=cgvhd.global_severity(scores))
        return _upd(facts, chronic_gvhd=(*facts.chronic_gvhd, value))


class RecordVodAssessment(Payload):
    """The findings of one criteria set (`states.vod`); the diagnosis is derived, not sent."""

    criteria: VodCriteria
    bilirubin_mg_per_dl: Annotated[float, Field(strict=True, ge=0, le=100)]
    hepatomegaly: bool = False
    ruq_pain: bool = False
    ascites: bool = False
    weight_gain_pct: Annotated[float, Field(strict=True, ge=-50, le=100)] = 0.0
    imaging_evidence: bool = False
    histology_proven: bool = False
    refractory_thrombocytopenia: bool = False
    weight_gain_3_days_despite_diuretics: bool = False
    bilirubin_rising_3_days: bool = False

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        value = VodAssessment(at=ctx.at, **self.model_dump())
        return _upd(facts, vod=(*facts.vod, value))


class ReportRelapse(Payload):
    """Relapse or progression, dated by the entry; before infusion it is the disease status at
    transplant, kept apart from a relapse after Day 0 (docs/disease-course.md)."""

    method: Code
    evidence: Text | None = None
    kind: RelapseKind = "relapse"

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        if facts.day0 is None:
            found = facts.relapse_before_infusion or RelapseReport(on=ctx.on, kind=self.kind)
            return _upd(facts, relapse_before_infusion=found)
        if facts.relapse_on is not None:
            return facts
        return _upd(facts, relapse_on=ctx.on, relapse_kind=self.kind)


class RecordAdverseEvent(Payload):
    type: Code
    grade: Annotated[int, Field(strict=True, ge=1, le=5)]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, adverse_events=facts.adverse_events + 1)


class Discharge(Empty):
    """Ends the open stay (docs/supportive-care.md: length of stay)."""

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, discharged=True, stays=care_facts.discharged(facts.stays, ctx.on))


class Readmit(Empty):
    """A stay after a discharge; the first, transplant, admission is `admit`."""

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, discharged=False, stays=care_facts.admitted(facts.stays, ctx.on))


class RecordAssessment(Payload):
    kind: AssessmentKind
    # A code; `persistent_disease` and `new_malignancy` are evidence for a subsequent HCT.
    disease_status: Code | None = None

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        found = Assessment(at=ctx.at, kind=self.kind, disease_status=self.disease_status)
        return _upd(facts, assessments=(*facts.assessments, found))


class CompleteDay100(Payload):
    disease_status: Code | None = None
    # Why the visit falls after the Day +100 window (CIBMTR calls it approximate).
    late_reason: Text | None = Field(None, repr=False)

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, day100_on=ctx.on)


class StartSubsequentTransplant(Payload):
    """Closes this pathway's HCT and opens a linked one with its own Day 0 and hct_number."""

    # CIBMTR Form 2100 reasons for a subsequent HCT [F:CIBMTR-SUBSEQ]; `planned` is a tandem.
    reason: Literal["graft_failure", "relapse", "persistent_disease", "new_malignancy", "planned"]
    route: Route
    donor_type: DonorType | None = None
    graft_source: GraftSource
    begin_in: Literal["evaluation", "donor_search"] = "evaluation"
    consent_version: Label | None = None
    last_contact_on: ClinicalDate | None = None
    new_pathway_id: str | None = Field(None, description="Set by the library: the linked pathway's id.")
    carried_products: tuple[Ref, ...] | None = Field(
        None, description="Set by the library: the stored products a planned tandem carries to the linked pathway."
    )

    derived_fields: ClassVar[frozenset[str]] = frozenset({"new_pathway_id", "carried_products"})
    # The linked pathway was opened with these: they are its identity, not this entry's detail.
    identity_fields: ClassVar[frozenset[str]] = frozenset({"route", "donor_type", "graft_source", "begin_in"})

    @model_validator(mode="after")
    def _consistent(self) -> StartSubsequentTransplant:
        if (self.route is Route.ALLOGENEIC) != (self.donor_type is not None):
            raise PydanticCustomError("donor_type_inconsistent", "donor_type is given for allogeneic routes only")
        if self.begin_in == "donor_search" and self.route is Route.AUTOLOGOUS:
            raise PydanticCustomError("begin_in_inconsistent", "an autologous transplant has no donor search")
        if self.begin_in == "donor_search" and self.consent_version is None:
            raise PydanticCustomError(
                "consent_version_missing", "beginning in donor_search skips evaluation: give the new consent_version"
            )
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        products = carried_away(facts, self.carried_products or (), self.new_pathway_id)
        return _upd(facts, products=products, next_pathway=self.new_pathway_id, ended_on=self.last_contact_on or ctx.on)

    @property
    def begin_phase(self) -> Phase:
        return Phase(self.begin_in)

    def linked_opening(self, facts: PathwayFacts) -> dict[str, Any]:
        """The next HCT: its own route, hct_number + 1; begun in donor search, it carries the
        patient's typing and eligibility and the new consent given at the link."""
        carried: dict[str, Any] = (
            {
                "consent_version": self.consent_version,
                "eligibility_documented": facts.eligibility_documented,
                "hla_samples": facts.hla_samples,
                "abo_samples": facts.abo_samples,
            }
            if self.begin_phase is Phase.DONOR_SEARCH
            else {}
        )
        route = {"route": self.route, "donor_type": self.donor_type, "graft_source": self.graft_source}
        products = carried_over(facts, self.carried_products or ())
        return {**route, "hct_number": facts.hct_number + 1, **carried, "carried_products": products}


def _carried(product: Product) -> Product:
    """What a tandem's next HCT receives of a stored product: the bags still available, and the
    dose they hold (an equal share per bag; docs/products.md)."""
    return product.model_copy(update={"bags": product.available_bags(), **dose_share(product, product.left)})


def carried_over(facts: PathwayFacts, product_ids: tuple[str, ...]) -> tuple[Product, ...]:
    """The stored products a linked pathway opens with (a tandem's next HCT, a reinstatement)."""
    return tuple(_carried(facts.products[pid]) for pid in product_ids)


def carried_away(facts: PathwayFacts, product_ids: tuple[str, ...], to: str | None) -> dict[str, Product]:
    """This pathway's products with the named ones (their available bags) marked carried `to` the
    linked pathway: neither infused nor disposed of here any more."""
    products = dict(facts.products)
    for pid in product_ids:
        product = products[pid]
        carried = {"carried_to": to}
        bags = tuple(b.model_copy(update=carried) if b.available else b for b in product.bags)
        products[pid] = product.model_copy(update={**carried, "bags": bags})
    return products


def dose_share(product: Product, share: float) -> dict[str, float | None]:
    """The doses of `share` of a product's bags (bags are filled equally)."""
    return {
        "cd34_x10e6_per_kg": None if product.cd34_x10e6_per_kg is None else product.cd34_x10e6_per_kg * share,
        "tnc_x10e7_per_kg": None if product.tnc_x10e7_per_kg is None else product.tnc_x10e7_per_kg * share,
    }


class RecordRegistryForm(Payload):
    """A registry form sent (CIBMTR Pre-TED 2400 by Day 0; Post-TED 2450 at Day +100, 6 months, 1 year)."""

    form: Literal["pre_transplant", "post_transplant_day100", "post_transplant_month6", "post_transplant_year1"]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, forms=_add_unique(facts.forms, self.form))


class AdoptPolicy(WithReason):
    """Moves a running pathway to another registered policy version (docs/versioning.md)."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, policy_version=self.version)


class ChangeRoute(WithReason):
    """A physician changes the transplant route before the graft is committed; the pathway goes
    back to evaluation (docs/decisions.md "Route changes"). Never a correction of the referral."""

    route: Route
    donor_type: DonorType | None = None
    graft_source: GraftSource

    # A route change that was wrong is changed again, never corrected.
    identity_fields: ClassVar[frozenset[str]] = frozenset({"route", "donor_type", "graft_source"})

    @model_validator(mode="after")
    def _consistent(self) -> ChangeRoute:
        _check_route(self.route, self.donor_type, self.graft_source)
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return _upd(facts, route=self.route, donor_type=self.donor_type, graft_source=self.graft_source)


class CorrectEntry(Payload):
    """Corrects an earlier entry's values; the earlier entry is never changed."""

    sequence: Annotated[int, Field(strict=True, ge=1)]
    # Plain JSON here; the service validates each value through the corrected entry's own
    # payload model before anything is written (payload.changes.<field>).
    changes: dict[Code, JsonValue] = Field(min_length=1, max_length=32, repr=False)
    reason: Text = Field(repr=False)

    @field_validator("changes")
    @classmethod
    def _finite(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """NaN and infinity are no JSON: the canonical form of a stored entry refuses them."""
        if any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(value)):
            raise PydanticCustomError("finite_number", "numbers must be finite")
        return value


def _leaves(value: JsonValue) -> list[JsonValue]:
    """Every scalar inside a JSON value (walked without recursion)."""
    pending: list[JsonValue] = [value]
    found: list[JsonValue] = []
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += item.values()
        elif isinstance(item, list):
            pending += item
        else:
            found.append(item)
    return found
