"""`hsct audit log`: the append-only log across pathways, filtered, as a table, JSON lines or CSV.

By default only the structural fields are printed (who did what, when, with which outcome
and reason codes, under which policy, with which hash). Payloads and free-text reasons can
hold patient references, so they appear only with `--payload`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from states.vocabulary import EntryKind
from workflow.cli._common import DEFAULT_DB_URL, Db, library_errors, open_service, parse_time, stdout

if TYPE_CHECKING:
    from datetime import datetime

    from states.entry import Entry

app = typer.Typer(name="audit", help="Read the audit log.", no_args_is_help=True)


class Format(StrEnum):
    TABLE = "table"
    JSONL = "jsonl"
    CSV = "csv"


FIELDS = (
    "recorded_at",
    "effective_at",
    "pathway_id",
    "sequence",
    "kind",
    "trigger",
    "from_phase",
    "to_phase",
    "actor_id",
    "actor_role",
    "reasons",
    "corrects",
    "policy_version",
    "prev_hash",
    "hash",
)
PAYLOAD_FIELDS = ("reason", "payload")


@app.command()
def log(
    db: Db = DEFAULT_DB_URL,
    pathway: Annotated[str | None, typer.Option(metavar="ID", help="Only this pathway.")] = None,
    actor: Annotated[str | None, typer.Option(metavar="ACTOR_ID", help="Only entries by this actor id.")] = None,
    trigger: Annotated[str | None, typer.Option(metavar="NAME", help="Only this trigger or event.")] = None,
    kind: Annotated[EntryKind | None, typer.Option(help="Only this kind of entry.")] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Only entries recorded at or after TIME (ISO date or date-time, UTC "
                     "unless an offset is given; a date is the start of that day)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Only entries recorded at or before TIME (a date includes that whole day)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    payload: Annotated[
        bool, typer.Option("--payload", help="Include payloads and free-text reasons (may hold patient data).")
    ] = False,
) -> None:
    """Entries of every pathway (or one), oldest recorded first."""
    low = parse_time(since, option="--since") if since else None
    high = parse_time(until, end_of_day=True, option="--until") if until else None
    service = open_service(db)
    with library_errors(db):
        ids = [pathway] if pathway is not None else service.pathway_ids()
        found: list[tuple[int, Entry]] = []
        for order, pathway_id in enumerate(ids):
            found += [(order, e) for e in service.history(pathway_id)]
    service.engine.dispose()
    entries = [
        entry
        for _, entry in sorted(found, key=lambda pair: (pair[1].recorded_at, pair[0], pair[1].sequence))
        if _wanted(entry, actor=actor, trigger=trigger, kind=kind, low=low, high=high)
    ]
    fields = FIELDS + PAYLOAD_FIELDS if payload else FIELDS
    rows = [_row(entry, fields) for entry in entries]
    if fmt is Format.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=False))
    elif fmt is Format.CSV:
        typer.echo(_csv(rows, fields), nl=False)
    else:
        _table(rows)


def _wanted(
    entry: Entry,
    *,
    actor: str | None,
    trigger: str | None,
    kind: EntryKind | None,
    low: datetime | None,
    high: datetime | None,
) -> bool:
    return (
        (actor is None or entry.actor_id == actor)
        and (trigger is None or entry.trigger == trigger)
        and (kind is None or entry.kind is kind)
        and (low is None or entry.recorded_at >= low)
        and (high is None or entry.recorded_at <= high)
    )


def _row(entry: Entry, fields: Iterable[str]) -> dict[str, Any]:
    values = entry.model_dump(mode="json")
    return {name: values[name] for name in fields}


def _csv(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _flat(v) for k, v in row.items()})
    return buffer.getvalue()


def _flat(value: Any) -> Any:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    shown = ("recorded_at", "effective_at", "pathway_id", "sequence", "kind", "trigger", "to_phase", "actor_id",
             "actor_role", "reasons")
    table = Table(title="audit log", title_justify="left")
    for name in shown:
        table.add_column(name.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(_flat(row[name]))) for name in shown))
    console = stdout()
    console.print(table)
    console.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
