"""VOD/SOS diagnosis by a named criteria set (HSCT_REFERENCE.md §2, source [F:VOD]).

The diagnosis is derived from the recorded findings, never asserted (PATHWAY.md, event
`record_vod_assessment`). The numbers are the published criteria as summarised by [F:VOD]
(knowvodpro.com "Diagnostic criteria"), not program policy, so they are module constants.

- Baltimore: bilirubin >= 2 mg/dL plus >= 2 of painful hepatomegaly, weight gain > 5 %,
  ascites; presentation by Day +21.
- Modified Seattle: >= 2 of bilirubin > 2 mg/dL, hepatomegaly or right-upper-quadrant pain,
  weight gain > 2 %; presentation by Day +20.
- EBMT adult: classical VOD (<= Day +21) by the Baltimore criteria; late-onset VOD (> Day +21)
  accepted when the Baltimore criteria are met beyond Day +21. EBMT's other late-onset routes
  (histology, or findings plus haemodynamic/ultrasound evidence) are not modelled: the
  assessment carries no imaging or biopsy result.

"Painful hepatomegaly" is read as hepatomegaly together with right-upper-quadrant pain.
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
    "SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL",
    "SEATTLE_LAST_DAY",
    "SEATTLE_MIN_FINDINGS",
    "SEATTLE_WEIGHT_GAIN_ABOVE_PCT",
    "baltimore_met",
    "ebmt_onset",
    "modified_seattle_met",
    "vod_diagnosed",
]

# Baltimore criteria [F:VOD].
BALTIMORE_MIN_BILIRUBIN_MG_PER_DL = 2.0
BALTIMORE_WEIGHT_GAIN_ABOVE_PCT = 5.0
BALTIMORE_MIN_FINDINGS = 2
BALTIMORE_LAST_DAY = 21

# Modified Seattle criteria [F:VOD].
SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL = 2.0
SEATTLE_WEIGHT_GAIN_ABOVE_PCT = 2.0
SEATTLE_MIN_FINDINGS = 2
SEATTLE_LAST_DAY = 20

# EBMT adult criteria [F:VOD]: classical VOD/SOS up to Day +21, late onset beyond it.
EBMT_CLASSICAL_LAST_DAY = 21


def baltimore_met(assessment: VodAssessment) -> bool:
    """The Baltimore findings, without the time window [F:VOD].

    Bilirubin >= 2 mg/dL and at least 2 of: painful hepatomegaly (hepatomegaly with RUQ
    pain), weight gain > 5 %, ascites.
    """
    findings = (
        assessment.hepatomegaly and assessment.ruq_pain,
        assessment.weight_gain_pct > BALTIMORE_WEIGHT_GAIN_ABOVE_PCT,
        assessment.ascites,
    )
    return (
        assessment.bilirubin_mg_per_dl >= BALTIMORE_MIN_BILIRUBIN_MG_PER_DL
        and sum(findings) >= BALTIMORE_MIN_FINDINGS
    )


def modified_seattle_met(assessment: VodAssessment) -> bool:
    """The modified Seattle findings, without the time window [F:VOD].

    At least 2 of: bilirubin > 2 mg/dL, hepatomegaly or RUQ pain, weight gain > 2 %.
    """
    findings = (
        assessment.bilirubin_mg_per_dl > SEATTLE_BILIRUBIN_ABOVE_MG_PER_DL,
        assessment.hepatomegaly or assessment.ruq_pain,
        assessment.weight_gain_pct > SEATTLE_WEIGHT_GAIN_ABOVE_PCT,
    )
    return sum(findings) >= SEATTLE_MIN_FINDINGS


def ebmt_onset(day: int) -> Literal["classical", "late"]:
    """EBMT adult onset class of a diagnosis on day `day`: classical up to Day +21, else late [F:VOD]."""
    return "classical" if day <= EBMT_CLASSICAL_LAST_DAY else "late"


def vod_diagnosed(assessment: VodAssessment, day: int) -> bool:
    """Whether `assessment`, made on day `day` after Day 0, meets its named criteria set [F:VOD].

    `baltimore`: Baltimore findings by Day +21. `modified_seattle`: modified Seattle findings by
    Day +20. `ebmt_adult`: Baltimore findings on any day (classical up to Day +21, late onset
    after it).
    """
    match assessment.criteria:
        case "baltimore":
            return day <= BALTIMORE_LAST_DAY and baltimore_met(assessment)
        case "modified_seattle":
            return day <= SEATTLE_LAST_DAY and modified_seattle_met(assessment)
        case "ebmt_adult":
            return baltimore_met(assessment)
        case _:  # pragma: no cover - exhaustive
            assert_never(assessment.criteria)
