"""HLA match grades and the donor rules (docs/clinical-rules.md, "HLA grade").

The x/8 grade counts alleles at HLA-A, -B, -C and -DRB1; x/10 adds DQB1 [F:PIDALA-2014],
[F:ASH-2022]. A candidate records per locus how many of the two alleles mismatch (0, 1 or 2)
and at which level (`LocusMatch`), so a locus scores 2/2, 1/2 or 0/2: a donor mismatched at
both alleles of one locus is a 6/8 donor, not a 7/8 one.

Verdicts are tuples of snake_case reason codes (public API); an empty tuple means acceptable.
Every threshold is a keyword argument (or a `CordRules` field) taken from the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, assert_never

from states.facts import DonorCandidate, DsaResult, LocusMatch
from states.vocabulary import DonorType, Locus

__all__ = [
    "ALLELES_PER_LOCUS",
    "CORD_UNIT_COUNT_INVALID",
    "CORD_UNIT_DOSE_INSUFFICIENT",
    "CORD_UNIT_HLA_C_MISMATCH",
    "CORD_UNIT_HLA_MISMATCH_EXCESS",
    "CORD_UNIT_NOT_CORD_BLOOD",
    "CORD_UNIT_SEGMENT_MISSING",
    "DOUBLE_UNIT",
    "DSA_NOT_NEGATIVE",
    "HAPLOTYPE_NOT_SHARED",
    "HLA_MATCH_INSUFFICIENT",
    "HLA_TYPING_INCOMPLETE",
    "LOCI_8",
    "LOCI_10",
    "MISMATCH_JUSTIFICATION_MISSING",
    "SINGLE_UNIT",
    "CordRules",
    "cord_dose_reasons",
    "cord_selection_reasons",
    "donor_rule_reasons",
    "dsa_reasons",
    "grade_8",
    "grade_10",
    "hla_rule_reasons",
    "match_grade",
    "mismatched_loci",
    "missing_loci",
]

# Reason codes (public API: they appear in refusal entries).
HLA_TYPING_INCOMPLETE = "hla_typing_incomplete"
HLA_MATCH_INSUFFICIENT = "hla_match_insufficient"
MISMATCH_JUSTIFICATION_MISSING = "mismatch_justification_missing"
DSA_NOT_NEGATIVE = "dsa_not_negative"
HAPLOTYPE_NOT_SHARED = "haplotype_not_shared"
CORD_UNIT_DOSE_INSUFFICIENT = "cord_unit_dose_insufficient"
CORD_UNIT_HLA_MISMATCH_EXCESS = "cord_unit_hla_mismatch_excess"
CORD_UNIT_HLA_C_MISMATCH = "cord_unit_hla_c_mismatch"
CORD_UNIT_COUNT_INVALID = "cord_unit_count_invalid"
CORD_UNIT_SEGMENT_MISSING = "cord_unit_segment_missing"
CORD_UNIT_NOT_CORD_BLOOD = "cord_unit_not_cord_blood"

# Definitions, not policy: which loci make each grade [F:PIDALA-2014], [F:ASH-2022].
LOCI_8: tuple[Locus, ...] = (Locus.A, Locus.B, Locus.C, Locus.DRB1)
LOCI_10: tuple[Locus, ...] = (*LOCI_8, Locus.DQB1)
ALLELES_PER_LOCUS = 2
# A cord graft is a single or a double unit [F:CORD-SEL], [F:CIBMTR-DONOR]: structure, not policy.
SINGLE_UNIT = 1
DOUBLE_UNIT = 2

Hla = Mapping[Locus, LocusMatch]


@dataclass(frozen=True, slots=True)
class CordRules:
    """The policy's cord blood rules ([F:CORD-SEL], [F:DEHN-2019]), read once by the guards."""

    single_min_tnc_x10e7_per_kg: float
    single_min_cd34_x10e5_per_kg: float
    double_min_tnc_x10e7_per_kg: float
    double_min_cd34_x10e5_per_kg: float
    dose_rule: Literal["tnc_and_cd34", "tnc_or_cd34"]
    max_hla_mismatches: int
    avoid_hla_c_mismatch: bool
    dsa_rule: Literal["refuse_positive", "require_negative", "not_checked"]


def missing_loci(hla: Hla, loci: Sequence[Locus]) -> tuple[Locus, ...]:
    """The loci of `loci` (in that order) with no recorded result."""
    return tuple(locus for locus in loci if locus not in hla)


def _require_typed(hla: Hla, loci: Sequence[Locus]) -> None:
    absent = missing_loci(hla, loci)
    if absent:
        names = ", ".join(str(locus) for locus in absent)
        raise ValueError(f"HLA typing incomplete: no result at {names}")


def match_grade(hla: Hla, loci: Sequence[Locus]) -> tuple[int, int]:
    """(alleles matched, alleles compared) over `loci`, 2 alleles per locus [F:PIDALA-2014].

    A locus scores 2 minus its mismatches, allele or antigen level alike. Raises ValueError when
    a locus of `loci` has no result: an untyped locus has no grade.
    """
    _require_typed(hla, loci)
    return sum(ALLELES_PER_LOCUS - hla[locus].mismatches for locus in loci), ALLELES_PER_LOCUS * len(loci)


def grade_8(hla: Hla) -> tuple[int, int]:
    """The x/8 grade at HLA-A, -B, -C, -DRB1 [F:PIDALA-2014]."""
    return match_grade(hla, LOCI_8)


def grade_10(hla: Hla) -> tuple[int, int]:
    """The x/10 grade: x/8 plus DQB1 [F:ASH-2022]."""
    return match_grade(hla, LOCI_10)


def mismatched_loci(hla: Hla, loci: Sequence[Locus]) -> tuple[Locus, ...]:
    """The loci of `loci` (in that order) with at least one allele- or antigen-level mismatch.

    Raises ValueError when a locus of `loci` has no result (§1.3 [S]: store per-locus results).
    """
    _require_typed(hla, loci)
    return tuple(locus for locus in loci if hla[locus].mismatches)


def _mismatches_8(candidate: DonorCandidate) -> int:
    matched, compared = grade_8(candidate.hla)
    return compared - matched


def _dedupe(reasons: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def hla_rule_reasons(
    candidate: DonorCandidate,
    *,
    min_matches_8: int,
    mismatched_unrelated_min_matches_8: int,
    cord: CordRules,
) -> tuple[str, ...]:
    """Why `candidate` fails the donor rule of its donor type, DSA aside (`dsa_reasons`).

    The donor rules (docs/clinical-rules.md):

    - every type: a result at each of A, B, C, DRB1, else `hla_typing_incomplete` (the grade
      checks below are then skipped; checks that do not need the grade still run);
    - `matched_sibling`, `matched_unrelated`: x/8 >= `min_matches_8` (8), else
      `hla_match_insufficient` [F:MSD-HLA], [F:PIDALA-2014];
    - `mismatched_unrelated`: x/8 >= `mismatched_unrelated_min_matches_8` (7), else
      `hla_match_insufficient`; below `min_matches_8` it also needs a written justification
      (`mismatch_justification_missing`) [F:MDRI];
    - `haploidentical`: haplotype shared (`haplotype_not_shared`) [F:HAPLO-BAC];
    - `cord_blood` (one unit on its own): the per-unit cord rules (`cord_selection_reasons`
      judges a selection, doses included).
    """
    reasons: list[str] = []
    typed = not missing_loci(candidate.hla, LOCI_8)
    if not typed:
        reasons.append(HLA_TYPING_INCOMPLETE)
    matched = grade_8(candidate.hla)[0] if typed else None

    match candidate.donor_type:
        case DonorType.MATCHED_SIBLING | DonorType.MATCHED_UNRELATED:
            if matched is not None and matched < min_matches_8:
                reasons.append(HLA_MATCH_INSUFFICIENT)
        case DonorType.MISMATCHED_UNRELATED:
            if matched is not None:
                if matched < mismatched_unrelated_min_matches_8:
                    reasons.append(HLA_MATCH_INSUFFICIENT)
                if matched < min_matches_8 and not (candidate.justification and candidate.justification.strip()):
                    reasons.append(MISMATCH_JUSTIFICATION_MISSING)
        case DonorType.HAPLOIDENTICAL:
            if not candidate.haplotype_shared:
                reasons.append(HAPLOTYPE_NOT_SHARED)
        case DonorType.CORD_BLOOD:
            reasons.extend(_cord_unit_reasons(candidate, cord))
        case _:  # pragma: no cover - exhaustive
            assert_never(candidate.donor_type)
    return _dedupe(reasons)


def dsa_reasons(candidate: DonorCandidate, *, min_matches_8: int, cord: CordRules) -> tuple[str, ...]:
    """`dsa_not_negative` when the donor rule needs a DSA result `candidate` lacks.

    Mismatched unrelated below `min_matches_8`: a negative DSA [F:MDRI], ref. §1.3 [S];
    haploidentical: negative, or a recorded desensitization plan [F:EBMT-DSA]; cord unit: per
    `cord.dsa_rule` (avoid units the patient has DSA against [F:CORD-SEL]). A selection judges
    it at once; an emergency donor is selected first and judged at clearance and infusion.
    """
    negative = candidate.dsa is DsaResult.NEGATIVE
    match candidate.donor_type:
        case DonorType.MISMATCHED_UNRELATED:
            typed = not missing_loci(candidate.hla, LOCI_8)
            needed = typed and grade_8(candidate.hla)[0] < min_matches_8
            failed = needed and not negative
        case DonorType.HAPLOIDENTICAL:
            failed = not negative and not candidate.desensitization_plan
        case DonorType.CORD_BLOOD:
            failed = _cord_dsa_failed(candidate, cord)
        case DonorType.MATCHED_SIBLING | DonorType.MATCHED_UNRELATED:
            failed = False
        case _:  # pragma: no cover - exhaustive
            assert_never(candidate.donor_type)
    return (DSA_NOT_NEGATIVE,) if failed else ()


def donor_rule_reasons(
    candidate: DonorCandidate,
    *,
    min_matches_8: int,
    mismatched_unrelated_min_matches_8: int,
    cord: CordRules,
) -> tuple[str, ...]:
    """Why `candidate` fails the donor rule of its donor type: `hla_rule_reasons` then
    `dsa_reasons` (empty tuple: acceptable)."""
    hla_rules = hla_rule_reasons(
        candidate,
        min_matches_8=min_matches_8,
        mismatched_unrelated_min_matches_8=mismatched_unrelated_min_matches_8,
        cord=cord,
    )
    return _dedupe([*hla_rules, *dsa_reasons(candidate, min_matches_8=min_matches_8, cord=cord)])


def _cord_dsa_failed(unit: DonorCandidate, cord: CordRules) -> bool:
    match cord.dsa_rule:
        case "refuse_positive":
            return unit.dsa is DsaResult.POSITIVE
        case "require_negative":
            return unit.dsa is not DsaResult.NEGATIVE
        case "not_checked":
            return False
        case _:  # pragma: no cover - exhaustive
            assert_never(cord.dsa_rule)


def _cord_unit_reasons(unit: DonorCandidate, cord: CordRules) -> list[str]:
    """Per-unit cord checks that do not depend on how many units are selected [F:CORD-SEL]."""
    reasons: list[str] = []
    if unit.donor_type is not DonorType.CORD_BLOOD:
        reasons.append(CORD_UNIT_NOT_CORD_BLOOD)
    if missing_loci(unit.hla, LOCI_8):
        reasons.append(HLA_TYPING_INCOMPLETE)
    else:
        if _mismatches_8(unit) > cord.max_hla_mismatches:
            reasons.append(CORD_UNIT_HLA_MISMATCH_EXCESS)
        if cord.avoid_hla_c_mismatch and unit.hla[Locus.C].mismatches:
            reasons.append(CORD_UNIT_HLA_C_MISMATCH)
    if not unit.attached_segment:
        reasons.append(CORD_UNIT_SEGMENT_MISSING)
    return reasons


def _at_least(value: float | None, minimum: float) -> bool:
    return value is not None and value >= minimum


def _dose_met(unit: DonorCandidate, min_tnc: float, min_cd34: float, rule: str) -> bool:
    tnc = _at_least(unit.tnc_x10e7_per_kg, min_tnc)
    cd34 = _at_least(unit.cd34_x10e5_per_kg, min_cd34)
    return tnc and cd34 if rule == "tnc_and_cd34" else tnc or cd34


def cord_dose_reasons(units: Sequence[DonorCandidate], cord: CordRules) -> tuple[str, ...]:
    """`cord_unit_dose_insufficient` unless one or two units meet the cord dose rule.

    One unit: TNC >= `single_min_tnc_x10e7_per_kg` (3.0) and CD34+ >=
    `single_min_cd34_x10e5_per_kg` (1.5) [F:DEHN-2019]; two units: each TNC >=
    `double_min_tnc_x10e7_per_kg` (1.5) and CD34+ >= `double_min_cd34_x10e5_per_kg` (1.0)
    [F:CORD-SEL]. `dose_rule` "tnc_or_cd34" lets either dose suffice (the "and/or" reading of
    [F:CORD-SEL]). A missing dose never qualifies. Other unit counts: no verdict here.
    """
    if len(units) == SINGLE_UNIT:
        minimums = (cord.single_min_tnc_x10e7_per_kg, cord.single_min_cd34_x10e5_per_kg)
    elif len(units) == DOUBLE_UNIT:
        minimums = (cord.double_min_tnc_x10e7_per_kg, cord.double_min_cd34_x10e5_per_kg)
    else:
        return ()
    met = all(_dose_met(unit, *minimums, cord.dose_rule) for unit in units)
    return () if met else (CORD_UNIT_DOSE_INSUFFICIENT,)


def cord_selection_reasons(units: Sequence[DonorCandidate], cord: CordRules) -> tuple[str, ...]:
    """Why a selection of cord blood units fails the cord rules (empty tuple: acceptable).

    [F:CORD-SEL], [F:DEHN-2019], donor rules (`cord_blood`):

    - one or two distinct units, else `cord_unit_count_invalid` (the dose rule is then skipped);
    - the dose rule of `cord_dose_reasons` (`cord_unit_dose_insufficient`);
    - every unit: typed at A, B, C, DRB1 (`hla_typing_incomplete`), at most
      `max_hla_mismatches` (2) mismatches over those 8 alleles (`cord_unit_hla_mismatch_excess`),
      no HLA-C mismatch when `avoid_hla_c_mismatch` (`cord_unit_hla_c_mismatch`), an attached
      segment (`cord_unit_segment_missing`), donor type `cord_blood` (`cord_unit_not_cord_blood`)
      and a DSA result acceptable to `dsa_rule` (`dsa_not_negative`).
    """
    reasons: list[str] = []
    refs = [unit.donor_ref for unit in units]
    if len(units) not in (SINGLE_UNIT, DOUBLE_UNIT) or len(set(refs)) != len(refs):
        reasons.append(CORD_UNIT_COUNT_INVALID)
    else:
        reasons.extend(cord_dose_reasons(units, cord))
    for unit in units:
        reasons.extend(_cord_unit_reasons(unit, cord))
        if _cord_dsa_failed(unit, cord):
            reasons.append(DSA_NOT_NEGATIVE)
    return _dedupe(reasons)
