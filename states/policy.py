"""The transplant program's policy: every threshold, window and role table the guards use.

Defaults come from the clinical sources listed in docs/sources.md; each field names its source in
`json_schema_extra["source"]` ([F:..] a sourced fact, [S] our suggestion). A program loads its
own values from a TOML or YAML file (read by `workflow.policy_files`; this module does
no I/O). The policy's version (declared, or a content hash) is
stored on every log entry so an auditor can tell which rules judged each step.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from states.days import is_zone_name
from states.errors import PolicyError
from states.vocabulary import GraftSource, Role
from states.vod import BaltimoreHepatic, SeattleHepatic


def _src(source: str) -> dict[str, Any]:
    return {"source": source}


P = Role.TRANSPLANT_PHYSICIAN
C = Role.TRANSPLANT_COORDINATOR
REG = Role.DONOR_REGISTRY
COL = Role.COLLECTION_FACILITY
PRO = Role.PROCESSING_FACILITY
RN = Role.INFUSION_NURSE
LAB = Role.LABORATORY
QM = Role.QUALITY_MANAGER
SYS = Role.SYSTEM

# Who may fire what (docs/commands.md lists the roles per command): only a physician starts conditioning, declares
# engraftment or graft failure; laboratory values come from the laboratory or a system feed;
# the quality manager corrects with a reason but never moves a patient. [S]
DEFAULT_ROLES: dict[str, frozenset[Role]] = {
    "refer": frozenset({P, C}),
    "begin_evaluation": frozenset({P, C}),
    "complete_evaluation": frozenset({P}),
    "select_donor": frozenset({P}),
    "release_donor": frozenset({P, C, REG}),
    "clear_donor": frozenset({P, REG}),
    "complete_collection": frozenset({P, C, COL, PRO}),
    "hold": frozenset({P, C}),
    "resume": frozenset({P, C}),
    "start_conditioning": frozenset({P}),
    "infuse": frozenset({P, RN}),
    "confirm_engraftment": frozenset({P}),
    "declare_graft_failure": frozenset({P}),
    "rescue_infusion": frozenset({P, RN}),
    "complete_day100": frozenset({P}),
    "start_subsequent_transplant": frozenset({P}),
    "withdraw": frozenset({P, C}),
    "record_death": frozenset({P, C, SYS}),
    # Handing care to another centre is a physician's or coordinator's decision, with a reason. [S]
    "transfer": frozenset({P, C}),
    # The physician decides what becomes of a product; the processing facility carries it out. [S]
    "record_product_disposition": frozenset({P, PRO}),
    "record_chronic_gvhd": frozenset({P}),
    # A physician judges the disease and the graft, and takes a withdrawn patient back. [S]
    "suspect_graft_failure": frozenset({P}),
    "clear_graft_failure_suspicion": frozenset({P}),
    "reinstate": frozenset({P}),
    "record_consent": frozenset({P, C}),
    "record_eligibility": frozenset({P}),
    "record_hla_typing": frozenset({LAB, SYS}),
    "record_abo_typing": frozenset({LAB, SYS}),
    "record_donor_candidate": frozenset({P, C, REG, LAB}),
    "record_donor_idm": frozenset({LAB, REG, COL, SYS}),
    "start_mobilization": frozenset({P, COL}),
    "report_mobilization_failure": frozenset({P, COL}),
    "record_collection": frozenset({COL, PRO}),
    "cryopreserve_product": frozenset({PRO}),
    # A donor's G-CSF course is recorded by the collection centre or the registry that runs it;
    # freezing one patient's graft is the physician's decision. [S]
    "record_donor_mobilization": frozenset({COL, REG}),
    "decide_cryopreservation": frozenset({P}),
    # The laboratory quarantines and thaws a bag; only the quality manager (or the physician,
    # who answers for the patient) ends a quarantine or discards a bag. [S]
    "quarantine_bag": frozenset({PRO, QM, P}),
    "release_bag": frozenset({QM, P}),
    "discard_bag": frozenset({QM, P}),
    "record_thaw": frozenset({PRO, RN}),
    "record_conditioning_dose": frozenset({P, RN}),
    "report_donor_unavailable": frozenset({P, C, REG}),
    "select_emergency_donor": frozenset({P}),
    "record_lab": frozenset({LAB, SYS}),
    "record_transfusion": frozenset({RN, SYS}),
    "confirm_platelet_engraftment": frozenset({P}),
    "record_chimerism": frozenset({LAB, SYS}),
    "record_gvhd_assessment": frozenset({P}),
    "record_vod_assessment": frozenset({P}),
    "report_relapse": frozenset({P}),
    "record_infusion": frozenset({P, RN}),
    "record_adverse_event": frozenset({P, RN}),
    "discharge": frozenset({P, C}),
    "readmit": frozenset({P, C}),
    "record_assessment": frozenset({P}),
    "record_registry_form": frozenset({C, QM, SYS}),
    "correct_entry": frozenset({QM, P, C, LAB}),
    # Moving a running pathway to a new policy is a governance decision, not a clinical step. [S]
    "adopt_policy": frozenset({P, QM}),
    # A route change is a treatment decision: the physician's, with a reason. [S]
    "change_route": frozenset({P}),
    # GVHD prophylaxis is the physician's plan; nurses record doses and supportive care, the
    # coordinator the admission. [S]
    "plan_gvhd_prophylaxis": frozenset({P}),
    "record_prophylaxis_dose": frozenset({P, RN}),
    "admit": frozenset({P, C}),
    "start_growth_factor": frozenset({P, RN}),
    "record_infection": frozenset({P}),
    "record_mucositis": frozenset({P, RN}),
}


POLICY_VERSION_LENGTH = 128
"""The width of the policy version columns (entries, policies)."""


class Policy(BaseModel):
    """One program's rules. Frozen and closed: an unknown key in a policy file is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Stored on every entry: printable and as long as the column holds (no NUL, which
    # PostgreSQL refuses; tests/test_bad_input.py checks the column agrees).
    version: str | None = Field(
        None,
        min_length=1,
        max_length=POLICY_VERSION_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Declared version; a content hash when absent.",
    )
    timezone: str = Field("UTC", json_schema_extra=_src("S: Day N counts calendar days in the programme's timezone"))

    # Collection and doses
    min_cd34_autologous_x10e6_per_kg: float = Field(2.0, gt=0, json_schema_extra=_src("F:RUSSELL-2013"))
    min_cd34_allogeneic_x10e6_per_kg: float = Field(
        2.0, gt=0, json_schema_extra=_src("S: program target dose for an allogeneic PBSC product")
    )
    min_tnc_marrow_x10e8_per_kg: float = Field(2.0, gt=0, json_schema_extra=_src("F:BM-HARVEST"))
    cryopreserve_before_conditioning: bool = Field(
        False, json_schema_extra=_src("F:NMDP-CRYO, F:JMDP-CRYO (a program or registry mandate)")
    )
    cryopreserved_graft_sources: frozenset[GraftSource] = Field(
        frozenset(), json_schema_extra=_src("S: allogeneic graft sources this program freezes")
    )

    # Donors
    idm_window_days: int = Field(30, gt=0, json_schema_extra=_src("F:CFR-1271.80, F:FACT-B6"))
    fresh_product_max_hours: float = Field(48, gt=0, json_schema_extra=_src("F:NMDP-48H"))
    min_post_thaw_viability_pct: float = Field(
        70,
        ge=0,
        le=100,
        json_schema_extra=_src("S: a common laboratory release limit (docs/products.md); data F:POSTTHAW"),
    )
    min_matches_8: int = Field(
        8,
        ge=0,
        le=8,
        json_schema_extra=_src("S: matched sibling and matched unrelated donors are 8/8 (docs/clinical-rules.md)"),
    )
    mismatched_unrelated_min_matches_8: int = Field(7, ge=0, le=8, json_schema_extra=_src("F:PIDALA-2014, F:MDRI"))
    cord_single_min_tnc_x10e7_per_kg: float = Field(
        3.0, gt=0, json_schema_extra=_src("F:DEHN-2019 (NMDP guidance); F:CORD-SEL gives 2.5-3")
    )
    cord_single_min_cd34_x10e5_per_kg: float = Field(1.5, gt=0, json_schema_extra=_src("F:DEHN-2019, F:CORD-SEL"))
    cord_double_min_tnc_x10e7_per_kg: float = Field(1.5, gt=0, json_schema_extra=_src("F:CORD-SEL"))
    cord_double_min_cd34_x10e5_per_kg: float = Field(1.0, gt=0, json_schema_extra=_src("F:CORD-SEL, F:DEHN-2019"))
    cord_dose_rule: Literal["tnc_and_cd34", "tnc_or_cd34"] = Field(
        "tnc_and_cd34",
        json_schema_extra=_src("F:DEHN-2019 (TNC and CD34+); F:CORD-SEL reads 'and/or' (either suffices)"),
    )
    cord_max_hla_mismatches: int = Field(2, ge=0, json_schema_extra=_src("F:CORD-SEL, F:DEHN-2019"))
    cord_avoid_hla_c_mismatch: bool = Field(True, json_schema_extra=_src("F:CORD-SEL, F:DEHN-2019"))
    cord_dsa_rule: Literal["refuse_positive", "require_negative", "not_checked"] = Field(
        "refuse_positive",
        json_schema_extra=_src("F:CORD-SEL, F:DEHN-2019: avoid units the patient has DSA against"),
    )

    # VOD/SOS: readings of a contested hepatic finding (docs/clinical-rules.md)
    vod_baltimore_hepatic: BaltimoreHepatic = Field(
        "hepatomegaly",
        json_schema_extra=_src(
            "F:JONES-1987 (primary: hepatomegaly with or without RUQ pain); F:EBMT-VOD-ADULT restates painful"
        ),
    )
    vod_seattle_hepatic: SeattleHepatic = Field(
        "hepatomegaly_or_ruq_pain",
        json_schema_extra=_src("F:MCDONALD-1993 as read by F:VOD (or); other summaries read 'with RUQ pain'"),
    )

    # Engraftment and graft failure
    anc_recovery_x10e9_per_l: float = Field(0.5, gt=0, json_schema_extra=_src("F:CIBMTR-ANC"))
    anc_nadir_x10e9_per_l: float = Field(0.1, gt=0, json_schema_extra=_src("S: nadir, ref. section 0"))
    recovery_consecutive_values: int = Field(3, ge=1, json_schema_extra=_src("F:CIBMTR-ANC, F:CIBMTR-PLT"))
    platelet_recovery_x10e9_per_l: float = Field(20, gt=0, json_schema_extra=_src("F:CIBMTR-PLT"))
    platelet_transfusion_free_days: int = Field(7, ge=1, json_schema_extra=_src("F:CIBMTR-PLT"))
    primary_graft_failure_day: dict[GraftSource, int] = Field(
        default_factory=lambda: {GraftSource.PBSC: 30, GraftSource.BONE_MARROW: 30, GraftSource.CORD_BLOOD: 42},
        json_schema_extra=_src("F:ASTCT"),
    )
    secondary_graft_failure_days: int = Field(3, ge=1, json_schema_extra=_src("F:CIBMTR-SUBSEQ"))
    engraftment_expected_by_day: int = Field(
        28, gt=0, json_schema_extra=_src("S: engraftment expected by Day +28 (docs/milestones.md)")
    )
    anc_never_below_observed_to_day: int = Field(
        28,
        gt=0,
        json_schema_extra=_src("S: ANC followed to Day +28 before F:CIBMTR-ANC 'never below 0.5' is affirmed"),
    )
    platelet_recovery_50_x10e9_per_l: float = Field(
        50, gt=0, json_schema_extra=_src("F:CIBMTR-PLT (Form 2100 Q13-18: the same date at >= 50)")
    )
    # Primary graft failure is declared on a documented pancytopenia, not on missing labs: at
    # least `..._values` ANC values drawn in the `..._days` days ending on the declaration day,
    # all below `anc_recovery_x10e9_per_l` (docs/engraftment-rules.md).
    primary_graft_failure_recent_anc_values: int = Field(
        2, ge=1, json_schema_extra=_src("S: F:ASTCT asks for no recovery 'with pancytopenia'; counts twice a week")
    )
    primary_graft_failure_recent_anc_days: int = Field(
        7, ge=1, json_schema_extra=_src("S: a week of counts ending on the declaration day")
    )
    conditioning_length_days: tuple[int, int] = Field(
        (5, 10),
        json_schema_extra=_src(
            "S: conditioning usually lasts 5-10 days; fits F:SRL-BEAM (6 days) and F:BUCY (6 days); "
            "outside it only with a recorded reason"
        ),
    )
    conditioning_dose_day_tolerance_days: int = Field(
        0, ge=0, json_schema_extra=_src("S: a dose is given on its planned Day (D-N = planned Day 0 - N)")
    )

    # Follow-up
    day100_window: tuple[int, int] = Field((85, 115), json_schema_extra=_src("F:CIBMTR-CONTACT"))
    day100_evidence_from_day: int = Field(85, json_schema_extra=_src("F:CIBMTR-CONTACT"))

    day30_window: tuple[int, int] = Field((28, 35), json_schema_extra=_src("S: Day +30 assessment, ref. section 4"))
    pre_transplant_form_opens_days: int = Field(
        14, ge=0, json_schema_extra=_src("F:CIBMTR-2400: sent up to 2 weeks before conditioning, due Day 0")
    )
    post_transplant_form_day: int = Field(100, gt=0, json_schema_extra=_src("F:CIBMTR-2450"))
    registry_form_overdue_after_days: int = Field(
        120, ge=0, json_schema_extra=_src("F:CIBMTR-2450 (older manual: past due 120 days after the time point)")
    )
    month6_window: tuple[int, int] = Field(
        (150, 210), json_schema_extra=_src("F:CIBMTR-CONTACT (6 months: +/- 30 days, from Day 150)")
    )
    year1_window: tuple[int, int] = Field(
        (365, 425), json_schema_extra=_src("F:CIBMTR-CONTACT, F:CIBMTR-UPD (1 year: Day 365-425)")
    )
    post_transplant_month6_form_day: int = Field(
        180, gt=0, json_schema_extra=_src("F:CIBMTR-2450 (Post-TED due at 100 days, 6 months, then yearly)")
    )
    post_transplant_year1_form_day: int = Field(
        365, gt=0, json_schema_extra=_src("F:CIBMTR-2450 (Post-TED due at 100 days, 6 months, then yearly)")
    )
    product_disposition_overdue_after_days: int = Field(
        30,
        ge=0,
        json_schema_extra=_src("S: a disposition for every product left when a pathway ends, within a month"),
    )
    # docs/disease-course.md: a suspected graft failure waits for a physician's decision.
    graft_failure_suspicion_review_days: int = Field(
        7,
        ge=0,
        json_schema_extra=_src(
            "S: F:ASTCT allows a suspicion on chimerism at any time; confirmed or cleared within a week "
            "(counts are drawn at least twice a week)"
        ),
    )
    # docs/decisions.md "Reinstating a withdrawn patient": later, a new referral.
    reinstatement_window_days: int = Field(
        90,
        ge=0,
        json_schema_extra=_src(
            "S: within 3 months of the withdrawal the transplant's work-up is taken up again; "
            "later the disease and the indication are assessed afresh from a new referral"
        ),
    )

    # GVHD prophylaxis and supportive care (docs/supportive-care.md)
    ptcy_days: tuple[int, ...] = Field(
        (3, 4),
        json_schema_extra=_src(
            "S: the Luznik 2008 schedule, cyclophosphamide 50 mg/kg on Day +3 and +4 (recalled, not re-checked; "
            "F:HAPLO-MAC and F:HAPLO-BAC use PTCy)"
        ),
    )
    ptcy_immunosuppression_from_day: int = Field(
        5,
        json_schema_extra=_src(
            "S: the Luznik 2008 schedule, tacrolimus (or cyclosporine) and MMF from Day +5, after the last PTCy "
            "dose: cyclophosphamide must meet proliferating alloreactive T cells unopposed"
        ),
    )
    methotrexate_days: tuple[int, ...] = Field(
        (1, 3, 6, 11),
        json_schema_extra=_src(
            "S: short-course methotrexate (Storb 1986) on Day +1, +3, +6 and +11 (recalled, not re-checked); "
            "a plan may leave Day +11 out"
        ),
    )
    atg_days: tuple[int, int] = Field(
        (-5, -1),
        json_schema_extra=_src("S: ATG is given with the conditioning, before Day 0; the days are the protocol's"),
    )
    growth_factor_earliest_day: int = Field(
        5, json_schema_extra=_src("F:SRL-BEAM (filgrastim 5 ug/kg from Day +5 until engraftment)")
    )

    # Time
    future_tolerance_minutes: int = Field(
        5, ge=0, json_schema_extra=_src("S: clock skew allowed for an effective time ahead of now")
    )
    earliest_referral_days: int = Field(
        3653,
        ge=0,
        json_schema_extra=_src("S: a referral may be back-dated up to ten years, to enter a programme's past records"),
    )

    # Input bounds (not clinical): what one command's payload may hold before anything is written.
    max_payload_bytes: int = Field(
        32_768, ge=1024, json_schema_extra=_src("S: about ten times the largest valid payload (a donor with notes)")
    )
    max_payload_depth: int = Field(
        12, ge=4, json_schema_extra=_src("S: the deepest valid payload (a correction of a donor's HLA) nests 5")
    )

    roles: dict[str, frozenset[Role]] = Field(default_factory=lambda: dict(DEFAULT_ROLES))
    infusion_verifier_roles: frozenset[Role] = Field(
        frozenset({P, RN}), json_schema_extra=_src("F:NMDP-CLEAR, FACT-JACIE chain of identity")
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_zone_name(value):
            raise ValueError(f"unknown IANA timezone {value!r}")
        return value

    @field_validator("roles")
    @classmethod
    def _complete_roles(cls, value: dict[str, frozenset[Role]]) -> dict[str, frozenset[Role]]:
        unknown = sorted(set(value) - set(DEFAULT_ROLES))
        if unknown:
            raise ValueError(f"role table names unknown triggers or events: {', '.join(unknown)}")
        return {**DEFAULT_ROLES, **value}

    @model_validator(mode="after")
    def _windows(self) -> Policy:
        for name in ("day100_window", "day30_window", "month6_window", "year1_window", "conditioning_length_days",
                     "atg_days"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be (first day, last day) with first <= last")
        missing = set(GraftSource) - set(self.primary_graft_failure_day)
        if missing:
            raise ValueError(f"primary_graft_failure_day lacks {', '.join(sorted(missing))}")
        return self

    @cached_property
    def version_id(self) -> str:
        """The declared version, else a short content hash: stored on every entry (computed once)."""
        if self.version:
            return self.version
        return "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def canonical_json(self) -> str:
        """The policy's whole content as the exact JSON text its content hash is taken over:
        what the policy registry stores, and what `policy_from_canonical` reads back."""
        return json.dumps(_sets_sorted(self.model_dump()), sort_keys=True, separators=(",", ":"))

    def may(self, role: Role, command: str) -> bool:
        return role in self.roles.get(command, frozenset())


def _sets_sorted(value: Any) -> Any:
    """Plain JSON with every set as a sorted list: the content hash must not depend on the
    process's hash seed (set iteration order)."""
    if isinstance(value, dict):
        return {str(_sets_sorted(k)): _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_sets_sorted(v) for v in value)
    if isinstance(value, list | tuple):
        return [_sets_sorted(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def policy_from_canonical(text: str, *, origin: str = "policy registry") -> Policy:
    """A policy from its `canonical_json` text (a registry row): the same rules, the same version."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PolicyError(f"{origin}: not JSON") from exc
    return policy_from_mapping(data, origin=origin)


def policy_from_mapping(data: Any, *, origin: str = "policy") -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise PolicyError(f"{origin}: {detail}") from exc
