"""Cheaper commands, same guarantees: the facts cache reuses an object only for exactly the
stored text it was dumped to, and a service without the outbox writes the same log."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

from persistence.models import outbox_table
from persistence.store import PathwayRecord, Store
from states.facts import PathwayFacts
from states.vocabulary import Phase
from tests.helpers_core import reach
from workflow.audit.verify import verify_log
from workflow.clock import ManualClock
from workflow.facts_cache import FactsCache
from workflow.service import PathwayService


def _record(service: PathwayService, pathway_id: str) -> PathwayRecord:
    with service.engine.connect() as connection, connection.begin():
        record = Store(connection).load(pathway_id)
    assert record is not None
    return record


def _parsed(service: PathwayService, cache: FactsCache, record: PathwayRecord) -> PathwayFacts:
    with service.engine.connect() as connection, connection.begin():
        return cache.parsed(record, Store(connection))


def test_a_hit_needs_the_digest_of_the_stored_text(service: PathwayService, clock: ManualClock) -> None:
    record = _record(service, reach(service, clock, "autologous", Phase.EVALUATION))
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
    record = _record(service, pathway_id)
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
