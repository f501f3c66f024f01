"""HLA grades and donor rules (PATHWAY.md "Donor rules"; HSCT_REFERENCE.md §1.2-§1.5, S05, S07, S14).

Policy values are the defaults: 8/8 for matched donors, 7/8 for a mismatched unrelated donor;
cord single unit TNC >= 3.0 x10^7/kg and CD34+ >= 1.5 x10^5/kg (NMDP guidance, Dehn 2019),
double unit each TNC >= 1.5 and CD34+ >= 1.0, at most 2 HLA mismatches per unit, no HLA-C
mismatch, no unit the patient has DSA against [F:CORD-SEL], [F:DEHN-2019].
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.facts import DonorCandidate, DsaResult, HlaResult, LocusMatch
from states.hla import (
    LOCI_8,
    LOCI_10,
    CordRules,
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
# The published cord rules (Dehn 2019 NMDP guidance; ASH-SAP table), written out here.
CORD = CordRules(
    single_min_tnc_x10e7_per_kg=3.0,
    single_min_cd34_x10e5_per_kg=1.5,
    double_min_tnc_x10e7_per_kg=1.5,
    double_min_cd34_x10e5_per_kg=1.0,
    dose_rule="tnc_and_cd34",
    max_hla_mismatches=2,
    avoid_hla_c_mismatch=True,
    dsa_rule="refuse_positive",
)

M = LocusMatch()
AL = LocusMatch(allele_mismatches=1)
AG = LocusMatch(antigen_mismatches=1)
AL2 = LocusMatch(allele_mismatches=2)  # both alleles of the locus differ
AG2 = LocusMatch(antigen_mismatches=2)
AG_AL = LocusMatch(antigen_mismatches=1, allele_mismatches=1)


def typed(**mismatches: LocusMatch) -> dict[Locus, LocusMatch]:
    """A 10-locus typing, all matched except the loci given (by name)."""
    hla = dict.fromkeys((*LOCI_10, Locus.DPB1), M)
    hla.update({Locus(name): result for name, result in mismatches.items()})
    return hla


def candidate(donor_type: DonorType, hla: dict[Locus, LocusMatch] | None = None, **kw: Any) -> DonorCandidate:
    return DonorCandidate(donor_ref="D1", donor_type=donor_type, hla=typed() if hla is None else hla, **kw)


def rules(c: DonorCandidate) -> tuple[str, ...]:
    return donor_rule_reasons(
        c,
        min_matches_8=MIN_MATCHES_8,
        mismatched_unrelated_min_matches_8=MMUD_MIN_MATCHES_8,
        cord=CORD,
    )


def cords(*units: DonorCandidate, **changes: Any) -> tuple[str, ...]:
    return cord_selection_reasons(units, replace(CORD, **changes))


# --- grades -----------------------------------------------------------------------------------


def test_full_match_is_8_of_8_and_10_of_10() -> None:
    # S07: CT result donor A 8/8 (10/10).
    assert grade_8(typed()) == (8, 8)
    assert grade_10(typed()) == (10, 10)


@pytest.mark.parametrize("result", [AL, AG])
def test_one_mismatch_at_a_locus_is_7_of_8(result: LocusMatch) -> None:
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


@pytest.mark.parametrize("double", [AL2, AG2, AG_AL])
def test_a_double_mismatch_at_one_locus_is_6_of_8(double: LocusMatch) -> None:
    # Both alleles of HLA-B differ: 2 of the 8 alleles mismatch (Pidala 2014: 6/8).
    hla = typed(B=double)
    assert grade_8(hla) == (6, 8)
    assert grade_10(hla) == (8, 10)
    assert mismatched_loci(hla, LOCI_8) == (Locus.B,)


def test_x10_counts_a_double_dqb1_mismatch() -> None:
    assert grade_10(typed(DQB1=AG2)) == (8, 10)
    assert grade_10(typed(A=AL, DQB1=AL2)) == (7, 10)


def test_a_locus_has_two_alleles() -> None:
    with pytest.raises(ValueError, match="at most 2"):
        LocusMatch(antigen_mismatches=2, allele_mismatches=1)


@pytest.mark.parametrize(
    ("old", "new"), [(HlaResult.MATCH, M), (HlaResult.ALLELE_MISMATCH, AL), (HlaResult.ANTIGEN_MISMATCH, AG)]
)
def test_the_first_per_locus_vocabulary_still_reads(old: HlaResult, new: LocusMatch) -> None:
    c = DonorCandidate.model_validate({"donor_ref": "D1", "donor_type": "matched_unrelated", "hla": {"A": old.value}})
    assert c.hla[Locus.A] == new


counts_ = st.sampled_from([M, AL, AG, AL2, AG2, AG_AL])


@given(st.dictionaries(st.sampled_from(list(LOCI_10)), counts_, min_size=5, max_size=5))
def test_grade_counts_every_mismatched_allele(hla: dict[Locus, LocusMatch]) -> None:
    for loci in (LOCI_8, LOCI_10):
        matched, compared = match_grade(hla, loci)
        assert compared == 2 * len(loci)
        assert compared - matched == sum(hla[locus].mismatches for locus in loci)
        assert set(mismatched_loci(hla, loci)) == {locus for locus in loci if hla[locus] != M}


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


def test_a_true_6_of_8_unrelated_donor_is_refused() -> None:
    # Both HLA-A alleles mismatched: 6/8, below the 7/8 floor for a mismatched unrelated donor.
    c = candidate(DonorType.MISMATCHED_UNRELATED, typed(A=AL2), justification="x", dsa=DsaResult.NEGATIVE)
    assert rules(c) == ("hla_match_insufficient",)


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
    # TNC 2.2 < 3.0 and CD34+ 1.3 < 1.5.
    assert cords(S14_A) == ("cord_unit_dose_insufficient",)


# Single unit (Dehn 2019): TNC >= 3.0 x10^7/kg AND CD34+ >= 1.5 x10^5/kg.
@pytest.mark.parametrize(("tnc", "cd34"), [(3.0, 1.5), (4.2, 2.0)])
def test_single_unit_meeting_tnc_and_cd34(tnc: float, cd34: float) -> None:
    assert cords(unit("U", tnc, cd34)) == ()


@pytest.mark.parametrize(
    ("tnc", "cd34"),
    [(1.0, 1.5), (3.4, 0.3), (2.99, 1.5), (3.0, 1.49), (3.0, None), (None, 2.0), (None, None)],
)
def test_single_unit_short_of_either_dose_is_refused(tnc: float | None, cd34: float | None) -> None:
    # The reviewed defect: TNC 1.0 + CD34 1.5 and TNC 3.4 + CD34 0.3 both passed.
    assert cords(unit("U", tnc, cd34)) == ("cord_unit_dose_insufficient",)


def test_either_dose_suffices_under_the_and_or_reading() -> None:
    assert cords(unit("U", 1.0, 1.5), dose_rule="tnc_or_cd34") == ()
    assert cords(unit("U", 3.4, 0.3), dose_rule="tnc_or_cd34") == ()
    assert cords(unit("U", 2.9, 1.4), dose_rule="tnc_or_cd34") == ("cord_unit_dose_insufficient",)


# Double unit: each TNC >= 1.5 x10^7/kg and CD34+ >= 1.0 x10^5/kg.
def test_double_unit_needs_tnc_and_cd34_on_each_unit() -> None:
    assert cords(unit("A", 1.5, 1.0), unit("B", 1.5, 1.0)) == ()
    assert cords(unit("A", 1.5, 1.0), unit("B", 1.49, 5.0)) == ("cord_unit_dose_insufficient",)
    assert cords(unit("A", 3.0, 2.0), unit("B", 2.0, 0.9)) == ("cord_unit_dose_insufficient",)
    assert cords(unit("A", 3.0, 2.0), unit("B", 2.0)) == ("cord_unit_dose_insufficient",)
    assert cords(unit("A", 3.0, 2.0), unit("B", None)) == ("cord_unit_dose_insufficient",)


def test_unit_with_an_hla_c_mismatch() -> None:
    c_mismatch = unit("A", 3.0, 1.5, hla=typed(C=AL))
    assert cords(c_mismatch) == ("cord_unit_hla_c_mismatch",)
    assert cords(c_mismatch, avoid_hla_c_mismatch=False) == ()


@pytest.mark.parametrize(
    ("rule", "dsa", "refused"),
    [
        ("refuse_positive", DsaResult.POSITIVE, True),
        ("refuse_positive", DsaResult.NOT_TESTED, False),
        ("refuse_positive", DsaResult.NEGATIVE, False),
        ("require_negative", DsaResult.NOT_TESTED, True),
        ("require_negative", DsaResult.NEGATIVE, False),
        ("not_checked", DsaResult.POSITIVE, False),
    ],
)
def test_cord_dsa_rule(rule: str, dsa: DsaResult, refused: bool) -> None:
    reasons = cords(unit("A", 3.0, 1.5, dsa=dsa), dsa_rule=rule)
    assert reasons == (("dsa_not_negative",) if refused else ())


def test_unit_count() -> None:
    assert cords() == ("cord_unit_count_invalid",)
    assert cords(unit("A", 3.0), unit("B", 3.0), unit("C", 3.0)) == ("cord_unit_count_invalid",)
    assert cords(unit("A", 3.0), unit("A", 3.0)) == ("cord_unit_count_invalid",)


def test_unit_with_more_than_two_mismatches() -> None:
    two = unit("A", 3.0, 1.5, hla=typed(A=AG, B=AL))
    three = unit("B", 3.0, 1.5, hla=typed(A=AG, B=AL, DRB1=AL))
    double_at_one_locus = unit("C", 3.0, 1.5, hla=typed(DRB1=AL2, A=AG))
    assert cords(two) == ()
    assert cords(three) == ("cord_unit_hla_mismatch_excess",)
    assert cords(two, three) == ("cord_unit_hla_mismatch_excess",)
    assert cords(double_at_one_locus) == ("cord_unit_hla_mismatch_excess",)


def test_unit_without_attached_segment() -> None:
    assert cords(unit("A", 3.0, 1.5, attached_segment=False)) == ("cord_unit_segment_missing",)
    assert cords(S14_A, unit("B", 1.7, 1.1, attached_segment=False)) == ("cord_unit_segment_missing",)


def test_unit_with_incomplete_typing_and_non_cord_units() -> None:
    hla = typed()
    del hla[Locus.C]
    assert cords(unit("A", 3.0, 1.5, hla=hla)) == ("hla_typing_incomplete",)
    not_cord = DonorCandidate(
        donor_ref="X",
        donor_type=DonorType.MATCHED_UNRELATED,
        hla=typed(),
        attached_segment=True,
        tnc_x10e7_per_kg=3.0,
        cd34_x10e5_per_kg=1.5,
    )
    assert cords(not_cord) == ("cord_unit_not_cord_blood",)


def test_several_reasons_are_all_reported_once() -> None:
    bad = unit("A", 1.0, hla=typed(A=AG, B=AG, C=AG), attached_segment=False)
    worse = unit("B", 1.0, hla=typed(A=AG, B=AG, C=AG), attached_segment=False)
    assert cords(bad, worse) == (
        "cord_unit_dose_insufficient",
        "cord_unit_hla_mismatch_excess",
        "cord_unit_hla_c_mismatch",
        "cord_unit_segment_missing",
    )


def test_mismatched_unrelated_labelled_donor_at_8_of_8_needs_no_justification() -> None:
    # Justification and DSA are required below 8/8 only (HSCT_REFERENCE.md §1.3 [S]).
    assert rules(candidate(DonorType.MISMATCHED_UNRELATED)) == ()
