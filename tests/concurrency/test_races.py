"""Racing writers and repeated keys (RELIABILITY.md T2, T3, T6, T8) at reduced counts.

The full counts (8 x 500, 4 x 250, one key 1,000 times) are benchmarks/concurrency.py and
benchmarks/idempotency.py, which share tests/concurrency/harness.py with these tests. Every
command carries its own idempotency key, so `audit_outcomes` can hold each caller's answer
against the database: nothing reported committed is missing (lost), nothing is stored that
no caller was told about exactly once (duplicated), and no raw driver error reaches a caller.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from states.vocabulary import Phase
from tests.concurrency.harness import (
    COORD,
    HOLD,
    REFERRAL,
    Counter,
    Outcome,
    Tally,
    audit_outcomes,
    in_threads,
    make_service,
    refer,
    run_workers,
    same_key,
    toggle,
)
from tests.invariants import assert_invariants, outbox_mismatches
from workflow.service import PathwayService

THREADS, PER_THREAD = 4, 10
PROCESSES, PER_PROCESS = 4, 8
SENDERS, SENDS = 8, 48


@pytest.fixture
def counted(db_url: str) -> Iterator[tuple[PathwayService, Counter]]:
    counter = Counter()
    service = make_service(db_url, counter=counter)
    try:
        yield service, counter
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


def _assert_clean(tally: Tally, attempts: int) -> None:
    assert tally.errors == []  # never a raw driver error, nor any other surprise
    assert tally.attempts == attempts
    assert (tally.lost, tally.duplicated) == (0, 0)
    assert tally.committed + tally.refused + tally.conflicts == attempts


def _log_matches(service: PathwayService, pathway_id: str, tally: Tally) -> None:
    """One entry per answered command after the referral, and the phase its transitions say."""
    history = service.history(pathway_id)
    assert len(history) == 1 + tally.committed + tally.refused
    holds = sum(1 for e in history if e.kind.value == "transition" and e.trigger == "hold")
    resumes = sum(1 for e in history if e.kind.value == "transition" and e.trigger == "resume")
    assert holds - resumes in (0, 1)
    assert service.snapshot(pathway_id).phase is (Phase.ON_HOLD if holds > resumes else Phase.REFERRED)


def test_threads_racing_one_pathway(counted: tuple[PathwayService, Counter]) -> None:
    """T2: each command loads, is judged and commits while the others race it."""
    service, counter = counted
    pathway_id = refer(service)
    outcomes = in_threads(THREADS, lambda n: toggle(service, pathway_id, PER_THREAD, key_prefix=f"t{n}"))
    tally = audit_outcomes(service.engine, outcomes)
    _assert_clean(tally, THREADS * PER_THREAD)
    # Writers of one pathway queue (PostgreSQL: on its row, locked from the load; SQLite: on
    # BEGIN IMMEDIATE), so at the default isolation no command loses a race or is retried.
    assert (tally.conflicts, counter.retries) == (0, 0)
    _log_matches(service, pathway_id, tally)


def test_threads_racing_one_pathway_serializable(db_url: str) -> None:
    """T2 at SERIALIZABLE (PostgreSQL): losers get 40001, retried as a fresh load and judgement."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SERIALIZABLE isolation is a PostgreSQL setting")
    counter = Counter()
    service = make_service(db_url, counter=counter, isolation="SERIALIZABLE")
    try:
        pathway_id = refer(service)
        outcomes = in_threads(THREADS, lambda n: toggle(service, pathway_id, PER_THREAD, key_prefix=f"s{n}"))
        tally = audit_outcomes(service.engine, outcomes)
        _assert_clean(tally, THREADS * PER_THREAD)
        _log_matches(service, pathway_id, tally)
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


def test_processes_racing_one_pathway(counted: tuple[PathwayService, Counter], db_url: str) -> None:
    """T3 (PostgreSQL) and T6 (SQLite in WAL mode): separate processes, one pathway."""
    service, _ = counted
    if service.engine.dialect.name == "sqlite":
        with service.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    pathway_id = refer(service)
    args = ["toggle", "--db", db_url, "--pathway", pathway_id, "--count", str(PER_PROCESS)]
    report = run_workers([args] * PROCESSES, prefix="proc")
    assert len({o.key for o in report.outcomes}) == PROCESSES * PER_PROCESS
    tally = audit_outcomes(service.engine, report.outcomes)
    _assert_clean(tally, PROCESSES * PER_PROCESS)
    assert tally.conflicts == 0  # a busy SQLite waits in BEGIN IMMEDIATE, then is retried
    _log_matches(service, pathway_id, tally)


# --- T8: one idempotency key, many senders ----------------------------------------------------


@pytest.mark.parametrize("command", ["refer", "hold"])
def test_one_key_sent_concurrently_commits_once(counted: tuple[PathwayService, Counter], command: str) -> None:
    service, _ = counted
    pathway_id = None if command == "refer" else refer(service)
    key = f"k-{uuid.uuid4()}"
    outcomes = in_threads(
        SENDERS, lambda n: same_key(service, key, SENDS // SENDERS, pathway_id=pathway_id, variant=False)
    )
    assert [o.kind for o in outcomes] == ["committed"] * SENDS
    assert len({(o.pathway_id, o.sequence, o.hash) for o in outcomes}) == 1  # every replay: the stored result
    assert sum(not o.replayed for o in outcomes) == 1
    stored_pathway = outcomes[0].pathway_id
    assert _keyed(service, key) == [(stored_pathway, outcomes[0].sequence, outcomes[0].hash)]
    assert service.pathway_ids() == [stored_pathway]  # the losing referrals left no pathway behind

    misuse = in_threads(SENDERS, lambda n: same_key(service, key, 1, pathway_id=pathway_id, variant=True))
    assert [o.kind for o in misuse] == ["error:IdempotencyMisuse"] * SENDERS
    assert len(service.history(stored_pathway)) == (1 if command == "refer" else 2)


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
@pytest.mark.parametrize("command", ["refer", "hold"])
def test_a_replay_while_the_first_is_running_waits_for_it(db_url: str, command: str, outcome: str) -> None:
    """The first send holds its transaction open; the second waits, then replays its result
    (or, if the first rolled back, applies the command itself): never a second entry."""
    counter = Counter()
    service = make_service(db_url, counter=counter)
    try:
        pathway_id = None if command == "refer" else refer(service)
        key = f"k-{uuid.uuid4()}"
        with Session(service.engine) as host:
            if pathway_id is None:
                first = service.refer(REFERRAL, actor=COORD, at=datetime.now(UTC), idempotency_key=key, session=host)
            else:
                first = service.fire(
                    pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC), idempotency_key=key, session=host
                )
            answers: list[Outcome] = []
            second = threading.Thread(target=lambda: answers.extend(same_key(service, key, 1, pathway_id=pathway_id)))
            second.start()
            time.sleep(0.5)
            assert second.is_alive()  # waiting for the first, not answering from a stale read
            if outcome == "commit":
                host.commit()
            else:
                host.rollback()
            second.join(timeout=30)
        [answer] = answers
        assert answer.kind == "committed"
        if outcome == "commit":
            assert answer.replayed
            assert (answer.pathway_id, answer.hash) == (first.pathway_id, first.entry.hash)
        else:
            assert not answer.replayed
        assert _keyed(service, key) == [(answer.pathway_id, answer.sequence, answer.hash)]
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()


def _keyed(service: PathwayService, key: str) -> list[tuple[str, int, str]]:
    """(pathway, sequence, hash) of every stored entry carrying `key`."""
    with service.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT pathway_id, sequence, hash FROM entries WHERE idempotency_key = :key"), {"key": key}
        ).all()
    return [(pid, seq, digest) for pid, seq, digest in rows]
