"""Flags a coordinator sees on a pathway: recorded ones and those derived from findings.

`relapse`, `donor_unavailable_after_conditioning` and `<kind>_graft_failure` come straight
from the facts; `vod` is derived from the VOD assessments by their named criteria set (the
diagnosis is never asserted: PATHWAY.md `record_vod_assessment`).
"""

from __future__ import annotations

from states.days import clinical_date, day_number
from states.facts import PathwayFacts, VodAssessment
from states.policy import Policy
from states.vod import vod_diagnosed


def vod_met(assessment: VodAssessment, day: int, policy: Policy) -> bool:
    """`vod_diagnosed` under the policy's readings of the contested hepatic findings."""
    return vod_diagnosed(
        assessment,
        day,
        baltimore_hepatic=policy.vod_baltimore_hepatic,
        seattle_hepatic=policy.vod_seattle_hepatic,
    )


def pathway_flags(facts: PathwayFacts, policy: Policy) -> frozenset[str]:
    """The facts' flags plus `vod` when an assessment meets its criteria set under the
    policy's readings of the contested hepatic findings."""
    found = set(facts.flags)
    anchor = facts.day0 or facts.planned_day0
    if anchor is not None and any(
        vod_met(a, day_number(clinical_date(a.at, facts.timezone), anchor), policy) for a in facts.vod
    ):
        found.add("vod")
    return frozenset(found)
