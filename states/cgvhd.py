"""Chronic GVHD global severity, NIH 2014 consensus (docs/long-term-follow-up.md).

Eight organs are scored 0-3 [F:NIH-CGVHD]; the global severity follows from the scores alone:
mild is one or two organs scored at most 1 with the lungs scored 0; moderate is three or more
organs scored at most 1, or any organ other than the lungs scored 2, or the lungs scored 1;
severe is any organ scored 3, or the lungs scored 2 or more. The rules are the published
definition, not programme policy, so they live here as code (as `states.gvhd` holds MAGIC).
"""

from __future__ import annotations

from collections.abc import Mapping

from states.facts import CgvhdSeverity

ORGANS: tuple[str, ...] = ("skin", "mouth", "eyes", "gi_tract", "liver", "lungs", "joints_fascia", "genital_tract")
"""The organs the NIH 2014 consensus scores [F:NIH-CGVHD]."""

LUNGS = "lungs"


def global_severity(scores: Mapping[str, int]) -> CgvhdSeverity:
    """NIH 2014 global severity of the organ scores (0-3 each; a missing organ scores 0)."""
    lungs = scores.get(LUNGS, 0)
    involved = [score for organ, score in scores.items() if organ in ORGANS and score > 0]
    if lungs >= 2 or any(score >= 3 for score in involved):
        return "severe"
    if lungs == 1 or any(score == 2 for score in involved) or len(involved) >= 3:
        return "moderate"
    return "mild" if involved else "none"
