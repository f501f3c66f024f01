"""The store on both backends: round trips, the version check, append-only, translation."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from persistence.chain import entry_body, verify_entries
from persistence.models import entries_table, pathways_table
from persistence.store import DuplicateIdempotencyKey, StorageError, Store, translate_errors
from states.entry import GENESIS_HASH
from states.errors import ConcurrencyConflict, IntegrityError, UnknownPathway
from states.vocabulary import EntryKind, Phase, Role
from tests.persistence.conftest import Backend
from tests.persistence.helpers import T0, draft, new_pathway


def count_entries(engine: Engine, pathway_id: str | None = None) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(entries_table)
        if pathway_id is not None:
            query = query.where(entries_table.c.pathway_id == pathway_id)
        return int(connection.execute(query).scalar_one())


def advance(store: Store, pathway_id: str, *, phase: Phase | None = None) -> None:
    """Append one event after the current head (load, then append), leaving the row in `phase`
    (by default the one it is in, as the event does)."""
    record = store.load(pathway_id)
    assert record is not None
    store.append(
        pathway_id,
        draft(pathway_id, payload={"v": record.version}),
        expected_version=record.version,
        head_hash=record.head_hash,
        phase=record.phase if phase is None else phase,
        facts_json=None,
        now=T0,
    )


# --- round trip -----------------------------------------------------------------------------


def test_insert_append_and_read_back(store: Store, session: Session, engine: Engine) -> None:
    pid = str(uuid.uuid4())
    first = new_pathway(store, pid)
    assert first == pid
    record = store.load(pid)
    assert record is not None
    assert (record.version, record.phase, record.route, record.donor_type) == (
        1,
        Phase.REFERRED,
        "autologous",
        None,
    )
    assert record.facts == "{}"
    assert record.created_at == record.updated_at == T0

    effective = datetime(2026, 2, 5, 8, 15, 30, 654321, tzinfo=timezone(timedelta(hours=-5)))
    recorded = datetime(2026, 2, 5, 13, 16, 0, 1, tzinfo=UTC)
    second_draft = draft(
        pid,
        kind=EntryKind.TRANSITION,
        trigger="begin_evaluation",
        from_phase=Phase.REFERRED,
        to_phase=Phase.EVALUATION,
        effective_at=effective,
        recorded_at=recorded,
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        reason="Überweisung - ok; '); DROP TABLE entries; --",
        payload={"nested": {"b": [1, 2.5, None, True], "a": "ü"}, "count": 3},
        reasons=("r2", "r1"),
        idempotency_key="key-1",
    )
    later = T0 + timedelta(days=1)
    second = store.append(
        pid,
        second_draft,
        expected_version=1,
        head_hash=record.head_hash,
        phase=Phase.EVALUATION,
        facts_json='{"phase":"evaluation"}',
        now=later,
    )
    session.commit()

    assert (second.sequence, second.prev_hash) == (2, record.head_hash)
    with Session(engine) as fresh:
        reader = Store(fresh)
        entries = reader.entries(pid)
        after = reader.load(pid)
    assert [e.sequence for e in entries] == [1, 2]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1] == second
    assert entries[1].effective_at == effective
    assert entries[1].effective_at.tzinfo is UTC
    assert entries[1].recorded_at.microsecond == 1
    assert entries[1].reasons == ("r2", "r1")
    assert verify_entries(entries) is None
    assert after is not None
    assert (after.version, after.head_hash, after.phase) == (2, second.hash, Phase.EVALUATION)
    assert after.facts == '{"phase":"evaluation"}'
    assert (after.created_at, after.updated_at) == (T0, later)


def test_stored_body_is_the_hashed_bytes(store: Store, session: Session) -> None:
    pid = new_pathway(store)
    advance(store, pid)
    session.commit()
    rows = session.execute(
        select(entries_table.c.sequence, entries_table.c.body, entries_table.c.payload).order_by(
            entries_table.c.sequence
        )
    ).all()
    for entry, row in zip(store.entries(pid), rows, strict=True):
        assert bytes(row.body) == entry_body(entry, entry.sequence, entry.prev_hash)
    assert rows[1].payload == '{"v":1}'


def test_facts_none_leaves_the_snapshot(store: Store, session: Session) -> None:
    pid = new_pathway(store, facts_json='{"x":1}')
    advance(store, pid)
    record = store.load(pid)
    assert record is not None
    assert (record.facts, record.version) == ('{"x":1}', 2)


def test_unknown_pathway_reads(store: Store) -> None:
    assert store.load("no-such-id") is None
    assert store.entries("no-such-id") == []
    assert store.entry_by_idempotency_key("no-such-key") is None
    with pytest.raises(UnknownPathway):
        store.verify_pathway("no-such-id")


def test_entry_by_idempotency_key(store: Store) -> None:
    pid = new_pathway(store)
    record = store.load(pid)
    assert record is not None
    stored = store.append(
        pid,
        draft(pid, idempotency_key="abc"),
        expected_version=1,
        head_hash=record.head_hash,
        phase=record.phase,
        facts_json=None,
        now=T0,
    )
    assert store.entry_by_idempotency_key("abc") == stored


def test_pathway_ids_in_creation_order_and_by_phase(store: Store, session: Session) -> None:
    a = new_pathway(store, now=T0)
    b = new_pathway(store, now=T0 + timedelta(seconds=1), phase=Phase.EVALUATION)
    c = new_pathway(store, now=T0 - timedelta(seconds=1))
    assert store.pathway_ids() == [c, a, b]
    assert store.pathway_ids(Phase.EVALUATION) == [b]
    assert store.pathway_ids(Phase.DECEASED) == []


def test_previous_pathway_link(store: Store) -> None:
    first = new_pathway(store)
    second = new_pathway(store, previous_pathway=first, hct_number=2)
    record = store.load(second)
    assert record is not None
    assert (record.previous_pathway, record.hct_number) == (first, 2)


def test_unknown_previous_pathway_is_named(store: Store) -> None:
    with pytest.raises(UnknownPathway, match="missing-one"):
        new_pathway(store, previous_pathway="missing-one")


def test_entries_until_recorded_is_a_prefix_of_the_chain(store: Store) -> None:
    pid = new_pathway(store)  # entry 1 recorded at T0
    for offset in (10, 20, 15, 30):  # entry 4 stamped before entry 3 by a skewed clock
        record = store.load(pid)
        assert record is not None
        store.append(
            pid,
            draft(pid, recorded_at=T0 + timedelta(minutes=offset)),
            expected_version=record.version,
            head_hash=record.head_hash,
            phase=record.phase,
            facts_json=None,
            now=T0,
        )

    def upto(minutes: float) -> list[int]:
        return [e.sequence for e in store.entries(pid, until_recorded=T0 + timedelta(minutes=minutes))]

    assert upto(-1) == []
    assert upto(0) == [1]
    assert upto(10) == [1, 2]
    assert upto(17) == [1, 2]  # entry 4 (minute 15) comes only after entry 3 (minute 20)
    assert upto(20) == [1, 2, 3, 4]
    assert upto(60) == [1, 2, 3, 4, 5]
    # the same instant in another zone
    assert [
        e.sequence
        for e in store.entries(
            pid, until_recorded=(T0 + timedelta(minutes=10)).astimezone(timezone(timedelta(hours=9)))
        )
    ] == [1, 2]


def test_naive_now_is_refused_before_anything_is_written(store: Store, engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_pathway(store, now=datetime(2026, 2, 4, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.entries("x", until_recorded=datetime(2026, 2, 4, 12, 0))


def test_draft_of_another_pathway_is_refused(store: Store) -> None:
    pid = new_pathway(store)
    with pytest.raises(ValueError, match="another pathway"):
        store.append(
            pid,
            draft("other"),
            expected_version=1,
            head_hash=GENESIS_HASH,
            phase=Phase.REFERRED,
            facts_json=None,
            now=T0,
        )


def test_a_phase_other_than_the_entrys_is_refused_and_the_load_checks_it(store: Store) -> None:
    """The row's phase is the one its head entry leaves it in: append refuses another, and a row
    edited to another fails every load's check against its head."""
    pid = new_pathway(store)
    with pytest.raises(ValueError, match="to_phase"):
        advance(store, pid, phase=Phase.EVALUATION)
    assert [e.sequence for e in store.entries(pid)] == [1]  # nothing appended
    store.connection.execute(pathways_table.update().where(pathways_table.c.id == pid).values(phase="evaluation"))
    with pytest.raises(IntegrityError):
        store.load(pid)
    assert store.load(pid, checked=False) is not None


def test_store_never_commits(engine: Engine) -> None:
    with Session(engine) as session:
        pid = new_pathway(Store(session))
        advance(Store(session), pid)
        session.rollback()
    assert count_entries(engine) == 0


# --- optimistic concurrency ---------------------------------------------------------------


def test_stale_version_is_a_conflict_and_writes_nothing(store: Store, session: Session, engine: Engine) -> None:
    pid = new_pathway(store)
    advance(store, pid)
    session.commit()
    with pytest.raises(ConcurrencyConflict, match=pid):
        store.append(
            pid,
            draft(pid),
            expected_version=1,  # the head is at 2
            head_hash=store.entries(pid)[0].hash,
            phase=Phase.REFERRED,
            facts_json='{"lost":true}',
            now=T0,
        )
    # nothing was written even before rolling back ...
    assert session.execute(select(func.count()).select_from(entries_table)).scalar_one() == 2
    session.rollback()
    record = store.load(pid)
    assert record is not None
    assert (record.version, record.facts) == (2, "{}")
    session.rollback()  # release SQLite's write lock before another connection reads
    assert count_entries(engine, pid) == 2


def test_wrong_head_hash_is_a_conflict(store: Store) -> None:
    pid = new_pathway(store)
    with pytest.raises(ConcurrencyConflict):
        store.append(
            pid,
            draft(pid),
            expected_version=1,
            head_hash="f" * 64,
            phase=Phase.REFERRED,
            facts_json=None,
            now=T0,
        )


def test_two_sessions_racing_one_loses_cleanly(engine: Engine, backend: Backend) -> None:
    with Session(engine) as setup:
        pid = new_pathway(Store(setup))
        setup.commit()
    with Session(engine) as a_session:
        a = Store(a_session)
        seen = a.load(pid)
        assert seen is not None
        a_session.commit()  # releases SQLite's lock; the snapshot is now stale-able
        with Session(engine) as b_session:
            advance(Store(b_session), pid)
            b_session.commit()
        with pytest.raises(ConcurrencyConflict):
            a.append(
                pid,
                draft(pid),
                expected_version=seen.version,
                head_hash=seen.head_hash,
                phase=seen.phase,
                facts_json=None,
                now=T0,
            )
        a_session.rollback()
    assert count_entries(engine, pid) == 2


def test_serialization_failure_is_a_conflict(backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("PostgreSQL SERIALIZABLE")
    from persistence.schema import upgrade

    engine = backend.engine(isolation_level="SERIALIZABLE")
    upgrade(engine)
    with Session(engine) as setup:
        pid = new_pathway(Store(setup))
        setup.commit()
    with Session(engine) as a_session, Session(engine) as b_session:
        a, b = Store(a_session), Store(b_session)
        seen_a, seen_b = a.load(pid), b.load(pid)
        assert seen_a is not None
        assert seen_b is not None
        advance(a, pid)
        a_session.commit()
        with pytest.raises(ConcurrencyConflict, match="serialization failure"):
            b.append(
                pid,
                draft(pid),
                expected_version=seen_b.version,
                head_hash=seen_b.head_hash,
                phase=seen_b.phase,
                facts_json=None,
                now=T0,
            )
        b_session.rollback()


def test_threads_racing_one_pathway_lose_nothing(engine: Engine) -> None:
    """Load -> append -> commit from several threads, retrying on conflict (a small T2/T6)."""
    with Session(engine) as setup:
        pid = new_pathway(Store(setup))
        setup.commit()
    threads, per_thread = 4, 10
    conflicts: list[int] = []
    failures: list[BaseException] = []

    def work() -> None:
        done = 0
        while done < per_thread:
            with Session(engine) as session:
                try:
                    advance(Store(session), pid)
                    with translate_errors(pid):
                        session.commit()
                    done += 1
                except ConcurrencyConflict:
                    session.rollback()
                    conflicts.append(1)
                except BaseException as exc:  # pragma: no cover - reported below
                    failures.append(exc)
                    return

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    with Session(engine) as session:
        store = Store(session)
        entries = store.entries(pid)
        record = store.load(pid)
    assert [e.sequence for e in entries] == list(range(1, threads * per_thread + 2))
    assert verify_entries(entries) is None
    assert record is not None
    assert (record.version, record.head_hash) == (len(entries), entries[-1].hash)


# --- idempotency ------------------------------------------------------------------------------


def test_duplicate_idempotency_key_is_translated(store: Store, session: Session, engine: Engine) -> None:
    pid = new_pathway(store)
    other = new_pathway(store)
    record = store.load(pid)
    assert record is not None
    store.append(
        pid,
        draft(pid, idempotency_key="same-key"),
        expected_version=1,
        head_hash=record.head_hash,
        phase=record.phase,
        facts_json=None,
        now=T0,
    )
    session.commit()
    for target in (pid, other):
        current = store.load(target)
        assert current is not None
        with pytest.raises(DuplicateIdempotencyKey) as raised:
            store.append(
                target,
                draft(target, idempotency_key="same-key"),
                expected_version=current.version,
                head_hash=current.head_hash,
                phase=current.phase,
                facts_json=None,
                now=T0,
            )
        assert isinstance(raised.value, ConcurrencyConflict)
        assert "same-key" not in str(raised.value)
        assert raised.value.__cause__ is None  # the driver's text (with the key) is not shown
        session.rollback()
    assert count_entries(engine, pid) == 2
    assert count_entries(engine, other) == 1
    with Session(engine) as fresh:
        record = Store(fresh).load(pid)
    assert record is not None
    assert record.version == 2


def test_duplicate_pathway_id_is_a_conflict(store: Store, session: Session) -> None:
    pid = new_pathway(store)
    session.commit()
    with pytest.raises(ConcurrencyConflict):
        new_pathway(store, pid)
    session.rollback()


def test_other_database_errors_become_storage_errors(backend: Backend, store: Store, session: Session) -> None:
    if backend.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    with pytest.raises(StorageError, match="StringDataRightTruncation") as raised:
        new_pathway(store, patient_ref="CANARY" * 20)
    assert "CANARY" not in str(raised.value)
    assert raised.value.sqlstate == "22001"
    session.rollback()


# --- append-only (T16) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET reason = 'edited' WHERE sequence = 1",
        "UPDATE entries SET sequence = sequence",
        "DELETE FROM entries WHERE sequence = 2",
        "DELETE FROM entries",
    ],
)
def test_the_database_refuses_to_change_entries(statement: str, engine: Engine) -> None:
    with Session(engine) as session:
        pid = new_pathway(Store(session))
        advance(Store(session), pid)
        session.commit()
    with engine.connect() as connection, pytest.raises(DBAPIError, match="entries are append-only"):
        connection.execute(text(statement))
    assert count_entries(engine) == 2


def test_the_database_refuses_truncate(backend: Backend, engine: Engine) -> None:
    if backend.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (DELETE without WHERE is covered above)")
    with Session(engine) as session:
        new_pathway(Store(session))
        session.commit()
    for statement in ("TRUNCATE entries", "TRUNCATE pathways CASCADE"):
        with engine.connect() as connection, pytest.raises(DBAPIError, match="entries are append-only"):
            connection.execute(text(statement))
    assert count_entries(engine) == 1


def test_pathway_rows_cannot_be_deleted_under_their_entries(engine: Engine) -> None:
    with Session(engine) as session:
        new_pathway(Store(session))
        session.commit()
    with engine.connect() as connection, pytest.raises(DBAPIError):
        connection.execute(pathways_table.delete())


# --- verification of what is stored (T15, through SQL) --------------------------------------


def _unguard(connection: object, backend: Backend) -> None:
    """Switch the append-only triggers off, as an attacker with DDL rights could."""
    execute = connection.exec_driver_sql  # type: ignore[attr-defined]
    if backend.name == "sqlite":
        execute("DROP TRIGGER entries_no_update")
        execute("DROP TRIGGER entries_no_delete")
    else:
        execute("ALTER TABLE entries DISABLE TRIGGER USER")


TAMPERING = {
    "column": ("UPDATE entries SET actor_id = 'someone-else' WHERE sequence = 3", 3),
    "time": ("UPDATE entries SET effective_at = {one_microsecond_later} WHERE sequence = 2", 2),
    "body": ("UPDATE entries SET body = {body_plus_a_byte} WHERE sequence = 4", 4),
    "hash": ("UPDATE entries SET hash = prev_hash WHERE sequence = 5", 5),
    "delete": ("DELETE FROM entries WHERE sequence = 2", 2),
    "swap": (
        "UPDATE entries SET sequence = 100 WHERE sequence = 2;"
        "UPDATE entries SET sequence = 2 WHERE sequence = 3;"
        "UPDATE entries SET sequence = 3 WHERE sequence = 100",
        2,
    ),
    "enum": ("UPDATE entries SET kind = 'not-a-kind' WHERE sequence = 3", 3),
    "truncate-tail": ("DELETE FROM entries WHERE sequence > 3", 4),
    "pathway-row": ("UPDATE pathways SET head_hash = 'x'", 5),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_verify_pathway_finds_tampering(tamper: str, backend: Backend, engine: Engine) -> None:
    with Session(engine) as session:
        store = Store(session)
        pid = new_pathway(store)
        for _ in range(4):
            advance(store, pid)
        session.commit()
        assert store.verify_pathway(pid) is None
        session.rollback()
    statements, first_bad = TAMPERING[tamper]
    if backend.name == "sqlite":
        statements = statements.format(
            one_microsecond_later="'2026-02-04 09:30:00.123457'",  # T0 is ...:00.123456
            body_plus_a_byte="CAST(body || X'20' AS BLOB)",
        )
    else:
        statements = statements.format(
            one_microsecond_later="effective_at + interval '1 microsecond'",
            body_plus_a_byte="body || '\\x20'::bytea",
        )
    with engine.begin() as connection:
        _unguard(connection, backend)
        for statement in statements.split(";"):
            connection.exec_driver_sql(statement)
    with Session(engine) as session:
        assert Store(session).verify_pathway(pid) == first_bad


def test_a_consistently_shortened_log_needs_a_checkpoint(backend: Backend, engine: Engine) -> None:
    """The documented split: tail cut and the pathway row rewound to match verifies clean."""
    with Session(engine) as session:
        store = Store(session)
        pid = new_pathway(store)
        for _ in range(4):
            advance(store, pid)
        session.commit()
        third = store.entries(pid)[2].hash
    with engine.begin() as connection:
        _unguard(connection, backend)
        connection.exec_driver_sql("DELETE FROM entries WHERE sequence > 3")
        connection.execute(pathways_table.update().values(version=3, head_hash=third))
    with Session(engine) as session:
        assert Store(session).verify_pathway(pid) is None


def test_verify_pathway_survives_a_body_of_the_wrong_type(backend: Backend, engine: Engine) -> None:
    if backend.name != "sqlite":
        pytest.skip("only SQLite lets a BLOB column hold text")
    with Session(engine) as session:
        pid = new_pathway(Store(session))
        advance(Store(session), pid)
        session.commit()
    with engine.begin() as connection:
        _unguard(connection, backend)
        connection.exec_driver_sql("UPDATE entries SET body = CAST(body AS TEXT) WHERE sequence = 2")
    with Session(engine) as session:
        assert Store(session).verify_pathway(pid) == 2
