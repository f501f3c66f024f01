"""`hsct pathway list | show`: where pathways stand and how they got there.

Pathways are named by their random id; the patient reference is never printed.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from states.vocabulary import Phase
from workflow.cli._common import DEFAULT_DB_URL, Db, fail, library_errors, open_service, parse_time, stdout

if TYPE_CHECKING:
    from states.entry import Entry
    from states.milestones import Milestone
    from workflow.service import Snapshot

app = typer.Typer(name="pathway", help="List pathways and show one pathway's state and timeline.",
                  no_args_is_help=True)



@app.command("list")
def list_(
    db: Db = DEFAULT_DB_URL,
    phase: Annotated[Phase | None, typer.Option(help="Only pathways in this phase.")] = None,
) -> None:
    """One line per pathway: id, phase, route, donor type, graft source, HCT number, Day today."""
    from rich.table import Table

    service = open_service(db)
    table = Table(title="pathways", title_justify="left")
    for column in ("id", "phase", "route", "donor type", "graft source", "HCT", "Day", "entries"):
        table.add_column(column, overflow="fold")
    with library_errors(db):
        ids = service.pathway_ids(phase=phase)
        for pathway_id in ids:
            snap = service.snapshot(pathway_id)
            facts = snap.facts
            table.add_row(
                pathway_id,
                facts.phase.value,
                facts.route.value,
                facts.donor_type.value if facts.donor_type else "",
                facts.graft_source.value,
                str(facts.hct_number),
                snap.day_label or "",
                str(snap.version),
            )
    service.engine.dispose()
    console = stdout()
    console.print(table)
    console.print(f"{len(ids)} pathway(s)")


@app.command()
def show(
    pathway_id: Annotated[str, typer.Argument(metavar="ID", help="The pathway's id.")],
    db: Db = DEFAULT_DB_URL,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Show the pathway as it was known at TIME: the log as recorded by then (ISO date or "
            "date-time; a date is the start of that day, in the pathway's timezone unless an offset is given).",
        ),
    ] = None,
    as_known_now: Annotated[
        bool,
        typer.Option(
            "--as-known-now",
            help="With --at: apply the corrections recorded since TIME to what was recorded by then.",
        ),
    ] = False,
) -> None:
    """Phase, Day label, recoveries and the timeline of entries with their Day labels."""
    service = open_service(db)
    with library_errors(db):
        snap = service.snapshot(pathway_id)
        if at is not None:
            from states.errors import UnknownPathway

            when = parse_time(at, zone=snap.facts.timezone)
            try:
                snap = service.state_at(pathway_id, when, as_known_now=as_known_now)
            except UnknownPathway:
                fail(f"pathway {pathway_id} had no entries recorded by {at}")
        entries = [e for e in service.history(pathway_id) if e.sequence <= snap.version]
    from states.days import clinical_date
    from states.milestones import milestones as open_milestones

    open_items = open_milestones(snap.facts, service.policy, clinical_date(snap.at, snap.facts.timezone))
    service.engine.dispose()
    _print_pathway(snap, entries, open_items, as_of=at)


def _print_pathway(snap: Snapshot, entries: list[Entry], milestones: list[Milestone], *, as_of: str | None) -> None:
    from zoneinfo import ZoneInfo

    from rich.markup import escape
    from rich.table import Table

    from states.days import clinical_date, day_label

    facts = snap.facts
    zone = ZoneInfo(facts.timezone)

    def label(on: date) -> str:
        n = snap.day_of(on)
        return "" if n is None else day_label(n)

    def recovery(on: date | None) -> str:
        return "not reached" if on is None else f"{on.isoformat()} ({label(on)})"

    console = stdout()
    console.print(f"[bold]pathway[/] {escape(snap.pathway_id)}" + (f" as known at {escape(as_of)}" if as_of else ""))
    donor = f" {facts.donor_type.value}" if facts.donor_type else ""
    today = clinical_date(snap.at, facts.timezone).isoformat()
    lines = [
        ("phase", facts.phase.value),
        ("Day", f"{snap.day_label} on {today}" if snap.day_label else f"no Day 0 yet ({today})"),
        ("route", f"{facts.route.value}{donor}, {facts.graft_source.value}, HCT {facts.hct_number}"),
        ("timezone", facts.timezone),
        ("planned Day 0", facts.planned_day0.isoformat() if facts.planned_day0 else "-"),
        ("Day 0", facts.day0.isoformat() if facts.day0 else "-"),
        ("neutrophil recovery", recovery(snap.neutrophil_recovery_on)),
        ("platelet recovery", recovery(snap.platelet_recovery_on)),
        ("flags", ", ".join(sorted(snap.flags)) or "-"),
        ("due", ", ".join(m.name for m in milestones if m.status == "due") or "-"),
        ("overdue", ", ".join(m.name for m in milestones if m.status == "overdue") or "-"),
    ]
    if facts.previous_pathway:
        lines.append(("previous pathway", facts.previous_pathway))
    if facts.next_pathway:
        lines.append(("next pathway", facts.next_pathway))
    for key, value in lines:
        console.print(f"  {key}: {escape(value)}")

    table = Table(title="timeline", title_justify="left")
    for column in ("#", "effective", "Day", "kind", "trigger", "phase", "actor", "reasons"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        local = entry.effective_at.astimezone(zone)
        moved = (
            f"{entry.from_phase.value if entry.from_phase else '-'} -> {entry.to_phase.value}"
            if entry.to_phase is not None and entry.from_phase is not entry.to_phase
            else ""
        )
        table.add_row(
            str(entry.sequence),
            local.strftime("%Y-%m-%d %H:%M"),
            label(local.date()),
            entry.kind.value,
            escape(entry.trigger),
            moved,
            escape(f"{entry.actor_id} ({entry.actor_role.value})"),
            " ".join(entry.reasons),
        )
    console.print(table)
