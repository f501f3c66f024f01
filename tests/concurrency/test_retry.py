"""The retry policy: what is retried, how often, how long, and that a retry re-judges.

Unit tests with a fake clock and sleep; then the real failures on each backend: SQLite busy,
PostgreSQL 40001 (SERIALIZABLE) and 40P01 (a deadlock between two host transactions), each
either retried by the service in its own transaction or surfaced as ConcurrencyConflict.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from persistence.engine import create_engine
from persistence.store import DuplicateIdempotencyKey, StorageError, translate_error
from states.errors import ConcurrencyConflict, HsctError, IdempotencyMisuse, Refused
from states.vocabulary import Phase
from tests.concurrency.harness import COORD, HOLD, Counter, refer, waiting_for
from tests.invariants import assert_invariants
from tests.persistence.test_translate import FakePgError, sqlite_error, wrap
from workflow.retry import RetryPolicy, transient
from workflow.service import PathwayService


class FakeTime:
    """A monotonic clock that only moves when the policy sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _policy(clock: FakeTime, **kw: Any) -> RetryPolicy:
    return RetryPolicy(rng=random.Random(7), sleep=clock.sleep, monotonic=clock.monotonic, **kw)


def _failing(errors: list[HsctError], result: str = "done") -> Callable[[], str]:
    """An operation raising the given errors in turn, then returning `result`."""
    calls = iter(errors)

    def operation() -> str:
        error = next(calls, None)
        if error is not None:
            raise error
        return result

    return operation


def _always(_error: HsctError) -> bool:
    return True


def test_retries_until_success_with_full_jitter_backoff() -> None:
    clock = FakeTime()
    hooked: list[tuple[int, str, float]] = []
    policy = _policy(
        clock,
        max_attempts=5,
        base_delay=0.01,
        max_delay=0.03,
        on_retry=lambda n, e, d: hooked.append((n, type(e).__name__, d)),
    )
    conflicts: list[HsctError] = [ConcurrencyConflict("p") for _ in range(4)]
    assert policy.call(_failing(conflicts), _always) == "done"
    assert [n for n, _, _ in hooked] == [1, 2, 3, 4]
    assert clock.sleeps == [d for _, _, d in hooked]
    caps = [0.01, 0.02, 0.03, 0.03]  # base * 2**(n-1), capped at max_delay
    assert all(0 <= wait <= cap for wait, cap in zip(clock.sleeps, caps, strict=True))
    # the same seed draws the same waits: a run can be reproduced
    again = FakeTime()
    _policy(again, max_attempts=5, base_delay=0.01, max_delay=0.03).call(
        _failing([ConcurrencyConflict("p") for _ in range(4)]), _always
    )
    assert again.sleeps == clock.sleeps


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock = FakeTime()
    errors: list[HsctError] = [ConcurrencyConflict("p", f"try {n}") for n in range(1, 4)]
    with pytest.raises(ConcurrencyConflict, match="try 3"):
        _policy(clock, max_attempts=3).call(_failing(errors), _always)
    assert len(clock.sleeps) == 2


def test_gives_up_when_the_wait_would_pass_the_budget() -> None:
    clock = FakeTime()
    policy = _policy(clock, max_attempts=100, base_delay=1.0, max_delay=1.0, budget=2.5)
    with pytest.raises(ConcurrencyConflict):
        policy.call(_failing([ConcurrencyConflict("p") for _ in range(100)]), _always)
    assert clock.now <= 2.5
    assert 2 <= len(clock.sleeps) < 100


def test_a_duplicate_idempotency_key_is_retried_at_once() -> None:
    clock = FakeTime()
    assert _policy(clock).call(_failing([DuplicateIdempotencyKey("p")]), _always) == "done"
    assert clock.sleeps == []


def test_what_the_predicate_refuses_is_raised_at_once() -> None:
    clock = FakeTime()
    with pytest.raises(Refused):
        _policy(clock).call(_failing([Refused("p", "hold", ("x",), 2)]), lambda e: not isinstance(e, Refused))
    assert clock.sleeps == []


def test_never_tries_once() -> None:
    with pytest.raises(ConcurrencyConflict):
        RetryPolicy.never().call(_failing([ConcurrencyConflict("p")]), _always)


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base_delay": -1.0}, {"budget": -0.1}])
def test_policy_bounds_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=">= "):
        RetryPolicy(**bad)


def _lost(*, unknown: bool) -> StorageError:
    return StorageError("connection lost", connection_invalidated=True, outcome_unknown=unknown)


@pytest.mark.parametrize(
    ("error", "resend_safe", "expected"),
    [
        (translate_error(wrap(FakePgError("40001"))), False, True),  # serialization failure
        (translate_error(wrap(FakePgError("40P01"))), False, True),  # deadlock
        (translate_error(wrap(FakePgError("55P03"))), False, True),  # lock not available
        (translate_error(wrap(sqlite_error(sqlite3.OperationalError, "database is locked", 5))), False, True),
        (DuplicateIdempotencyKey("p"), False, True),
        (_lost(unknown=False), False, True),  # lost before COMMIT: nothing committed
        (_lost(unknown=True), False, False),  # lost during COMMIT: a re-send could apply it twice
        (_lost(unknown=True), True, True),  # ... unless its idempotency key makes it replay
        (StorageError("disk full"), True, False),
        (IdempotencyMisuse("ab" * 32), True, False),
        (Refused("p", "hold", ("x",), 2), True, False),
    ],
)
def test_what_is_transient(error: HsctError, resend_safe: bool, expected: bool) -> None:
    assert transient(error, resend_safe=resend_safe) is expected


# --- the real failures, through the service -------------------------------------------------


@pytest.fixture
def quick_busy(db_url: str) -> Iterator[tuple[PathwayService, Counter]]:
    """A service whose SQLite connections give up waiting for the write lock after 50 ms."""
    counter = Counter()
    engine = create_engine(db_url, busy_timeout_ms=50) if db_url.startswith("sqlite") else create_engine(db_url)
    retry = RetryPolicy(max_attempts=50, base_delay=0.02, max_delay=0.05, budget=20.0, on_retry=counter.hook)
    service = PathwayService(engine, retry=retry, auto_upgrade=True)
    try:
        yield service, counter
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()


def _sqlite_only(service: PathwayService) -> None:
    if service.engine.dialect.name != "sqlite":
        pytest.skip("SQLite busy")


def _hold_write_lock(service: PathwayService, seconds: float) -> threading.Thread:
    """Another process's writer, as far as the service can tell: BEGIN IMMEDIATE, held a while."""
    path = service.engine.url.database
    assert path is not None
    locked = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


def test_sqlite_busy_is_retried(quick_busy: tuple[PathwayService, Counter]) -> None:
    service, counter = quick_busy
    _sqlite_only(service)
    pathway_id = refer(service)
    holder = _hold_write_lock(service, 0.8)
    result = service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC))
    holder.join()
    assert result.phase is Phase.ON_HOLD
    assert counter.retries >= 1


def test_sqlite_busy_surfaces_as_a_conflict_when_not_retried(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite busy")
    service = PathwayService(create_engine(db_url, busy_timeout_ms=50), retry=RetryPolicy.never())
    # a host session: the host owns the retry, whatever the service's policy
    retrying = PathwayService(service.engine, retry=RetryPolicy(on_retry=lambda *_: pytest.fail("retried")))
    try:
        pathway_id = refer(service)
        holder = _hold_write_lock(service, 0.8)
        try:
            with pytest.raises(ConcurrencyConflict, match="the database is busy") as raised:
                service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC))
            assert raised.value.__cause__ is None
            with Session(service.engine) as host, pytest.raises(ConcurrencyConflict):
                retrying.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=host)
        finally:
            holder.join()
        assert len(service.history(pathway_id)) == 1
    finally:
        service.engine.dispose()


def _postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL")


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "SERIALIZABLE"])
def test_a_command_that_waited_is_judged_on_what_committed_first(db_url: str, isolation: str) -> None:
    """Two holds race: the second waits for the first's lock (READ COMMITTED: then reloads;
    SERIALIZABLE: gets 40001, retried as a fresh load) and is refused, judged on the pathway as
    the first left it. A guard never judges facts older than the transaction that commits."""
    if isolation == "SERIALIZABLE":
        _postgres_only(db_url)
    counter = Counter()
    options: dict[str, Any] = {"isolation_level": isolation} if db_url.startswith("postgresql") else {}
    service = PathwayService(
        create_engine(db_url, **options), retry=RetryPolicy(on_retry=counter.hook), auto_upgrade=True
    )
    try:
        pathway_id = refer(service)
        answers: list[BaseException] = []
        with Session(service.engine) as first:
            service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=first)

            def second() -> None:
                try:
                    service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC))
                except Refused as refusal:
                    answers.append(refusal)

            racer = threading.Thread(target=second)
            racer.start()
            if service.engine.dialect.name == "postgresql":
                waiting_for(service.engine, first.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            else:
                time.sleep(0.3)  # waiting in BEGIN IMMEDIATE
            first.commit()
            racer.join(timeout=30)
        [refusal] = answers
        assert isinstance(refusal, Refused)
        assert refusal.reasons == ("trigger_not_allowed_in_phase",)
        assert counter.retries == (1 if isolation == "SERIALIZABLE" else 0)
        assert [(e.kind.value, e.to_phase) for e in service.history(pathway_id)][1:] == [
            ("transition", Phase.ON_HOLD),
            ("refusal", Phase.ON_HOLD),
        ]
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()


def test_serialization_failure_surfaces_as_a_conflict_when_not_retried(db_url: str) -> None:
    _postgres_only(db_url)
    service = PathwayService(
        create_engine(db_url, isolation_level="SERIALIZABLE"), retry=RetryPolicy.never(), auto_upgrade=True
    )
    try:
        pathway_id = refer(service)
        raised: list[BaseException] = []
        with Session(service.engine) as first:
            service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=first)

            def second() -> None:
                try:
                    service.fire(pathway_id, "hold", HOLD, actor=COORD, at=datetime.now(UTC))
                except BaseException as exc:
                    raised.append(exc)

            racer = threading.Thread(target=second)
            racer.start()
            waiting_for(service.engine, first.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            first.commit()
            racer.join(timeout=30)
        [error] = raised
        assert type(error) is ConcurrencyConflict
        assert "serialization failure" in str(error)
        assert len(service.history(pathway_id)) == 2  # the referral and the first hold only
    finally:
        service.engine.dispose()


def test_a_deadlock_between_host_transactions_surfaces_as_a_conflict(db_url: str) -> None:
    """40P01: two hosts each lock one pathway, then want the other's. PostgreSQL breaks the
    cycle; the victim's host gets ConcurrencyConflict (its retry to make), the other goes on."""
    _postgres_only(db_url)
    service = PathwayService(
        db_url, retry=RetryPolicy(on_retry=lambda *_: pytest.fail("a host session retried")), auto_upgrade=True
    )
    try:
        first_id, second_id = refer(service), refer(service)
        outcomes: dict[str, BaseException | None] = {}
        barrier = threading.Barrier(2)

        def host(name: str, mine: str, theirs: str) -> None:
            with Session(service.engine) as session:
                try:
                    service.fire(mine, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=session)
                    barrier.wait()
                    service.fire(theirs, "hold", HOLD, actor=COORD, at=datetime.now(UTC), session=session)
                    session.commit()
                    outcomes[name] = None
                except BaseException as exc:
                    session.rollback()
                    outcomes[name] = exc

        hosts = [
            threading.Thread(target=host, args=("a", first_id, second_id)),
            threading.Thread(target=host, args=("b", second_id, first_id)),
        ]
        for thread in hosts:
            thread.start()
        for thread in hosts:
            thread.join(timeout=60)
        errors = [e for e in outcomes.values() if e is not None]
        assert len(outcomes) == 2
        [error] = errors
        assert type(error) is ConcurrencyConflict
        assert "deadlock detected" in str(error)
        # the victim's holds were rolled back; the survivor then put both pathways on hold
        phases = {service.snapshot(pid).phase for pid in (first_id, second_id)}
        assert phases == {Phase.ON_HOLD}
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()
