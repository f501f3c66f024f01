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


def assess(**kw: float | bool | None) -> GvhdAssessment:
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


# Skin, Harris 2016 / PDQ Table 4: stage 1 rash < 25 % BSA, 2 25-50 %, 3 > 50 %, 4 generalized
# erythroderma (> 50 % BSA) plus bullous formation and desquamation > 5 % BSA.
@pytest.mark.parametrize(
    ("bsa", "bullae_bsa", "stage"),
    [
        (0, 0, 0),
        (1, 0, 1),
        (24.9, 0, 1),
        (25, 0, 2),
        (50, 0, 2),
        (50.1, 0, 3),
        (100, 0, 3),
        (60, 5.0, 3),  # desquamation must exceed 5 % BSA
        (60, 5.1, 4),
        (100, 30, 4),
        (10, 10, 1),  # bullae on 10 % with a limited rash are not stage 4 (the reviewed defect)
        (50, 20, 2),  # erythroderma must exceed 50 %
    ],
)
def test_skin_stages(bsa: float, bullae_bsa: float, stage: int) -> None:
    a = assess(skin_bsa_pct=bsa, skin_bullae=bullae_bsa > 0, skin_bullae_bsa_pct=bullae_bsa)
    assert organ_stages(a).skin == stage


def test_bullae_without_extent_do_not_make_stage_4() -> None:
    # An entry from before the extent was recorded: bullae seen, extent unknown.
    assert organ_stages(assess(skin_bsa_pct=10, skin_bullae=True)).skin == 1
    assert organ_stages(assess(skin_bsa_pct=60, skin_bullae=True)).skin == 3


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


# Lower GI by episodes/day, adult (> 50 kg or weight not recorded): < 3, 3-4, 5-7, > 7.
@pytest.mark.parametrize(
    ("episodes", "stage"), [(0, 0), (2, 0), (3, 1), (4, 1), (5, 2), (7, 2), (8, 3), (15, 3)]
)
@pytest.mark.parametrize("weight", [None, 50.1, 80.0])
def test_lower_gi_adult_episode_bands(episodes: int, stage: int, weight: float | None) -> None:
    a = assess(stool_episodes_per_day=episodes, weight_kg=weight)
    assert organ_stages(a).lower_gi == stage


# Child (<= 50 kg): < 10 mL/kg/day or < 4 episodes; 10-19.9 or 4-6; 20-30 or 7-10; > 30 or > 10.
@pytest.mark.parametrize(
    ("ml_per_kg", "stage"),
    [(0, 0), (9.9, 0), (10, 1), (19.9, 1), (20, 2), (30, 2), (30.1, 3), (60, 3)],
)
def test_lower_gi_child_volume_bands(ml_per_kg: float, stage: int) -> None:
    weight = 20.0
    assert organ_stages(assess(stool_ml_per_day=ml_per_kg * weight, weight_kg=weight)).lower_gi == stage


@pytest.mark.parametrize(
    ("episodes", "stage"), [(3, 0), (4, 1), (6, 1), (7, 2), (10, 2), (11, 3)]
)
def test_lower_gi_child_episode_bands(episodes: int, stage: int) -> None:
    assert organ_stages(assess(stool_episodes_per_day=episodes, weight_kg=50.0)).lower_gi == stage


def test_child_bands_apply_at_50_kg_and_below() -> None:
    # 400 mL/day: adult stage 0 (< 500 mL); for a 25 kg child 16 mL/kg/day, stage 1.
    assert organ_stages(assess(stool_ml_per_day=400)).lower_gi == 0
    assert organ_stages(assess(stool_ml_per_day=400, weight_kg=25.0)).lower_gi == 1
    assert organ_stages(assess(stool_ml_per_day=400, weight_kg=60.0)).lower_gi == 0


def test_volume_and_episodes_take_the_higher_stage() -> None:
    # "500-999 mL or 3-4 episodes": either measure stages the organ; the worse one counts.
    assert organ_stages(assess(stool_ml_per_day=1200, stool_episodes_per_day=3)).lower_gi == 2
    assert organ_stages(assess(stool_ml_per_day=200, stool_episodes_per_day=8)).lower_gi == 3


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
    skin_bullae_bsa_pct=st.floats(0, 100),
    bilirubin_mg_per_dl=st.floats(0, 40),
    stool_ml_per_day=st.floats(0, 4000),
    stool_episodes_per_day=st.none() | st.integers(0, 20),
    weight_kg=st.none() | st.floats(5, 120),
    lower_gi_severe=st.booleans(),
    upper_gi=st.booleans(),
)


@given(
    assessments_,
    st.sampled_from(["skin_bsa_pct", "skin_bullae_bsa_pct", "bilirubin_mg_per_dl", "stool_ml_per_day"]),
    st.floats(0, 50),
)
def test_worse_findings_never_lower_a_stage_or_the_grade(a: GvhdAssessment, field: str, more: float) -> None:
    worse = a.model_copy(update={field: getattr(a, field) + more})
    before, after = organ_stages(a), organ_stages(worse)
    assert after.skin >= before.skin
    assert after.liver >= before.liver
    assert after.lower_gi >= before.lower_gi
    assert overall_grade(after) >= overall_grade(before)


@given(assessments_, st.integers(0, 20))
def test_more_stool_episodes_never_lower_the_lower_gi_stage(a: GvhdAssessment, more: int) -> None:
    worse = a.model_copy(update={"stool_episodes_per_day": (a.stool_episodes_per_day or 0) + more})
    assert organ_stages(worse).lower_gi >= organ_stages(a).lower_gi


@given(st.lists(assessments_, max_size=6))
def test_max_grade_is_the_worst_single_grade(items: list[GvhdAssessment]) -> None:
    expected = max((overall_grade(organ_stages(a)) for a in items), default=0)
    assert max_grade(items) == expected
