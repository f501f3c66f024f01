"""T25: no patient data in logs, exception messages or reprs; database URLs print masked.

What counts as patient data here (docs/audit.md): the patient reference (on the pathway and
in the opening payload) and the infusion label's recipient reference (the same value), and
every free-text field, which may hold anything a user types (evidence, justification, notes,
reasons). Each gets a canary value. With DEBUG on every logger (SQLAlchemy's included) a
whole pathway is walked, refused, rejected, corrected, verified, checkpointed, exported and
rendered as FHIR; then no canary may appear in any log record, any exception's message or
repr, or the repr of what the API hands back (snapshots, verification reports, checkpoints).
Exports and FHIR Bundles are meant to hold patient data and are not searched.

SQLAlchemy logs result rows ("Row (...)") at DEBUG and `hide_parameters=True` does not cover
rows: persistence/engine.py names the library's engines (`logging_name="hsct"`) and filters
those records out of their logger; the full test proves no canary is left anywhere.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from persistence.engine import create_engine, masked_url
from states.entry import Draft
from states.errors import HsctError, InvalidCommand, Refused
from states.vocabulary import Phase
from tests.audit.conftest import Key
from tests.cli.conftest import invoke
from tests.helpers_core import QM
from tests.walks import COORD, LAB, PATIENT, PHYS, WALKS, Walk, run_walk
from workflow.audit import create_checkpoint, export_log, fhir_bundle, verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

SECRET = secrets.token_hex(4).upper()
PATIENT_CANARY = f"PTCANARY{SECRET}"  # a valid pseudonymous reference
TEXT_CANARY = f"TXTCANARY{SECRET}"
CANARIES = (PATIENT_CANARY, TEXT_CANARY, SECRET)


@dataclass
class Seen:
    records: list[logging.LogRecord] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)

    def leaks(self) -> list[str]:
        found = []
        for record in self.records:
            text = record.getMessage() + (record.exc_text or "") + repr(record.args)
            if any(canary in text for canary in CANARIES):
                found.append(f"log {record.name}: {text[:120]}")
        for error in self.errors:
            text = f"{error} {error!r} {getattr(error, 'problems', '')}"
            found += [f"exception {type(error).__name__}" for canary in CANARIES if canary in text]
        for value in self.objects:
            found += [f"repr of {type(value).__name__}" for canary in CANARIES if canary in repr(value)]
        return found


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.kept = records

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        self.kept.append(record)


@pytest.fixture
def debug_everywhere() -> Iterator[list[logging.LogRecord]]:
    """DEBUG on the root and on every logger there is or will be used, all records kept."""
    records: list[logging.LogRecord] = []
    handler = _Keep(records)
    root = logging.getLogger()
    names = [*logging.root.manager.loggerDict, "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.engine.Engine",
             "sqlalchemy.pool", "alembic", "psycopg", "transitions", "workflow", "persistence", "states"]
    before = {name: logging.getLogger(name).level for name in names}
    saved = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def _canary_walk() -> Walk:
    """The autologous walk with the canary as patient and label reference and in the free text."""
    walk = WALKS["autologous"]()

    def swap(value: Any) -> Any:
        if value == PATIENT:
            return PATIENT_CANARY
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    steps = tuple(
        (at, actor, command, swap(payload) if command != "record_eligibility" else {"evidence": TEXT_CANARY})
        for at, actor, command, payload in walk.steps
    )
    return Walk(walk.name, swap(walk.refer), steps, walk.day0)


def _exercise(db_url: str, clock: ManualClock, key: Key, tmp_path: Path) -> Seen:
    seen = Seen()
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)

    def expect(call: Any) -> None:
        try:
            call()
        except HsctError as error:
            seen.errors.append(error)
        else:
            raise AssertionError("expected the library to raise")

    try:
        walk = _canary_walk()
        pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
        now = clock.now()
        # Refusals and rejections with canaries in every field they take.
        expect(lambda: service.fire(pathway_id, "hold", {"reason": TEXT_CANARY}, actor=PHYS, at=now))
        expect(lambda: service.fire(pathway_id, "record_eligibility", {"evidence": TEXT_CANARY}, actor=COORD,
                                    at=now))
        expect(lambda: service.fire(pathway_id, "record_eligibility", {"evidence": TEXT_CANARY * 300},
                                    actor=PHYS, at=now))
        expect(lambda: service.fire(pathway_id, "report_relapse", {"method": TEXT_CANARY, "evidence": TEXT_CANARY},
                                    actor=PHYS, at=now))
        expect(lambda: service.fire(pathway_id, "record_transfusion", {"product": TEXT_CANARY}, actor=PHYS, at=now))
        expect(lambda: service.fire(pathway_id, "infuse", {"products": ["DIN-A"], "verifiers": [],
                                                           "label_recipient_ref": f"{PATIENT_CANARY} x"},
                                    actor=PHYS, at=now))
        expect(lambda: service.refer({"patient_ref": f"{PATIENT_CANARY}!", "route": "autologous",
                                      "graft_source": "pbsc"}, actor=PHYS, at=now))
        expect(lambda: service.refer({"patient_ref": PATIENT_CANARY, "route": "autologous",
                                      "graft_source": "pbsc"}, actor=LAB, at=now))
        expect(lambda: service.refer({"patient_ref": PATIENT_CANARY, "route": "autologous",
                                      "graft_source": "pbsc", "donor_type": "haploidentical"}, actor=PHYS, at=now))
        expect(lambda: service.fire(pathway_id, "correct_entry", {"sequence": 1, "changes": {
            "patient_ref": f"{PATIENT_CANARY}!"}, "reason": TEXT_CANARY}, actor=QM, at=now))
        # Identity corrections, malformed changes, a second referral, a lookup (issue 9).
        expect(lambda: service.fire(pathway_id, "correct_entry", {"sequence": 1, "changes": {
            "patient_ref": TEXT_CANARY}, "reason": TEXT_CANARY}, actor=LAB, at=now))
        expect(lambda: service.fire(pathway_id, "correct_entry", {"sequence": 1, "changes": {
            "diagnosis": TEXT_CANARY.encode()}, "reason": TEXT_CANARY}, actor=QM, at=now))
        expect(lambda: service.fire(pathway_id, "correct_entry", {"sequence": 1, "changes": {
            "diagnosis": [TEXT_CANARY] * 5000}, "reason": TEXT_CANARY}, actor=QM, at=now))
        expect(lambda: service.refer(walk.refer, actor=PHYS, at=now))
        expect(lambda: service.find(f"{PATIENT_CANARY}!"))
        relapse = service.fire(pathway_id, "report_relapse", {"method": "pet_ct", "evidence": TEXT_CANARY},
                               actor=PHYS, at=now)
        correction = service.fire(pathway_id, "correct_entry", {"sequence": 1, "changes": {"diagnosis": "dlbcl"},
                                                                "reason": TEXT_CANARY}, actor=QM, at=now)
        draft = Draft(**{k: v for k, v in correction.entry.model_dump().items() if k in Draft.model_fields})
        seen.objects += [relapse, correction, draft, *service.history(pathway_id)]
        # The auditor's side, all of it.
        verification = verify_log(service, deep=True)
        assert verification.ok
        checkpoint = create_checkpoint(service, key.path)
        export_log(service, tmp_path / "log.jsonl", key=key.path)
        export_log(service, tmp_path / "log.csv", key=key.path, fmt="csv")
        bundle = fhir_bundle(service, pathway_id)
        assert PATIENT_CANARY in bundle.model_dump_json()  # FHIR is where the reference belongs
        for args in (("audit", "log", "--db", db_url, "--format", "jsonl"), ("audit", "verify", "--db", db_url),
                     ("pathway", "show", pathway_id, "--db", db_url)):
            result = invoke(*args)
            assert result.exit_code == 0, result.output
            assert not any(canary in result.output for canary in CANARIES), args
        seen.objects += [service.snapshot(pathway_id), service.state_at(pathway_id, now), verification,
                         checkpoint, *verification.problems]
    finally:
        service.engine.dispose()
    return seen


def test_t25_no_canary_anywhere_with_debug_logging_everywhere(
    db_url: str, clock: ManualClock, key: Key, tmp_path: Path, debug_everywhere: list[logging.LogRecord]
) -> None:
    seen = _exercise(db_url, clock, key, tmp_path)
    seen.records = debug_everywhere
    assert len(seen.errors) == 15
    assert {type(e) for e in seen.errors} == {Refused, InvalidCommand}
    assert any(r.name.startswith("sqlalchemy.engine") for r in debug_everywhere)  # DEBUG was really on
    assert any(r.name.startswith("workflow") for r in debug_everywhere)
    assert seen.leaks() == []


def test_t25_entry_reprs_hide_the_patient_reference(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, _canary_walk(), until=Phase.AWAITING_ENGRAFTMENT)
    history = service.history(pathway_id)
    assert all(PATIENT_CANARY not in repr(entry) for entry in history)


def test_engine_urls_print_with_the_password_masked(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://auditor:{TEXT_CANARY}@127.0.0.1:9/hsct"
    engine = create_engine(url)
    try:
        assert engine.hide_parameters
        for text in (masked_url(url), str(engine.url), repr(engine.url), repr(engine)):
            assert TEXT_CANARY not in text
            assert "***" in text
    finally:
        engine.dispose()
    result = invoke("audit", "verify", "--db", url)
    assert result.exit_code == 2
    assert TEXT_CANARY not in result.output
    assert "auditor:***@127.0.0.1" in result.output
