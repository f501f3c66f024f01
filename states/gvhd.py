"""Acute GVHD organ staging and overall grade, MAGIC criteria (HSCT_REFERENCE.md §2).

Organ stages follow the MAGIC staging table [F:PDQ-MAGIC] (adapted from Harris et al., BBMT
2016;22:4-10); the overall grade follows the MAGIC grade rules as recalled in the reference
([U: Harris 2016 Table]; Glucksberg grading [F:GLUCKSBERG] agrees on the scenarios). The band
edges are the published criteria, not program policy, so they are module constants here.

Lower GI uses the adult volume bands (mL/day, 3-day average). Child bands (mL/kg, patients
<= 50 kg) and stool-episode counts are not modelled: `GvhdAssessment` carries neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from states.facts import GvhdAssessment

__all__ = [
    "LIVER_STAGE1_MIN_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE2_ABOVE_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE3_ABOVE_BILIRUBIN_MG_PER_DL",
    "LIVER_STAGE4_ABOVE_BILIRUBIN_MG_PER_DL",
    "LOWER_GI_STAGE1_MIN_ML_PER_DAY",
    "LOWER_GI_STAGE2_MIN_ML_PER_DAY",
    "LOWER_GI_STAGE3_ABOVE_ML_PER_DAY",
    "SKIN_STAGE2_MIN_BSA_PCT",
    "SKIN_STAGE3_ABOVE_BSA_PCT",
    "GvhdStages",
    "max_grade",
    "organ_stages",
    "overall_grade",
]

# Skin, active erythema as % body surface area [F:PDQ-MAGIC]:
# stage 1 < 25 %, stage 2 25-50 %, stage 3 > 50 %, stage 4 bullae / desquamation.
SKIN_STAGE2_MIN_BSA_PCT = 25.0
SKIN_STAGE3_ABOVE_BSA_PCT = 50.0

# Liver, total bilirubin mg/dL [F:PDQ-MAGIC]: stage 0 < 2, 1 = 2-3, 2 = 3.1-6, 3 = 6.1-15, 4 > 15.
# The published bands are written to one decimal; a value between them (3.05) takes the higher
# stage: stage 2 is "above 3", stage 3 "above 6", stage 4 "above 15".
LIVER_STAGE1_MIN_BILIRUBIN_MG_PER_DL = 2.0
LIVER_STAGE2_ABOVE_BILIRUBIN_MG_PER_DL = 3.0
LIVER_STAGE3_ABOVE_BILIRUBIN_MG_PER_DL = 6.0
LIVER_STAGE4_ABOVE_BILIRUBIN_MG_PER_DL = 15.0

# Lower GI, adult stool volume mL/day [F:PDQ-MAGIC]: stage 0 < 500, 1 = 500-999,
# 2 = 1000-1500, 3 > 1500, 4 severe pain +/- ileus or grossly bloody stool.
LOWER_GI_STAGE1_MIN_ML_PER_DAY = 500.0
LOWER_GI_STAGE2_MIN_ML_PER_DAY = 1000.0
LOWER_GI_STAGE3_ABOVE_ML_PER_DAY = 1500.0

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


def _skin_stage(bsa_pct: float, bullae: bool) -> int:
    if bullae:
        return 4
    if bsa_pct > SKIN_STAGE3_ABOVE_BSA_PCT:
        return 3
    if bsa_pct >= SKIN_STAGE2_MIN_BSA_PCT:
        return 2
    if bsa_pct > 0:
        return 1
    return 0


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


def _lower_gi_stage(stool_ml_per_day: float, severe: bool) -> int:
    if severe:
        return 4
    if stool_ml_per_day > LOWER_GI_STAGE3_ABOVE_ML_PER_DAY:
        return 3
    if stool_ml_per_day >= LOWER_GI_STAGE2_MIN_ML_PER_DAY:
        return 2
    if stool_ml_per_day >= LOWER_GI_STAGE1_MIN_ML_PER_DAY:
        return 1
    return 0


def organ_stages(assessment: GvhdAssessment) -> GvhdStages:
    """The MAGIC organ stages of one assessment [F:PDQ-MAGIC].

    Skin by % BSA (stage 4 whenever bullae are recorded); liver by bilirubin; lower GI by the
    adult stool volume (stage 4 when `lower_gi_severe`); upper GI 1 when persistent nausea,
    vomiting or anorexia is recorded.
    """
    return GvhdStages(
        skin=_skin_stage(assessment.skin_bsa_pct, assessment.skin_bullae),
        liver=_liver_stage(assessment.bilirubin_mg_per_dl),
        upper_gi=1 if assessment.upper_gi else 0,
        lower_gi=_lower_gi_stage(assessment.stool_ml_per_day, assessment.lower_gi_severe),
    )


def overall_grade(stages: GvhdStages) -> int:
    """The MAGIC overall grade 0-4 (0 = no acute GVHD) [U: Harris 2016], HSCT_REFERENCE.md §2.

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
