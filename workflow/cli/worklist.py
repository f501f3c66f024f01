"""`hsct worklist`: every open milestone of every pathway, and who acts on it.

The pathways are read in three queries (`PathwayService.open_work`: the stored schedules, then
the facts of the pathways with something open). A milestone's roles are those
the policy's role table allows to fire the command that meets it (`MET_BY`, documented in
docs/worklist.md), so a program that changes its role table changes its worklist too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from states.vocabulary import Role
from workflow.cli._common import DEFAULT_DB_URL, Db, library_errors, open_service, parse_date
from workflow.cli.output import Format, FormatOption, Row, emit

if TYPE_CHECKING:
    from states.facts import PathwayFacts
    from states.milestones import Milestone
    from states.policy import Policy

MET_BY: dict[str, str] = {
    "neutrophil_recovery_day28": "confirm_engraftment",
    "primary_graft_failure_review": "declare_graft_failure",
    "graft_failure_suspicion_review": "declare_graft_failure",
    "day30_assessment": "record_assessment",
    "day100_assessment": "complete_day100",
    "donor_idm_repeat": "record_donor_idm",
    "conditioning_dose": "record_conditioning_dose",
    "pre_transplant_form": "record_registry_form",
    "post_transplant_form_day100": "record_registry_form",
    "month6_followup": "record_assessment",
    "year1_followup": "record_assessment",
    "post_transplant_form_month6": "record_registry_form",
    "post_transplant_form_year1": "record_registry_form",
    "product_disposition": "record_product_disposition",
}
"""Milestone name -> the command that meets it (docs/milestones.md, column "met by")."""

STATUS_STYLES = {"overdue": "bold red", "due": "yellow"}

KEYS = ("pathway", "phase", "day", "milestone", "status", "opens", "closes", "command", "roles", "detail")


def roles_for(milestone: str, policy: Policy) -> tuple[Role, ...]:
    """The roles that may fire the command meeting `milestone`, in the vocabulary's order."""
    allowed = policy.roles.get(MET_BY[milestone], frozenset())
    return tuple(role for role in Role if role in allowed)


def work_rows(
    work: Sequence[tuple[str, PathwayFacts, list[Milestone]]], policy: Policy, *, at: datetime, on: date | None
) -> list[Row]:
    """One row per open milestone, overdue first, then by the day it fell due. The Day is
    that of `on`, or of `at`'s date in each pathway's timezone."""
    from states.days import clinical_date, day_label, day_number

    rows: list[tuple[tuple[bool, date, str], Row]] = []
    for pathway_id, facts, items in work:
        anchor = facts.day0 or facts.planned_day0
        today = on or clinical_date(at, facts.timezone)
        day = None if anchor is None else day_label(day_number(today, anchor))
        for item in items:
            row: Row = {
                "pathway": pathway_id,
                "phase": facts.phase.value,
                "day": day,
                "milestone": item.name,
                "status": item.status,
                "opens": item.opens.isoformat() if item.opens else None,
                "closes": item.closes.isoformat() if item.closes else None,
                "command": MET_BY[item.name],
                "roles": " ".join(role.value for role in roles_for(item.name, policy)),
                "detail": item.detail or None,
            }
            rows.append(((item.status != "overdue", item.due_on, pathway_id), row))
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def worklist(
    db: Db = DEFAULT_DB_URL,
    role: Annotated[Role | None, typer.Option(help="Only milestones this role may meet.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue milestones.")] = False,
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="DATE", help="The clinical date to judge (ISO date; default: today)."),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Open milestones across pathways: pathway, phase, Day, milestone, status, window, roles."""
    day = parse_date(on)
    service = open_service(db)
    with library_errors(db):
        at = service.clock.now()
        rows = work_rows(service.open_work(at=at, on=day), service.policy, at=at, on=day)
    service.engine.dispose()
    if role is not None:
        rows = [row for row in rows if role.value in str(row["roles"]).split()]
    if overdue:
        rows = [row for row in rows if row["status"] == "overdue"]
    emit(rows, KEYS, fmt, title="worklist", footer=f"{len(rows)} open milestone(s)", styles=STATUS_STYLES)

