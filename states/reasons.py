"""Every reason code: the rule it stands for and its source, the one list the docs are made from.

A refusal carries stable snake_case codes (public API: scenario files expect them, integrators
branch on them). `hsct explain CODE` prints one, the HTTP service puts the rule text in its problem
details, and docs/reason-codes.md is generated from this module (a test regenerates it and fails
on drift; another fails when the code refuses with a code that is not here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """One code: the rule it stands for, and where the rule comes from (docs/sources.md)."""

    code: str
    rule: str
    source: str


@dataclass(frozen=True)
class Section:
    """A group of codes as docs/reason-codes.md shows them, with any text that follows the table."""

    title: str
    reasons: tuple[Reason, ...]
    note: str = ""


SECTIONS: tuple[Section, ...] = (
    Section(
        "Chart, role and time (states/judge.py)",
        (
            Reason(
                "role_not_permitted",
                "the actor's role is not in the policy's role table for this trigger or event",
                "chart: Roles",
            ),
            Reason(
                "trigger_not_allowed_in_phase",
                "no edge of this trigger leaves the current phase (or no route condition holds)",
                "chart: phase-changing triggers",
            ),
            Reason("event_not_allowed_in_phase", "the event is not allowed in the current phase", "chart: events"),
            Reason(
                "role_not_held",
                "with a host role directory (`PathwayService(roles=...)`): the actor does not hold the role it acts in, read inside the committing transaction",
                "21 CFR 11.10(g), T21",
            ),
            Reason(
                "verifier_role_not_held",
                "with a role directory: an infusion verifier does not hold the role named for them",
                "FACT-JACIE chain of identity, T21",
            ),
            Reason(
                "pathway_superseded",
                "a subsequent transplant or a reinstatement closed this pathway; only `correct_entry`, `record_death` and `record_product_disposition` remain",
                "CIBMTR-SUBSEQ, decisions.md",
            ),
            Reason(
                "effective_time_in_future",
                "the effective time is later than the clock plus `future_tolerance_minutes` (every command, `refer` too)",
                "S (21 CFR 11.10(e): records are contemporaneous)",
            ),
            Reason(
                "effective_time_before_referral",
                "the effective time is earlier than the pathway's referral (its first entry's effective time)",
                'S, decisions.md "Time"',
            ),
            Reason(
                "referral_too_early",
                "`refer` dated more than `earliest_referral_days` before the clock",
                'S, decisions.md "Time"',
            ),
            Reason(
                "patient_has_open_pathway",
                "`refer` of a patient who already has an open pathway (nothing written), or `start_subsequent_transplant` / `reinstate` while the patient has another open pathway",
                'S, decisions.md "One open pathway per patient"',
            ),
        ),
    ),
    Section(
        "Evaluation",
        (
            Reason(
                "consent_missing",
                "`record_consent` before `complete_evaluation` / `start_conditioning`",
                "ref. 1.0 P1, 3.2",
            ),
            Reason(
                "eligibility_missing",
                "`record_eligibility` with eligible=true before `complete_evaluation`",
                "ref. 1.0 P1",
            ),
            Reason(
                "hla_typing_incomplete",
                "allogeneic: patient HLA typed on two independently drawn samples; a donor candidate without A, B, C and DRB1 results",
                "F:MDRI, F:BMT-BASICS",
            ),
            Reason(
                "abo_typing_incomplete", "allogeneic: ABO/Rh typed on two independently collected samples", "F:FACT-B6"
            ),
        ),
    ),
    Section(
        "Donors and cord units",
        (
            Reason(
                "route_not_allogeneic",
                "donor commands, GVHD assessments and donor unavailability are allogeneic only",
                "chart",
            ),
            Reason(
                "donor_candidate_unknown",
                "the donor or unit was never recorded with `record_donor_candidate` (or, in an emergency, is no stored product)",
                "chart: select_donor",
            ),
            Reason(
                "donor_type_mismatch",
                "the candidate's donor type differs from the pathway's donor type",
                "chart: Donor rules",
            ),
            Reason(
                "donor_count_invalid", "more than one donor selected for a non-cord route", "chart: Donor rules"
            ),
            Reason(
                "hla_match_insufficient",
                "fewer than `min_matches_8` (8/8) for sibling/unrelated; fewer than `mismatched_unrelated_min_matches_8` (7/8) for mismatched unrelated; a locus mismatched at both alleles counts 2 (a 6/8 donor)",
                "F:PIDALA-2014, F:ASH-2022",
            ),
            Reason(
                "mismatch_justification_missing", "below 8/8 without a physician's written justification", "S, F:MDRI"
            ),
            Reason(
                "dsa_not_negative",
                "below 8/8 (or haploidentical without a desensitization plan) without a negative DSA result; a cord unit whose DSA result `cord_dsa_rule` refuses (default: positive). Judged at `select_donor`, and again at `clear_donor` and `infuse`; an emergency donor (`select_emergency_donor`) is judged at clearance and infusion only, so it may be chosen while DSA is pending",
                "F:EBMT-DSA, F:CORD-SEL, F:DEHN-2019",
            ),
            Reason("haplotype_not_shared", "a haploidentical donor must share one haplotype", "F:HAPLO-BAC"),
            Reason(
                "cord_unit_dose_insufficient",
                "single unit TNC >= `cord_single_min_tnc_x10e7_per_kg` (3.0) and CD34+ >= `cord_single_min_cd34_x10e5_per_kg` (1.5); double: each unit TNC >= `cord_double_min_tnc_x10e7_per_kg` (1.5) and CD34+ >= `cord_double_min_cd34_x10e5_per_kg` (1.0); `cord_dose_rule: tnc_or_cd34` lets either dose suffice",
                "F:DEHN-2019, F:CORD-SEL",
            ),
            Reason(
                "cord_unit_hla_c_mismatch",
                "with `cord_avoid_hla_c_mismatch` (default on): no unit mismatched at HLA-C",
                "F:CORD-SEL, F:DEHN-2019",
            ),
            Reason(
                "cord_unit_hla_mismatch_excess",
                "no unit with more than `cord_max_hla_mismatches` (2) mismatches",
                "F:CORD-SEL, F:DEHN-2019",
            ),
            Reason("cord_unit_count_invalid", "one or two distinct units", "F:CORD-SEL, F:CIBMTR-DONOR"),
            Reason(
                "cord_unit_segment_missing",
                "every unit needs an attached segment for confirmatory typing",
                "F:CORD-SEL",
            ),
            Reason(
                "cord_unit_not_cord_blood",
                "a unit offered for a cord selection is not a cord blood candidate",
                "chart: Donor rules",
            ),
            Reason("donor_not_selected", "`clear_donor` / `start_conditioning` with no selected donor", "chart"),
            Reason(
                "emergency_donor_not_selected",
                "inside conditioning, `clear_donor` clears only an emergency donor",
                "chart: critical path",
            ),
            Reason(
                "planned_collection_date_missing",
                "the IDM window is measured against a planned collection date, none given",
                "F:CFR-1271.80",
            ),
            Reason(
                "donor_idm_missing",
                "no donor IDM specimen on or before the collection date",
                "F:CFR-1271.80, F:FACT-B6",
            ),
            Reason(
                "donor_idm_stale",
                "latest donor IDM drawn more than `idm_window_days` (30) before the (planned) collection",
                "F:CFR-1271.80, F:FACT-B6",
            ),
            Reason(
                "donor_idm_positive",
                'a positive IDM with an "eligible" determination, at clearance or at collection (a donor cleared'
                " under the related-donor or urgent-need exception is not refused for it)",
                "F:CFR-1271.65",
            ),
            Reason(
                "cord_segment_typing_missing",
                "cord: confirmatory typing on the attached segment recorded for every unit (clear_donor, start_conditioning, infuse)",
                "F:CORD-SEL",
            ),
            Reason(
                "donor_unavailable_not_reported",
                "`select_emergency_donor` only after `report_donor_unavailable`",
                "chart: critical path",
            ),
            Reason(
                "donor_not_current",
                "a collection from a donor who is not the current selected donor (e.g. released)",
                "ref. S10",
            ),
        ),
    ),
    Section(
        "Collection",
        (
            Reason("product_id_duplicate", "a product id is recorded once per pathway", "F:CIBMTR-COLL"),
            Reason("product_unknown", "the product was never recorded on this pathway", "FACT-JACIE chain of identity"),
            Reason("product_already_cryopreserved", "a product is cryopreserved once", "S"),
            Reason(
                "insufficient_cd34_dose",
                "autologous: sum of stored CD34+ < `min_cd34_autologous_x10e6_per_kg` (2.0)",
                "F:RUSSELL-2013",
            ),
            Reason(
                "no_cryopreserved_product_from_cleared_donor",
                "allogeneic `complete_collection`: no stored product from the current cleared donor",
                "chart",
            ),
            Reason(
                "allogeneic_dose_below_target",
                "no stored allogeneic product meets `min_cd34_allogeneic_x10e6_per_kg` (marrow: `min_tnc_marrow_x10e8_per_kg`)",
                "S, F:BM-HARVEST",
            ),
        ),
    ),
    Section(
        "Conditioning and infusion",
        (
            Reason(
                "donor_not_cleared",
                "allogeneic conditioning, collection or infusion needs the current donor cleared",
                "F:DKMS-CLEAR, ref. 6.1",
            ),
            Reason(
                "product_not_cryopreserved",
                "with `cryopreserve_before_conditioning` (or a frozen graft source) a stored product of the cleared donor is needed",
                "F:NMDP-CRYO, F:JMDP-CRYO",
            ),
            Reason("planned_day0_in_past", "a planned Day 0 before the conditioning start date", "S"),
            Reason(
                "conditioning_plan_before_start",
                "the plan's first dose (planned Day 0 minus N) falls before the `start_conditioning` date: conditioning starts with its first dose, so the length check reads the plan",
                "S",
            ),
            Reason(
                "regimen_length_outside_policy",
                "the conditioning period (Day -N of the first planned dose through Day -1, rest days included) lies outside `conditioning_length_days` (5..10) and `start_conditioning` gives no `length_reason`; with one it is accepted and flagged `conditioning_length_outside_policy`",
                "S (conditioning usually lasts 5-10 days), F:SRL-BEAM, F:BUCY",
            ),
            Reason(
                "dose_not_in_plan", "a conditioning dose must match a (day, drug) of the regimen's plan", "ref. 3.12"
            ),
            Reason(
                "dose_date_off_plan",
                "a dose for Day -N is given on planned Day 0 - N (within `conditioning_dose_day_tolerance_days`, 0)",
                "S",
            ),
            Reason(
                "conditioning_incomplete",
                "every planned dose recorded; a Day 0 fraction only counts if given before the infusion time",
                "ref. 0 (Day 0 TBI), 6.4",
            ),
            Reason("product_already_infused", "a product is infused once (`infuse`, `record_infusion`)", "FACT-JACIE"),
            Reason(
                "infused_dose_below_minimum",
                "`infuse` / `rescue_infusion`: the infused PBSC products sum to at least `min_cd34_autologous_x10e6_per_kg` (2.0, autologous) or `min_cd34_allogeneic_x10e6_per_kg` (2.0, allogeneic) CD34+ x10^6/kg, marrow to `min_tnc_marrow_x10e8_per_kg` (2.0) TNC x10^8/kg; cord units meet the cord dose rule",
                "F:RUSSELL-2013, S, F:BM-HARVEST, F:DEHN-2019",
            ),
            Reason(
                "product_not_from_cleared_donor",
                "the infused allogeneic product must come from the current cleared donor",
                "ref. 6.4",
            ),
            Reason(
                "recipient_label_mismatch",
                "the recipient reference on the label must equal this pathway's patient reference (every infusion: `infuse`, `rescue_infusion`, `record_infusion`; a missing label never matches)",
                "F:NMDP-CLEAR, ref. 2 chain of identity",
            ),
            Reason(
                "identity_verification_incomplete",
                "two different people verify identity (every infusion, DLI and boost included)",
                "21 CFR 11.10(g), FACT-JACIE",
            ),
            Reason("verifier_not_qualified", "verifiers must hold a role in `infusion_verifier_roles`", "policy"),
            Reason(
                "fresh_product_too_old",
                "a fresh allogeneic product infused more than `fresh_product_max_hours` (48) after collection",
                "F:NMDP-48H",
            ),
            Reason(
                "no_stored_product_available",
                "a rescue infusion needs a recorded, not yet infused product",
                "chart: rescue_infusion",
            ),
        ),
    ),
    Section(
        "Engraftment, graft failure, follow-up",
        (
            Reason("day0_not_set", "the rule counts days from Day 0, which is not set yet", "chart: Words"),
            Reason(
                "neutrophil_recovery_not_met",
                "first of 3 values >= 0.5 on different days after the nadir, counting only labs since the latest Day 0 or rescue infusion; or ANC never below 0.5 since then, followed to Day `anc_never_below_observed_to_day` (28)",
                "F:CIBMTR-ANC, F:ASTCT",
            ),
            Reason(
                "platelet_recovery_not_met",
                "first of 3 values >= 20 with no platelet transfusion in the 7 days ending that day",
                "F:CIBMTR-PLT",
            ),
            Reason(
                "graft_failure_kind_phase_mismatch",
                "primary failure from `awaiting_engraftment`, secondary from `follow_up`",
                "F:ASTCT",
            ),
            Reason("neutrophil_recovery_reached", "primary graft failure cannot be declared after recovery", "F:ASTCT"),
            Reason(
                "primary_graft_failure_too_early",
                "Day < `primary_graft_failure_day` (30 PBSC/marrow, 42 cord blood)",
                "F:ASTCT",
            ),
            Reason(
                "recent_anc_missing",
                "primary graft failure rests on counts: at least `primary_graft_failure_recent_anc_values` (2) ANC values drawn in the `primary_graft_failure_recent_anc_days` (7) days ending on the declaration day",
                'S, F:ASTCT ("with pancytopenia")',
            ),
            Reason(
                "anc_recovery_in_progress",
                "one of those recent ANC values is >= 0.5: a recovery may be under way",
                "S, F:CIBMTR-ANC",
            ),
            Reason(
                "secondary_graft_failure_not_met",
                "after recovery, ANC < 0.5 on `secondary_graft_failure_days` (3) consecutive values on different days (gaps allowed, a value >= 0.5 in between restarts the count), since the latest Day 0 or rescue infusion",
                "F:CIBMTR-SUBSEQ, F:CIBMTR-ANC",
            ),
            Reason("outside_day100_window", "`complete_day100` before Day `day100_window` (85)", "F:CIBMTR-CONTACT"),
            Reason(
                "day100_late_reason_missing",
                "after Day 115 `complete_day100` needs a `late_reason` (CIBMTR calls the window approximate); accepted with one and flagged `day100_late`",
                "F:CIBMTR-CONTACT",
            ),
            Reason(
                "engraftment_not_recorded",
                "Day +100 needs a confirmed neutrophil engraftment (or ANC never below 0.5)",
                "F:FACT-FAQ",
            ),
            Reason(
                "gvhd_status_missing",
                "allogeneic: a GVHD assessment since Day `day100_evidence_from_day` (85)",
                "F:CIBMTR-2450",
            ),
            Reason("chimerism_missing", "allogeneic: a chimerism result since Day 85", "F:CIBMTR-2450"),
            Reason(
                "relapse_before_day0",
                "after infusion, a relapse or progression dated before Day 0 (before infusion it is recorded as the disease status at transplant, docs/disease-course.md)",
                "chart",
            ),
            Reason(
                "graft_failure_not_declared",
                "a subsequent transplant for graft failure starts from `graft_failure` (or a declared failure)",
                "F:CIBMTR-SUBSEQ",
            ),
            Reason(
                "relapse_not_recorded",
                "a subsequent transplant for relapse needs `report_relapse` first",
                "F:CIBMTR-SUBSEQ",
            ),
            Reason(
                "persistent_disease_not_assessed",
                "a subsequent transplant for persistent disease needs a `record_assessment` with `disease_status: persistent_disease`",
                "F:CIBMTR-SUBSEQ",
            ),
            Reason(
                "new_malignancy_not_assessed",
                "a subsequent transplant for a new malignancy needs a `record_assessment` with `disease_status: new_malignancy`",
                "F:CIBMTR-SUBSEQ",
            ),
            Reason(
                "planned_transplant_not_engrafted",
                "a planned (tandem) transplant follows an engrafted HCT that has not failed",
                "F:CIBMTR-SUBSEQ, S",
            ),
            Reason(
                "effective_time_before_previous_entry",
                "`record_death` or `transfer` dated before the last recorded effective time",
                "chart: record_death, transfer",
            ),
        ),
    ),
    Section(
        "Suspected graft failure and reinstatement (docs/disease-course.md)",
        (
            Reason(
                "graft_failure_already_suspected",
                "`suspect_graft_failure` while a suspicion stands: it is confirmed (`declare_graft_failure`) or cleared first",
                "S",
            ),
            Reason(
                "suspicion_needs_donor_graft",
                "donor chimerism and autologous reconstitution are evidence after an allogeneic graft only",
                "F:ASTCT",
            ),
            Reason(
                "graft_failure_not_suspected",
                "`clear_graft_failure_suspicion` with no suspicion standing",
                "S",
            ),
            Reason(
                "reinstatement_window_passed",
                "`reinstate` more than `reinstatement_window_days` (90) after the withdrawal: refer the patient again",
                'S, decisions.md "Reinstating a withdrawn patient"',
            ),
        ),
    ),
    Section(
        "Product disposition (docs/long-term-follow-up.md)",
        (
            Reason(
                "product_already_disposed",
                "a product with a recorded disposition (discard, transfer, research) is neither infused nor disposed of again",
                "FACT-JACIE chain of identity, S",
            ),
        ),
    ),
    Section(
        "Donor mobilisation, per-patient cryopreservation, bags and quarantine (docs/products.md)",
        (
            Reason(
                "donor_mobilization_autologous",
                "`record_donor_mobilization` is a donor's G-CSF course: an autologous patient's own mobilisation is `start_mobilization`",
                "F:PLERIX-EU, S",
            ),
            Reason(
                "donor_mobilization_not_pbsc",
                "a donor is mobilised for a peripheral blood graft only (marrow is harvested, cord blood is banked)",
                "F:PLERIX-EU",
            ),
            Reason(
                "donor_mobilization_graft_cryopreserved",
                "in `conditioning` a donor is mobilised for a fresh graft only: a graft frozen by policy or decision is collected before conditioning",
                "F:NMDP-CRYO, F:DKMS-CLEAR",
            ),
            Reason(
                "cryopreservation_already_planned",
                "`decide_cryopreservation` when the policy (`cryopreserve_before_conditioning`, `cryopreserved_graft_sources`) or an earlier decision already freezes the graft",
                "S",
            ),
            Reason(
                "cryopreservation_not_for_cord_blood",
                "cord blood units are banked frozen: there is nothing to decide",
                "F:CORD-SEL",
            ),
            Reason(
                "cryopreservation_not_decided",
                "an allogeneic product is frozen during conditioning only after `decide_cryopreservation` (the patient cannot receive it fresh in time)",
                "F:NMDP-CRYO, F:NMDP-48H",
            ),
            Reason(
                "bag_unknown", "no product of this pathway holds a bag with this id", "FACT-JACIE chain of identity"
            ),
            Reason(
                "bag_not_available",
                "the bag was infused, discarded or carried to a linked pathway",
                "FACT-JACIE chain of identity",
            ),
            Reason("bag_already_quarantined", "`quarantine_bag` on a bag already in quarantine", "S"),
            Reason("bag_not_quarantined", "`release_bag` on a bag that is not in quarantine", "S"),
            Reason(
                "bag_quarantined",
                "a bag in quarantine (an open investigation) is not infused until `release_bag`",
                "FACT-JACIE, 21 CFR 1271.265",
            ),
            Reason(
                "bag_not_of_named_product",
                "every bag infused belongs to one of the products the infusion names",
                "FACT-JACIE chain of identity",
            ),
            Reason(
                "product_bags_not_named",
                "a product frozen with named bags is infused by naming the bags (`bag_ids`), so each is checked",
                "FACT-JACIE chain of identity",
            ),
            Reason(
                "post_thaw_viability_missing",
                "a thawed bag is infused after `record_thaw` has recorded its post-thaw viability",
                "F:CIBMTR-PRODUCT",
            ),
            Reason(
                "post_thaw_viability_below_minimum",
                "a bag's post-thaw viability is below `min_post_thaw_viability_pct` (70 %)",
                "S (a common laboratory release limit, docs/products.md), F:CIBMTR-PRODUCT",
            ),
            Reason(
                "product_carried_to_linked_pathway",
                "a product (or bag) carried to a linked pathway (a planned tandem's next HCT, a reinstatement) "
                "is infused or disposed of there, not here",
                "F:CIBMTR-SUBSEQ, S",
            ),
        ),
    ),
    Section(
        "Corrections (workflow/service.py)",
        (
            Reason(
                "corrected_entry_unknown",
                "the corrected sequence number does not exist on this pathway",
                "21 CFR 11.10(e)",
            ),
            Reason(
                "entry_not_correctable",
                "refusals and corrections are not corrected; make a new attempt or correct the original",
                "decisions.md",
            ),
            Reason(
                "identity_not_correctable",
                "the correction changes who the patient is or which route and transplant this is: the referral's `patient_ref`, `route`, `donor_type`, `graft_source`, `timezone`, `hct_number`, `previous_pathway`; a subsequent transplant's route fields and `begin_in`; a route change's fields; an infusion's `label_recipient_ref` and `verifiers`",
                'S, decisions.md "Identity is not corrected"',
            ),
            Reason(
                "correction_breaks_history",
                "with the correction applied, the corrected entry or a later one no longer reads (a product id changed to one never collected, a collection renamed under its later freezing or infusion): record what happened as a new entry instead",
                "21 CFR 11.10(e), S",
            ),
        ),
        "Changes that the corrected entry's own payload would not accept (a field it does not have, a\nderived field, a wrong type or size) are malformed input, not refusals: `InvalidCommand` naming\n`payload.changes.<field>` (`with.changes.<field>` in a scenario step or an HTTP body), nothing\nwritten.",
    ),
    Section(
        "Route changes (`change_route`)",
        (
            Reason(
                "route_unchanged",
                "route, donor type and graft source are those the pathway already has",
                'S, decisions.md "Route changes"',
            ),
            Reason(
                "collection_started",
                "an autologous pathway in `collection` has a mobilization episode or a collected product",
                'S, decisions.md "Route changes"',
            ),
        ),
    ),
    Section(
        "GVHD prophylaxis and supportive care (docs/supportive-care.md)",
        (
            Reason(
                "ptcy_days_off_policy",
                "a prophylaxis plan gives post-transplant cyclophosphamide on other Days than `ptcy_days` (Day +3 and +4)",
                "S, Luznik 2008 schedule",
            ),
            Reason(
                "immunosuppression_too_early_under_ptcy",
                "under PTCy a calcineurin inhibitor, MMF or sirolimus is planned or given before Day `ptcy_immunosuppression_from_day` (+5)",
                "S, Luznik 2008 schedule",
            ),
            Reason(
                "methotrexate_day_off_policy",
                "a plan gives methotrexate on a Day outside `methotrexate_days` (+1, +3, +6, +11)",
                "S, short-course methotrexate",
            ),
            Reason(
                "atg_day_off_policy",
                "a plan gives ATG outside `atg_days` (Day -5..-1: with the conditioning)",
                "S",
            ),
            Reason("two_calcineurin_inhibitors", "a plan names both tacrolimus and cyclosporine", "S"),
            Reason(
                "prophylaxis_agent_not_in_plan",
                "`record_prophylaxis_dose` of an agent the current prophylaxis plan does not name (or no plan yet)",
                "S",
            ),
            Reason(
                "prophylaxis_day_off_plan",
                "a PTCy, methotrexate or ATG dose on a Day its plan does not name",
                "S",
            ),
            Reason(
                "prophylaxis_dose_already_given",
                "a second PTCy, methotrexate or ATG dose on the same Day",
                "S",
            ),
            Reason(
                "prophylaxis_before_planned_start",
                "a calcineurin inhibitor, MMF or sirolimus dose before the plan's `from_day`",
                "S",
            ),
            Reason(
                "admission_already_recorded",
                "`admit` when a stay is already recorded: a stay after a discharge is `readmit`",
                "S",
            ),
            Reason("already_admitted", "`readmit` while the patient is in hospital", "S"),
            Reason("already_discharged", "`discharge` when the last stay has already ended", "S"),
            Reason(
                "growth_factor_too_early",
                "G-CSF after the infusion before Day `growth_factor_earliest_day` (+5)",
                "F:SRL-BEAM",
            ),
            Reason("growth_factor_already_started", "`start_growth_factor` when G-CSF has already started", "S"),
            Reason(
                "infection_onset_after_entry",
                "`record_infection` with an `onset_on` after the day it is recorded",
                "S",
            ),
        ),
    ),
    Section(
        "Policy versions (docs/versioning.md)",
        (
            Reason(
                "policy_already_adopted",
                "`adopt_policy` names the version the pathway is already judged under",
                "S, decisions.md",
            ),
        ),
    ),
    Section(
        "Validation rules (InvalidCommand, nothing written)",
        (),
        "Malformed input never becomes a refusal entry: it raises `InvalidCommand` whose problems name\nthe field path and the rule. A payload field's path starts with `payload.` for a Python caller\n(the parameter of `fire`, `can_fire` and `refer`) and with `with.` in a scenario step or an HTTP\nbody. The rule is pydantic's error type (`missing`, `extra_forbidden`,\n`greater_than_equal`, `string_pattern_mismatch`, `timezone_aware`, ...) or one of ours:\n`unknown_command`, `derived_field` (a field the library derives was sent),\n`idempotency_key_invalid` (1..189 characters, no control characters, no lone surrogates: the\ncolumn holds 200 and the key of a subsequent transplant's new pathway adds 11),\n`policy_version_unknown` (`adopt_policy` names a version the policy registry does not hold),\n`payload_too_large` (the payload's canonical JSON exceeds the policy's `max_payload_bytes`),\n`payload_too_deep` (mappings and lists nested deeper than `max_payload_depth`),\n`number_out_of_range` (an integer outside 64 bits), `finite_number` (NaN or infinity in a\ncorrection), `string_unicode` (a lone surrogate: not UTF-8), `datetime_out_of_range` (an\neffective time whose UTC day is outside 1900-01-01..2199-12-31, year 1 at +14:00 included),\n`datetime_type` (an effective time that is not a datetime at all),\n`donor_type_for_autologous`, `donor_type_missing`, `graft_source_inconsistent`,\n`donor_type_inconsistent`, `begin_in_inconsistent`, `consent_version_missing`, `dose_missing`,\n`lab_value_missing`, `suspicion_evidence_missing` (`suspect_graft_failure` gives donor chimerism\nand/or an ANC), `prophylaxis_schedule_shape` (a PTCy, methotrexate or ATG plan names its\n`days`, the other agents their `from_day`), `prophylaxis_agent_twice` (each agent planned once),\n`disposition_centre_missing` (a product transfer, and only a transfer,\nnames the `centre`), `disposition_consent_missing` (research use, and only research use, names\nthe `research_consent_version`), `bag_ids_count` (`cryopreserve_product` names each of its `bags`\nonce), `date_only` (a clinical date must be a date, `YYYY-MM-DD`, never a time or a\nnumber), `date_out_of_range` (1900-01-01..2199-12-31). Cross-field rules are reported on the\nfield they are about (e.g. `payload.donor_type`). Numbers are strict: `true` or `\"3.4\"` is not a\ndose.",
    ),
)

REASONS: dict[str, Reason] = {reason.code: reason for section in SECTIONS for reason in section.reasons}
"""Every refusal code by name."""

PREFACE = """\
Every refusal carries one or more of these stable snake_case codes (public API: scenario files
expect them, integrators branch on them). A refusal lists **every** rule that failed, not only
the first: guards are evaluated even when the phase already forbids the command, so
`start_conditioning` in `collection` with too few cells says both
`trigger_not_allowed_in_phase` and `insufficient_cd34_dose`. `hsct explain CODE` prints one.

Sources: `F:` and an ID is a published source listed in docs/sources.md; `S` is this project's
suggestion where no source fixes the rule; `chart` and `ref.` name the project's design
contract and clinical reference, whose rules are restated in docs/decisions.md, docs/milestones.md
and here. Every threshold named here is a policy field (see `states/policy.py`), never a literal
in the guard.

Generated from `states/reasons.py` by `hsct explain --output docs/reason-codes.md`; do not edit
by hand. Tests fail when this file drifts from the module, and when the code refuses with a code
the module does not list.
"""
"""The introduction of docs/reason-codes.md."""
