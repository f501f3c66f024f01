"""Flags a coordinator sees on a pathway: recorded ones and those derived from findings.

`relapse`, `donor_unavailable_after_conditioning` and `<kind>_graft_failure` come straight
from the facts; `vod` is derived from the VOD assessments by their named criteria set (the
diagnosis is never asserted: `record_vod_assessment`); the policy-relative ones
(`conditioning_length_outside_policy`, `day100_late`, `anc_never_below_threshold`) are listed
in docs/engraftment-rules.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from states.days import clinical_date, day_number
from states.engraftment import anc_never_below_of
from states.facts import PathwayFacts, Regimen, VodAssessment
from states.policy import Policy
from states.vod import vod_diagnosed


def regimen_length_outside(regimen: Regimen, policy: Policy) -> bool:
    """The conditioning period, Day -N of the first dose through Day -1 (rest days included;
    a plan given on Day 0 alone counts one day), lies outside the policy's usual length."""
    length = max(1, -min(d.day for d in regimen.plan))
    shortest, longest = policy.conditioning_length_days
    return not shortest <= length <= longest


def _clinical_flags(facts: PathwayFacts, policy: Policy) -> Iterator[str]:
    """A regimen accepted outside the usual length (with its reason), a Day +100 visit after
    its window (with its reason), and CIBMTR's "ANC never below 0.5" [F:CIBMTR-ANC]."""
    if facts.regimen is not None and regimen_length_outside(facts.regimen, policy):
        yield "conditioning_length_outside_policy"
    day0, visit = facts.day0, facts.day100_on
    if day0 is not None and visit is not None and day_number(visit, day0) > policy.day100_window[1]:
        yield "day100_late"
    if anc_never_below_of(facts, policy):
        yield "anc_never_below_threshold"


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
    policy's readings of the contested hepatic findings, plus `_clinical_flags`."""
    found = set(facts.flags) | set(_clinical_flags(facts, policy))
    anchor = facts.day0 or facts.planned_day0
    if anchor is not None and any(
        vod_met(a, day_number(clinical_date(a.at, facts.timezone), anchor), policy) for a in facts.vod
    ):
        found.add("vod")
    return frozenset(found)
