"""VOD/SOS diagnosis by a named criteria set (docs/clinical-rules.md, "VOD/SOS").

The diagnosis is derived from the recorded findings, never asserted (event
`record_vod_assessment`). Each published criteria set keeps its own finding set; the numbers
are those definitions, not program policy, so they are module constants. Where summaries of
a set disagree on its hepatic finding, the reading is a policy option (`BaltimoreHepatic`,
`SeattleHepatic`) naming both sources.

- `baltimore` (Jones 1987 [F:JONES-1987]): bilirubin >= 2 mg/dL plus >= 2 of hepatomegaly,
  weight gain > 5 %, ascites, by Day +21. The primary reads "hepatomegaly, with or without
  right-upper-quadrant pain"; EBMT 2016 restates it as "painful hepatomegaly".
- `modified_seattle` (McDonald 1993 [F:MCDONALD-1993]): >= 2 of bilirubin > 2 mg/dL, the
  hepatic finding, weight gain > 2 %, by Day +20. Summaries read the hepatic finding as
  "hepatomegaly or RUQ pain" [F:VOD] or "hepatomegaly with RUQ pain".
- `ebmt_adult` (Mohty 2016 [F:EBMT-VOD-ADULT]): classical (<= Day +21) bilirubin >= 2 mg/dL
  plus >= 2 of painful hepatomegaly, weight gain > 5 %, ascites; late onset (> Day +21) the
  classical findings, or histologically proven SOS, or >= 2 of bilirubin >= 2 mg/dL, painful
  hepatomegaly, weight gain > 5 %, ascites together with haemodynamic and/or ultrasound
  evidence.
- `ebmt_paediatric` (Corbacioglu 2018 [F:EBMT-VOD-PAED]): no time limit; >= 2 of
  transfusion-refractory thrombocytopenia, weight gain on 3 consecutive days despite diuretics
  or > 5 % above baseline, hepatomegaly above baseline, ascites above baseline, bilirubin
  rising on 3 consecutive days or >= 2 mg/dL.

The windows bound the day late only: an assessment before Day 0 is judged on its findings.
"""

from __future__ import annotations

from typing import Literal, assert_never

from states.facts import VodAssessment

__all__ = [
    "BALTIMORE_LAST_DAY",
    "BALTIMORE_MIN_BILIRUBIN_MG_PER_DL",
    "BALTIMORE_MIN_FINDINGS",
    "BALTIMORE_WEIGHT_GAIN_ABOVE_PCT",
    "EBMT_CLASSICAL_LAST_DAY",
    "EBMT_MIN_BILIRUBIN_MG_PER_DL",
    "EBMT_MIN_FINDINGS",
    "EBMT_WEIGHT_GAIN_ABOVE_PCT",
    "SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL",
    "SEATTLE_LAST_DAY",
    "SEATTLE_MIN_FINDINGS",
    "SEATTLE_WEIGHT_GAIN_ABOVE_PCT",
    "BaltimoreHepatic",
    "SeattleHepatic",
    "baltimore_met",
    "ebmt_adult_met",
    "ebmt_onset",
    "ebmt_paediatric_met",
    "modified_seattle_met",
    "vod_diagnosed",
]

BaltimoreHepatic = Literal["hepatomegaly", "painful_hepatomegaly"]
"""Baltimore's hepatic finding: the primary's "hepatomegaly, with or without RUQ pain", or the
EBMT 2016 restatement "painful hepatomegaly"."""
SeattleHepatic = Literal["hepatomegaly_or_ruq_pain", "hepatomegaly_with_ruq_pain"]
"""Modified Seattle's hepatic finding, as the two families of summaries read it."""

# Baltimore criteria [F:JONES-1987].
BALTIMORE_MIN_BILIRUBIN_MG_PER_DL = 2.0
BALTIMORE_WEIGHT_GAIN_ABOVE_PCT = 5.0
BALTIMORE_MIN_FINDINGS = 2
BALTIMORE_LAST_DAY = 21

# Modified Seattle criteria [F:MCDONALD-1993].
SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL = 2.0
SEATTLE_WEIGHT_GAIN_ABOVE_PCT = 2.0
SEATTLE_MIN_FINDINGS = 2
SEATTLE_LAST_DAY = 20

# EBMT adult [F:EBMT-VOD-ADULT] and paediatric [F:EBMT-VOD-PAED] criteria.
EBMT_CLASSICAL_LAST_DAY = 21
EBMT_MIN_BILIRUBIN_MG_PER_DL = 2.0
EBMT_WEIGHT_GAIN_ABOVE_PCT = 5.0
EBMT_MIN_FINDINGS = 2


def _painful_hepatomegaly(a: VodAssessment) -> bool:
    return a.hepatomegaly and a.ruq_pain


def baltimore_met(a: VodAssessment, *, hepatic: BaltimoreHepatic) -> bool:
    """The Baltimore findings, without the time window [F:JONES-1987].

    Bilirubin >= 2 mg/dL and at least 2 of: the hepatic finding (`hepatic`), weight gain > 5 %,
    ascites.
    """
    liver = _painful_hepatomegaly(a) if hepatic == "painful_hepatomegaly" else a.hepatomegaly
    findings = (liver, a.weight_gain_pct > BALTIMORE_WEIGHT_GAIN_ABOVE_PCT, a.ascites)
    return a.bilirubin_mg_per_dl >= BALTIMORE_MIN_BILIRUBIN_MG_PER_DL and sum(findings) >= BALTIMORE_MIN_FINDINGS


def modified_seattle_met(a: VodAssessment, *, hepatic: SeattleHepatic) -> bool:
    """The modified Seattle findings, without the time window [F:MCDONALD-1993].

    At least 2 of: bilirubin > 2 mg/dL, the hepatic finding (`hepatic`), weight gain > 2 %.
    """
    liver = a.hepatomegaly or a.ruq_pain if hepatic == "hepatomegaly_or_ruq_pain" else _painful_hepatomegaly(a)
    findings = (
        a.bilirubin_mg_per_dl > SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL,
        liver,
        a.weight_gain_pct > SEATTLE_WEIGHT_GAIN_ABOVE_PCT,
    )
    return sum(findings) >= SEATTLE_MIN_FINDINGS


def _ebmt_adult_findings(a: VodAssessment) -> int:
    return sum((_painful_hepatomegaly(a), a.weight_gain_pct > EBMT_WEIGHT_GAIN_ABOVE_PCT, a.ascites))


def ebmt_adult_met(a: VodAssessment, day: int) -> bool:
    """EBMT 2016 adult criteria on day `day` [F:EBMT-VOD-ADULT]: classical findings on any day;
    after Day +21 also histology, or 2 findings (bilirubin >= 2 counting as one) with imaging
    or haemodynamic evidence."""
    bilirubin = a.bilirubin_mg_per_dl >= EBMT_MIN_BILIRUBIN_MG_PER_DL
    findings = _ebmt_adult_findings(a)
    if bilirubin and findings >= EBMT_MIN_FINDINGS:
        return True
    if ebmt_onset(day) == "classical":
        return False
    return a.histology_proven or (a.imaging_evidence and findings + bilirubin >= EBMT_MIN_FINDINGS)


def ebmt_paediatric_met(a: VodAssessment) -> bool:
    """EBMT 2017 paediatric criteria, no time limit [F:EBMT-VOD-PAED]: at least 2 findings."""
    findings = (
        a.refractory_thrombocytopenia,
        a.weight_gain_3_days_despite_diuretics or a.weight_gain_pct > EBMT_WEIGHT_GAIN_ABOVE_PCT,
        a.hepatomegaly,
        a.ascites,
        a.bilirubin_rising_3_days or a.bilirubin_mg_per_dl >= EBMT_MIN_BILIRUBIN_MG_PER_DL,
    )
    return sum(findings) >= EBMT_MIN_FINDINGS


def ebmt_onset(day: int) -> Literal["classical", "late"]:
    """EBMT adult onset class of a diagnosis on day `day`: classical up to Day +21, else late."""
    return "classical" if day <= EBMT_CLASSICAL_LAST_DAY else "late"


def vod_diagnosed(
    assessment: VodAssessment, day: int, *, baltimore_hepatic: BaltimoreHepatic, seattle_hepatic: SeattleHepatic
) -> bool:
    """Whether `assessment`, made on day `day` after Day 0, meets its named criteria set.

    The two hepatic readings are the policy's (`vod_baltimore_hepatic`, `vod_seattle_hepatic`).
    """
    match assessment.criteria:
        case "baltimore":
            return day <= BALTIMORE_LAST_DAY and baltimore_met(assessment, hepatic=baltimore_hepatic)
        case "modified_seattle":
            return day <= SEATTLE_LAST_DAY and modified_seattle_met(assessment, hepatic=seattle_hepatic)
        case "ebmt_adult":
            return ebmt_adult_met(assessment, day)
        case "ebmt_paediatric":
            return ebmt_paediatric_met(assessment)
        case _:  # pragma: no cover - exhaustive
            assert_never(assessment.criteria)
