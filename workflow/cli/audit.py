"""`hsct audit log | verify | rejudge | keygen | checkpoint | export | fhir`: reading and proving the log.

`log` prints the append-only log across pathways, filtered, as a table, JSON, JSON lines or CSV
(`--format`; table, json and csv as every listing command writes them, workflow/cli/output.py).
By default only the structural fields are printed (who did what, when, with which outcome
and reason codes, under which policy, with which hash). Payloads and free-text reasons can
hold patient references, so they appear only with `--payload`.

`verify` recomputes every chain (exit 1 on any problem, naming the first bad pathway and
sequence number), against a signed checkpoint when given one; `keygen` makes the Ed25519
signing key (a file, never the database); `checkpoint` signs every pathway's head; `export`
writes a verifiable JSON Lines or CSV export with its checkpoint (tools/verify_export.py
checks it with the standard library alone); `fhir` writes FHIR R4B Bundles. docs/audit.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from states.vocabulary import EntryKind
from workflow.cli._common import (
    DEFAULT_DB_URL,
    EXIT_FAILED,
    Db,
    fail,
    is_terminal,
    library_errors,
    open_service,
    parse_time,
    stderr,
    stdout,
)
from workflow.cli.output import Cell, emit, write_json
from workflow.cli.output import Format as OutputFormat
from workflow.cli.output import FormatOption as OutputFormatOption

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from states.entry import Entry
    from workflow.audit.checkpoint import Checkpoint
    from workflow.audit.verify import Verification
    from workflow.service import PathwayService

app = typer.Typer(name="audit", help="Read, verify, checkpoint and export the audit log.", no_args_is_help=True)


class Format(StrEnum):
    """The listing formats, and JSON lines: one entry per line, for streams of any length."""

    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


TABLE_FIELDS = ("recorded_at", "effective_at", "pathway_id", "sequence", "kind", "trigger", "to_phase", "actor_id",
                "actor_role", "reasons")
"""The table's columns: who did what and when; json, jsonl and csv carry every field of FIELDS."""

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


PathwayFilter = Annotated[str | None, typer.Option(metavar="ID", help="Only this pathway (its id or a unique prefix).")]
ActorFilter = Annotated[str | None, typer.Option(metavar="ACTOR_ID", help="Only entries by this actor id.")]
TriggerFilter = Annotated[str | None, typer.Option(metavar="NAME", help="Only this trigger or event.")]
KindFilter = Annotated[EntryKind | None, typer.Option(help="Only this kind of entry.")]
SinceFilter = Annotated[
    str | None,
    typer.Option(metavar="TIME", help="Only entries recorded at or after TIME (ISO date or date-time, UTC "
                 "unless an offset is given; a date is the start of that day)."),
]
UntilFilter = Annotated[
    str | None,
    typer.Option(metavar="TIME", help="Only entries recorded at or before TIME (a date includes that whole day)."),
]


@app.command()
def log(
    db: Db = DEFAULT_DB_URL,
    pathway: PathwayFilter = None,
    actor: ActorFilter = None,
    trigger: TriggerFilter = None,
    kind: KindFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    fmt: Annotated[
        Format,
        typer.Option("--format", help="table (plain text when piped), json (one list), jsonl (one entry per line) "
                     "or csv (with a header row)."),
    ] = Format.TABLE,
    payload: Annotated[
        bool, typer.Option("--payload", help="Include payloads and free-text reasons (may hold patient data).")
    ] = False,
) -> None:
    """Entries of every pathway (or one), oldest recorded first."""
    from persistence.store import LogFilter

    low = parse_time(since, option="--since") if since else None
    high = parse_time(until, end_of_day=True, option="--until") if until else None
    service = open_service(db)
    with library_errors(db):
        entries = service.log(LogFilter(
            pathway_id=None if pathway is None else service.resolve_id(pathway),
            actor_id=actor,
            trigger=trigger,
            kind=None if kind is None else kind.value,
            since=low,
            until=high,
        ))
    service.engine.dispose()
    fields = FIELDS + PAYLOAD_FIELDS if payload else FIELDS
    rows = [_row(entry, fields) for entry in entries]
    if fmt is Format.JSONL:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=False))
    elif fmt is Format.JSON:
        write_json(rows)
    else:
        flat = [{k: _flat(v) for k, v in row.items()} for row in rows]
        count = f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}"
        keys = TABLE_FIELDS if fmt is Format.TABLE else fields
        emit(flat, keys, OutputFormat(fmt.value), title="audit log", footer=count)


def _row(entry: Entry, fields: Iterable[str]) -> dict[str, Any]:
    values = entry.model_dump(mode="json")
    return {name: values[name] for name in fields}


def _flat(value: Any) -> Cell:
    """A table or CSV cell: lists space-separated, mappings as JSON."""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value  # type: ignore[no-any-return]


# --- verification, checkpoints, exports -------------------------------------------------------


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


ExportFormatOption = Annotated[
    str, typer.Option("--format", metavar="jsonl|csv", help="Export format: jsonl (default) or csv.")
]
KeyOption = Annotated[
    Path,
    typer.Option("--key", metavar="FILE", help="The Ed25519 private key file (from `hsct audit keygen`).",
                 exists=True, dir_okay=False),
]
PROGRESS_FROM = 10_000
"""Logs with at least this many entries get a progress bar (on a terminal)."""


@contextmanager
def _progress(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(on_total, progress) callbacks driving a rich progress bar on stderr, for large logs only."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=stderr(), transient=True, disable=not is_terminal(),
    ) as bar:
        task = bar.add_task(label, total=None, visible=False)

        def on_total(total: int) -> None:
            bar.update(task, total=total, visible=total >= PROGRESS_FROM)

        def progress(done: int) -> None:
            bar.update(task, completed=done)

        yield on_total, progress


def _trusted_key(value: str | None) -> str | None:
    """A public key given as hex, or as a file holding the hex (exit 2 when that file is not text)."""
    from workflow.input_limits import MAX_KEY_FILE_BYTES, LimitExceeded, read_bounded

    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        return value.strip()
    try:
        return read_bounded(path, MAX_KEY_FILE_BYTES).decode("ascii").strip()
    except (OSError, UnicodeDecodeError, LimitExceeded):
        fail(f"--public-key {path}: not a readable file holding the key as hex")


def _read_checkpoint(path: Path, public_key: str | None) -> Checkpoint:
    """The checkpoint, checked; exit 2 when the file is no checkpoint, 1 when it fails its checks."""
    from workflow.audit.checkpoint import CheckpointInvalid, CheckpointMalformed, load_checkpoint

    trusted = _trusted_key(public_key)
    try:
        return load_checkpoint(path, public_key=trusted)
    except OSError as exc:
        fail(f"cannot read the checkpoint {path}: {exc.strerror}")
    except CheckpointMalformed as exc:
        fail(f"{path}: {exc}")
    except CheckpointInvalid as exc:
        stderr().print(f"[bold red]checkpoint rejected:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def _report(verification: Verification, *, fmt: ReportFormat, checkpoint: Checkpoint | None,
            shown: int = 20) -> None:
    """The figures on stdout; problems too (first bad pathway and sequence first)."""
    from rich.markup import escape

    if fmt is ReportFormat.JSON:
        typer.echo(json.dumps({
            "ok": verification.ok,
            "entries": verification.entries,
            "pathways": verification.pathways,
            "seconds": round(verification.seconds, 6),
            "against_checkpoint": None if checkpoint is None else checkpoint.root,
            "first": None if verification.first is None else vars(verification.first),
            "problems": [vars(p) for p in verification.problems],
        }))
        return
    console = stdout()
    rate = f"{verification.entries_per_second:,.0f} entries/s" if verification.seconds > 0 else ""
    against = "" if checkpoint is None else (
        f", against the checkpoint of {checkpoint.created_at.isoformat()} "
        f"({checkpoint.pathways} pathways, {checkpoint.entries} entries, root {checkpoint.root[:16]})"
    )
    console.print(f"checked {verification.entries:,} entries in {verification.pathways:,} pathways "
                  f"in {verification.seconds:.2f} s ({rate}){escape(against)}")
    first = verification.first
    if first is None:
        console.print("[bold green]ok[/]: every chain verifies" + (" and reaches its checkpointed head"
                                                                  if checkpoint is not None else ""))
        return
    console.print(f"[bold red]FAILED[/]: {len(verification.problems)} problem(s); first bad pathway "
                  f"{escape(first.pathway_id)} at sequence {first.sequence}: {escape(first.detail)} [{first.check}]")
    for problem in verification.problems[:shown]:
        console.print(f"  {escape(str(problem))}")
    if len(verification.problems) > shown:
        console.print(f"  ... and {len(verification.problems) - shown} more")


@app.command()
def verify(
    db: Db = DEFAULT_DB_URL,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", metavar="FILE", help="Also check against this signed checkpoint: catches a "
                     "truncated log and a chain recomputed from scratch.", dir_okay=False),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", metavar="HEX|FILE", help="The signer you trust (hex, or a file holding it); "
                     "without it the checkpoint's own key is taken at its word."),
    ] = None,
    pathway: PathwayFilter = None,
    deep: Annotated[bool, typer.Option("--deep", help="Also replay every log and compare it with the stored "
                                       "snapshot (slow).")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes checking pathways in parallel.")] = 1,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Report format.")] = ReportFormat.TEXT,
) -> None:
    """Recompute every pathway's hash chain; exit 1 naming the first bad pathway and sequence."""
    from workflow.audit.verify import verify_log

    trusted = None if checkpoint is None else _read_checkpoint(checkpoint, public_key)
    service = open_service(db)
    with library_errors(db), _progress("verifying") as (on_total, progress):
        pathway = None if pathway is None else service.resolve_id(pathway)
        verification = verify_log(service, checkpoint=trusted, pathway_id=pathway, deep=deep, workers=workers,
                                  progress=progress, on_total=on_total)
    service.engine.dispose()
    _report(verification, fmt=fmt, checkpoint=trusted)
    if not verification.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="Where to write the private key (PEM). Keep "
                                      "it off the database host; it is never stored in the database.",
                                      dir_okay=False)],
) -> None:
    """Create an Ed25519 signing key for checkpoints; print its public key (hex) for auditors to pin."""
    from states.errors import HsctError
    from workflow.audit.checkpoint import generate_key

    try:
        public = generate_key(out)
    except FileExistsError:
        fail(f"{out} exists: a key is never overwritten (its checkpoints would lose their signer)")
    except HsctError as exc:
        fail(str(exc))
    stderr().print(f"private key written to {out} (mode 600); give auditors the public key:")
    typer.echo(public)


def _signed(service: PathwayService, db: str, key: Path, workers: int) -> Checkpoint:
    from workflow.audit.checkpoint import CheckpointInvalid, LogNotVerified, create_checkpoint, load_private_key
    from workflow.audit.verify import verify_log

    try:
        private = load_private_key(key)
    except CheckpointInvalid as exc:
        fail(str(exc))
    with library_errors(db), _progress("verifying") as (on_total, progress):
        verification = verify_log(service, workers=workers, progress=progress, on_total=on_total)
        try:
            return create_checkpoint(service, private, verification=verification)
        except LogNotVerified:
            _report(verification, fmt=ReportFormat.TEXT, checkpoint=None)
            stderr().print("[bold red]no checkpoint written:[/] the log does not verify")
            raise typer.Exit(EXIT_FAILED) from None


@app.command()
def checkpoint(
    key: KeyOption,
    db: Db = DEFAULT_DB_URL,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", dir_okay=False,
        help="Write it here; `-` prints it on stdout. Default: hsct-checkpoint-<UTC time of signing>.json in the "
        "current directory.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes verifying in parallel first.")] = 1,
) -> None:
    """Verify the log, then sign every pathway's head and a root over them into a file (keep it elsewhere)."""
    if out is not None and out != Path("-") and out.exists():
        fail(f"{out} exists; a checkpoint is never overwritten")
    service = open_service(db)
    try:
        signed = _signed(service, db, key, workers)
    finally:
        service.engine.dispose()
    if out == Path("-"):
        typer.echo(signed.to_json(), nl=False)
    else:
        target = out or Path(f"hsct-checkpoint-{signed.created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}.json")
        if target.exists():
            fail(f"{target} exists; a checkpoint is never overwritten")
        signed.write(target)
        stderr().print(f"checkpoint written to {target.resolve()}", markup=False, highlight=False)
    stderr().print(f"checkpoint of {signed.pathways} pathways, {signed.entries} entries, root {signed.root}, "
                   f"signed by {signed.public_key}")


@app.command()
def export(
    key: KeyOption,
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="The export file; its checkpoint goes to "
                                      "FILE.checkpoint.json.", dir_okay=False)],
    db: Db = DEFAULT_DB_URL,
    fmt: ExportFormatOption = "jsonl",
    pathway: PathwayFilter = None,
    actor: ActorFilter = None,
    trigger: TriggerFilter = None,
    kind: KindFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
) -> None:
    """Verify the log and export its entries (holds payloads: patient data) with a signed checkpoint."""
    from workflow.audit.checkpoint import LogNotVerified
    from workflow.audit.export import ExportFilters, ExportFormat, export_log

    if fmt not in {f.value for f in ExportFormat}:
        raise typer.BadParameter("must be jsonl or csv", param_hint="--format")
    service = open_service(db)
    with library_errors(db):
        pathway = None if pathway is None else service.resolve_id(pathway)
    filters = ExportFilters(
        pathway=pathway, actor=actor, trigger=trigger, kind=None if kind is None else kind.value,
        since=parse_time(since, option="--since") if since else None,
        until=parse_time(until, end_of_day=True, option="--until") if until else None,
    )
    try:
        with library_errors(db), _progress("exporting") as (on_total, progress):
            try:
                result = export_log(service, out, key=key, fmt=fmt, filters=filters, progress=progress,
                                    on_total=on_total)
            except LogNotVerified as exc:
                _report(exc.verification, fmt=ReportFormat.TEXT, checkpoint=None)
                stderr().print("[bold red]nothing exported:[/] the log does not verify")
                raise typer.Exit(EXIT_FAILED) from None
            except FileExistsError as exc:
                fail(str(exc))
    finally:
        service.engine.dispose()
    stdout().print(f"exported {result.entries} entries to {result.path}; checkpoint {result.checkpoint_path} "
                   f"({result.checkpoint.pathways} pathways, root {result.checkpoint.root[:16]}); "
                   f"check with: python -I -S tools/verify_export.py {result.path} --public-key "
                   f"{result.checkpoint.public_key}")


@app.command()
def fhir(
    out: Annotated[Path | None, typer.Option("--out", metavar="PATH", help="With --pathway: the file (default: "
                                             "stdout); without: a directory, one <id>.json per pathway.")] = None,
    db: Db = DEFAULT_DB_URL,
    pathway: PathwayFilter = None,
    patient_system: Annotated[str, typer.Option(metavar="URI", help="Identifier system of your patient "
                                                "references.")] = "urn:hsct-pathway:patient-ref",
) -> None:
    """FHIR R4B Bundles: EpisodeOfCare with phase history, Provenance per transition, AuditEvents."""
    from workflow.audit.fhir import fhir_bundle

    if pathway is None and out is None:
        raise typer.BadParameter("give --pathway, or --out DIRECTORY for every pathway", param_hint="--out")
    service = open_service(db)
    written = 0
    try:
        with library_errors(db):
            ids = [service.resolve_id(pathway)] if pathway is not None else service.pathway_ids()
            if pathway is None and out is not None:
                out.mkdir(parents=True, exist_ok=True)
            for pathway_id in ids:
                text = fhir_bundle(service, pathway_id, patient_system=patient_system).model_dump_json(indent=2)
                if out is None:
                    typer.echo(text)
                else:
                    target = out if pathway is not None else out / f"{pathway_id}.json"
                    target.write_text(text + "\n", encoding="utf-8")
                written += 1
    finally:
        service.engine.dispose()
    if out is not None:
        stderr().print(f"{written} FHIR R4B bundle(s) written to {out}")


REJUDGE_KEYS = ("pathway_id", "sequence", "trigger", "policy_version", "release", "stored", "recomputed", "note")


@app.command()
def rejudge(
    db: Db = DEFAULT_DB_URL, pathway: PathwayFilter = None, fmt: OutputFormatOption = OutputFormat.TABLE
) -> None:
    """Re-run every judgement under the policy stored for its entry; exit 1 naming each entry
    whose stored reasons differ (host role-directory reasons are not recomputed)."""
    from workflow.audit.rejudge import HOST_REASONS, rejudge_log

    service = open_service(db)
    with library_errors(db):
        result = rejudge_log(service.engine, pathway_ids=None if pathway is None else [service.resolve_id(pathway)])
    releases = ", ".join(f"{release or 'unrecorded'}: {n}" for release, n in sorted(
        result.entries_by_release.items(), key=lambda item: str(item[0])))
    footer = (
        f"{len(result.differences)} difference(s); {result.judged} entries of {result.pathways} pathways re-judged, "
        f"{result.skipped} not judged by a policy; entries by release: {releases or 'none'}. Not recomputed: "
        f"{', '.join(sorted(HOST_REASONS))} (the host's role directory at the time is not in the log)."
    )
    emit(
        [{**vars(d), "stored": ",".join(d.stored) or "passes",
          "recomputed": "-" if d.recomputed is None else ",".join(d.recomputed) or "passes"}
         for d in result.differences],
        REJUDGE_KEYS,
        fmt,
        footer=footer,
    )
    if fmt is not OutputFormat.TABLE:
        stderr().print(footer, markup=False)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
