"""The canonical form and chain verification, fed with lists (no database)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistence.chain import (
    BODY_FIELDS,
    BODY_FIELDS_FORM_1,
    CANONICAL_FORM_VERSION,
    canonical_json,
    entry_body,
    facts_digest,
    format_datetime,
    seal,
    seal_with_body,
    verify_entries,
)
from states.entry import GENESIS_HASH, Draft, Entry
from states.vocabulary import EntryKind, Phase, Role
from tests.persistence.helpers import draft

DOC = Path(__file__).resolve().parents[2] / "docs" / "canonical-form.md"


def chain(n: int, pathway_id: str = "p-1") -> list[Entry]:
    entries: list[Entry] = []
    prev = GENESIS_HASH
    for sequence in range(1, n + 1):
        entry = seal(draft(pathway_id, payload={"n": sequence}), sequence, prev)
        entries.append(entry)
        prev = entry.hash
    return entries


# --- canonical_json -------------------------------------------------------------------------


def test_canonical_json_sorts_compacts_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": [True, None, 2.5], "é": "ü"}) == (
        '{"a":[true,null,2.5],"b":1,"é":"ü"}'.encode()
    )


def test_canonical_json_renders_times_enums_tuples_and_dates() -> None:
    class Colour(Enum):
        RED = "red"

    value = {
        "at": datetime(2026, 2, 4, 1, 0, tzinfo=timezone(timedelta(hours=1))),
        "phase": Phase.CONDITIONING,
        "colour": Colour.RED,
        "pair": (1, 2),
        "day": date(2026, 2, 4),
    }
    assert json.loads(canonical_json(value)) == {
        "at": "2026-02-04T00:00:00.000000Z",
        "phase": "conditioning",
        "colour": "red",
        "pair": [1, 2],
        "day": "2026-02-04",
    }


def test_format_datetime_pads_and_keeps_microseconds() -> None:
    assert format_datetime(datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0999-01-02T03:04:05.000006Z"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"x": float("nan")}, ValueError),
        ({"x": float("inf")}, ValueError),
        ({"x": datetime(2026, 1, 1)}, ValueError),  # naive
        ({1: "int key"}, TypeError),
        ({"x": {1, 2}}, TypeError),
        ({"x": object()}, TypeError),
    ],
)
def test_canonical_json_refuses_what_has_no_single_form(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_stable_through_a_parse(value: Any) -> None:
    """What the database gives back (parsed JSON) canonicalises to the very same bytes."""
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


# --- the body and the seal ------------------------------------------------------------------


_times = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=13))]))
_few_texts = st.sampled_from(["a", "100%", '"q"', "%s", "\\", "é"])  # few: templates are made and met again


@given(
    payload=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    reasons=st.lists(_few_texts, max_size=2),
    actor_id=_few_texts,
    trigger=_few_texts,
    corrects=st.none() | st.integers(1, 3),
    reason=st.none() | st.text(max_size=5),
    key=st.none() | st.text(max_size=5),
    origin=st.none() | st.just("live"),
    effective_at=_times,
    recorded_at=_times,
    sequence=st.integers(1, 10**12),
)
def test_the_fast_seal_writes_exactly_the_documented_body(
    payload: dict[str, Any], reasons: list[str], sequence: int, **fields: Any
) -> None:
    d = draft("p-1", payload=payload, reasons=tuple(reasons), from_phase=Phase.REFERRED,
              idempotency_key=fields.pop("key"), **fields)  # fmt: skip
    sealed = seal_with_body(d, sequence, "ab" * 32)
    assert sealed.body == entry_body(d, sequence, "ab" * 32)
    assert sealed.entry.hash == hashlib.sha256(sealed.body).hexdigest()
    assert sealed.payload_json.encode() == canonical_json(payload)
    assert sealed.reasons_json.encode() == canonical_json(reasons)
    assert verify_entries([seal(d, 1, GENESIS_HASH)]) is None


@pytest.mark.parametrize("prev_hash", ['"' + "a" * 63, "A" * 64, "a" * 63, "a" * 65, "0x" + "a" * 62])
def test_seal_refuses_a_previous_hash_that_is_not_a_digest(prev_hash: str) -> None:
    """The previous hash is filled into the body as it is: anything but lower-case hexadecimal
    could change the body's JSON, so it is refused before anything is sealed."""
    with pytest.raises(ValueError, match="prev_hash"):
        seal(draft("p-1"), 2, prev_hash)


def test_a_template_is_made_only_from_values_with_one_json_spelling() -> None:
    """Templates are found by the shared values, and True == 1 in Python: a draft smuggling
    True into `corrects` (model_construct skips validation) never makes a template, and where
    one for 1 exists it is sealed as the Entry it validates to (corrects 1), consistently."""
    fields = {**draft("p-1", trigger="record_lab_bool_probe").model_dump(), "corrects": True}
    with pytest.raises(TypeError, match="corrects"):
        seal_with_body(Draft.model_construct(**fields), 2, "ab" * 32)
    seal_with_body(Draft(**{**fields, "corrects": 1}), 2, "ab" * 32)
    sealed = seal_with_body(Draft.model_construct(**fields), 2, "ab" * 32)
    assert sealed.entry.corrects == 1
    assert sealed.body == entry_body(sealed.entry, 2, "ab" * 32)


def test_body_fields_are_exactly_the_draft_fields() -> None:
    """A new Draft field must be added to the canonical form on purpose (a new form version)."""
    assert set(BODY_FIELDS) == set(Draft.model_fields)
    assert set(BODY_FIELDS) - set(BODY_FIELDS_FORM_1) == {"facts_digest", "origin", "release"}


def test_body_has_every_field_plus_position_but_not_the_hash() -> None:
    d = draft("p-1", reason="why", reasons=("r1",), idempotency_key="k", corrects=None)
    body = json.loads(entry_body(d, 7, "ab" * 32))
    assert set(body) == {*BODY_FIELDS, "sequence", "prev_hash"}
    assert body["sequence"] == 7
    assert body["prev_hash"] == "ab" * 32
    assert body["reasons"] == ["r1"]
    assert body["actor_role"] == "laboratory"


def test_seal_hashes_the_body() -> None:
    d = draft("p-1")
    entry = seal(d, 1, GENESIS_HASH)
    assert entry.hash == hashlib.sha256(entry_body(d, 1, GENESIS_HASH)).hexdigest()
    assert (entry.sequence, entry.prev_hash) == (1, GENESIS_HASH)
    assert entry.model_dump(exclude={"sequence", "prev_hash", "hash", "form"}) == d.model_dump()
    assert entry.form == CANONICAL_FORM_VERSION == 2


def test_seal_refuses_sequence_zero() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        seal(draft("p-1"), 0, GENESIS_HASH)


def _worked_example() -> Draft:
    return Draft(
        pathway_id="3f2c",
        kind=EntryKind.TRANSITION,
        trigger="refer",
        from_phase=None,
        to_phase=Phase.REFERRED,
        effective_at=datetime(2026, 2, 4, tzinfo=UTC),
        recorded_at=datetime(2026, 2, 4, 9, 30, 0, 123, tzinfo=timezone(timedelta(hours=1))),
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        payload={"diagnosis": "multiple_myeloma", "ü": [1, 2.5, None, True]},
        policy_version="default-1",
    )


def test_worked_example_of_form_1_in_the_docs_matches_the_code() -> None:
    d = _worked_example()
    text = DOC.read_text(encoding="utf-8")
    body = entry_body(d, 1, GENESIS_HASH, form=1)
    assert set(json.loads(body)) == {*BODY_FIELDS_FORM_1, "sequence", "prev_hash"}
    assert body.decode("utf-8") in text
    assert hashlib.sha256(body).hexdigest() in text


def test_worked_example_of_form_2_in_the_docs_matches_the_code() -> None:
    facts = '{"phase":"referred"}'
    d = _worked_example().model_copy(update={"origin": "live", "release": "0.1.0"})
    text = DOC.read_text(encoding="utf-8")
    sealed = seal_with_body(d, 1, GENESIS_HASH, facts_digest(facts))
    assert facts_digest(facts) == hashlib.sha256(facts.encode()).hexdigest()
    assert f"`{facts}`" in text
    assert facts_digest(facts) in text
    assert sealed.body.decode("utf-8") in text
    assert sealed.entry.hash in text


def test_form_1_entries_verify_by_form_1_fields_and_a_chain_never_goes_back_a_form() -> None:
    old = seal(draft("p-1"), 1, GENESIS_HASH)
    form_1 = old.model_copy(
        update={"form": 1, "hash": hashlib.sha256(entry_body(old, 1, GENESIS_HASH, form=1)).hexdigest()}
    )
    newer = seal(draft("p-1"), 2, form_1.hash, facts_digest("{}"))
    assert verify_entries([form_1, newer]) is None
    # the same form-1 entry read as form 2 does not verify, nor does a form-1 entry after form 2
    assert verify_entries([form_1.model_copy(update={"form": 2})]) == 1
    back = seal(draft("p-1"), 2, old.hash)
    back = back.model_copy(update={"form": 1, "hash": hashlib.sha256(entry_body(back, 2, old.hash, 1)).hexdigest()})
    assert verify_entries([old, back]) == 2


# --- verify_entries -------------------------------------------------------------------------


def test_intact_chain_and_empty_chain_verify() -> None:
    assert verify_entries(chain(5)) is None
    assert verify_entries([]) is None


def test_changed_content_is_caught() -> None:
    entries = chain(5)
    entries[2] = entries[2].model_copy(update={"reason": "edited"})
    assert verify_entries(entries) == 3


def test_changed_time_by_one_microsecond_is_caught() -> None:
    entries = chain(3)
    entries[1] = entries[1].model_copy(update={"effective_at": entries[1].effective_at + timedelta(microseconds=1)})
    assert verify_entries(entries) == 2


def test_changed_hash_is_caught() -> None:
    entries = chain(3)
    entries[0] = entries[0].model_copy(update={"hash": "f" * 64})
    assert verify_entries(entries) == 1


def test_changed_value_resealed_in_place_breaks_the_next_link() -> None:
    entries = chain(5)
    forged_draft = draft("p-1", payload={"n": 3}, trigger="forged")
    entries[2] = seal(forged_draft, 3, entries[1].hash)  # a valid hash of its own ...
    assert verify_entries(entries) == 4  # ... but entry 4 still points at the original


def test_swapped_pair_is_caught() -> None:
    entries = chain(5)
    entries[1], entries[2] = entries[2], entries[1]
    assert verify_entries(entries) == 2


def test_swapped_pair_with_renumbered_sequences_is_caught() -> None:
    entries = chain(5)
    second = entries[2].model_copy(update={"sequence": 2})
    third = entries[1].model_copy(update={"sequence": 3})
    entries[1], entries[2] = second, third
    assert verify_entries(entries) == 2


def test_deleted_entry_is_reported_by_its_position() -> None:
    entries = chain(5)
    del entries[2]
    assert verify_entries(entries) == 3


def test_deleted_first_entry_is_caught() -> None:
    assert verify_entries(chain(3)[1:]) == 1


def test_entry_from_another_pathway_is_caught() -> None:
    entries = chain(3)
    stranger = seal(draft("p-2", payload={"n": 3}), 3, entries[1].hash)
    assert verify_entries([*entries[:2], stranger]) == 3


def test_truncated_tail_needs_a_checkpoint() -> None:
    """The documented limit: a chain cut at its end still verifies on its own."""
    entries = chain(5)
    assert verify_entries(entries[:3]) is None
    assert entries[:3][-1].hash != entries[-1].hash  # what a checkpoint comparison catches


def test_unsealable_values_are_reported_not_raised() -> None:
    entries = chain(2)
    bad = Entry.model_construct(**{**entries[1].__dict__, "payload": {"x": float("nan")}})
    assert verify_entries([entries[0], bad]) == 2


# --- the independent verifier of the docs ---------------------------------------------------


def _doc_verifier() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    source = next(block for block in blocks if "def first_bad" in block)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)  # the docs run as a test
    return namespace["first_bad"]


def _exported(entry: Entry) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(entry_body(entry, entry.sequence, entry.prev_hash, entry.form))
    record["hash"] = entry.hash
    record["form"] = entry.form
    return record


@pytest.mark.parametrize(
    "tamper",
    ["none", "content", "delete", "swap", "reseal", "truncate"],
)
def test_documented_verifier_agrees_with_verify_entries(tamper: str) -> None:
    entries = chain(6)
    if tamper == "content":
        entries[3] = entries[3].model_copy(update={"actor_id": "someone-else"})
    elif tamper == "delete":
        del entries[1]
    elif tamper == "swap":
        entries[4], entries[5] = entries[5], entries[4]
    elif tamper == "reseal":
        entries[2] = seal(draft("p-1", trigger="forged"), 3, entries[1].hash)
    elif tamper == "truncate":
        entries = entries[:4]
    first_bad = _doc_verifier()
    assert first_bad([_exported(e) for e in entries]) == verify_entries(entries)
