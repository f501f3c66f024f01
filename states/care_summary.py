"""Supportive care and GVHD prophylaxis as a reader wants them: length of stay, G-CSF start,
infections, mucositis, transfusions, prophylaxis plan and doses, with Day labels.

One derivation shared by `hsct pathway show` and the scenario runner's assertions, so what
a scenario asserts is what a user sees (docs/supportive-care.md).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from states.care_facts import PlannedAgent, in_hospital, length_of_stay_days
from states.days import day_label, label_on
from states.facts import PathwayFacts


def _day(facts: PathwayFacts, on: date | None) -> str | None:
    return None if on is None else label_on(on, facts.day0)


def _schedule(planned: PlannedAgent) -> str:
    if planned.from_day is not None:
        return f"from {day_label(planned.from_day)}"
    return ", ".join(day_label(d) for d in planned.days)


def care_summary(facts: PathwayFacts, today: date) -> dict[str, Any]:
    """JSON-ready values; `today` counts an open stay's days."""
    growth = facts.growth_factor
    mucositis = facts.mucositis
    transfused: dict[str, int] = {"red_cells": 0, "platelets": 0}
    for given in facts.transfusions:
        transfused[given.product] += 1
    # The current plan's agents, then any agent given under an earlier plan that this one dropped.
    plan: dict[str, str] = {p.agent: _schedule(p) for p in facts.prophylaxis_plan}
    agents = [*plan, *(a for a in facts.prophylaxis_given if a not in plan)]
    prophylaxis = {}
    for agent in agents:
        course = facts.prophylaxis_given.get(agent)
        prophylaxis[agent] = {
            "planned": plan.get(agent, "not in the current plan"),
            "doses": course.doses if course else 0,
            "last_dose": course.last_on.isoformat() if course else None,
        }
    return {
        "in_hospital": in_hospital(facts.stays),
        "length_of_stay_days": length_of_stay_days(facts.stays, today),
        "stays": [
            {
                "admitted": s.admitted_on.isoformat() if s.admitted_on else None,
                "discharged": s.discharged_on.isoformat() if s.discharged_on else None,
            }
            for s in facts.stays
        ],
        "growth_factor": None
        if growth is None
        else {"agent": growth.agent, "started": growth.started_on.isoformat(), "day": _day(facts, growth.started_on)},
        "infections": [
            {"onset": i.on.isoformat(), "day": _day(facts, i.on), "organism": i.organism, "site": i.site}
            for i in facts.infections
        ],
        "mucositis_peak_who_grade": mucositis.peak_grade if mucositis else None,
        "mucositis_peak_day": _day(facts, mucositis.peak_on) if mucositis else None,
        "mucositis_latest_who_grade": mucositis.latest_grade if mucositis else None,
        "transfusions": transfused,
        "gvhd_prophylaxis": prophylaxis,
    }
