"""Crashes and faults (RELIABILITY.md T10, T11, T12).

T10 kills a worker process by SIGKILL at each crash point of workflow/faults.py, on each
backend, then restarts: the worker's script is sent again with the same idempotency keys (as a
host re-sends what timed out) and the outbox drained. After the crash and after the restart
I1-I5 hold, every entry has its one outbox row, and the host received each row exactly once.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from persistence.store import StorageError
from states.entry import Entry
from states.errors import ConcurrencyConflict
from states.facts import PathwayFacts
from states.vocabulary import Phase
from tests.concurrency.harness import (
    COORD,
    HOLD,
    SCRIPT,
    SCRIPT_END,
    Counter,
    make_service,
    received_table,
    record_delivery,
    refer,
    run_script,
    start_worker,
    waiting_for,
    worker_env,
)
from tests.invariants import assert_invariants, outbox_mismatches
from workflow import faults
from workflow.outbox import Dispatcher
from workflow.service import PathwayService, Result

# What a crash at each point leaves behind: (entries after the referral, rows received).
# The worker refers nothing itself: it fires SCRIPT (3 commands), then delivers 4 rows.
SURVIVES = {
    faults.BEFORE_FLUSH: (0, 0),
    faults.AFTER_FLUSH_BEFORE_COMMIT: (0, 0),
    faults.AFTER_COMMIT_BEFORE_DISPATCH: (1, 0),
    faults.DISPATCH_BEFORE_COMMIT: (3, 0),
    faults.DISPATCH_AFTER_COMMIT: (3, 4),
}


def test_every_crash_point_is_exercised() -> None:
    assert set(SURVIVES) == set(faults.CRASH_POINTS)


@pytest.fixture
def live(db_url: str) -> Iterator[PathwayService]:
    """A service on the system clock (the worker's commands are stamped now), with the host's
    `received` table; I1-I5 and the outbox checked at the end."""
    service = make_service(db_url)
    received_table.create(service.engine)
    try:
        yield service
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


def _received(service: PathwayService) -> list[tuple[int, int]]:
    with service.engine.connect() as connection:
        query = sa.select(received_table.c.outbox_id, received_table.c.sequence).order_by(received_table.c.id)
        return [(o, s) for o, s in connection.execute(query)]


@pytest.mark.parametrize("point", faults.CRASH_POINTS)
def test_kill_9_at_a_crash_point_then_restart(live: PathwayService, db_url: str, point: str) -> None:
    pathway_id = refer(live)
    worker = start_worker(["script", "--db", db_url, "--pathway", pathway_id], env=worker_env(crash_at=point))
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == -signal.SIGKILL, err[-3000:]  # it reached the point and died there

    entries, received = SURVIVES[point]
    history = live.history(pathway_id)
    assert len(history) == 1 + entries
    assert len(_received(live)) == received
    assert_invariants(live.engine)  # no phase change without its entry, nor an entry without it
    assert outbox_mismatches(live.engine) == []  # no entry without its outbox row, nor the reverse

    # The restart: the host re-sends everything that did not answer, then delivers.
    assert run_script(live, pathway_id)[-1] is SCRIPT_END
    Dispatcher(live).drain(record_delivery)
    history = live.history(pathway_id)
    assert len(history) == 1 + len(SCRIPT)  # re-sent commands replayed, none applied twice
    assert [e.trigger for e in history[1:]] == [command for command, _ in SCRIPT]
    got = _received(live)
    assert [s for _, s in got] == [1, 2, 3, 4]  # each row exactly once, in sequence order
    assert len({o for o, _ in got}) == 4
    assert Dispatcher(live).backlog() == 0


# --- T11: a listener raises after the machine moved ------------------------------------------


def _state(service: PathwayService, pathway_id: str) -> tuple[object, ...]:
    snapshot = service.snapshot(pathway_id)
    return snapshot.version, snapshot.facts, service.history(pathway_id), Dispatcher(service).pending()


def test_a_listener_raising_after_the_machine_moved_changes_nothing(db_url: str) -> None:
    seen: list[tuple[Phase | None, Phase]] = []

    def listener(entry: Entry, facts: PathwayFacts) -> None:
        seen.append((entry.to_phase, facts.phase))
        if entry.trigger == "hold":
            raise RuntimeError("listener failed")

    service = PathwayService(db_url, listeners=[listener], auto_upgrade=True)
    try:
        pathway_id = refer(service)
        before = _state(service, pathway_id)
        with pytest.raises(RuntimeError, match="listener failed"):
            service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC))
        assert seen[-1] == (Phase.ON_HOLD, Phase.ON_HOLD)  # the machine had moved when it raised
        assert len(seen) == 2  # called once: a failing listener is not retried
        assert _state(service, pathway_id) == before  # no entry, no outbox row, same facts
        # The machine moved a throw-away token: no model of the pathway is left in memory
        # to disagree with the database (transitions itself never rolls back).
        assert service._machine.machine.models == []
        fresh = PathwayService(service.engine)
        assert fresh.snapshot(pathway_id).facts == service.snapshot(pathway_id).facts
        assert fresh.snapshot(pathway_id).phase is Phase.REFERRED
        # the next command starts from the previous state
        assert service.fire(pathway_id, "begin_evaluation", {}, actor=COORD, at=datetime.now(UTC)).phase is (
            Phase.EVALUATION
        )
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


def test_a_listener_raising_in_a_host_transaction_undoes_only_that_command(db_url: str) -> None:
    def listener(entry: Entry, _facts: PathwayFacts) -> None:
        if entry.trigger == "hold":
            raise RuntimeError("listener failed")

    service = PathwayService(db_url, listeners=[listener], auto_upgrade=True)
    try:
        failing, passing = refer(service), refer(service)
        with Session(service.engine) as session:
            service.fire(passing, "begin_evaluation", {}, actor=COORD, at=datetime.now(UTC), session=session)
            with pytest.raises(RuntimeError):
                service.fire(failing, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=session)
            session.commit()
        assert (service.snapshot(failing).phase, len(service.history(failing))) == (Phase.REFERRED, 1)
        assert (service.snapshot(passing).phase, len(service.history(passing))) == (Phase.EVALUATION, 2)
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


# --- T12: the connection is cut mid-transaction (PostgreSQL) -----------------------------------


@pytest.fixture
def postgres(db_url: str) -> Iterator[tuple[str, sa.Engine]]:
    """The test database, and an engine of its own to terminate the service's backends from."""
    if not db_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL")
    admin = sa.create_engine(db_url)
    try:
        yield db_url, admin
    finally:
        admin.dispose()


def _terminate(admin: sa.Engine, pid: int) -> None:
    with admin.begin() as connection:
        # with a timeout, the call returns once the backend has gone
        assert connection.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()


def _cutting_service(db_url: str, admin: sa.Engine, counter: Counter) -> PathwayService:
    """A service whose listener, the first time a hold is appended, terminates the backend of
    the service's own connection from another: the COMMIT that follows has nowhere to go."""
    service = make_service(db_url, counter=counter)
    current: dict[str, int] = {}

    @event.listens_for(service.engine, "checkout")
    def _remember(dbapi_connection: object, _record: object, _proxy: object) -> None:
        current["pid"] = dbapi_connection.info.backend_pid  # type: ignore[attr-defined]

    def cut(entry: Entry, _facts: PathwayFacts) -> None:
        if entry.trigger == "hold" and not current.get("done"):
            current["done"] = 1
            _terminate(admin, current["pid"])

    service.listeners.append(cut)
    return service


@pytest.mark.parametrize("keyed", [False, True])
def test_a_connection_cut_before_commit(postgres: tuple[str, sa.Engine], keyed: bool) -> None:
    """Without a key the outcome of a lost COMMIT is unknown to the service, so it raises a
    typed StorageError saying so rather than risk a second entry; with a key it re-sends, which
    applies the command once or replays it. Either way the next command succeeds."""
    db_url, admin = postgres
    counter = Counter()
    service = _cutting_service(db_url, admin, counter)
    try:
        pathway_id = refer(service)
        key = f"k-{uuid.uuid4()}" if keyed else None

        def hold() -> Result:
            return service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC), idempotency_key=key)

        if keyed:
            result = hold()
            assert (result.phase, result.replayed, counter.retries) == (Phase.ON_HOLD, False, 1)
        else:
            with pytest.raises(StorageError) as raised:
                hold()
            assert raised.value.connection_invalidated
            assert raised.value.outcome_unknown
            assert "57P01" in str(raised.value)  # admin shutdown, and no value of the command
            assert counter.retries == 0
            # it had not committed: the pathway is where it was, and the next command succeeds
            assert [e.trigger for e in service.history(pathway_id)] == ["refer"]
            assert service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC)).phase is Phase.ON_HOLD
        assert [e.trigger for e in service.history(pathway_id)] == ["refer", "hold"]
        assert service.fire(pathway_id, "resume", {}, actor=COORD, at=datetime.now(UTC)).phase is Phase.REFERRED
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()


def test_a_connection_cut_while_waiting_for_a_lock_is_retried(postgres: tuple[str, sa.Engine]) -> None:
    """Cut before COMMIT was sent: nothing can have committed, so the service tries again."""
    db_url, admin = postgres
    counter = Counter()
    service = make_service(db_url, counter=counter)
    try:
        pathway_id = refer(service)
        answers: list[object] = []
        with Session(service.engine) as first:
            service.fire(pathway_id, "begin_evaluation", {}, actor=COORD, at=datetime.now(UTC), session=first)
            holder = first.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()

            def second() -> None:
                try:
                    answers.append(service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC)))
                except (StorageError, ConcurrencyConflict) as exc:
                    answers.append(exc)

            racer = threading.Thread(target=second)
            racer.start()
            waiting = waiting_for(admin, holder)
            _terminate(admin, waiting)
            assert waiting_for(admin, holder) != waiting  # the retry is waiting again, on a new backend
            first.commit()
            racer.join(timeout=30)
        [answer] = answers
        assert not isinstance(answer, Exception), answer
        assert counter.retries == 1
        assert [e.trigger for e in service.history(pathway_id)] == ["refer", "begin_evaluation", "hold"]
        assert_invariants(service.engine)
        assert outbox_mismatches(service.engine) == []
    finally:
        service.engine.dispose()
