"""Hypothesis strategies for the fuzz tests: nasty values, and near-valid inputs built from
valid ones by one mutation (so that most examples get past the first check)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from tests.fuzz.targets import ROOT, VERIFY_EXPORT
from workflow.yaml_safe import load_yaml

EXAMPLES = int(os.environ.get("HSCT_FUZZ_EXAMPLES", "100"))
"""Examples per fuzz test: small in CI (derandomized), large for a long run (docs/testing.md)."""

FUZZ = settings(max_examples=EXAMPLES, deadline=None)

NASTY_STRINGS = (
    "2026-02-30", "2026-13-01", "2026-00-10", "0000-01-01", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+23:59",
    "2026-01-05T25:00", "2026-01-05T08:00+25:00", "2026-01-05T08:00Z", "+99999-01-01", "9" * 5000, "", " ",
    "\x00", "\ud800", "\udfff", "no", "null", "~", ".inf", "-0", "1e400", "NaN", "Europe/Nowhere", "../../etc/passwd",
    "UTC+25", "Etc/GMT+14", "\u202e", "a" * 300,
)
"""Strings that reached crashes or edge rules elsewhere: impossible dates, odd zones, surrogates."""

texts = st.text(st.characters(exclude_categories=()), max_size=30)
"""Any text, lone surrogates included (st.characters() leaves them out by default)."""

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.integers(4300, 6000).map(lambda n: 10**n),
    st.floats(allow_nan=True, allow_infinity=True), texts, st.sampled_from(NASTY_STRINGS),
    st.dates(), st.datetimes(timezones=st.none() | st.timezones()),
)


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


values = st.one_of(
    st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                 max_leaves=8),
    st.integers(20, 120).map(nested),
)

json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=False, allow_infinity=False),
    texts, st.sampled_from(NASTY_STRINGS),
)
json_values = st.one_of(
    st.recursive(json_leaves,
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8),
    st.integers(20, 120).map(nested),
)
"""Values json.dumps can write (huge integers and deep nesting go in as raw text instead)."""


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append((*here, key))
        found += paths(item, (*here, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any, new_values: st.SearchStrategy[Any] = values) -> Any:
    """`base` with one value replaced, one key removed or one key added, somewhere."""
    data = copy.deepcopy(base)
    path = draw(st.sampled_from(paths(data)))
    *parent_path, last = path
    parent = data
    for part in parent_path:
        parent = parent[part]
    action = draw(st.sampled_from(("replace", "remove", "add")))
    if action == "remove":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(texts | st.sampled_from(("final", "with", "check", "do", "on", "pathway", "expect")))] = draw(
            new_values)
    else:
        parent[last] = draw(new_values)
    return data


def base_scenario() -> dict[str, Any]:
    data = load_yaml((ROOT / "scenarios" / "happy_autologous.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


BASE_SCENARIO = base_scenario()
BASE_SCENARIO_TEXT = (ROOT / "scenarios" / "happy_autologous.yaml").read_bytes()

date_like = st.from_regex(
    r"\A[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\.[0-9]{1,7})?)?"
    r"( ?([+-][0-9]{1,2}(:[0-9]{2})?|Z))?)?\Z"
)
"""Text a YAML 1.1 timestamp or an ISO parser may take, real dates or not."""


# --- audit files ---------------------------------------------------------------------------

GENESIS = "0" * 64


def _record(sequence: int, prev_hash: str, from_phase: str | None, to_phase: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pathway_id": "3f1c2b9e-0000-4000-8000-000000000001", "sequence": sequence, "prev_hash": prev_hash,
        "kind": "transition", "trigger": "refer" if sequence == 1 else "begin_evaluation",
        "from_phase": from_phase, "to_phase": to_phase, "effective_at": "2026-01-05T09:00:00.000000Z",
        "recorded_at": "2026-01-05T09:00:00.000000Z", "actor_id": "co-ames", "actor_role": "transplant_coordinator",
        "reason": None, "payload": {"route": "autologous"}, "reasons": [], "policy_version": "sha256:" + "a" * 64,
        "idempotency_key": None, "corrects": None, "facts_digest": "b" * 64, "origin": "live", "release": "0.1.0",
    }
    assert tuple(body) == VERIFY_EXPORT.BODY_MEMBERS[2]
    return {**body, "form": 2, "hash": VERIFY_EXPORT.sha256(VERIFY_EXPORT.canonical(body))}


def base_export() -> list[dict[str, Any]]:
    first = _record(1, GENESIS, None, "referred")
    return [first, _record(2, first["hash"], "referred", "evaluation")]


def rehash(record: Any) -> Any:
    """The record with its hash recomputed, so a mutated value gets past the hash check."""
    if not isinstance(record, dict):
        return record
    body = {k: v for k, v in record.items() if k not in {"form", "hash"}}
    try:
        return {**record, "hash": VERIFY_EXPORT.sha256(VERIFY_EXPORT.canonical(body))}
    except (TypeError, ValueError):
        return record


def jsonl(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n" for r in records)


def signed_checkpoint(export: bytes, entries: int) -> dict[str, Any]:
    """A checkpoint naming `export`, signed with a fresh Ed25519 key (what `hsct audit export` writes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    records = base_export()
    heads = {records[-1]["pathway_id"]: {"entries": entries, "hash": records[-1]["hash"]}}
    members = {
        "format": "hsct-checkpoint/1",
        "created_at": datetime(2026, 1, 6, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "pathways": 1, "entries": entries, "heads": heads,
        "root": hashlib.sha256(VERIFY_EXPORT.canonical(heads)).hexdigest(),
        "export": {"file": "export.jsonl", "format": "jsonl", "sha256": hashlib.sha256(export).hexdigest(),
                   "entries": entries, "filters": {}},
        "public_key": key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw).hex(),
    }
    return {**members, "signature": key.sign(VERIFY_EXPORT.canonical(members)).hex()}


BASE_EXPORT_BYTES = jsonl(base_export())
BASE_CHECKPOINT = signed_checkpoint(BASE_EXPORT_BYTES, 2)


def corpus_dir(target: str) -> Path:
    return Path(__file__).with_name("corpus") / target
