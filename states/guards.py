"""Guards: pure functions of an `Attempt` returning a `Verdict` with reason codes.

Every guard is total (it may be asked in any phase: a refusal lists every failing rule, not
only the first) and reads its numbers from the policy. Each reason code is documented with its
rule and source in docs/reason-codes.md. The chart (`states.chart`) names guards by key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from states import hla, recovery
from states.care_guards import (
    growth_factor_day_fits,
    infection_onset_fits,
    prophylaxis_dose_in_plan,
    prophylaxis_plan_fits,
    stay_fits,
)
from states.course_guards import graft_failure_suspected, graft_failure_suspicion_fits, reinstatement_in_window
from states.days import clinical_date, day_number
from states.engraftment import (
    anc_never_below_of,
    engrafted_from_start,
    labs_since_start,
    neutrophil_recovery_of,
    platelet_recovery_of,
    recorded_recovery,
)
from states.facts import DonorCandidate, LabValue, PathwayFacts, Product
from states.flags import regimen_length_outside
from states.payloads import (
    AdoptPolicy,
    BagAction,
    BedsideCheck,
    ChangeRoute,
    ClearDonor,
    CompleteDay100,
    DeclareGraftFailure,
    RecordCollection,
    RecordConditioningDose,
    RecordDonorMobilization,
    RecordProductDisposition,
    SelectDonor,
    SelectEmergencyDonor,
    StartConditioning,
    StartSubsequentTransplant,
    dose_share,
)
from states.policy import Policy
from states.verdict import PASS, Attempt, Verdict, combine, refuse
from states.vocabulary import DonorType, GraftSource, Phase

Guard = Callable[[Attempt], Verdict]

TNC_X10E7_PER_X10E8 = 10  # a unit conversion (x10^7 -> x10^8), not a clinical number

# --- evaluation ---------------------------------------------------------------------------


def consent_recorded(a: Attempt) -> Verdict:
    return PASS if a.facts.consent_on is not None else refuse("consent_missing")


def eligibility_documented(a: Attempt) -> Verdict:
    return PASS if a.facts.eligibility_documented else refuse("eligibility_missing")


def allogeneic_typing_complete(a: Attempt) -> Verdict:
    """Allogeneic: HLA and ABO/Rh each typed on two independently drawn samples [F:FACT-B6]."""
    if not a.facts.is_allogeneic:
        return PASS
    reasons = []
    if len(a.facts.hla_samples) < 2:
        reasons.append("hla_typing_incomplete")
    if len(a.facts.abo_samples) < 2:
        reasons.append("abo_typing_incomplete")
    return refuse(*reasons)


def route_allogeneic(a: Attempt) -> Verdict:
    return PASS if a.facts.is_allogeneic else refuse("route_not_allogeneic")


# --- donors --------------------------------------------------------------------------------


def donor_meets_policy(a: Attempt) -> Verdict:
    """The selected donor (or cord units) meets the donor rules for the pathway's donor type."""
    assert isinstance(a.payload, SelectDonor)
    facts, policy = a.facts, a.policy
    unknown = [ref for ref in a.payload.donor_refs if ref not in facts.candidates]
    if unknown:
        return refuse("donor_candidate_unknown")
    candidates = [facts.candidates[ref] for ref in a.payload.donor_refs]
    if any(c.donor_type is not facts.donor_type for c in candidates):
        return refuse("donor_type_mismatch")
    if facts.donor_type is DonorType.CORD_BLOOD:
        return refuse(*hla.cord_selection_reasons(candidates, _cord_rules(policy)))
    if len(candidates) > 1:
        return refuse("donor_count_invalid")
    return refuse(*_donor_rules(candidates[0], policy))


def donor_selected(a: Attempt) -> Verdict:
    """`clear_donor` needs a selected donor; inside conditioning only the emergency donor."""
    if a.facts.phase is Phase.CONDITIONING and a.facts.emergency_donor is None:
        return refuse("emergency_donor_not_selected")
    return PASS if a.facts.current_donors else refuse("donor_not_selected")


def _planned_collection(a: Attempt) -> date | None:
    payload = a.payload
    if isinstance(payload, ClearDonor) and payload.planned_collection_on is not None:
        return payload.planned_collection_on
    return a.facts.planned_collection_on


def _is_cord(facts: PathwayFacts, donor_ref: str) -> bool:
    candidate = facts.candidates.get(donor_ref)
    return candidate is not None and candidate.donor_type is DonorType.CORD_BLOOD


def _needs_idm(facts: PathwayFacts, donor_ref: str) -> bool:
    """Banked cord units and stored products carry no live donor to test."""
    return not _is_cord(facts, donor_ref) and donor_ref not in facts.products


def _idm_reasons(a: Attempt, donor_ref: str, collection_on: date | None) -> tuple[str, ...]:
    """Donor IDM drawn no more than `idm_window_days` before collection [F:CFR-1271.80]."""
    if collection_on is None:
        return ("planned_collection_date_missing",)
    results = [r for r in a.facts.idm if r.donor_ref == donor_ref and r.drawn_on <= collection_on]
    if not results:
        return ("donor_idm_missing",)
    latest = max(results, key=lambda r: r.drawn_on)
    reasons = []
    if latest.drawn_on < collection_on - timedelta(days=a.policy.idm_window_days):
        reasons.append("donor_idm_stale")
    if isinstance(a.payload, ClearDonor):
        eligibility = a.payload.eligibility
    else:  # after clearance (collection): the determination the donor was cleared under
        eligibility = a.facts.donor_eligibility.get(donor_ref, "eligible")
    if latest.result == "positive" and eligibility == "eligible":
        reasons.append("donor_idm_positive")
    return tuple(reasons)


def donor_idm_current(a: Attempt) -> Verdict:
    collection_on = _planned_collection(a)
    return refuse(
        *(
            reason
            for ref in a.facts.current_donors
            if _needs_idm(a.facts, ref)
            for reason in _idm_reasons(a, ref, collection_on)
        )
    )


def cord_segments_typed(a: Attempt) -> Verdict:
    """Every cord unit needs confirmatory typing on an attached segment [F:CORD-SEL]."""
    for ref in a.facts.current_donors:
        candidate = a.facts.candidates.get(ref)
        if candidate and candidate.donor_type is DonorType.CORD_BLOOD and not candidate.segment_typed:
            return refuse("cord_segment_typing_missing")
    return PASS


def emergency_donor_known(a: Attempt) -> Verdict:
    """After `report_donor_unavailable`: a stored product, or a donor that meets its donor rules.

    DSA aside: an emergency donor is chosen while the DSA result may be pending, and
    `donor_dsa_acceptable` judges it at clearance and infusion (docs/clinical-rules.md)."""
    assert isinstance(a.payload, SelectEmergencyDonor)
    payload = a.payload
    reasons = [] if a.facts.donor_unavailable else ["donor_unavailable_not_reported"]
    if payload.donor_ref in {p.product_id for p in a.facts.stored_products()}:
        return refuse(*reasons)
    if payload.candidate is not None and payload.candidate.donor_ref != payload.donor_ref:
        return refuse(*reasons, "donor_candidate_unknown")
    known = a.facts.candidates.get(payload.donor_ref)
    if payload.candidate is not None:
        merged = {**(known.model_dump() if known else {}), **payload.candidate.model_dump(exclude_none=True)}
        known = DonorCandidate.model_validate(merged)
    if known is None:
        return refuse(*reasons, "donor_candidate_unknown")
    policy = a.policy
    if known.donor_type is DonorType.CORD_BLOOD:
        rules = hla.cord_selection_reasons([known], _cord_rules(policy))
    else:
        rules = _donor_rules(known, policy)
    deferred = set(_dsa_reasons(known, policy))
    return refuse(*reasons, *(r for r in rules if r not in deferred))


def donor_dsa_acceptable(a: Attempt) -> Verdict:
    """Every current donor or cord unit has the DSA result its donor rule needs [F:EBMT-DSA],
    [F:CORD-SEL]: re-checked at clearance and infusion, where an emergency donor's pending
    DSA is judged."""
    candidates = (a.facts.candidates.get(ref) for ref in a.facts.current_donors)
    return refuse(*(r for c in candidates if c is not None for r in _dsa_reasons(c, a.policy)))


def _cord_rules(policy: Policy) -> hla.CordRules:
    return hla.CordRules(
        single_min_tnc_x10e7_per_kg=policy.cord_single_min_tnc_x10e7_per_kg,
        single_min_cd34_x10e5_per_kg=policy.cord_single_min_cd34_x10e5_per_kg,
        double_min_tnc_x10e7_per_kg=policy.cord_double_min_tnc_x10e7_per_kg,
        double_min_cd34_x10e5_per_kg=policy.cord_double_min_cd34_x10e5_per_kg,
        dose_rule=policy.cord_dose_rule,
        max_hla_mismatches=policy.cord_max_hla_mismatches,
        avoid_hla_c_mismatch=policy.cord_avoid_hla_c_mismatch,
        dsa_rule=policy.cord_dsa_rule,
    )


def _donor_rules(candidate: DonorCandidate, policy: Policy) -> tuple[str, ...]:
    return hla.donor_rule_reasons(
        candidate,
        min_matches_8=policy.min_matches_8,
        mismatched_unrelated_min_matches_8=policy.mismatched_unrelated_min_matches_8,
        cord=_cord_rules(policy),
    )


def _dsa_reasons(candidate: DonorCandidate, policy: Policy) -> tuple[str, ...]:
    return hla.dsa_reasons(candidate, min_matches_8=policy.min_matches_8, cord=_cord_rules(policy))


# --- collection ---------------------------------------------------------------------------


def _stored_cd34(facts: PathwayFacts) -> float:
    """CD34+ still stored: a product's bags already infused or discarded no longer count."""
    return sum((p.cd34_x10e6_per_kg or 0.0) * p.left for p in facts.stored_products())


def _dose_meets_target(product: Product, a: Attempt) -> bool:
    if product.graft_source is GraftSource.BONE_MARROW and product.tnc_x10e7_per_kg is not None:
        return product.tnc_x10e7_per_kg / TNC_X10E7_PER_X10E8 >= a.policy.min_tnc_marrow_x10e8_per_kg
    return (product.cd34_x10e6_per_kg or 0.0) >= a.policy.min_cd34_allogeneic_x10e6_per_kg


def _cleared_products(a: Attempt) -> list[Product]:
    cleared = set(a.facts.cleared_donors)
    return [p for p in a.facts.stored_products() if p.donor_ref in cleared]


def collection_sufficient(a: Attempt) -> Verdict:
    """Autologous: stored CD34+ sum >= minimum [F:RUSSELL-2013]; allogeneic: a stored product
    from the current cleared donor meets the target dose."""
    if not a.facts.is_allogeneic:
        enough = _stored_cd34(a.facts) >= a.policy.min_cd34_autologous_x10e6_per_kg
        return PASS if enough else refuse("insufficient_cd34_dose")
    products = _cleared_products(a)
    if not products:
        return refuse("no_cryopreserved_product_from_cleared_donor")
    if not any(_dose_meets_target(p, a) for p in products):
        return refuse("allogeneic_dose_below_target")
    return PASS


def _cord_graft(facts: PathwayFacts) -> bool:
    """Cord units arrive banked frozen: there is no fresh graft to freeze before conditioning."""
    return facts.donor_type is DonorType.CORD_BLOOD or facts.graft_source is GraftSource.CORD_BLOOD


def graft_frozen_first(facts: PathwayFacts, policy: Policy) -> bool:
    """The graft is stored before conditioning: by the programme's policy or by this patient's
    `decide_cryopreservation` [F:NMDP-CRYO]. Cord units are banked frozen anyway."""
    if _cord_graft(facts):
        return False
    return (
        policy.cryopreserve_before_conditioning
        or facts.graft_source in policy.cryopreserved_graft_sources
        or facts.cryopreservation_decision is not None
    )


def _must_cryopreserve(a: Attempt) -> bool:
    return graft_frozen_first(a.facts, a.policy)


def donor_mobilization_allowed(a: Attempt) -> Verdict:
    """A donor's G-CSF course: allogeneic PBSC from the current, cleared donor; during the
    patient's conditioning only for a graft infused fresh [F:PLERIX-EU], [F:NMDP-CRYO]."""
    assert isinstance(a.payload, RecordDonorMobilization)
    f = a.facts
    if not f.is_allogeneic:
        return refuse("donor_mobilization_autologous")
    reasons = [] if f.graft_source is GraftSource.PBSC else ["donor_mobilization_not_pbsc"]
    donor = a.payload.donor_ref or (f.current_donors[0] if f.current_donors else None)
    if donor is None or donor not in f.current_donors:
        reasons.append("donor_not_current")
    elif donor not in f.cleared_donors:
        reasons.append("donor_not_cleared")
    if f.phase is Phase.CONDITIONING and _must_cryopreserve(a):
        reasons.append("donor_mobilization_graft_cryopreserved")
    return refuse(*reasons)


def cryopreservation_decidable(a: Attempt) -> Verdict:
    """One reasoned decision per pathway freezes an allogeneic graft the policy would infuse
    fresh; cord units are frozen anyway."""
    f = a.facts
    if not f.is_allogeneic:
        return refuse("route_not_allogeneic")
    if _cord_graft(f):
        return refuse("cryopreservation_not_for_cord_blood")
    return refuse("cryopreservation_already_planned") if _must_cryopreserve(a) else PASS


def collection_donor_current(a: Attempt) -> Verdict:
    """An allogeneic product comes from the current, cleared donor whose IDM covers the day."""
    assert isinstance(a.payload, RecordCollection)
    reasons: list[str] = []
    known = a.facts.products.get(a.payload.product_id)
    if known is not None and (known.cryopreserved or known.episode_id != a.payload.episode_id):
        reasons.append("product_id_duplicate")
    if not a.facts.is_allogeneic:
        return refuse(*reasons)
    donor = a.payload.donor_ref or (a.facts.current_donors[0] if a.facts.current_donors else None)
    if donor is None or donor not in a.facts.current_donors:
        return refuse(*reasons, "donor_not_current")
    if donor not in a.facts.cleared_donors:
        reasons.append("donor_not_cleared")
    if _needs_idm(a.facts, donor):
        reasons.extend(_idm_reasons(a, donor, a.on))
    return refuse(*reasons)


def product_known(a: Attempt) -> Verdict:
    """A recorded product frozen once; during conditioning an allogeneic product only after
    `decide_cryopreservation` (the patient cannot receive it fresh in time)."""
    product_id = getattr(a.payload, "product_id", None)
    product = a.facts.products.get(product_id or "")
    if product is None:
        return refuse("product_unknown")
    reasons = ["product_already_cryopreserved"] if product.cryopreserved else []
    if a.facts.phase is Phase.CONDITIONING and a.facts.is_allogeneic and not _must_cryopreserve(a):
        reasons.append("cryopreservation_not_decided")
    return refuse(*reasons)


def bag_action_allowed(a: Attempt) -> Verdict:
    """A bag of this pathway's products, still here (not infused, discarded or carried away),
    in or out of quarantine as the action needs."""
    assert isinstance(a.payload, BagAction)
    found = a.facts.bag(a.payload.bag_id)
    if found is None:
        return refuse("bag_unknown")
    bag = found[1]
    reasons = [] if bag.available else ["bag_not_available"]
    needs = a.payload.needs_quarantine
    if needs is False and bag.quarantine is not None:
        reasons.append("bag_already_quarantined")
    if needs is True and bag.quarantine is None:
        reasons.append("bag_not_quarantined")
    return refuse(*reasons)


# --- conditioning and infusion ----------------------------------------------------------------


def graft_secured(a: Attempt) -> Verdict:
    """Conditioning is the point of no return: the graft must be secured for the route [S; ref. 6]."""
    f = a.facts
    if not f.is_allogeneic:
        enough = _stored_cd34(f) >= a.policy.min_cd34_autologous_x10e6_per_kg
        return PASS if enough else refuse("insufficient_cd34_dose")
    if not f.current_donors:
        return refuse("donor_not_selected", "donor_not_cleared")
    reasons: list[str] = []
    if not set(f.current_donors) <= set(f.cleared_donors):
        reasons.append("donor_not_cleared")
    if f.donor_type is DonorType.CORD_BLOOD:
        reasons.extend(cord_segments_typed(a).reasons)
    elif _must_cryopreserve(a) and not _cleared_products(a):
        reasons.append("product_not_cryopreserved")
    return refuse(*reasons)


def regimen_plausible(a: Attempt) -> Verdict:
    """Planned Day 0 ahead; the conditioning period has the policy's usual length (Day -N to
    Day -1, 5-10 days by default), or the plan says why not (Mel200, a short NMA regimen); and it
    does not begin before the start itself, so the plan's span is planned Day 0 minus the start."""
    assert isinstance(a.payload, StartConditioning)
    reasons = ["planned_day0_in_past"] if a.payload.planned_day0 < a.on else []
    if regimen_length_outside(a.payload.regimen, a.policy) and a.payload.length_reason is None:
        reasons.append("regimen_length_outside_policy")
    first_dose = a.payload.planned_day0 + timedelta(days=min(d.day for d in a.payload.regimen.plan))
    if first_dose < a.on:
        reasons.append("conditioning_plan_before_start")
    return refuse(*reasons)


def dose_in_plan(a: Attempt) -> Verdict:
    """The dose is in the plan (drug and Day) and given on that Day of the planned Day 0."""
    assert isinstance(a.payload, RecordConditioningDose)
    plan = a.facts.regimen.plan if a.facts.regimen else ()
    planned = any(d.day == a.payload.plan_day and d.drug == a.payload.drug for d in plan)
    reasons = [] if planned else ["dose_not_in_plan"]
    day0 = a.facts.planned_day0
    off = None if day0 is None else abs((a.on - (day0 + timedelta(days=a.payload.plan_day))).days)
    if off is not None and off > a.policy.conditioning_dose_day_tolerance_days:
        reasons.append("dose_date_off_plan")
    return refuse(*reasons)


def conditioning_complete(a: Attempt) -> Verdict:
    """Every planned dose given; a Day 0 fraction (e.g. 2 Gy TBI) must precede the infusion."""
    regimen = a.facts.regimen
    if regimen is None:
        return refuse("conditioning_incomplete")
    planned = Counter((d.day, d.drug) for d in regimen.plan)
    given = Counter((d.plan_day, d.drug) for d in a.facts.doses if d.plan_day < 0 or d.at < a.at)
    missing = planned - given
    return refuse("conditioning_incomplete") if missing else PASS


def _infused_ids(a: Attempt) -> tuple[str, ...]:
    assert isinstance(a.payload, BedsideCheck)
    return a.payload.products


def _product_gone(product: Product) -> list[str]:
    """Why a product is no longer this pathway's to infuse or dispose of: infused, disposed of,
    or carried to a linked pathway."""
    gone = {
        "product_already_infused": product.infused,
        "product_already_disposed": product.disposition is not None,
        "product_carried_to_linked_pathway": product.carried_to is not None,
    }
    return [reason for reason, applies in gone.items() if applies]


def products_belong(a: Attempt) -> Verdict:
    """Every product is this pathway's, not yet infused, from the current cleared donor
    (`infuse`, `record_infusion`: one chain-of-identity check for every infusion)."""
    f = a.facts
    reasons: list[str] = []
    cleared = set(f.cleared_donors)
    for pid in _infused_ids(a):
        product = f.products.get(pid)
        if product is None:
            if not (_is_cord(f, pid) and pid in f.current_donors):
                reasons.append("product_unknown")
            elif pid not in cleared:
                reasons.append("donor_not_cleared")
            continue
        reasons += _product_gone(product)
        if f.is_allogeneic and product.donor_ref not in cleared and pid not in cleared:
            reasons.append("product_not_from_cleared_donor")
    return refuse(*reasons)


def bags_fit_for_infusion(a: Attempt) -> Verdict:
    """Each bag infused is named and checked on its own: a bag of a named product, still here,
    not in quarantine, and once thawed its viability recorded and at least the policy minimum
    [F:CIBMTR-PRODUCT]. A product frozen with named bags is infused by its bags."""
    assert isinstance(a.payload, BedsideCheck)
    f, named = a.facts, set(a.payload.bag_ids)
    reasons: list[str] = []
    for bag_id in a.payload.bag_ids:
        found = f.bag(bag_id)
        if found is None:
            reasons.append("bag_unknown")
            continue
        product, bag = found
        if product.product_id not in a.payload.products:
            reasons.append("bag_not_of_named_product")
        if bag.carried_to is not None:
            reasons.append("product_carried_to_linked_pathway")
        elif not bag.available:
            reasons.append("bag_not_available")
        if bag.quarantine is not None:
            reasons.append("bag_quarantined")
        if bag.post_thaw_viability_pct is None:
            reasons.append("post_thaw_viability_missing")
        elif bag.post_thaw_viability_pct < a.policy.min_post_thaw_viability_pct:
            reasons.append("post_thaw_viability_below_minimum")
    unnamed = (f.products[p] for p in a.payload.products if p in f.products)
    if any(p.bags and not any(b.bag_id in named for b in p.bags) for p in unnamed):
        reasons.append("product_bags_not_named")
    return refuse(*reasons)


def label_matches_patient(a: Attempt) -> Verdict:
    """The recipient on the label is this patient (a missing label never matches)."""
    assert isinstance(a.payload, BedsideCheck)
    return PASS if a.payload.label_recipient_ref == a.facts.patient_ref else refuse("recipient_label_mismatch")


def identity_verified(a: Attempt) -> Verdict:
    """Two distinct qualified staff verify identity at the bedside [F:NMDP-CLEAR]."""
    assert isinstance(a.payload, BedsideCheck)
    verifiers = a.payload.verifiers
    reasons = []
    if len({v.id for v in verifiers}) < 2:
        reasons.append("identity_verification_incomplete")
    if any(v.role not in a.policy.infusion_verifier_roles for v in verifiers):
        reasons.append("verifier_not_qualified")
    return refuse(*reasons)


def fresh_product_in_time(a: Attempt) -> Verdict:
    """A fresh allogeneic product is infused within `fresh_product_max_hours` [F:NMDP-48H]; a
    frozen one (by policy or `decide_cryopreservation`) is judged by its thaw instead."""
    limit = timedelta(hours=a.policy.fresh_product_max_hours)
    for pid in _infused_ids(a):
        product = a.facts.products.get(pid)
        if product and a.facts.is_allogeneic and not product.cryopreserved and a.at - product.collected_at > limit:
            return refuse("fresh_product_too_old")
    return PASS


def _product_dose_met(products: list[Product], a: Attempt) -> bool:
    """The summed dose of the infused products of one graft source meets the policy minimum:
    CD34+ for PBSC (autologous [F:RUSSELL-2013] or allogeneic [S]), TNC for marrow
    [F:BM-HARVEST] (CD34+ when no marrow TNC is recorded, as `_dose_meets_target` does). A
    product with no recorded dose of that kind adds nothing."""
    marrow = products[0].graft_source is GraftSource.BONE_MARROW
    if marrow and any(p.tnc_x10e7_per_kg is not None for p in products):
        tnc_x10e8 = sum(p.tnc_x10e7_per_kg or 0.0 for p in products) / TNC_X10E7_PER_X10E8
        return tnc_x10e8 >= a.policy.min_tnc_marrow_x10e8_per_kg
    policy = a.policy
    minimum = (
        policy.min_cd34_allogeneic_x10e6_per_kg if a.facts.is_allogeneic else policy.min_cd34_autologous_x10e6_per_kg
    )
    return sum(p.cd34_x10e6_per_kg or 0.0 for p in products) >= minimum


def infused_dose_sufficient(a: Attempt) -> Verdict:
    """The cells infused reach the policy minimum for the route and graft source: PBSC CD34+
    [F:RUSSELL-2013], marrow TNC [F:BM-HARVEST] (CD34+ when no TNC is recorded), cord units by
    the cord dose rule [F:DEHN-2019], [F:CORD-SEL]."""
    f = a.facts
    by_source: dict[GraftSource, list[Product]] = {}
    units: list[DonorCandidate] = []
    assert isinstance(a.payload, BedsideCheck)
    for pid in _infused_ids(a):
        product = f.products.get(pid)
        if product is not None:
            by_source.setdefault(product.graft_source, []).append(_infused_share(product, a.payload.bag_ids))
        elif _is_cord(f, pid):
            units.append(f.candidates[pid])
    short = not all(_product_dose_met(ps, a) for ps in by_source.values())
    if short or (units and hla.cord_dose_reasons(units, _cord_rules(a.policy))):
        return refuse("infused_dose_below_minimum")
    return PASS


def _infused_share(product: Product, bag_ids: tuple[str, ...]) -> Product:
    """The part of a product its named bags hold (bags are filled equally); all of it when the
    product has no named bags or none of them is named."""
    named = sum(1 for b in product.bags if b.bag_id in bag_ids)
    if not named:
        return product
    return product.model_copy(update=dose_share(product, named / len(product.bags)))


def stored_product_available(a: Attempt) -> Verdict:
    """A rescue infuses a stored backup or a same-donor boost collected for it."""
    for pid in _infused_ids(a):
        product = a.facts.products.get(pid)
        if product is None or product.infused:
            return refuse("no_stored_product_available")
    return PASS


def product_disposable(a: Attempt) -> Verdict:
    """A disposition is recorded once, for a product of this pathway that was not infused and
    not carried to a linked pathway (a tandem's next HCT, a reinstatement): a carried product is
    the linked pathway's to infuse or dispose of, never both pathways'."""
    assert isinstance(a.payload, RecordProductDisposition)
    product = a.facts.products.get(a.payload.product_id)
    return refuse("product_unknown") if product is None else refuse(*_product_gone(product))


# --- engraftment, graft failure, Day +100 --------------------------------------------------------


def neutrophil_recovery_met(a: Attempt) -> Verdict:
    """First of 3 values >= 0.5 on different days after the nadir [F:CIBMTR-ANC], counted from
    the latest Day 0 or rescue infusion; or ANC never below 0.5, followed long enough."""
    found = neutrophil_recovery_of(a.facts, a.policy, a.at)
    if found is not None:
        return Verdict(derived={"recovery_on": found})
    if anc_never_below_of(a.facts, a.policy, a.at):
        return Verdict(derived={"recovery_on": None, "anc_never_below": True})
    return refuse("neutrophil_recovery_not_met")


def platelet_recovery_met(a: Attempt) -> Verdict:
    """First of 3 values >= 20 with no platelet transfusion in the 7 days [F:CIBMTR-PLT]."""
    found = platelet_recovery_of(a.facts, a.policy, a.at)
    if found is None:
        return refuse("platelet_recovery_not_met")
    return Verdict(derived={"recovery_on": found})


def _pancytopenia_reasons(labs: list[LabValue], a: Attempt) -> tuple[str, ...]:
    """Primary graft failure "with pancytopenia" [F:ASTCT]: at least N ANC values drawn in the M
    days ending today, all below 0.5; a recent value at or above it (an automated 0.5 included)
    may be a recovery under way."""
    p = a.policy
    since = a.on - timedelta(days=p.primary_graft_failure_recent_anc_days - 1)
    tz = a.facts.timezone
    recent = [lab for lab in labs if lab.anc_x10e9_per_l is not None and clinical_date(lab.at, tz) >= since]
    reasons = []
    if len(recent) < p.primary_graft_failure_recent_anc_values:
        reasons.append("recent_anc_missing")
    if any((lab.anc_x10e9_per_l or 0.0) >= p.anc_recovery_x10e9_per_l for lab in recent):
        reasons.append("anc_recovery_in_progress")
    return tuple(reasons)


def graft_failure_criteria(a: Attempt) -> Verdict:
    """Primary: no recovery by Day +30 (PBSC/marrow) or +42 (cord) [F:ASTCT], on recent counts
    below 0.5; secondary: recovery reached (or ANC never below 0.5 before the fall), then ANC
    < 0.5 on 3 consecutive values on different days [F:CIBMTR-SUBSEQ] (the recovery rule's
    gaps, [F:CIBMTR-ANC]). Only labs since the latest Day 0 or rescue infusion count."""
    assert isinstance(a.payload, DeclareGraftFailure)
    f, p = a.facts, a.policy
    counted = labs_since_start(f, a.at)
    if f.day0 is None or counted is None:
        return refuse("day0_not_set")
    start, labs = counted
    if a.payload.kind == "primary":
        reasons = [] if f.phase is Phase.AWAITING_ENGRAFTMENT else ["graft_failure_kind_phase_mismatch"]
        if neutrophil_recovery_of(f, p, a.at) is not None:
            reasons.append("neutrophil_recovery_reached")
        if day_number(a.on, f.day0) < p.primary_graft_failure_day[f.graft_source]:
            reasons.append("primary_graft_failure_too_early")
        return refuse(*reasons, *_pancytopenia_reasons(labs, a))
    reasons = [] if f.phase is Phase.FOLLOW_UP else ["graft_failure_kind_phase_mismatch"]
    recovered = recorded_recovery(f) or (start if engrafted_from_start(f, p, a.at) else None)
    failed = (
        recovery.secondary_graft_failure(
            labs,
            recovered,
            f.timezone,
            anc_x10e9_per_l=p.anc_recovery_x10e9_per_l,
            consecutive_days=p.secondary_graft_failure_days,
        )
        if recovered is not None
        else None
    )
    if failed is None:
        reasons.append("secondary_graft_failure_not_met")
    return refuse(*reasons)


def day100_ready(a: Attempt) -> Verdict:
    """Day +100 assessment in the CIBMTR window (85..115) with its evidence [F:CIBMTR-CONTACT].

    CIBMTR calls the window approximate: a later visit is accepted with a stated reason (and
    flagged `day100_late`); an earlier one is not a Day +100 assessment at all."""
    assert isinstance(a.payload, CompleteDay100)
    f, p = a.facts, a.policy
    if f.day0 is None:
        return refuse("day0_not_set")
    reasons = []
    low, high = p.day100_window
    day = day_number(a.on, f.day0)
    if day < low:
        reasons.append("outside_day100_window")
    elif day > high and a.payload.late_reason is None:
        reasons.append("day100_late_reason_missing")
    if f.neutrophil_recovery_on is None and not engrafted_from_start(f, p, a.at):
        reasons.append("engraftment_not_recorded")
    if f.is_allogeneic:
        since = f.day0 + timedelta(days=p.day100_evidence_from_day)

        if not any(clinical_date(g.at, f.timezone) >= since for g in f.gvhd):
            reasons.append("gvhd_status_missing")
        if not any(clinical_date(c.at, f.timezone) >= since for c in f.chimerism):
            reasons.append("chimerism_missing")
    return refuse(*reasons)


def relapse_not_before_day0(a: Attempt) -> Verdict:
    """Before infusion a relapse or progression is the disease status at transplant; once Day 0
    is set, a report dated before it comes too late to be either (docs/disease-course.md)."""
    day0 = a.facts.day0
    return refuse("relapse_before_day0") if day0 is not None and a.on < day0 else PASS


def _disease_assessed(facts: PathwayFacts, status: str) -> bool:
    return any(x.disease_status == status for x in facts.assessments)


def subsequent_transplant_allowed(a: Attempt) -> Verdict:
    """Each reason of CIBMTR Form 2100 [F:CIBMTR-SUBSEQ] needs its evidence in this pathway:
    graft failure declared; relapse reported; persistent disease or a new malignancy found at a
    post-transplant assessment; a planned (tandem) HCT once this one has engrafted and not failed."""
    assert isinstance(a.payload, StartSubsequentTransplant)
    f = a.facts
    evidence = {
        "graft_failure": (f.phase is Phase.GRAFT_FAILURE or f.graft_failure is not None, "graft_failure_not_declared"),
        "relapse": (f.relapse_on is not None, "relapse_not_recorded"),
        "persistent_disease": (_disease_assessed(f, "persistent_disease"), "persistent_disease_not_assessed"),
        "new_malignancy": (_disease_assessed(f, "new_malignancy"), "new_malignancy_not_assessed"),
        "planned": (
            f.phase is not Phase.GRAFT_FAILURE
            and (recorded_recovery(f) is not None or engrafted_from_start(f, a.policy, a.at)),
            "planned_transplant_not_engrafted",
        ),
    }
    met, reason = evidence[a.payload.reason]
    return PASS if met else refuse(reason)


def tandem_products_carried(a: Attempt) -> Verdict:
    """A planned tandem carries this pathway's stored products (the bags still available) to the
    next HCT [F:CIBMTR-SUBSEQ]: the library derives which, and marks them carried here."""
    assert isinstance(a.payload, StartSubsequentTransplant)
    if a.payload.reason != "planned":
        return PASS
    carried = tuple(p.product_id for p in a.facts.stored_products())
    return Verdict(derived={"carried_products": carried})


def policy_differs(a: Attempt) -> Verdict:
    """Adopting the policy the pathway is already judged under would change nothing."""
    assert isinstance(a.payload, AdoptPolicy)
    return refuse("policy_already_adopted") if a.payload.version == a.facts.policy_version else PASS


def route_change_allowed(a: Attempt) -> Verdict:
    """A route changes to another one, and an autologous one only before collection starts
    (the chart's edges close allogeneic changes when donor search ends) [S, decisions.md]."""
    assert isinstance(a.payload, ChangeRoute)
    f, new = a.facts, a.payload
    reasons = []
    if (new.route, new.donor_type, new.graft_source) == (f.route, f.donor_type, f.graft_source):
        reasons.append("route_unchanged")
    if f.episodes or f.products:
        reasons.append("collection_started")
    return refuse(*reasons)


def not_before_previous_entry(a: Attempt) -> Verdict:
    last = a.facts.last_effective_at
    return refuse("effective_time_before_previous_entry") if last is not None and a.at < last else PASS


GUARDS: dict[str, Guard] = {
    fn.__name__: fn
    for fn in (
        consent_recorded,
        eligibility_documented,
        allogeneic_typing_complete,
        route_allogeneic,
        donor_meets_policy,
        donor_selected,
        donor_idm_current,
        cord_segments_typed,
        emergency_donor_known,
        donor_dsa_acceptable,
        collection_sufficient,
        collection_donor_current,
        product_known,
        donor_mobilization_allowed,
        cryopreservation_decidable,
        bag_action_allowed,
        bags_fit_for_infusion,
        tandem_products_carried,
        graft_secured,
        regimen_plausible,
        dose_in_plan,
        conditioning_complete,
        products_belong,
        label_matches_patient,
        identity_verified,
        fresh_product_in_time,
        stored_product_available,
        product_disposable,
        infused_dose_sufficient,
        neutrophil_recovery_met,
        platelet_recovery_met,
        graft_failure_criteria,
        day100_ready,
        relapse_not_before_day0,
        subsequent_transplant_allowed,
        not_before_previous_entry,
        policy_differs,
        route_change_allowed,
        graft_failure_suspicion_fits,
        graft_failure_suspected,
        reinstatement_in_window,
        prophylaxis_plan_fits,
        prophylaxis_dose_in_plan,
        stay_fits,
        growth_factor_day_fits,
        infection_onset_fits,
    )
}


def run_guards(names: Iterable[str], attempt: Attempt) -> Verdict:
    return combine(GUARDS[name](attempt) for name in names)
