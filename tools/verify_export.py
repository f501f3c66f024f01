#!/usr/bin/env python3
"""Check an hsct-pathway audit export and its signed checkpoint, with the standard library only.

    python -I tools/verify_export.py EXPORT [--checkpoint FILE] [--public-key HEX]

This file is deliberately independent of the library (run it with `python -I`, on a machine
that has never seen the library): it follows docs/canonical-form.md and docs/audit.md, uses
`hashlib` for SHA-256 and SHA-512, and checks the Ed25519 signature with the small reference
verification of RFC 8032 (section 6), written out below. It checks:

1. the checkpoint: its members, root = sha256(canonical JSON of its heads), the Ed25519
   signature over the canonical JSON of every member but `signature`, and (given
   --public-key) that the signer is the key the auditor trusts;
2. the export file: its SHA-256, format and entry count are the ones the checkpoint names;
3. every entry: its hash is sha256 of the canonical JSON of its body members (those of its
   canonical form, 1 or 2), sequence numbers do not repeat, `prev_hash` links to the previous
   entry wherever both are present (the genesis hash for entry 1), the form never goes back,
   and no entry lies beyond its pathway's checkpointed head;
   the content continues (docs/canonical-form.md): entry 1 starts from no phase, an entry's
   from_phase is the previous entry's to_phase wherever both are present, a refusal, event or
   correction keeps the phase (to_phase = from_phase) (invariant I4), and a form-2 refusal
   commits to the same facts digest as the form-2 entry before it;
4. each pathway whose entries run from 1 to the checkpoint's count ends on the checkpointed
   hash; an export with no filters must hold every pathway of the checkpoint that way.
   Without a checkpoint (--no-checkpoint), each pathway must run from 1 with no gap unless
   --partial says the export was filtered; a cut tail then goes unseen.

Exit status: 0 verified, 1 a check failed (the first failure is printed with its pathway and
sequence number), 2 unreadable input or bad usage.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from pathlib import Path

GENESIS = "0" * 64
FORM_1_MEMBERS = (
    "pathway_id", "sequence", "prev_hash", "kind", "trigger", "from_phase", "to_phase", "effective_at",
    "recorded_at", "actor_id", "actor_role", "reason", "payload", "reasons", "policy_version",
    "idempotency_key", "corrects",
)
FORM_2_ONLY = ("facts_digest", "origin", "release")
BODY_MEMBERS = {1: FORM_1_MEMBERS, 2: (*FORM_1_MEMBERS, *FORM_2_ONLY)}
CSV_COLUMNS = (
    "pathway_id", "sequence", "kind", "trigger", "from_phase", "to_phase", "effective_at", "recorded_at",
    "actor_id", "actor_role", "reason", "payload", "reasons", "policy_version", "idempotency_key", "corrects",
    "facts_digest", "origin", "release", "prev_hash", "hash", "form",
)
CSV_INTEGERS = ("sequence", "form")
CSV_NULLABLE_INTEGERS = ("corrects",)
CSV_NULLABLE_TEXT = ("from_phase", "to_phase", "reason", "idempotency_key", *FORM_2_ONLY)
CSV_JSON = ("payload", "reasons")
CHECKPOINT_MEMBERS = {"format", "created_at", "pathways", "entries", "heads", "root", "export", "public_key",
                      "signature"}
CHECKPOINT_FORMAT = "hsct-checkpoint/1"


class Failed(Exception):
    """A verification failure: what failed, and where."""


class Unreadable(Exception):
    """The input cannot be read as an export or a checkpoint."""


def canonical(value):
    """docs/canonical-form.md: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- Ed25519 verification (RFC 8032, section 6, verification only) ------------------------

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    """Point addition in extended homogeneous coordinates."""
    x = (a[1] - a[0]) * (b[1] - b[0]) % P
    y = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    z = 2 * a[2] * b[2] % P
    e, f, g, h = y - x, z - c, z + c, y + x
    return (e * f, g * h, f * g, e * h)


def _mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
BASE = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, message, signature):
    """True when `signature` (64 bytes) is `public`'s (32 bytes) Ed25519 signature of `message`."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= Q:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % Q
    return _equal(_mul(s, BASE), _add(r, _mul(k, a)))


# --- the checkpoint ------------------------------------------------------------------------


def is_hex(value, length):
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def check_checkpoint(data, trusted_key):
    if not isinstance(data, dict) or set(data) != CHECKPOINT_MEMBERS:
        raise Unreadable("the checkpoint is not an object with exactly the documented members")
    if data["format"] != CHECKPOINT_FORMAT:
        raise Unreadable(f"unknown checkpoint format {data['format']!r}")
    heads = data["heads"]
    if not isinstance(heads, dict):
        raise Unreadable("the checkpoint's heads are not an object")
    for head in heads.values():
        if (not isinstance(head, dict) or set(head) != {"entries", "hash"} or type(head["entries"]) is not int
                or head["entries"] < 1 or not is_hex(head["hash"], 64)):
            raise Unreadable("a head is not {\"entries\": n >= 1, \"hash\": 64 hex digits}")
    if sha256(canonical(heads)) != data["root"]:
        raise Failed("checkpoint: the root is not the hash of the heads")
    if data["pathways"] != len(heads) or data["entries"] != sum(h["entries"] for h in heads.values()):
        raise Failed("checkpoint: the totals do not add up")
    if not is_hex(data["public_key"], 64) or not is_hex(data["signature"], 128):
        raise Failed("checkpoint: the public key or the signature is not hex of the right length")
    if trusted_key is not None and trusted_key.strip().lower() != data["public_key"]:
        raise Failed("checkpoint: signed by another key than the trusted one")
    signed = {name: value for name, value in data.items() if name != "signature"}
    if not ed25519_verify(bytes.fromhex(data["public_key"]), canonical(signed), bytes.fromhex(data["signature"])):
        raise Failed("checkpoint: the signature does not verify")
    return heads


# --- the export ----------------------------------------------------------------------------


def read_jsonl(data):
    records = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise Failed(f"line {number}: not JSON") from None
        if not isinstance(record, dict):
            raise Failed(f"line {number}: not a JSON object")
        records.append(record)
    return records


def read_csv(data):
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        raise Failed("the CSV file cannot be read") from None
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        raise Failed("the CSV header is not the documented one")
    records = []
    for number, cells in enumerate(rows[1:], start=2):
        if len(cells) != len(CSV_COLUMNS):
            raise Failed(f"CSV row {number}: {len(cells)} cells, expected {len(CSV_COLUMNS)}")
        record = dict(zip(CSV_COLUMNS, cells, strict=True))
        try:
            for name in CSV_INTEGERS:
                record[name] = int(record[name])
            for name in CSV_NULLABLE_INTEGERS:
                record[name] = None if record[name] == "" else int(record[name])
            for name in CSV_JSON:
                record[name] = json.loads(record[name])
        except (ValueError, RecursionError):
            raise Failed(f"CSV row {number}: a number or JSON cell cannot be read") from None
        for name in CSV_NULLABLE_TEXT:
            if record[name] == "":
                record[name] = None
        if record["form"] == 1:  # a form-1 entry has no form-2 members (their cells are empty)
            extra = [record.pop(name) for name in FORM_2_ONLY]
            if any(value is not None for value in extra):
                raise Failed(f"CSV row {number}: a form-1 entry with form-2 cells")
        records.append(record)
    return records


def check_entries(records, heads, filtered):
    """Per-entry hashes, chain links, and heads; returns (entries, pathways) counted."""
    by_pathway = {}
    for record in records:
        members = BODY_MEMBERS.get(record.get("form")) if type(record.get("form")) is int else None
        if members is None or set(record) != {*members, "form", "hash"}:
            raise Failed("an entry does not have exactly the body members of its form, its form and its hash")
        pid, sequence = record["pathway_id"], record["sequence"]
        if not isinstance(pid, str) or type(sequence) is not int:
            raise Failed("an entry has no usable pathway_id or sequence")
        body = {name: record[name] for name in members}
        try:
            recomputed = sha256(canonical(body))
        except (TypeError, ValueError, RecursionError):
            raise Failed(f"pathway {pid} sequence {sequence}: a value has no canonical form") from None
        if recomputed != record["hash"]:
            raise Failed(f"pathway {pid} sequence {sequence}: the hash does not match the entry")
        entries = by_pathway.setdefault(pid, {})
        if sequence in entries:
            raise Failed(f"pathway {pid} sequence {sequence}: the sequence number appears twice")
        entries[sequence] = record
    for pid in sorted(by_pathway):
        entries = by_pathway[pid]
        head = heads.get(pid) if heads is not None else None
        if heads is not None and head is None:
            raise Failed(f"pathway {pid} sequence {min(entries)}: the pathway is not in the checkpoint")
        for sequence in sorted(entries):
            record = entries[sequence]
            if sequence < 1 or (head is not None and sequence > head["entries"]):
                raise Failed(f"pathway {pid} sequence {sequence}: outside the checkpointed log")
            before = GENESIS if sequence == 1 else entries.get(sequence - 1, {}).get("hash")
            if before is not None and record["prev_hash"] != before:
                raise Failed(f"pathway {pid} sequence {sequence}: prev_hash does not link to the entry before")
            problem = continuity(record, entries.get(sequence - 1))
            if problem is not None:
                raise Failed(f"pathway {pid} sequence {sequence}: {problem}")
        complete = head is not None and len(entries) == head["entries"]
        if complete and entries[head["entries"]]["hash"] != head["hash"]:
            raise Failed(f"pathway {pid} sequence {head['entries']}: not the head the checkpoint recorded")
        if not filtered and not complete:
            last = head["entries"] if head is not None else max(entries)
            missing = next((n for n in range(1, last + 1) if n not in entries), None)
            if missing is not None:
                raise Failed(f"pathway {pid} sequence {missing}: missing from an unfiltered export")
    if heads is not None and not filtered:
        for pid in sorted(set(heads) - set(by_pathway)):
            raise Failed(f"pathway {pid} sequence 1: missing from an unfiltered export")
    return len(records), len(by_pathway)


def continuity(record, previous):
    """I4 and digest continuity between an entry and the one before it (None when absent)."""
    if record["kind"] != "transition" and record["to_phase"] != record["from_phase"]:
        return f"a {record['kind']} changes the phase (I4)"
    if record["sequence"] == 1 and record["from_phase"] is not None:
        return "the first entry does not start from nothing (I4)"
    if previous is None:
        return None
    if previous["form"] > record["form"]:
        return "sealed in an older canonical form than the entry before it"
    if record["from_phase"] != previous["to_phase"]:
        return "from_phase is not where the entry before left the pathway (I4)"
    if record["kind"] == "refusal" and previous["form"] >= 2 and record["facts_digest"] != previous["facts_digest"]:
        return "a refusal commits to other facts than the entry before it"
    return None


def verify(export_path, checkpoint_path, trusted_key, partial=False):
    data = export_path.read_bytes()
    heads, export, fmt = None, None, "csv" if export_path.suffix.lower() == ".csv" else "jsonl"
    if checkpoint_path is not None:
        try:
            checkpoint = json.loads(checkpoint_path.read_bytes())
        except (ValueError, RecursionError):
            raise Unreadable("the checkpoint is not JSON") from None
        try:
            heads = check_checkpoint(checkpoint, trusted_key)
        except (TypeError, ValueError, RecursionError):  # a lone surrogate, a value too deep to write
            raise Unreadable("the checkpoint holds a value with no canonical JSON form") from None
        export = checkpoint["export"]
        if not isinstance(export, dict):
            raise Failed("checkpoint: it names no export")
        if sha256(data) != export.get("sha256"):
            raise Failed("export: the file is not the one the checkpoint names (its SHA-256 differs)")
        fmt = export.get("format")
    records = read_csv(data) if fmt == "csv" else read_jsonl(data)
    if export is not None and export.get("entries") != len(records):
        raise Failed("export: the number of entries is not the checkpoint's")
    filtered = bool(export.get("filters")) if export is not None else partial
    return check_entries(records, heads, filtered)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="the .jsonl or .csv export")
    parser.add_argument("--checkpoint", type=Path,
                        help="its checkpoint (default: EXPORT.checkpoint.json when it exists)")
    parser.add_argument("--public-key", metavar="HEX", help="the Ed25519 public key you trust (64 hex digits)")
    parser.add_argument("--no-checkpoint", action="store_true",
                        help="check hashes and links only (cannot see a cut tail or a rewrite)")
    parser.add_argument("--partial", action="store_true",
                        help="with --no-checkpoint: the export was filtered, so gaps are expected")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint
    if checkpoint is None and not args.no_checkpoint:
        checkpoint = args.export.with_name(args.export.name + ".checkpoint.json")
        if not checkpoint.exists():
            print(f"error: no checkpoint at {checkpoint} (give --checkpoint, or --no-checkpoint)", file=sys.stderr)
            return 2
    try:
        entries, pathways = verify(args.export, None if args.no_checkpoint else checkpoint, args.public_key,
                                   partial=args.partial)
    except Failed as failure:
        print(f"FAILED: {failure}")
        return 1
    except (Unreadable, OSError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    against = "without a checkpoint" if args.no_checkpoint else "against the signed checkpoint"
    if args.public_key is None and not args.no_checkpoint:
        against += " (signer not pinned: give --public-key to trust only your key)"
    print(f"verified: {entries} entries in {pathways} pathways, {against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
