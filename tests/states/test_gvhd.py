"""MAGIC acute GVHD staging and grading (HSCT_REFERENCE.md §2 table and grade rules; S17)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.facts import GvhdAssessment
from states.gvhd import GvhdStages, max_grade, organ_stages, overall_grade

AT = datetime(2026, 4, 15, 9, 0, tzinfo=UTC)


def assess(**kw: float | bool) -> GvhdAssessment:
    return GvhdAssessment(at=AT, **kw)


def test_s17_is_grade_iii_not_ii() -> None:
    # 04-15 [D+28]: skin 30 % BSA (stage 2), bilirubin 1.4 (liver 0), stool 1200 mL/day (lower GI 2).
    a = assess(skin_bsa_pct=30, bilirubin_mg_per_dl=1.4, stool_ml_per_day=1200)
    assert organ_stages(a) == GvhdStages(skin=2, liver=0, upper_gi=0, lower_gi=2)
    assert overall_grade(organ_stages(a)) == 3


def test_s17_max_grade_over_the_course() -> None:
    d28 = assess(skin_bsa_pct=30, bilirubin_mg_per_dl=1.4, stool_ml_per_day=1200)
    d45 = GvhdAssessment(at=datetime(2026, 5, 2, 9, 0, tzinfo=UTC), stool_ml_per_day=400)
    assert overall_grade(organ_stages(d45)) == 0
    assert max_grade([d45, d28]) == 3
    assert max_grade([]) == 0


@pytest.mark.parametrize(
    ("bsa", "bullae", "stage"),
    [
        (0, False, 0),
        (1, False, 1),
        (24.9, False, 1),
        (25, False, 2),
        (50, False, 2),
        (50.1, False, 3),
        (100, False, 3),
        (60, True, 4),
    ],
)
def test_skin_stages(bsa: float, bullae: bool, stage: int) -> None:
    assert organ_stages(assess(skin_bsa_pct=bsa, skin_bullae=bullae)).skin == stage


@pytest.mark.parametrize(
    ("bilirubin", "stage"),
    [(0.0, 0), (1.9, 0), (2.0, 1), (3.0, 1), (3.1, 2), (6.0, 2), (6.1, 3), (15.0, 3), (15.1, 4), (30.0, 4)],
)
def test_liver_stages(bilirubin: float, stage: int) -> None:
    assert organ_stages(assess(bilirubin_mg_per_dl=bilirubin)).liver == stage


@pytest.mark.parametrize(
    ("stool", "severe", "stage"),
    [
        (0, False, 0),
        (499, False, 0),
        (500, False, 1),
        (999, False, 1),
        (1000, False, 2),
        (1500, False, 2),
        (1501, False, 3),
        (3000, False, 3),
        (200, True, 4),
    ],
)
def test_lower_gi_stages(stool: float, severe: bool, stage: int) -> None:
    assert organ_stages(assess(stool_ml_per_day=stool, lower_gi_severe=severe)).lower_gi == stage


def test_upper_gi_stage() -> None:
    assert organ_stages(assess(upper_gi=True)).upper_gi == 1
    assert organ_stages(assess()).upper_gi == 0


@pytest.mark.parametrize(
    ("stages", "grade"),
    [
        ((0, 0, 0, 0), 0),
        ((1, 0, 0, 0), 1),  # I: skin 1-2 only
        ((2, 0, 0, 0), 1),
        ((3, 0, 0, 0), 2),  # II: skin 3
        ((0, 1, 0, 0), 2),  # II: liver 1
        ((0, 0, 1, 0), 2),  # II: upper GI 1
        ((0, 0, 0, 1), 2),  # II: lower GI 1
        ((2, 0, 1, 1), 2),
        ((0, 2, 0, 0), 3),  # III: liver 2-3
        ((0, 3, 0, 0), 3),
        ((0, 0, 0, 2), 3),  # III: lower GI 2-3
        ((3, 1, 1, 3), 3),
        ((4, 0, 0, 0), 4),  # IV: stage 4 skin, liver or lower GI
        ((0, 4, 0, 0), 4),
        ((0, 0, 0, 4), 4),
        ((1, 0, 1, 4), 4),
    ],
)
def test_overall_grade_rules(stages: tuple[int, int, int, int], grade: int) -> None:
    skin, liver, upper, lower = stages
    assert overall_grade(GvhdStages(skin=skin, liver=liver, upper_gi=upper, lower_gi=lower)) == grade


@pytest.mark.parametrize("kw", [{"skin": 5}, {"skin": -1}, {"liver": 5}, {"upper_gi": 2}, {"lower_gi": 5}])
def test_stages_out_of_range_are_rejected(kw: dict[str, int]) -> None:
    base = {"skin": 0, "liver": 0, "upper_gi": 0, "lower_gi": 0}
    with pytest.raises(ValueError, match="stage must be"):
        GvhdStages(**{**base, **kw})


stages_ = st.builds(
    GvhdStages,
    skin=st.integers(0, 4),
    liver=st.integers(0, 4),
    upper_gi=st.integers(0, 1),
    lower_gi=st.integers(0, 4),
)
TOPS = {"skin": 4, "liver": 4, "upper_gi": 1, "lower_gi": 4}


@given(stages_, st.sampled_from(sorted(TOPS)))
def test_grade_never_decreases_when_one_organ_stage_increases(stages: GvhdStages, organ: str) -> None:
    current = getattr(stages, organ)
    for higher in range(current + 1, TOPS[organ] + 1):
        assert overall_grade(replace(stages, **{organ: higher})) >= overall_grade(stages)


@given(stages_)
def test_grade_is_0_to_4_and_0_only_without_involvement(stages: GvhdStages) -> None:
    grade = overall_grade(stages)
    assert 0 <= grade <= 4
    assert (grade == 0) == (stages == GvhdStages(0, 0, 0, 0))


assessments_ = st.builds(
    GvhdAssessment,
    at=st.just(AT),
    skin_bsa_pct=st.floats(0, 100),
    skin_bullae=st.booleans(),
    bilirubin_mg_per_dl=st.floats(0, 40),
    stool_ml_per_day=st.floats(0, 4000),
    lower_gi_severe=st.booleans(),
    upper_gi=st.booleans(),
)


@given(
    assessments_,
    st.sampled_from(["skin_bsa_pct", "bilirubin_mg_per_dl", "stool_ml_per_day"]),
    st.floats(0, 50),
)
def test_worse_findings_never_lower_a_stage_or_the_grade(a: GvhdAssessment, field: str, more: float) -> None:
    worse = a.model_copy(update={field: getattr(a, field) + more})
    before, after = organ_stages(a), organ_stages(worse)
    assert after.skin >= before.skin
    assert after.liver >= before.liver
    assert after.lower_gi >= before.lower_gi
    assert overall_grade(after) >= overall_grade(before)


@given(st.lists(assessments_, max_size=6))
def test_max_grade_is_the_worst_single_grade(items: list[GvhdAssessment]) -> None:
    expected = max((overall_grade(organ_stages(a)) for a in items), default=0)
    assert max_grade(items) == expected
