"""Flags a coordinator sees on a pathway: recorded ones and those derived from findings.

`relapse`, `donor_unavailable_after_conditioning` and `<kind>_graft_failure` come straight
from the facts; `vod` is derived from the VOD assessments by their named criteria set (the
diagnosis is never asserted: PATHWAY.md `record_vod_assessment`).
"""

from __future__ import annotations

from states.days import clinical_date, day_number
from states.facts import PathwayFacts
from states.vod import vod_diagnosed


def pathway_flags(facts: PathwayFacts) -> frozenset[str]:
    found = set(facts.flags)
    anchor = facts.day0 or facts.planned_day0
    if anchor is not None and any(
        vod_diagnosed(a, day_number(clinical_date(a.at, facts.timezone), anchor)) for a in facts.vod
    ):
        found.add("vod")
    return frozenset(found)
