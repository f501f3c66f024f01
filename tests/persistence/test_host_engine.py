"""Engines the host builds (outside tester, item 11): PathwayService gives them the library's
set-up, so concurrent writers wait instead of failing and `echo` shows no patient data.
On both backends."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from persistence.engine import DEFAULT_BUSY_TIMEOUT_MS, configure_engine
from tests.invariants import assert_invariants
from tests.walks import PHYS
from workflow.clock import ManualClock
from workflow.retry import RetryPolicy
from workflow.service import PathwayService

THREADS, WRITES = 8, 10
AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _referral(patient: str) -> dict[str, str]:
    return {"patient_ref": patient, "route": "autologous", "graft_source": "pbsc"}


def test_eight_threads_of_writes_through_a_plain_host_engine_all_succeed(db_url: str) -> None:
    """No retries, so every write must get through at its first try. On SQLite all threads
    append to one pathway: only the set-up (BEGIN IMMEDIATE under a busy timeout) makes a
    writer read the head after taking the lock; without it 16 of 80 writes failed as stale
    here. PostgreSQL has no such lock at BEGIN, so there each thread has its own pathway."""
    PathwayService(db_url, auto_upgrade=True).engine.dispose()  # set up as `hsct db upgrade` would
    engine = sa.create_engine(db_url)  # what a host writes: no library set-up at all
    service = PathwayService(engine, clock=ManualClock(AT), retry=RetryPolicy.never())
    shared = engine.dialect.name == "sqlite"
    first = service.refer(_referral("PT-0000"), actor=PHYS, at=AT).pathway_id
    failures: list[BaseException] = []
    done: list[str] = []
    start = threading.Barrier(THREADS)

    def writer(number: int) -> None:
        start.wait()
        pathway_id = first if shared else None
        for _ in range(WRITES):
            try:  # each write reads the pathway's log, then appends to it
                if pathway_id is None:
                    pathway_id = service.refer(_referral(f"PT-{number + 1:04d}"), actor=PHYS, at=AT).pathway_id
                else:
                    service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 2},
                                 actor=PHYS, at=AT)
                done.append(pathway_id)
            except Exception as exc:  # every failure is collected and reported
                failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(done) == THREADS * WRITES
        assert len(done) == THREADS * WRITES
        assert sum(len(service.history(p)) for p in {first, *done}) == 1 + THREADS * WRITES
        assert_invariants(engine)
    finally:
        engine.dispose()


def test_echo_on_a_host_engine_prints_no_patient_ref(db_url: str, caplog: pytest.LogCaptureFixture,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    engine = sa.create_engine(db_url, echo=True)
    try:
        service = PathwayService(engine, clock=ManualClock(AT), auto_upgrade=True)
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            pathway_id = service.refer(_referral("PT-ECHO42"), actor=PHYS, at=AT).pathway_id
            service.snapshot(pathway_id)
    finally:
        engine.dispose()
    shown = caplog.text + capsys.readouterr().out
    assert "INSERT INTO entries" in shown  # echo did log the statements
    assert "PT-ECHO42" not in shown
    assert "hidden due to hide_parameters" in shown


def test_a_sqlite_engine_used_before_gets_the_set_up_at_its_next_transaction(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'host.sqlite'}")
    try:
        with engine.connect() as connection:  # the pool now holds a connection without the set-up
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
        assert configure_engine(engine) is engine
        configure_engine(engine)  # idempotent: a second BEGIN listener would fail every transaction
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA busy_timeout").scalar() == DEFAULT_BUSY_TIMEOUT_MS
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
        assert engine.hide_parameters is True
    finally:
        engine.dispose()


def test_an_engine_the_log_cannot_work_with_is_refused_saying_how_to_build_one() -> None:
    engine = sa.create_engine("sqlite://")
    engine.dialect.driver = "pysqlcipher"  # another SQLite driver: not the recipe's sqlite3
    try:
        with pytest.raises(ValueError, match=r"persistence\.engine\.create_engine\(url\)"):
            PathwayService(engine)
    finally:
        engine.dispose()
