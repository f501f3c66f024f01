"""T24: hostile strings in every free-text field are stored verbatim or rejected, never executed.

Every free-text field of every command gets the same hostile strings (SQL fragments, quotes,
placeholders, NUL, control and bidirectional characters, astral-plane unicode, CSV formula
text, strings at and over the length limits, a 100,000-character string). The outcome must be
one of: the command succeeds and its entry holds the value as validated (free text `Text` and
`Drug` are stripped of surrounding whitespace, nothing else); the command is refused and the
refusal entry holds it the same way; or InvalidCommand naming the field, with nothing
written. Afterwards the log still verifies, and no table lost a row. Statements are never
built from strings (checked on the source below).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from states.errors import InvalidCommand, Refused, UnknownPathway
from states.vocabulary import Phase
from tests.helpers_core import QM, reach
from tests.walks import COORD, PHYS, PRO, REG, RN
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService
from workflow.validation import MAX_KEY_LENGTH

ROOT = Path(__file__).resolve().parents[2]

HOSTILE: dict[str, str] = {
    "sql drop": "'; DROP TABLE entries; --",
    "sql or": '" OR "1"="1',
    "sql delete": "Robert'); DELETE FROM pathways WHERE ('1'='1",
    "placeholders": "%s %(x)s ? :id $1 {0} {{}}",
    "backslashes": "\\x00 \\ \\\\ \\u0000",
    "nul": "a\x00b",
    "unicode": "Zoë Ægir 漢字 \U0001f9ec \u202e\u2066 \u2028\u2029",
    "newlines": "line1\nline2\r\nline3\ttab",
    "controls": "\x1b[31mred\x1b[0m \x07 \x7f",
    "markup": "<script>alert(1)</script>",
    "csv formula": '=HYPERLINK("http://x")',
    "at 64": "L" * 64,
    "at 2000": "x" * 2000,
    "over 2000": "y" * 2001,
    "100k": "z" * 100_000,
}

# (command, field, walk, phase, base payload, actor, max length, stripped) for every free-text
# field of states/payloads.py (Text, Label, Drug and the regimen's plain `str` name).
FIELDS: list[tuple[str, str, str, Phase, dict[str, Any], dict[str, str], int | None, bool]] = [
    ("record_eligibility", "evidence", "autologous", Phase.EVALUATION, {}, PHYS, 2000, True),
    ("record_consent", "consent_version", "autologous", Phase.EVALUATION, {}, COORD, 64, False),
    ("hold", "reason", "autologous", Phase.EVALUATION, {}, PHYS, 2000, True),
    ("withdraw", "reason", "autologous", Phase.EVALUATION, {}, PHYS, 2000, True),
    ("correct_entry", "reason", "autologous", Phase.EVALUATION,
     {"sequence": 1, "changes": {"diagnosis": "dlbcl"}}, QM, 2000, True),
    ("record_donor_candidate", "justification", "mismatched_unrelated", Phase.DONOR_SEARCH,
     {"donor_ref": "DONOR-Z", "donor_type": "mismatched_unrelated", "dsa": "negative",
      "hla": {"A": "match", "B": "match", "C": "allele_mismatch", "DRB1": "match"}}, REG, 2000, True),
    ("release_donor", "note", "matched_unrelated", Phase.DONOR_WORKUP, {"reason": "other"}, PHYS, 2000, True),
    ("cryopreserve_product", "location", "autologous", Phase.COLLECTION, {"product_id": "DIN-A", "bags": 1}, PRO,
     64, False),
    ("start_conditioning", "regimen.name", "autologous", Phase.READY_FOR_CONDITIONING,
     {"regimen": {"intensity": "MAC", "plan": [{"day": -2, "drug": "melphalan", "dose": "200 mg/m2"}]},
      "planned_day0": "2026-02-04"}, PHYS, 64, False),
    ("record_conditioning_dose", "drug", "autologous", Phase.CONDITIONING, {"dose": "200 mg/m2", "plan_day": -2},
     RN, 64, True),
    ("report_donor_unavailable", "reason", "matched_unrelated", Phase.CONDITIONING, {}, PHYS, 2000, True),
    ("report_relapse", "evidence", "autologous", Phase.FOLLOW_UP, {"method": "pet_ct"}, PHYS, 2000, True),
]


def _with(base: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    payload = {key: dict(item) if isinstance(item, dict) else item for key, item in base.items()}
    *parents, name = field.split(".")
    target = payload
    for parent in parents:
        target = target[parent]
    target[name] = value
    return payload


def _stored(payload: dict[str, Any], field: str) -> Any:
    for part in field.split("."):
        payload = payload[part]
    return payload


@pytest.mark.parametrize(
    ("command", "field", "walk", "phase", "base", "actor", "limit", "stripped"),
    FIELDS,
    ids=[f"{command}.{field}" for command, field, *_ in FIELDS],
)
def test_hostile_free_text_is_stored_verbatim_or_rejected(
    service: PathwayService, clock: ManualClock, command: str, field: str, walk: str, phase: Phase,
    base: dict[str, Any], actor: dict[str, str], limit: int | None, stripped: bool,
) -> None:
    pathway_id = reach(service, clock, walk, phase)
    for label, value in HOSTILE.items():
        expected = value.strip() if stripped else value
        invalid = limit is not None and ("\x00" in value or len(expected) > limit)
        before = len(service.history(pathway_id))
        rejected: InvalidCommand | None = None
        try:
            service.fire(pathway_id, command, _with(base, field, value), actor=actor, at=clock.now())
        except InvalidCommand as error:
            rejected = error
        except Refused:
            pass  # the refusal entry must still hold the value verbatim
        if rejected is not None:
            assert invalid, f"{label}: rejected, but the field allows it: {rejected}"
            assert any(p.path == f"payload.{field}" for p in rejected.problems), rejected.problems
            assert len(service.history(pathway_id)) == before
            continue
        assert not invalid, f"{label}: accepted, but the field forbids it"
        last = service.history(pathway_id)[-1]
        assert (last.sequence, last.trigger) == (before + 1, command)
        assert _stored(last.payload, field) == expected, label
    assert verify_log(service).ok


def _key_like(value: str) -> bool:
    """What an idempotency key may be: printable (no control character) and within its length,
    which leaves room in the column for the suffix of a derived key."""
    return len(value) <= MAX_KEY_LENGTH and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)


STORABLE_KEYS = {k: v for k, v in HOSTILE.items() if _key_like(v)}


@pytest.mark.parametrize("key", list(STORABLE_KEYS.values()), ids=list(STORABLE_KEYS))
def test_hostile_idempotency_keys_are_stored_verbatim(service: PathwayService, clock: ManualClock, key: str) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    first = service.fire(pathway_id, "record_consent", {"consent_version": "v3"}, actor=COORD, at=clock.now(),
                         idempotency_key=key)
    again = service.fire(pathway_id, "record_consent", {"consent_version": "v3"}, actor=COORD, at=clock.now(),
                         idempotency_key=key)
    assert again.replayed
    assert service.history(pathway_id)[-1].idempotency_key == key == first.entry.idempotency_key


@pytest.mark.parametrize(
    "key",
    ["k\x00", "k" * (MAX_KEY_LENGTH + 1), "line1\nline2", "\x1b[31m"],
    ids=["nul", "over limit", "newline", "escape"],
)
def test_unstorable_idempotency_keys_are_rejected_as_invalid(
    service: PathwayService, clock: ManualClock, key: str
) -> None:
    """A key the unique index cannot hold is invalid input: nothing is written."""
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    before = len(service.history(pathway_id))
    with pytest.raises(InvalidCommand) as invalid:
        service.fire(pathway_id, "record_consent", {"consent_version": "v3"}, actor=COORD, at=clock.now(),
                     idempotency_key=key)
    assert [p.path for p in invalid.value.problems] == ["idempotency_key"]
    assert len(service.history(pathway_id)) == before


NOT_IDS = {k: v for k, v in HOSTILE.items() if k not in ("nul", "at 64")}  # "L" * 64 is a valid id


@pytest.mark.parametrize("value", list(NOT_IDS.values()), ids=list(NOT_IDS))
def test_hostile_ids_are_rejected(service: PathwayService, clock: ManualClock, value: str) -> None:
    """Identifiers are patterns, not free text: actor ids, patient references and unknown pathway ids."""
    pathway_id = reach(service, clock, "autologous", Phase.REFERRED)
    with pytest.raises(InvalidCommand) as info:
        service.fire(pathway_id, "begin_evaluation", {}, actor={"id": value, "role": "transplant_coordinator"},
                     at=clock.now())
    assert [p.path for p in info.value.problems] == ["actor.id"]
    with pytest.raises(InvalidCommand) as info:
        service.refer({"patient_ref": value, "route": "autologous", "graft_source": "pbsc"}, actor=PHYS,
                      at=clock.now())
    assert [p.path for p in info.value.problems] == ["payload.patient_ref"]
    with pytest.raises(UnknownPathway):
        service.fire(value, "begin_evaluation", {}, actor=COORD, at=clock.now())
    assert len(service.history(pathway_id)) == 1
    assert len(service.pathway_ids()) == 1


# --- no statement is built from a string ----------------------------------------------------

_SQL_CALLS = {"text", "exec_driver_sql", "execute", "executemany", "literal_column"}
# Built from a number that was passed through int() first: not a string from outside.
_ALLOWED = {("persistence/engine.py", "PRAGMA busy_timeout")}


def test_no_sql_is_built_from_strings() -> None:
    """Every SQL-taking call in the library gets a constant, a compiled statement or a variable,
    never an f-string, a concatenation or a %-/format-ted string."""
    found = []
    for path in sorted([*ROOT.glob("persistence/**/*.py"), *ROOT.glob("workflow/**/*.py")]):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"
            )
            if name in _SQL_CALLS and built:
                where = str(path.relative_to(ROOT))
                source = ast.get_source_segment(path.read_text(encoding="utf-8"), first) or ""
                if not any(where == file and marker in source for file, marker in _ALLOWED):
                    found.append(f"{where}:{node.lineno}: {source}")
    assert found == []


def test_a_pathway_id_holding_nul_is_just_unknown(service: PathwayService, clock: ManualClock) -> None:
    reach(service, clock, "autologous", Phase.REFERRED)
    with pytest.raises(UnknownPathway):
        service.fire("a\x00b", "begin_evaluation", {}, actor=COORD, at=clock.now())
