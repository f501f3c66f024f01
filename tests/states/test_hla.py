"""HLA grades and donor rules (PATHWAY.md "Donor rules"; HSCT_REFERENCE.md §1.2-§1.5, S05, S07, S14).

Policy values are the reference defaults: 8/8 for matched donors, 7/8 for a mismatched
unrelated donor, cord single unit TNC >= 2.5 x10^7/kg or CD34+ >= 1.5 x10^5/kg, double unit
each TNC >= 1.5, at most 2 HLA mismatches per unit [F:CORD-SEL].
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.facts import DonorCandidate, DsaResult, HlaResult
from states.hla import (
    LOCI_8,
    LOCI_10,
    cord_selection_reasons,
    donor_rule_reasons,
    grade_8,
    grade_10,
    match_grade,
    mismatched_loci,
)
from states.vocabulary import DonorType, Locus

MIN_MATCHES_8 = 8
MMUD_MIN_MATCHES_8 = 7
SINGLE_MIN_TNC = 2.5
SINGLE_MIN_CD34 = 1.5
DOUBLE_MIN_TNC = 1.5
MAX_CORD_MISMATCHES = 2

M, AL, AG = HlaResult.MATCH, HlaResult.ALLELE_MISMATCH, HlaResult.ANTIGEN_MISMATCH


def typed(**mismatches: HlaResult) -> dict[Locus, HlaResult]:
    """A 10-locus typing, all matched except the loci given (by name)."""
    hla = dict.fromkeys((*LOCI_10, Locus.DPB1), M)
    hla.update({Locus(name): result for name, result in mismatches.items()})
    return hla


def candidate(donor_type: DonorType, hla: dict[Locus, HlaResult] | None = None, **kw: Any) -> DonorCandidate:
    return DonorCandidate(donor_ref="D1", donor_type=donor_type, hla=typed() if hla is None else hla, **kw)


def rules(c: DonorCandidate) -> tuple[str, ...]:
    return donor_rule_reasons(
        c,
        min_matches_8=MIN_MATCHES_8,
        mismatched_unrelated_min_matches_8=MMUD_MIN_MATCHES_8,
        cord_max_hla_mismatches=MAX_CORD_MISMATCHES,
    )


def cords(*units: DonorCandidate) -> tuple[str, ...]:
    return cord_selection_reasons(
        units,
        single_min_tnc_x10e7_per_kg=SINGLE_MIN_TNC,
        single_min_cd34_x10e5_per_kg=SINGLE_MIN_CD34,
        double_min_tnc_x10e7_per_kg=DOUBLE_MIN_TNC,
        max_hla_mismatches=MAX_CORD_MISMATCHES,
    )


# --- grades -----------------------------------------------------------------------------------


def test_full_match_is_8_of_8_and_10_of_10() -> None:
    # S07: CT result donor A 8/8 (10/10).
    assert grade_8(typed()) == (8, 8)
    assert grade_10(typed()) == (10, 10)


@pytest.mark.parametrize("result", [AL, AG])
def test_one_mismatch_at_a_locus_is_7_of_8(result: HlaResult) -> None:
    hla = typed(C=result)
    assert grade_8(hla) == (7, 8)
    assert mismatched_loci(hla, LOCI_8) == (Locus.C,)


def test_dqb1_counts_in_x10_only_and_dpb1_in_neither() -> None:
    hla = typed(DQB1=AL, DPB1=AG)
    assert grade_8(hla) == (8, 8)
    assert grade_10(hla) == (9, 10)
    assert mismatched_loci(hla, LOCI_10) == (Locus.DQB1,)


def test_two_mismatched_loci() -> None:
    hla = typed(A=AG, DRB1=AL)
    assert grade_8(hla) == (6, 8)
    assert mismatched_loci(hla, LOCI_8) == (Locus.A, Locus.DRB1)


def test_untyped_locus_has_no_grade() -> None:
    hla = typed()
    del hla[Locus.DRB1]
    with pytest.raises(ValueError, match="DRB1"):
        grade_8(hla)
    with pytest.raises(ValueError, match="DRB1"):
        mismatched_loci(hla, LOCI_8)
    assert match_grade(hla, (Locus.A, Locus.B)) == (4, 4)


@given(st.dictionaries(st.sampled_from(list(LOCI_10)), st.sampled_from([M, AL, AG]), min_size=5, max_size=5))
def test_grade_and_mismatched_loci_agree(hla: dict[Locus, HlaResult]) -> None:
    for loci in (LOCI_8, LOCI_10):
        matched, compared = match_grade(hla, loci)
        assert compared == 2 * len(loci)
        assert compared - matched == len(mismatched_loci(hla, loci))


# --- donor rules ------------------------------------------------------------------------------


def test_matched_sibling_8_of_8_is_acceptable() -> None:
    # S05: sister, 10/10.
    assert rules(candidate(DonorType.MATCHED_SIBLING)) == ()


def test_matched_sibling_below_8_of_8_is_refused() -> None:
    assert rules(candidate(DonorType.MATCHED_SIBLING, typed(B=AL))) == ("hla_match_insufficient",)


def test_matched_unrelated_8_of_8_even_with_dqb1_mismatch() -> None:
    assert rules(candidate(DonorType.MATCHED_UNRELATED)) == ()
    assert rules(candidate(DonorType.MATCHED_UNRELATED, typed(DQB1=AL))) == ()
    assert rules(candidate(DonorType.MATCHED_UNRELATED, typed(A=AL))) == ("hla_match_insufficient",)


def test_mismatched_unrelated_7_of_8_with_justification_and_negative_dsa() -> None:
    ok = candidate(
        DonorType.MISMATCHED_UNRELATED,
        typed(C=AL),
        justification="no 8/8 donor in time",
        dsa=DsaResult.NEGATIVE,
    )
    assert rules(ok) == ()


@pytest.mark.parametrize("justification", [None, "", "   "])
def test_mismatched_unrelated_needs_a_written_justification(justification: str | None) -> None:
    c = candidate(
        DonorType.MISMATCHED_UNRELATED, typed(C=AL), justification=justification, dsa=DsaResult.NEGATIVE
    )
    assert rules(c) == ("mismatch_justification_missing",)


@pytest.mark.parametrize("dsa", [DsaResult.POSITIVE, DsaResult.NOT_TESTED])
def test_mismatched_unrelated_needs_a_negative_dsa(dsa: DsaResult) -> None:
    c = candidate(DonorType.MISMATCHED_UNRELATED, typed(C=AL), justification="urgent", dsa=dsa)
    assert rules(c) == ("dsa_not_negative",)


def test_mismatched_unrelated_6_of_8_is_refused() -> None:
    c = candidate(
        DonorType.MISMATCHED_UNRELATED, typed(A=AL, B=AG), justification="x", dsa=DsaResult.NEGATIVE
    )
    assert rules(c) == ("hla_match_insufficient",)
    bare = candidate(DonorType.MISMATCHED_UNRELATED, typed(A=AL, B=AG))
    assert set(rules(bare)) == {
        "hla_match_insufficient",
        "mismatch_justification_missing",
        "dsa_not_negative",
    }


def test_haploidentical_rules() -> None:
    haplo = typed(A=AG, B=AG, C=AL, DRB1=AG)
    shared = {"haplotype_shared": True}
    assert rules(candidate(DonorType.HAPLOIDENTICAL, haplo, dsa=DsaResult.NEGATIVE, **shared)) == ()
    assert (
        rules(
            candidate(
                DonorType.HAPLOIDENTICAL, haplo, dsa=DsaResult.POSITIVE, desensitization_plan=True, **shared
            )
        )
        == ()
    )
    assert rules(candidate(DonorType.HAPLOIDENTICAL, haplo, dsa=DsaResult.NEGATIVE)) == (
        "haplotype_not_shared",
    )
    assert rules(candidate(DonorType.HAPLOIDENTICAL, haplo, dsa=DsaResult.POSITIVE, **shared)) == (
        "dsa_not_negative",
    )
    assert rules(candidate(DonorType.HAPLOIDENTICAL, haplo, **shared)) == ("dsa_not_negative",)


@pytest.mark.parametrize("donor_type", list(DonorType))
@pytest.mark.parametrize("missing", list(LOCI_8))
def test_missing_locus_is_incomplete_typing_for_every_donor_type(
    donor_type: DonorType, missing: Locus
) -> None:
    hla = typed()
    del hla[missing]
    c = candidate(
        donor_type,
        hla,
        dsa=DsaResult.NEGATIVE,
        haplotype_shared=True,
        attached_segment=True,
        justification="j",
    )
    assert rules(c) == ("hla_typing_incomplete",)


def test_missing_dqb1_is_not_incomplete_for_the_8_locus_rules() -> None:
    hla = typed()
    del hla[Locus.DQB1]
    assert rules(candidate(DonorType.MATCHED_UNRELATED, hla)) == ()


def test_cord_unit_rules_in_donor_rule_reasons() -> None:
    assert rules(candidate(DonorType.CORD_BLOOD, typed(A=AG, DRB1=AL), attached_segment=True)) == ()
    assert rules(candidate(DonorType.CORD_BLOOD, typed(A=AG, B=AG, DRB1=AL), attached_segment=True)) == (
        "cord_unit_hla_mismatch_excess",
    )
    assert rules(candidate(DonorType.CORD_BLOOD)) == ("cord_unit_segment_missing",)


# --- cord selection (S14) -----------------------------------------------------------------------


def unit(ref: str, tnc: float | None, cd34: float | None = None, **kw: Any) -> DonorCandidate:
    fields: dict[str, Any] = {"hla": typed(A=AG), "attached_segment": True}
    fields.update(kw)
    return DonorCandidate(
        donor_ref=ref, donor_type=DonorType.CORD_BLOOD, tnc_x10e7_per_kg=tnc, cd34_x10e5_per_kg=cd34, **fields
    )


S14_A = unit("A", 2.2, 1.3, hla=typed(B=AG))  # 5/6
S14_B = unit("B", 1.7, 1.1, hla=typed(A=AG, DRB1=AL))  # 4/6
S14_C = unit("C", 1.2, hla=typed(B=AG))  # 5/6


def test_s14_units_a_and_b_pass_as_a_double() -> None:
    assert cords(S14_A, S14_B) == ()


def test_s14_unit_c_as_second_unit_is_refused() -> None:
    assert cords(S14_A, S14_C) == ("cord_unit_dose_insufficient",)


def test_s14_unit_a_alone_is_below_the_single_unit_dose() -> None:
    # TNC 2.2 < 2.5 and CD34+ 1.3 < 1.5.
    assert cords(S14_A) == ("cord_unit_dose_insufficient",)


@pytest.mark.parametrize(("tnc", "cd34"), [(2.5, None), (3.4, 0.5), (1.0, 1.5), (None, 2.0)])
def test_single_unit_needs_tnc_or_cd34(tnc: float | None, cd34: float | None) -> None:
    assert cords(unit("U", tnc, cd34)) == ()


@pytest.mark.parametrize(("tnc", "cd34"), [(2.49, 1.49), (None, None), (2.4, None)])
def test_single_unit_below_both_doses(tnc: float | None, cd34: float | None) -> None:
    assert cords(unit("U", tnc, cd34)) == ("cord_unit_dose_insufficient",)


def test_double_unit_needs_tnc_on_each_unit() -> None:
    assert cords(unit("A", 1.5), unit("B", 1.5)) == ()
    assert cords(unit("A", 1.5), unit("B", 1.49, 5.0)) == ("cord_unit_dose_insufficient",)
    assert cords(unit("A", 3.0), unit("B", None)) == ("cord_unit_dose_insufficient",)


def test_unit_count() -> None:
    assert cords() == ("cord_unit_count_invalid",)
    assert cords(unit("A", 3.0), unit("B", 3.0), unit("C", 3.0)) == ("cord_unit_count_invalid",)
    assert cords(unit("A", 3.0), unit("A", 3.0)) == ("cord_unit_count_invalid",)


def test_unit_with_more_than_two_mismatches() -> None:
    two = unit("A", 3.0, hla=typed(A=AG, C=AL))
    three = unit("B", 3.0, hla=typed(A=AG, C=AL, DRB1=AL))
    assert cords(two) == ()
    assert cords(three) == ("cord_unit_hla_mismatch_excess",)
    assert cords(two, three) == ("cord_unit_hla_mismatch_excess",)


def test_unit_without_attached_segment() -> None:
    assert cords(unit("A", 3.0, attached_segment=False)) == ("cord_unit_segment_missing",)
    assert cords(S14_A, unit("B", 1.7, attached_segment=False)) == ("cord_unit_segment_missing",)


def test_unit_with_incomplete_typing_and_non_cord_units() -> None:
    hla = typed()
    del hla[Locus.C]
    assert cords(unit("A", 3.0, hla=hla)) == ("hla_typing_incomplete",)
    not_cord = DonorCandidate(
        donor_ref="X",
        donor_type=DonorType.MATCHED_UNRELATED,
        hla=typed(),
        attached_segment=True,
        tnc_x10e7_per_kg=3.0,
    )
    assert cords(not_cord) == ("cord_unit_not_cord_blood",)


def test_several_reasons_are_all_reported_once() -> None:
    bad = unit("A", 1.0, hla=typed(A=AG, B=AG, C=AG), attached_segment=False)
    worse = unit("B", 1.0, hla=typed(A=AG, B=AG, C=AG), attached_segment=False)
    assert cords(bad, worse) == (
        "cord_unit_dose_insufficient",
        "cord_unit_hla_mismatch_excess",
        "cord_unit_segment_missing",
    )


def test_mismatched_unrelated_labelled_donor_at_8_of_8_needs_no_justification() -> None:
    # Justification and DSA are required below 8/8 only (HSCT_REFERENCE.md §1.3 [S]).
    assert rules(candidate(DonorType.MISMATCHED_UNRELATED)) == ()
