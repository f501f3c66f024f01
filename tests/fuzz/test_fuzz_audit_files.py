"""Fuzz the checkpoint reader and tools/verify_export.py (T23): only their documented errors."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import (
    BASE_CHECKPOINT,
    BASE_EXPORT_BYTES,
    FUZZ,
    base_export,
    json_values,
    jsonl,
    mutated,
    rehash,
)
from tests.fuzz.targets import VERIFY_EXPORT, checkpoint_file, export_files

RAW = st.sampled_from(("[" * 5000 + "]" * 5000, "1" + "0" * 5000, "1e400", "-1e400", '"\\ud800"', "NaN",
                       '{"a":' * 2000 + "1" + "}" * 2000))
"""JSON text json.dumps would not write: deep nesting, huge numbers, lone surrogates."""


def _checkpoint_bytes(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_the_base_files_verify() -> None:
    checkpoint_file(_checkpoint_bytes(BASE_CHECKPOINT))
    path_free = VERIFY_EXPORT  # the export and its checkpoint check out before they are mutated
    assert path_free is not None
    export_files(BASE_EXPORT_BYTES, _checkpoint_bytes(BASE_CHECKPOINT))


@FUZZ
@given(st.binary(max_size=2000))
def test_checkpoint_any_bytes(data: bytes) -> None:
    checkpoint_file(data)


@FUZZ
@given(mutated(BASE_CHECKPOINT, json_values))
def test_checkpoint_near_valid(data: object) -> None:
    checkpoint_file(_checkpoint_bytes(data))


@FUZZ
@given(st.sampled_from(sorted(BASE_CHECKPOINT)), RAW)
def test_checkpoint_raw_values(member: str, raw: str) -> None:
    text = json.dumps({**BASE_CHECKPOINT, member: "RAW"}).replace('"RAW"', raw, 1)
    checkpoint_file(text.encode())


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from((".jsonl", ".csv")), st.booleans())
def test_export_any_bytes(data: bytes, suffix: str, with_checkpoint: bool) -> None:
    export_files(data, _checkpoint_bytes(BASE_CHECKPOINT) if with_checkpoint else None, suffix)


@FUZZ
@given(mutated(base_export(), json_values), st.booleans())
def test_export_near_valid(records: list[object], again: bool) -> None:
    export_files(jsonl([rehash(r) for r in records] if again else records), None)


@FUZZ
@given(st.integers(0, 1), st.sampled_from(sorted(base_export()[0])), RAW)
def test_export_raw_values(index: int, member: str, raw: str) -> None:
    lines = BASE_EXPORT_BYTES.decode().splitlines()
    record = json.loads(lines[index])
    lines[index] = json.dumps({**record, member: "RAW"}).replace('"RAW"', raw, 1)
    export_files("\n".join(lines).encode(), None)


@FUZZ
@given(mutated(BASE_CHECKPOINT, json_values))
def test_export_with_a_near_valid_checkpoint(checkpoint: object) -> None:
    export_files(BASE_EXPORT_BYTES, _checkpoint_bytes(checkpoint))
