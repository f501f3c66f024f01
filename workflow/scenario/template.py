"""A starting scenario file for `hsct scenario new`: a valid, runnable first draft.

The draft refers one pathway of the route asked for and walks it into evaluation (consent,
eligibility), then checks the phase. It ends with a comment listing the commands the chart
allows in that phase, so the author knows what may come next. The referral is validated like
any other before a line is written: a route, donor type and graft source that do not agree are
refused with the field and the rule.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from states.chart import CHART
from states.payloads import Refer
from states.vocabulary import DonorType, GraftSource, Phase, Route

__all__ = ["default_graft_source", "starting_scenario"]

PATIENT = "PT-000001"
"""A pseudonymous placeholder: the author replaces it (never a name or record number)."""


def default_graft_source(donor_type: DonorType | None) -> GraftSource:
    """Cord blood for a cord blood donor, else peripheral blood stem cells (the usual graft)."""
    return GraftSource.CORD_BLOOD if donor_type is DonorType.CORD_BLOOD else GraftSource.PBSC


def starting_scenario(
    route: Route,
    *,
    start: date,
    donor_type: DonorType | None = None,
    graft_source: GraftSource | None = None,
    title: str | None = None,
) -> str:
    """The YAML text of a starting file. Raises pydantic's `ValidationError` (naming the field
    and the rule) when route, donor type and graft source do not agree."""
    source = graft_source or default_graft_source(donor_type)
    Refer.model_validate({"patient_ref": PATIENT, "route": route, "donor_type": donor_type, "graft_source": source})
    donor_text = f"{donor_type.value} donor, " if donor_type is not None else ""
    name = title or f"New {route.value} pathway ({donor_text}{source.value} graft)"
    donor = f", donor_type: {donor_type.value}" if donor_type is not None else ""
    day = [(start + timedelta(days=n)).isoformat() for n in range(3)]
    used = {"refer", "begin_evaluation", "record_consent", "record_eligibility"}
    following = sorted(c.name for c in CHART.commands.values() if Phase.EVALUATION in c.phases() and c.name not in used)
    return "\n".join(
        [
            "# A starting scenario written by `hsct scenario new`; docs/scenarios.md describes the format.",
            "# Replace the patient reference with a pseudonym (never a name or record number), then add",
            "# steps: `hsct commands NAME` lists a command's payload fields, roles and guards.",
            f"scenario: {json.dumps(name)}",
            "timezone: UTC",
            "actors:",
            "  co_ames: {role: transplant_coordinator}",
            "  dr_ross: {role: transplant_physician}",
            "pathways:",
            f"  p1: {{patient: {PATIENT}, route: {route.value}{donor}, graft_source: {source.value}}}",
            "steps:",
            f"  - {{on: {day[0]}, by: co_ames, do: refer}}",
            f"  - {{on: {day[1]}, by: co_ames, do: begin_evaluation}}",
            f"  - {{on: {day[2]}, by: co_ames, do: record_consent, with: {{consent_version: consent-v1}}}}",
            f"  - on: {day[2]}",
            "    by: dr_ross",
            "    do: record_eligibility",
            '    with: {evidence: "Organ function and performance status documented"}',
            f"  - on: {day[2]}",
            "    check: {phase: evaluation, refusals: 0}",
            "  # Next, in phase evaluation the chart allows:",
            *_wrapped(following, "  #   "),
            "final:",
            "  phase: evaluation",
            "  hct_number: 1",
            "",
        ]
    )


def _wrapped(names: list[str], prefix: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    line = ""
    for name in names:
        candidate = f"{line}, {name}" if line else name
        if line and len(prefix) + len(candidate) > width:
            lines.append(prefix + line + ",")
            candidate = name
        line = candidate
    return [*lines, prefix + line] if line else lines
