"""A host's Session around the service: refusals outlive its rollback, after-commit listeners
hear only of committed entries (docs/embedding.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from states.entry import Entry
from states.errors import Refused
from states.facts import PathwayFacts
from states.vocabulary import EntryKind, Phase
from tests.invariants import assert_invariants
from tests.walks import COORD, PHYS
from workflow.clock import ManualClock
from workflow.service import PathwayService

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)
HOLD = {"reason": "pneumonia"}


class Heard:
    """An after-commit listener that remembers (pathway, sequence, kind) of what it heard."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, int, str]] = []

    def __call__(self, entry: Entry, facts: PathwayFacts) -> None:
        assert facts.phase in Phase
        self.entries.append((entry.pathway_id, entry.sequence, entry.kind.value))


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def host(db_url: str, clock: ManualClock, heard: Heard) -> Iterator[PathwayService]:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True, after_commit=[heard])
    try:
        yield service
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()


def refer(service: PathwayService, patient: str = "PT-HOST01") -> str:
    referral = {"patient_ref": patient, "route": "autologous", "graft_source": "pbsc"}
    return service.refer(referral, actor=PHYS, at=AT).pathway_id


def kinds(service: PathwayService, pathway_id: str) -> list[tuple[str, str]]:
    return [(e.kind.value, e.trigger) for e in service.history(pathway_id)]


def test_a_refusal_inside_a_rolled_back_host_transaction_stays_in_the_log(host: PathwayService) -> None:
    pathway_id = refer(host)
    with Session(host.engine) as session:
        session.begin()
        session.execute(sa.text("SELECT 1"))  # the host's own work first
        with pytest.raises(Refused) as refused:
            host.fire(pathway_id, "complete_evaluation", actor=PHYS, at=AT, session=session)
        if host.engine.dialect.name == "postgresql":
            # Committed at once, apart (SQLite's host transaction holds the write lock from its
            # BEGIN IMMEDIATE, so there the refusal is recorded after the rollback).
            assert ("refusal", "complete_evaluation") in kinds(host, pathway_id)
        session.rollback()  # e.g. `with session.begin(): ... raise HTTPException(...)`
    assert refused.value.reasons[0] == "trigger_not_allowed_in_phase"  # `referred`: evaluation not begun
    assert kinds(host, pathway_id) == [("transition", "refer"), ("refusal", "complete_evaluation")]


def test_a_command_that_passes_follows_the_host_transaction(host: PathwayService, heard: Heard) -> None:
    pathway_id = refer(host)
    with Session(host.engine) as session:
        host.fire(pathway_id, "begin_evaluation", actor=COORD, at=AT, session=session)
        assert heard.entries == [(pathway_id, 1, "transition")]  # not yet: the host has not committed
        session.rollback()
    assert kinds(host, pathway_id) == [("transition", "refer")]
    assert heard.entries == [(pathway_id, 1, "transition")]


def test_after_commit_listeners_hear_only_committed_entries(host: PathwayService, heard: Heard) -> None:
    kept, undone = refer(host, "PT-HOST01"), refer(host, "PT-HOST02")
    heard.entries.clear()
    with Session(host.engine) as session:
        host.fire(kept, "begin_evaluation", actor=COORD, at=AT, session=session)
        inner = session.begin_nested()  # the host's own SAVEPOINT, rolled back with its entry
        host.fire(undone, "begin_evaluation", actor=COORD, at=AT, session=session)
        inner.rollback()
        assert heard.entries == []
        session.commit()
    assert heard.entries == [(kept, 2, "transition")]
    assert kinds(host, undone) == [("transition", "refer")]


def test_in_transaction_listeners_hear_entries_a_rollback_then_takes_back(db_url: str, clock: ManualClock) -> None:
    """The documented difference: `listeners=` run inside the transaction."""
    inside = Heard()
    service = PathwayService(db_url, clock=clock, auto_upgrade=True, listeners=[inside])
    try:
        pathway_id = refer(service)
        with Session(service.engine) as session:
            service.fire(pathway_id, "begin_evaluation", actor=COORD, at=AT, session=session)
            session.rollback()
        assert inside.entries == [(pathway_id, 1, "transition"), (pathway_id, 2, "transition")]
        assert len(service.history(pathway_id)) == 1
    finally:
        service.engine.dispose()


def test_a_refusal_after_the_host_wrote_to_the_pathway_is_recorded_after_its_rollback(
    host: PathwayService, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's transaction holds the pathway's lock: the refusal cannot be committed apart
    without waiting for it (a deadlock), so it stays in the host's transaction and is judged
    and recorded again once the rollback has released the lock."""
    pathway_id = refer(host)
    caplog.set_level(logging.INFO, logger="workflow.service")
    with Session(host.engine) as session:
        host.fire(pathway_id, "begin_evaluation", actor=COORD, at=AT, session=session)
        with pytest.raises(Refused) as refused:
            host.fire(pathway_id, "complete_evaluation", actor=PHYS, at=AT, session=session)
        assert refused.value.reasons == ("consent_missing", "eligibility_missing")
        assert "kept in the host's transaction" in caplog.text
        session.rollback()
    # Judged again on the pathway as the rollback left it (still in `referred`).
    assert kinds(host, pathway_id) == [("transition", "refer"), ("refusal", "complete_evaluation")]
    assert host.history(pathway_id)[-1].reasons[0] == "trigger_not_allowed_in_phase"


def test_a_refusal_kept_in_a_committed_host_transaction_is_written_once(host: PathwayService) -> None:
    pathway_id = refer(host)
    with Session(host.engine) as session:
        host.fire(pathway_id, "begin_evaluation", actor=COORD, at=AT, session=session)
        with pytest.raises(Refused):
            host.fire(pathway_id, "complete_evaluation", actor=PHYS, at=AT, session=session)
        session.commit()
    assert kinds(host, pathway_id) == [
        ("transition", "refer"),
        ("transition", "begin_evaluation"),
        ("refusal", "complete_evaluation"),
    ]


def test_without_durable_refusals_a_refusal_follows_the_host(db_url: str, clock: ManualClock) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True, durable_refusals=False)
    try:
        pathway_id = refer(service)
        with Session(service.engine) as session:
            with pytest.raises(Refused):
                service.fire(pathway_id, "complete_evaluation", actor=PHYS, at=AT, session=session)
            session.rollback()
        assert [e.kind for e in service.history(pathway_id)] == [EntryKind.TRANSITION]
    finally:
        service.engine.dispose()


def test_a_refused_replay_of_a_durable_refusal_answers_the_same(host: PathwayService) -> None:
    """The refusal committed apart keeps its idempotency key: the host's retry of the
    request, after its rollback, gets the same refusal and no second entry."""
    pathway_id = refer(host)
    for _ in range(2):
        with Session(host.engine) as session, pytest.raises(Refused) as refused, session.begin():
            host.fire(pathway_id, "complete_evaluation", actor=PHYS, at=AT, idempotency_key="req-1", session=session)
        assert refused.value.sequence == 2
    assert len(host.history(pathway_id)) == 2
