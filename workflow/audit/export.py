"""Exports of the log that an auditor can check without this library.

One pass, one read snapshot: every entry is verified (as `verify_log` does) while the
entries the filters select are written to a temporary file; only when the whole log
verifies is the file moved into place and a signed checkpoint written beside it
(`FILE.checkpoint.json`). The checkpoint lists every pathway's head and names the export
(file name, format, SHA-256 of its bytes, entry count, filters), so a changed, cut or
swapped export file is caught as well as a changed entry. tools/verify_export.py checks
both with the standard library only (docs/audit.md).

JSON Lines: one entry per line, its sealed body exactly as stored with the canonical form that
sealed it and `"hash"` appended (`{...body members...,"form":2,"hash":"..."}`), in
(pathway_id, sequence) order.
CSV: a header, then one row per entry with the body's members of the latest form, the hash and
the form (CSV_COLUMNS; the members a form-1 entry lacks are empty);
strings as they are, integers in decimal, `payload` and `reasons` as canonical JSON text, and
null as an empty cell (an entry whose nullable text member is the empty string cannot be
written as CSV: use JSON Lines).

Exports hold payloads, which hold the patient reference and clinical values: they are
patient data, to be kept like the database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from persistence.audit_queries import ENTRY_COLUMNS
from persistence.chain import format_datetime
from states.errors import HsctError
from workflow.audit.checkpoint import Checkpoint, LogNotVerified, create_checkpoint, load_private_key
from workflow.audit.verify import Progress, Row, Verification, verify_log

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from workflow.service import PathwayService

__all__ = ["CSV_COLUMNS", "ExportFilters", "ExportFormat", "ExportResult", "checkpoint_path_for", "export_log"]

CSV_COLUMNS: Final = tuple(name for name in ENTRY_COLUMNS if name != "body")
_NULLABLE_TEXT: Final = ("from_phase", "to_phase", "reason", "idempotency_key", "facts_digest", "origin", "release")
_I = {name: index for index, name in enumerate(ENTRY_COLUMNS)}


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True)
class ExportFilters:
    """The filters of `hsct audit log`; times bound `recorded_at`, both ends included."""

    pathway: str | None = None
    actor: str | None = None
    trigger: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        return self == ExportFilters()

    def as_json(self) -> dict[str, Any]:
        """Only the filters that are set, times in canonical form: recorded in the checkpoint."""
        values: dict[str, Any] = {
            "pathway": self.pathway,
            "actor": self.actor,
            "trigger": self.trigger,
            "kind": None if self.kind is None else str(self.kind),
            "since": None if self.since is None else format_datetime(self.since),
            "until": None if self.until is None else format_datetime(self.until),
        }
        return {name: value for name, value in values.items() if value is not None}

    def matcher(self) -> Any:
        """A predicate over raw rows (times compared as canonical text, which sorts as instants)."""
        wanted = [(_I[column], value) for column, value in (
            ("pathway_id", self.pathway),
            ("actor_id", self.actor),
            ("trigger", self.trigger),
            ("kind", None if self.kind is None else str(self.kind)),
        ) if value is not None]
        low = None if self.since is None else format_datetime(self.since)
        high = None if self.until is None else format_datetime(self.until)
        recorded = _I["recorded_at"]

        def matches(row: Row) -> bool:
            if any(row[index] != value for index, value in wanted):
                return False
            text = row[recorded]
            if low is not None and (text is None or text < low):
                return False
            return high is None or (text is not None and text <= high)

        return matches


@dataclass(frozen=True)
class ExportResult:
    path: Path
    checkpoint_path: Path
    entries: int
    verification: Verification
    checkpoint: Checkpoint


def checkpoint_path_for(path: str | os.PathLike[str]) -> Path:
    """Where an export's checkpoint goes: beside it, named after it."""
    target = Path(path)
    return target.with_name(target.name + ".checkpoint.json")


class _Writer:
    """Writes export lines to a binary file, hashing exactly the bytes written."""

    def __init__(self, out: BinaryIO, fmt: ExportFormat) -> None:
        self.out = out
        self.fmt = fmt
        self.digest = hashlib.sha256()
        self.count = 0
        if fmt is ExportFormat.CSV:
            self._emit(_csv_line(CSV_COLUMNS))

    def _emit(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)

    def write(self, row: Row) -> None:
        body = row[_I["body"]]
        digest = row[_I["hash"]]
        form = row[_I["form"]]
        if self.fmt is ExportFormat.JSONL:
            if not isinstance(body, bytes) or not isinstance(digest, str) or type(form) is not int:
                return  # a damaged row: verification fails and the export is discarded
            tail = f',"form":{form},"hash":{json.dumps(digest)}}}\n'
            self._emit(body[:-1] + tail.encode("ascii"))
        else:
            try:
                values = json.loads(body)
            except (TypeError, ValueError):
                return
            if not isinstance(values, dict):
                return
            values["hash"] = digest
            values["form"] = form
            for name in _NULLABLE_TEXT:
                if values.get(name) == "":
                    raise HsctError(
                        f"pathway {row[0]} sequence {row[1]}: an empty {name} cannot be told from null in CSV; "
                        "export as jsonl"
                    )
            self._emit(_csv_line([_cell(values.get(name)) for name in CSV_COLUMNS]))
        self.count += 1


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _csv_line(cells: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def export_log(
    service: PathwayService,
    path: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str] | Ed25519PrivateKey,
    fmt: ExportFormat | str = ExportFormat.JSONL,
    filters: ExportFilters | None = None,
    progress: Progress | None = None,
    on_total: Any = None,
) -> ExportResult:
    """Verify the log and export the selected entries to `path`, with its signed checkpoint.

    Raises LogNotVerified (nothing written) when the log has problems, CheckpointInvalid when
    the key cannot be used, FileExistsError when `path` exists.
    """
    target = Path(path)
    fmt = ExportFormat(fmt)
    filters = filters or ExportFilters()
    private = key if not isinstance(key, str | os.PathLike) else load_private_key(key)  # fail before the scan
    if target.exists():
        raise FileExistsError(f"{target} exists; an export never overwrites")
    partial = target.with_name(target.name + ".partial")
    matches = filters.matcher()
    try:
        with partial.open("xb") as out:
            writer = _Writer(out, fmt)

            def sink(row: Row) -> None:
                if matches(row):
                    writer.write(row)

            verification = verify_log(service, sink=sink, progress=progress, on_total=on_total)
        if not verification.ok:
            raise LogNotVerified(verification)
        export = {
            "file": target.name,
            "format": fmt.value,
            "sha256": writer.digest.hexdigest(),
            "entries": writer.count,
            "filters": filters.as_json(),
        }
        checkpoint = create_checkpoint(service, private, verification=verification, export=export)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    written = checkpoint.write(checkpoint_path_for(target))
    return ExportResult(target, written, writer.count, verification, checkpoint)
