"""Cheaper commands, same guarantees: the facts cache reuses an object only for exactly the
stored text it was dumped to, a service without the outbox writes the same log, and an entry
that keeps the phase leaves the phase's indexes alone (and an edited phase is refused)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, func, select

from persistence.models import entries_table, outbox_table, pathways_table
from persistence.store import PathwayRecord, Store
from states.errors import IntegrityError
from states.facts import PathwayFacts
from states.vocabulary import Phase
from tests.helpers_core import reach, stored_record
from tests.walks import PHYS, WALKS, played
from workflow.audit.verify import verify_log
from workflow.clock import ManualClock
from workflow.facts_cache import FactsCache
from workflow.service import PathwayService


def _parsed(service: PathwayService, cache: FactsCache, record: PathwayRecord) -> PathwayFacts:
    with service.engine.connect() as connection, connection.begin():
        return cache.parsed(record, Store(connection))


def test_a_hit_needs_the_digest_of_the_stored_text(service: PathwayService, clock: ManualClock) -> None:
    record = stored_record(service, reach(service, clock, "autologous", Phase.EVALUATION))
    stored = PathwayFacts.model_validate_json(record.facts)
    cache = FactsCache()
    cache.wrote(record.id, record.facts_digest, stored)
    assert _parsed(service, cache, record) is stored
    other = replace(record, facts_digest="0" * 64)  # e.g. a rolled-back write or another writer's
    parsed = _parsed(service, cache, other)
    assert parsed is not stored
    assert parsed == stored


def test_the_service_reuses_what_it_wrote_and_stays_bounded(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    record = stored_record(service, pathway_id)
    first = _parsed(service, service._facts, record)
    assert first is _parsed(service, service._facts, record)  # the object the last fire wrote
    small = FactsCache(size=1)
    facts = PathwayFacts.model_validate_json(record.facts)
    small.wrote("a", record.facts_digest, facts)
    small.wrote("b", record.facts_digest, facts)
    assert _parsed(service, small, replace(record, id="a")) is not facts
    assert _parsed(service, small, replace(record, id="b")) is facts


def test_without_the_outbox_no_row_is_written_and_the_log_is_the_same(db_url: str, clock: ManualClock) -> None:
    quiet = PathwayService(db_url, clock=clock, auto_upgrade=True, outbox=False)
    try:
        pathway_id = reach(quiet, clock, "autologous", Phase.EVALUATION)
        with quiet.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(outbox_table)).scalar_one() == 0
        assert len(quiet.history(pathway_id)) >= 2
        assert verify_log(quiet).ok
    finally:
        quiet.engine.dispose()


def test_an_entry_that_keeps_the_phase_does_not_assign_it(service: PathwayService, clock: ManualClock) -> None:
    """SQLite rewrites the index entries of every column an UPDATE assigns, even to the value it
    holds: along a whole walk, the pathway row's UPDATE assigns the phase exactly when the
    command moves it, and otherwise holds it in the WHERE."""
    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE pathways"):
            updates.append(statement)

    phase, seen = None, set()
    event.listen(service.engine, "before_cursor_execute", record)
    try:
        for _, command, result in played(service, clock, WALKS["autologous"]()):
            moved = result.phase
            if command == "refer":
                assert updates == []  # a new row
            else:
                [update] = updates
                assigned, held = ("phase" in part for part in update.split(" WHERE "))
                assert (assigned, held) == ((True, False) if moved is not phase else (False, True)), command
                seen.add(moved is not phase)
            phase = moved
            updates.clear()
    finally:
        event.remove(service.engine, "before_cursor_execute", record)
    assert seen == {True, False}


def test_a_phase_column_edited_outside_the_library_is_refused(service: PathwayService, clock: ManualClock) -> None:
    """The row's phase is not the one its head entry left it in (a listing would show the edit):
    every load refuses it as an integrity problem, a command writes nothing, and once the column
    is put back the same command passes."""
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    row = pathways_table.update().where(pathways_table.c.id == pathway_id)
    before = service.history(pathway_id)
    with service.engine.begin() as connection:
        connection.execute(row.values(phase=Phase.FOLLOW_UP.value))
    event = {"type": "mucositis", "grade": 2}
    with pytest.raises(IntegrityError):
        service.fire(pathway_id, "record_adverse_event", event, actor=PHYS, at=clock.now())
    with pytest.raises(IntegrityError):
        service.snapshot(pathway_id)
    with service.engine.connect() as connection:
        written = select(func.count()).select_from(entries_table).where(entries_table.c.pathway_id == pathway_id)
        assert connection.execute(written).scalar_one() == len(before)
    with service.engine.begin() as connection:  # put back: the same command passes
        connection.execute(row.values(phase=Phase.EVALUATION.value))
    assert service.history(pathway_id) == before
    assert (
        service.fire(pathway_id, "record_adverse_event", event, actor=PHYS, at=clock.now()).entry.sequence
        == len(before) + 1
    )
