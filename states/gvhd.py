"""Acute GVHD organ staging and overall grade, MAGIC criteria (docs/clinical-rules.md).

Organ stages follow the MAGIC staging table [F:PDQ-MAGIC], [F:HARRIS-2016]; the overall grade
follows the MAGIC grade rules ([F:HARRIS-2016]; Glucksberg grading [F:GLUCKSBERG] agrees on the
scenarios). The band edges are the published definition, not program policy, so they are
module constants here (as the HLA loci of a grade are in `states.hla`).

Lower GI is staged by stool volume (mL/day, 3-day average) and by stool episodes per day,
whichever gives the higher stage, both "or" criteria of the table. A patient weighing 50 kg or
less is staged on the child bands (mL/kg/day and child episode counts): the adult values apply
above 50 kg [F:PDQ-MAGIC]. Without a recorded weight the adult bands apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from states.facts import GvhdAssessment

__all__ = [
    "ADULT_STOOL_EPISODE_BANDS",
    "ADULT_STOOL_ML_BANDS",
    "CHILD_MAX_WEIGHT_KG",
    "CHILD_STOOL_EPISODE_BANDS",
    "CHILD_STOOL_ML_PER_KG_BANDS",
    "LIVER_STAGE1_MIN_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE2_ABOVE_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE3_ABOVE_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE4_ABOVE_BILIRUBIN_MG_PER_DL",
    "SKIN_STAGE2_MIN_BSA_PCT",
    "SKIN_STAGE3_ABOVE_BSA_PCT",
    "SKIN_STAGE4_BULLAE_ABOVE_BSA_PCT",
    "Bands",
    "GvhdStages",
    "max_grade",
    "organ_stages",
    "overall_grade",
]

# Skin, active erythema as % body surface area [F:PDQ-MAGIC]: stage 1 < 25 %, stage 2 25-50 %,
# stage 3 > 50 %; stage 4 generalized erythroderma (> 50 %) plus bullous formation and
# desquamation over > 5 % BSA [F:HARRIS-2016].
SKIN_STAGE2_MIN_BSA_PCT = 25.0
SKIN_STAGE3_ABOVE_BSA_PCT = 50.0
SKIN_STAGE4_BULLAE_ABOVE_BSA_PCT = 5.0

# Liver, total bilirubin mg/dL [F:PDQ-MAGIC]: stage 0 < 2, 1 = 2-3, 2 = 3.1-6, 3 = 6.1-15, 4 > 15.
# The published bands are written to one decimal; a value between them (3.05) takes the higher
# stage: stage 2 is "above 3", stage 3 "above 6", stage 4 "above 15".
LIVER_STAGE1_MIN_BILIRUBIN_MG_PER_DL = 2.0
LIVER_STAGE2_ABOVE_BILIRUBIN_MG_PER_DL = 3.0
LIVER_STAGE3_ABOVE_BILIRUBIN_MG_PER_DL = 6.0
LIVER_STAGE4_ABOVE_BILIRUBIN_MG_PER_DL = 15.0


@dataclass(frozen=True, slots=True)
class Bands:
    """Lower GI stages 1-3 by one measure: stage 1 from `stage1_min`, stage 2 from `stage2_min`,
    stage 3 above `stage3_above` (the published "> x"); below `stage1_min` stage 0."""

    stage1_min: float
    stage2_min: float
    stage3_above: float

    def stage(self, value: float) -> int:
        if value > self.stage3_above:
            return 3
        if value >= self.stage2_min:
            return 2
        return 1 if value >= self.stage1_min else 0


# Lower GI [F:PDQ-MAGIC] Table 4 (adapted from [F:HARRIS-2016]); stage 4 is severe abdominal
# pain with or without ileus, or grossly bloody stool, regardless of volume.
# Adult: < 500 mL or < 3 episodes; 500-999 mL or 3-4; 1000-1500 mL or 5-7; > 1500 mL or > 7.
ADULT_STOOL_ML_BANDS = Bands(500.0, 1000.0, 1500.0)
ADULT_STOOL_EPISODE_BANDS = Bands(3, 5, 7)
# Child: < 10 mL/kg or < 4 episodes; 10-19.9 or 4-6; 20-30 or 7-10; > 30 mL/kg or > 10.
CHILD_STOOL_ML_PER_KG_BANDS = Bands(10.0, 20.0, 30.0)
CHILD_STOOL_EPISODE_BANDS = Bands(4, 7, 10)
# "The adult stool output values should be used for patients weighing > 50 kg" [F:PDQ-MAGIC].
CHILD_MAX_WEIGHT_KG = 50.0

_MAX_STAGE = 4
_MAX_UPPER_GI_STAGE = 1


@dataclass(frozen=True, slots=True)
class GvhdStages:
    """MAGIC organ stages: skin, liver and lower GI 0-4, upper GI 0-1 [F:PDQ-MAGIC]."""

    skin: int
    liver: int
    upper_gi: int
    lower_gi: int

    def __post_init__(self) -> None:
        for name, top in (
            ("skin", _MAX_STAGE),
            ("liver", _MAX_STAGE),
            ("upper_gi", _MAX_UPPER_GI_STAGE),
            ("lower_gi", _MAX_STAGE),
        ):
            value = getattr(self, name)
            if not 0 <= value <= top:
                raise ValueError(f"{name} stage must be 0..{top}, got {value}")


def _skin_stage(bsa_pct: float, bullae_bsa_pct: float) -> int:
    if bsa_pct > SKIN_STAGE3_ABOVE_BSA_PCT:
        return 4 if bullae_bsa_pct > SKIN_STAGE4_BULLAE_ABOVE_BSA_PCT else 3
    if bsa_pct >= SKIN_STAGE2_MIN_BSA_PCT:
        return 2
    return 1 if bsa_pct > 0 else 0


def _liver_stage(bilirubin_mg_per_dl: float) -> int:
    if bilirubin_mg_per_dl > LIVER_STAGE4_ABOVE_BILIRUBIN_MG_PER_DL:
        return 4
    if bilirubin_mg_per_dl > LIVER_STAGE3_ABOVE_BILIRUBIN_MG_PER_DL:
        return 3
    if bilirubin_mg_per_dl > LIVER_STAGE2_ABOVE_BILIRUBIN_MG_PER_DL:
        return 2
    if bilirubin_mg_per_dl >= LIVER_STAGE1_MIN_BILIRUBIN_MG_PER_DL:
        return 1
    return 0


def _lower_gi_stage(a: GvhdAssessment) -> int:
    if a.lower_gi_severe:
        return 4
    weight = a.weight_kg
    if weight is not None and weight <= CHILD_MAX_WEIGHT_KG:
        by_volume = CHILD_STOOL_ML_PER_KG_BANDS.stage(a.stool_ml_per_day / weight)
        episode_bands = CHILD_STOOL_EPISODE_BANDS
    else:
        by_volume = ADULT_STOOL_ML_BANDS.stage(a.stool_ml_per_day)
        episode_bands = ADULT_STOOL_EPISODE_BANDS
    if a.stool_episodes_per_day is None:
        return by_volume
    return max(by_volume, episode_bands.stage(a.stool_episodes_per_day))


def organ_stages(assessment: GvhdAssessment) -> GvhdStages:
    """The MAGIC organ stages of one assessment [F:PDQ-MAGIC].

    Skin by % BSA of active erythema, stage 4 only with erythroderma over > 50 % plus bullae
    and desquamation over > 5 % (`skin_bullae_bsa_pct`); liver by bilirubin; lower GI by stool
    volume and episodes, child bands at <= 50 kg (stage 4 when `lower_gi_severe`); upper GI 1
    when persistent nausea, vomiting or anorexia is recorded.
    """
    return GvhdStages(
        skin=_skin_stage(assessment.skin_bsa_pct, assessment.skin_bullae_bsa_pct),
        liver=_liver_stage(assessment.bilirubin_mg_per_dl),
        upper_gi=1 if assessment.upper_gi else 0,
        lower_gi=_lower_gi_stage(assessment),
    )


def overall_grade(stages: GvhdStages) -> int:
    """The MAGIC overall grade 0-4 (0 = no acute GVHD) [F:HARRIS-2016].

    IV: stage 4 skin, liver or lower GI. III: liver 2-3 or lower GI 2-3. II: skin 3, liver 1,
    upper GI 1 or lower GI 1. I: skin 1-2 only. Otherwise 0.
    """
    if _MAX_STAGE in (stages.skin, stages.liver, stages.lower_gi):
        return 4
    if stages.liver in (2, 3) or stages.lower_gi in (2, 3):
        return 3
    if stages.skin == 3 or stages.liver == 1 or stages.upper_gi == 1 or stages.lower_gi == 1:
        return 2
    if stages.skin in (1, 2):
        return 1
    return 0


def max_grade(assessments: Iterable[GvhdAssessment]) -> int:
    """The highest MAGIC overall grade over `assessments`; 0 when there are none."""
    return max((overall_grade(organ_stages(a)) for a in assessments), default=0)
