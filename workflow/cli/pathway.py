"""`hsct pathway list | show`: where pathways stand and how they got there.

Pathways are named by their random id; the patient reference is never printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from states.vocabulary import Phase
from workflow.cli._common import DEFAULT_DB_URL, Db, fail, library_errors, open_service, parse_date, parse_time
from workflow.cli.output import Format, FormatOption, Row, emit, write_json
from workflow.cli.output import console as output_console

if TYPE_CHECKING:
    from states.entry import Entry
    from states.milestones import Milestone
    from workflow.service import Snapshot

LIST_KEYS = ("id", "phase", "route", "donor_type", "graft_source", "hct", "day", "entries")
TIMELINE_KEYS = ("sequence", "effective", "day", "kind", "trigger", "phase", "actor", "reasons")

app = typer.Typer(name="pathway", help="List pathways and show one pathway's state and timeline.",
                  no_args_is_help=True)



@app.command("list")
def list_(
    db: Db = DEFAULT_DB_URL,
    phase: Annotated[Phase | None, typer.Option(help="Only pathways in this phase.")] = None,
    patient: Annotated[
        str | None,
        typer.Option(help="Only this patient's pathways (the open one first); the reference is not printed."),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """One line per pathway: id, phase, route, donor type, graft source, HCT number, Day today."""
    service = open_service(db)
    with library_errors(db):
        listed = service.listing(phase=phase, patient_ref=patient)
    service.engine.dispose()
    rows: Iterator[Row] = (
        {
            "id": item.id,
            "phase": item.phase.value,
            "route": item.route.value,
            "donor_type": item.donor_type.value if item.donor_type else None,
            "graft_source": item.graft_source.value,
            "hct": item.hct_number,
            "day": item.day_label,
            "entries": item.entries,
        }
        for item in listed
    )  # written as they are made (json, csv), not held as a second list
    emit(rows, LIST_KEYS, fmt, title="pathways", footer=f"{len(listed)} pathway(s)")


@app.command()
def show(
    pathway_id: Annotated[str, typer.Argument(metavar="ID", help="The pathway's id, or a unique prefix of it.")],
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
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            metavar="DATE",
            help="Show the pathway on a clinical DATE with everything known now: the entries effective by "
            "the end of that day, whenever recorded, with every correction applied (ISO date).",
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Phase, Day label, recoveries and the timeline of entries with their Day labels."""
    from states.errors import BeforeFirstEntry

    if at is not None and on is not None:
        fail("--at (as recorded then) and --on (as known now) ask different questions: give one")
    day = parse_date(on)
    service = open_service(db)
    with library_errors(db):
        pathway_id = service.resolve_id(pathway_id)
        snap = service.snapshot(pathway_id)
        try:
            if at is not None:
                snap = service.state_at(pathway_id, parse_time(at, zone=snap.facts.timezone), as_known_now=as_known_now)
            elif day is not None:
                snap = service.state_on(pathway_id, day)
        except BeforeFirstEntry as before:
            fail(f"pathway {pathway_id} had no entries {'recorded by' if at else 'effective by the end of'} {at or on} "
                 f"(its first entry is of {before.first})")
        history = service.history(pathway_id)
    # --on keeps what was effective by then; the other views what was recorded by then.
    entries = [e for e in history if (e.effective_at <= snap.at if day else e.sequence <= snap.version)]
    from states.days import clinical_date
    from states.milestones import milestones as open_milestones

    open_items = open_milestones(snap.facts, service.policy, clinical_date(snap.at, snap.facts.timezone))
    service.engine.dispose()
    as_of = f"as known at {at}" if at else f"on {on}, as known now" if on else None
    summary = _summary(snap, open_items, as_of)
    timeline = _timeline_rows(snap, entries)
    if fmt is Format.JSON:
        write_json({"pathway": summary, "timeline": timeline})
    elif fmt is Format.CSV:
        emit(timeline, TIMELINE_KEYS, fmt)
    else:
        _print_summary(summary)
        emit(timeline, TIMELINE_KEYS, fmt, title="timeline")



def _summary(snap: Snapshot, milestones: list[Milestone], as_of: str | None) -> dict[str, Any]:
    """The pathway's state as json-ready values (the table prints the same keys as prose)."""
    from states.care_summary import care_summary
    from states.days import clinical_date
    from states.product_summary import product_summary

    facts = snap.facts

    def iso(on: date | None) -> str | None:
        return None if on is None else on.isoformat()

    return {
        "id": snap.pathway_id,
        "as_of": as_of,
        "phase": facts.phase.value,
        "day": snap.day_label,
        "date": clinical_date(snap.at, facts.timezone).isoformat(),
        "route": facts.route.value,
        "donor_type": facts.donor_type.value if facts.donor_type else None,
        "graft_source": facts.graft_source.value,
        "hct": facts.hct_number,
        "timezone": facts.timezone,
        "planned_day0": iso(facts.planned_day0),
        "day0": iso(facts.day0),
        "neutrophil_recovery": iso(snap.neutrophil_recovery_on),
        "neutrophil_recovery_day": _label(snap, snap.neutrophil_recovery_on),
        "platelet_recovery": iso(snap.platelet_recovery_on),
        "platelet_recovery_day": _label(snap, snap.platelet_recovery_on),
        "flags": sorted(snap.flags),
        "due": [m.name for m in milestones if m.status == "due"],
        "overdue": [m.name for m in milestones if m.status == "overdue"],
        "previous_pathway": facts.previous_pathway,
        "next_pathway": facts.next_pathway,
        "care": care_summary(facts, clinical_date(snap.at, facts.timezone)),
        "graft": product_summary(facts),
    }


def _label(snap: Snapshot, on: date | None) -> str | None:
    from states.days import day_label

    n = None if on is None else snap.day_of(on)
    return None if n is None else day_label(n)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape

    def recovery(kind: str) -> str:
        on = summary[f"{kind}_recovery"]
        return "not reached" if on is None else f"{on} ({summary[f'{kind}_recovery_day'] or ''})"

    day, today = summary["day"], summary["date"]
    donor = f" {summary['donor_type']}" if summary["donor_type"] else ""
    lines = [
        ("phase", summary["phase"]),
        ("Day", f"{day} on {today}" if day else f"no Day 0 yet ({today})"),
        ("route", f"{summary['route']}{donor}, {summary['graft_source']}, HCT {summary['hct']}"),
        ("timezone", summary["timezone"]),
        ("planned Day 0", summary["planned_day0"] or "-"),
        ("Day 0", summary["day0"] or "-"),
        ("neutrophil recovery", recovery("neutrophil")),
        ("platelet recovery", recovery("platelet")),
        ("flags", ", ".join(summary["flags"]) or "-"),
        ("due", ", ".join(summary["due"]) or "-"),
        ("overdue", ", ".join(summary["overdue"]) or "-"),
    ]
    lines += [(key.replace("_", " "), summary[key]) for key in ("previous_pathway", "next_pathway") if summary[key]]
    lines += _care_lines(summary["care"])
    lines += _graft_lines(summary["graft"])
    console = output_console()
    as_of = f" {escape(summary['as_of'])}" if summary["as_of"] else ""
    console.print(f"[bold]pathway[/] {escape(summary['id'])}{as_of}")
    for key, value in lines:
        console.print(f"  {key}: {escape(value)}")


def _care_lines(care: dict[str, Any]) -> list[tuple[str, str]]:
    """Supportive care and GVHD prophylaxis as prose lines; an item never recorded is left out."""
    lines = []
    if care["stays"]:
        days = care["length_of_stay_days"]
        stays = "; ".join(f"{s['admitted'] or '?'} to {s['discharged'] or 'now'}" for s in care["stays"])
        lines.append(("length of stay", f"{'unknown' if days is None else f'{days} days'} ({stays})"))
    if care["growth_factor"]:
        growth = care["growth_factor"]
        lines.append(("G-CSF", f"{growth['agent']} from {growth['started']} ({growth['day']})"))
    if care["infections"]:
        lines.append(("infections", "; ".join(
            f"{i['organism']}, {i['site']}, {i['onset']} ({i['day'] or '-'})" for i in care["infections"])))
    if care["mucositis_peak_who_grade"] is not None:
        peak, latest = care["mucositis_peak_who_grade"], care["mucositis_latest_who_grade"]
        lines.append(("mucositis", f"WHO grade {peak} at worst ({care['mucositis_peak_day'] or '-'}), latest {latest}"))
    transfused = care["transfusions"]
    if any(transfused.values()):
        lines.append(("transfusions", f"red cells {transfused['red_cells']}, platelets {transfused['platelets']}"))
    if care["gvhd_prophylaxis"]:
        lines.append(("GVHD prophylaxis", "; ".join(
            f"{agent} {item['planned']}: {item['doses']} dose(s)" for agent, item in care["gvhd_prophylaxis"].items())))
    return lines


def _graft_lines(graft: dict[str, Any]) -> list[tuple[str, str]]:
    """The frozen-graft decision, the bags and what a tandem carried in (docs/products.md)."""
    lines = []
    if graft["cryopreservation_reason"]:
        lines.append(("cryopreserved by decision", graft["cryopreservation_reason"]))
    counted = {status: n for status, n in graft["bags"].items() if n}
    if counted:
        lines.append(("bags", ", ".join(f"{status} {n}" for status, n in counted.items())))
    if graft["quarantined_bags"]:
        lines.append(("in quarantine", ", ".join(graft["quarantined_bags"])))
    if graft["carried_in"]:
        lines.append(("carried from previous HCT", ", ".join(graft["carried_in"])))
    return lines


def _timeline_rows(snap: Snapshot, entries: list[Entry]) -> list[Row]:
    """One row per log entry, its effective time and Day in the pathway's timezone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(snap.facts.timezone)
    rows: list[Row] = []
    for entry in entries:
        local = entry.effective_at.astimezone(zone)
        moved = (
            f"{entry.from_phase.value if entry.from_phase else '-'} -> {entry.to_phase.value}"
            if entry.to_phase is not None and entry.from_phase is not entry.to_phase
            else None
        )
        rows.append({
            "sequence": entry.sequence,
            "effective": local.strftime("%Y-%m-%d %H:%M"),
            "day": _label(snap, local.date()),
            "kind": entry.kind.value,
            "trigger": entry.trigger,
            "phase": moved,
            "actor": f"{entry.actor_id} ({entry.actor_role.value})",
            "reasons": " ".join(entry.reasons) or None,
        })
    return rows


@app.command()
def timeline(
    pathway_id: Annotated[str, typer.Argument(metavar="ID", help="The pathway's id, or a unique prefix of it.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="FILE", dir_okay=False,
                     help="Where to write the picture: FILE.html (page with the SVG and a legend), .svg or .png."),
    ],
    db: Db = DEFAULT_DB_URL,
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="DATE", help="Draw the pathway as of a clinical DATE, as known now."),
    ] = None,
) -> None:
    """Draw the patient's course on a Day axis: phases, ANC and platelets with their thresholds,
    recoveries, infusions, transfusions, GVHD, VOD and open milestones (needs the timeline extra)."""
    from workflow.timeline import FORMATS, render, timeline_data

    if out.suffix.lower() not in FORMATS:
        fail(f"--out must end in {', '.join(FORMATS)}")
    day = parse_date(on)
    service = open_service(db)
    with library_errors(db):
        pathway_id = service.resolve_id(pathway_id)
        snap = service.snapshot(pathway_id) if day is None else service.state_on(pathway_id, day)
        entries = [e for e in service.history(pathway_id) if e.effective_at <= snap.at]
        data = timeline_data(snap, entries, service.policy)
    service.engine.dispose()
    with library_errors():
        render(data, out)
    typer.echo(f"timeline of pathway {pathway_id} written to {out}", err=True)
