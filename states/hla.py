"""HLA match grades and the donor rules (HSCT_REFERENCE.md §1.3-§1.5; PATHWAY.md "Donor rules").

The x/8 grade counts alleles at HLA-A, -B, -C and -DRB1; x/10 adds DQB1 [F:PIDALA-2014],
[F:ASH-2022]. A candidate records one comparison per locus (`HlaResult`), so a locus scores
2/2 when it matches and 1/2 when it carries an allele- or antigen-level mismatch. A double
mismatch at one locus (both alleles differ) is not representable in this model and counts as
a single mismatch.

Verdicts are tuples of snake_case reason codes (public API); an empty tuple means acceptable.
Every threshold is a keyword argument taken from the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

from states.facts import DonorCandidate, DsaResult, HlaResult
from states.vocabulary import DonorType, Locus

__all__ = [
    "ALLELES_PER_LOCUS",
    "CORD_UNIT_COUNT_INVALID",
    "CORD_UNIT_DOSE_INSUFFICIENT",
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
    "cord_selection_reasons",
    "donor_rule_reasons",
    "grade_8",
    "grade_10",
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

_ALLELES_MATCHED: dict[HlaResult, int] = {
    HlaResult.MATCH: ALLELES_PER_LOCUS,
    HlaResult.ALLELE_MISMATCH: ALLELES_PER_LOCUS - 1,
    HlaResult.ANTIGEN_MISMATCH: ALLELES_PER_LOCUS - 1,
}


def missing_loci(hla: Mapping[Locus, HlaResult], loci: Sequence[Locus]) -> tuple[Locus, ...]:
    """The loci of `loci` (in that order) with no recorded result."""
    return tuple(locus for locus in loci if locus not in hla)


def _require_typed(hla: Mapping[Locus, HlaResult], loci: Sequence[Locus]) -> None:
    absent = missing_loci(hla, loci)
    if absent:
        names = ", ".join(str(locus) for locus in absent)
        raise ValueError(f"HLA typing incomplete: no result at {names}")


def match_grade(hla: Mapping[Locus, HlaResult], loci: Sequence[Locus]) -> tuple[int, int]:
    """(alleles matched, alleles compared) over `loci`, 2 alleles per locus [F:PIDALA-2014].

    MATCH scores 2/2; ALLELE_MISMATCH and ANTIGEN_MISMATCH score 1/2 (one mismatch at that
    locus; a double mismatch is not representable). Raises ValueError when a locus of `loci`
    has no result: an untyped locus has no grade.
    """
    _require_typed(hla, loci)
    return sum(_ALLELES_MATCHED[hla[locus]] for locus in loci), ALLELES_PER_LOCUS * len(loci)


def grade_8(hla: Mapping[Locus, HlaResult]) -> tuple[int, int]:
    """The x/8 grade at HLA-A, -B, -C, -DRB1 [F:PIDALA-2014]."""
    return match_grade(hla, LOCI_8)


def grade_10(hla: Mapping[Locus, HlaResult]) -> tuple[int, int]:
    """The x/10 grade: x/8 plus DQB1 [F:ASH-2022]."""
    return match_grade(hla, LOCI_10)


def mismatched_loci(hla: Mapping[Locus, HlaResult], loci: Sequence[Locus]) -> tuple[Locus, ...]:
    """The loci of `loci` (in that order) whose result is an allele or antigen mismatch.

    Raises ValueError when a locus of `loci` has no result (§1.3 [S]: store per-locus results).
    """
    _require_typed(hla, loci)
    return tuple(locus for locus in loci if hla[locus] is not HlaResult.MATCH)


def _mismatches_8(candidate: DonorCandidate) -> int:
    matched, compared = grade_8(candidate.hla)
    return compared - matched


def _dedupe(reasons: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def donor_rule_reasons(
    candidate: DonorCandidate,
    *,
    min_matches_8: int,
    mismatched_unrelated_min_matches_8: int,
    cord_max_hla_mismatches: int,
) -> tuple[str, ...]:
    """Why `candidate` fails the donor rule of its donor type (empty tuple: acceptable).

    PATHWAY.md "Donor rules", HSCT_REFERENCE.md §1.2-§1.5:

    - every type: a result at each of A, B, C, DRB1, else `hla_typing_incomplete` (the grade
      checks below are then skipped; checks that do not need the grade still run);
    - `matched_sibling`, `matched_unrelated`: x/8 >= `min_matches_8` (8), else
      `hla_match_insufficient` [F:MSD-HLA], [F:PIDALA-2014];
    - `mismatched_unrelated`: x/8 >= `mismatched_unrelated_min_matches_8` (7), else
      `hla_match_insufficient`; below `min_matches_8` (a real mismatch) it also needs a written
      justification (`mismatch_justification_missing`) and a negative DSA (`dsa_not_negative`)
      [F:MDRI], HSCT_REFERENCE.md §1.3 [S];
    - `haploidentical`: haplotype shared (`haplotype_not_shared`) and DSA negative or a recorded
      desensitization plan (`dsa_not_negative`) [F:HAPLO-BAC], [F:EBMT-DSA];
    - `cord_blood` (one unit on its own): at most `cord_max_hla_mismatches` (2) mismatches
      counted over the same 8 alleles (`cord_unit_hla_mismatch_excess`) and an attached segment
      (`cord_unit_segment_missing`) [F:CORD-SEL]. The dose rule depends on how many units are
      selected together: `cord_selection_reasons` judges the selection.
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
                if matched < min_matches_8:
                    if not (candidate.justification and candidate.justification.strip()):
                        reasons.append(MISMATCH_JUSTIFICATION_MISSING)
                    if candidate.dsa is not DsaResult.NEGATIVE:
                        reasons.append(DSA_NOT_NEGATIVE)
        case DonorType.HAPLOIDENTICAL:
            if not candidate.haplotype_shared:
                reasons.append(HAPLOTYPE_NOT_SHARED)
            if candidate.dsa is not DsaResult.NEGATIVE and not candidate.desensitization_plan:
                reasons.append(DSA_NOT_NEGATIVE)
        case DonorType.CORD_BLOOD:
            reasons.extend(_cord_unit_reasons(candidate, max_hla_mismatches=cord_max_hla_mismatches))
        case _:  # pragma: no cover - exhaustive
            assert_never(candidate.donor_type)
    return _dedupe(reasons)


def _cord_unit_reasons(unit: DonorCandidate, *, max_hla_mismatches: int) -> list[str]:
    """Per-unit cord checks that do not depend on how many units are selected [F:CORD-SEL]."""
    reasons: list[str] = []
    if unit.donor_type is not DonorType.CORD_BLOOD:
        reasons.append(CORD_UNIT_NOT_CORD_BLOOD)
    if missing_loci(unit.hla, LOCI_8):
        reasons.append(HLA_TYPING_INCOMPLETE)
    elif _mismatches_8(unit) > max_hla_mismatches:
        reasons.append(CORD_UNIT_HLA_MISMATCH_EXCESS)
    if not unit.attached_segment:
        reasons.append(CORD_UNIT_SEGMENT_MISSING)
    return reasons


def _at_least(value: float | None, minimum: float) -> bool:
    return value is not None and value >= minimum


def cord_selection_reasons(
    units: Sequence[DonorCandidate],
    *,
    single_min_tnc_x10e7_per_kg: float,
    single_min_cd34_x10e5_per_kg: float,
    double_min_tnc_x10e7_per_kg: float,
    max_hla_mismatches: int,
) -> tuple[str, ...]:
    """Why a selection of cord blood units fails the cord rules (empty tuple: acceptable).

    [F:CORD-SEL], PATHWAY.md "Donor rules" (`cord_blood`):

    - one or two distinct units, else `cord_unit_count_invalid` (the dose rule is then skipped);
    - one unit: TNC >= `single_min_tnc_x10e7_per_kg` (2.5) or CD34+ >=
      `single_min_cd34_x10e5_per_kg` (1.5), else `cord_unit_dose_insufficient`;
    - two units: each TNC >= `double_min_tnc_x10e7_per_kg` (1.5), else
      `cord_unit_dose_insufficient`; a missing dose never qualifies;
    - every unit: typed at A, B, C, DRB1 (`hla_typing_incomplete`), at most
      `max_hla_mismatches` (2) mismatches over those 8 alleles (`cord_unit_hla_mismatch_excess`),
      an attached segment (`cord_unit_segment_missing`), and donor type `cord_blood`
      (`cord_unit_not_cord_blood`).
    """
    reasons: list[str] = []
    refs = [unit.donor_ref for unit in units]
    if len(units) not in (SINGLE_UNIT, DOUBLE_UNIT) or len(set(refs)) != len(refs):
        reasons.append(CORD_UNIT_COUNT_INVALID)
    elif len(units) == SINGLE_UNIT:
        (unit,) = units
        if not (
            _at_least(unit.tnc_x10e7_per_kg, single_min_tnc_x10e7_per_kg)
            or _at_least(unit.cd34_x10e5_per_kg, single_min_cd34_x10e5_per_kg)
        ):
            reasons.append(CORD_UNIT_DOSE_INSUFFICIENT)
    elif not all(_at_least(unit.tnc_x10e7_per_kg, double_min_tnc_x10e7_per_kg) for unit in units):
        reasons.append(CORD_UNIT_DOSE_INSUFFICIENT)
    for unit in units:
        reasons.extend(_cord_unit_reasons(unit, max_hla_mismatches=max_hla_mismatches))
    return _dedupe(reasons)
