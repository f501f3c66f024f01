"""The transactional outbox: a row with every committed entry, delivered once, in order.

The host handler used throughout (`harness.record_delivery`) writes into the host's own
`received` table through the dispatcher's connection, so what it received is exactly what
committed with the delivery marks.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from persistence.engine import create_engine
from persistence.models import outbox_table
from persistence.schema import alembic_config, current_revision, head_revision
from states.errors import InvalidCommand, Refused, SchemaOutOfDate
from states.vocabulary import Phase
from tests.concurrency.harness import (
    COORD,
    HOLD,
    received_table,
    record_delivery,
    referral,
)
from tests.invariants import outbox_mismatches
from tests.walks import PHYS, WALKS, run_walk
from workflow.clock import ManualClock
from workflow.outbox import Dispatcher, DispatchReport, Message
from workflow.service import PathwayService

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def host(service: PathwayService) -> PathwayService:
    """The service, with the host's `received` table next to the library's."""
    received_table.create(service.engine)
    return service


def _toggle(service: PathwayService, pathway_id: str, times: int) -> None:
    for n in range(times):
        command, payload = ("hold", HOLD) if n % 2 == 0 else ("resume", {})
        service.fire(pathway_id, command, payload, actor=COORD, at=T0)


def _received(service: PathwayService) -> list[tuple[int, str, int]]:
    """(outbox id, pathway, sequence) in the order the handler got them."""
    with service.engine.connect() as connection:
        rows = connection.execute(
            sa.select(received_table.c.outbox_id, received_table.c.pathway_id, received_table.c.sequence).order_by(
                received_table.c.id
            )
        ).all()
    return [(o, p, s) for o, p, s in rows]


def _outbox(service: PathwayService) -> list[dict[str, object]]:
    with service.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_table).order_by(outbox_table.c.id)).mappings().all()
    return [dict(row) for row in rows]


# --- writing: one row per committed entry, in the entry's transaction -----------------------


def test_every_committed_entry_has_its_outbox_row(service: PathwayService) -> None:
    pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
    service.fire(pathway_id, "hold", HOLD, actor=COORD, at=T0)
    with pytest.raises(Refused):
        service.fire(pathway_id, "hold", HOLD, actor=COORD, at=T0)
    with pytest.raises(InvalidCommand):
        service.fire(pathway_id, "hold", {"reason": 5}, actor=COORD, at=T0)
    rows = _outbox(service)
    assert [(r["sequence"], r["topic"]) for r in rows] == [
        (1, "transition.refer"),
        (2, "transition.hold"),
        (3, "refusal.hold"),  # refusals too: a refused safety check is news to a coordinator
    ]
    assert all(r["delivered_at"] is None and r["attempts"] == 0 and r["last_error"] is None for r in rows)
    assert all(r["created_at"] == T0 for r in rows)  # the entry's recorded time (the clock)
    assert outbox_mismatches(service.engine) == []


def test_a_rolled_back_command_leaves_no_outbox_row(service: PathwayService) -> None:
    pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
    with Session(service.engine) as session:
        service.fire(pathway_id, "hold", HOLD, actor=COORD, at=T0, session=session)
        assert len(_outbox_in(session)) == 2  # visible inside the host's transaction ...
        session.rollback()
    assert [r["sequence"] for r in _outbox(service)] == [1]  # ... and gone with it


def _outbox_in(session: Session) -> list[object]:
    return list(session.execute(sa.select(outbox_table.c.id)).scalars())


def test_events_and_corrections_are_announced(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk)
    lab = next(e for e in service.history(pathway_id) if e.trigger == "record_lab")
    service.fire(
        pathway_id,
        "correct_entry",
        {"sequence": lab.sequence, "changes": {"anc_x10e9_per_l": 0.1}, "reason": "transcription"},
        actor=PHYS,
        at=clock.now(),
    )
    topics = {str(r["topic"]) for r in _outbox(service)}
    assert {"transition.refer", "transition.infuse", "event.record_lab", "correction.correct_entry"} <= topics
    assert outbox_mismatches(service.engine) == []


# --- delivering --------------------------------------------------------------------------------


def test_each_pathway_is_delivered_in_sequence_order_exactly_once(host: PathwayService) -> None:
    first = host.refer(referral(), actor=COORD, at=T0).pathway_id
    second = host.refer(referral(), actor=COORD, at=T0).pathway_id
    _toggle(host, first, 4)
    _toggle(host, second, 2)
    dispatcher = Dispatcher(host, batch=3)
    assert dispatcher.backlog() == 8
    first_round = dispatcher.run_once(record_delivery)
    assert first_round == DispatchReport(delivered=3)
    total = first_round + dispatcher.drain(record_delivery)
    assert total == DispatchReport(delivered=8)
    assert dispatcher.backlog() == 0
    assert dispatcher.drain(record_delivery) == DispatchReport()  # nothing is delivered twice
    got = _received(host)
    assert sorted(o for o, _, _ in got) == sorted(int(str(r["id"])) for r in _outbox(host))
    for pathway_id, count in ((first, 5), (second, 3)):
        assert [s for _, p, s in got if p == pathway_id] == list(range(1, count + 1))
    assert all(r["attempts"] == 1 and r["delivered_at"] == T0 for r in _outbox(host))


def test_a_failing_handler_holds_back_its_pathway_only(host: PathwayService) -> None:
    stuck = host.refer(referral(), actor=COORD, at=T0).pathway_id
    other = host.refer(referral(), actor=COORD, at=T0).pathway_id
    _toggle(host, stuck, 2)
    _toggle(host, other, 2)
    broken = {stuck}

    def handler(message: Message, connection: Connection) -> None:
        record_delivery(message, connection)  # written, then undone by the raise
        if message.pathway_id in broken and message.sequence == 2:
            raise RuntimeError("host system down")

    dispatcher = Dispatcher(host)
    # Round 1 delivers stuck#1 and other#1-3 and fails stuck#2, skipping stuck#3; round 2 tries
    # stuck#2 again, delivers nothing, and ends the drain.
    assert dispatcher.drain(handler) == DispatchReport(delivered=4, failed=2)
    assert [(p, s) for _, p, s in _received(host)] == [(stuck, 1), (other, 1), (other, 2), (other, 3)]
    failed = next(r for r in _outbox(host) if r["pathway_id"] == stuck and r["sequence"] == 2)
    assert (failed["attempts"], failed["last_error"], failed["delivered_at"]) == (2, "RuntimeError", None)
    assert dispatcher.backlog() == 2

    broken.clear()  # the host system is back
    assert dispatcher.drain(handler) == DispatchReport(delivered=2)
    assert [s for _, p, s in _received(host) if p == stuck] == [1, 2, 3]
    failed = next(r for r in _outbox(host) if r["pathway_id"] == stuck and r["sequence"] == 2)
    assert failed["attempts"] == 3  # two failed calls, one that delivered


def test_handlers_by_topic(host: PathwayService) -> None:
    pathway_id = host.refer(referral(), actor=COORD, at=T0).pathway_id
    host.fire(pathway_id, "hold", HOLD, actor=COORD, at=T0)
    with pytest.raises(Refused):
        host.fire(pathway_id, "hold", HOLD, actor=COORD, at=T0)
    seen: list[tuple[str, str]] = []
    dispatcher = Dispatcher(host, handlers={"transition.*": lambda m, c: seen.append(("transitions", m.topic))})
    dispatcher.register("transition.hold", lambda m, c: seen.append(("holds", m.topic)))
    assert dispatcher.drain() == DispatchReport(delivered=2, unhandled=1)  # the refusal has no handler
    assert seen == [
        ("transitions", "transition.refer"),
        ("transitions", "transition.hold"),
        ("holds", "transition.hold"),
    ]


def test_pull_with_pending_and_ack(service: PathwayService) -> None:
    pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
    _toggle(service, pathway_id, 2)
    dispatcher = Dispatcher(service)
    pending = dispatcher.pending()
    assert [(m.pathway_id, m.sequence, m.topic) for m in pending] == [
        (pathway_id, 1, "transition.refer"),
        (pathway_id, 2, "transition.hold"),
        (pathway_id, 3, "transition.resume"),
    ]
    assert [m.entry.hash for m in pending] == [m.entry_hash for m in pending]
    assert [m.entry for m in pending] == service.history(pathway_id)
    assert dispatcher.pending() == pending  # reading takes nothing
    assert dispatcher.ack([pending[0].id]) == 1
    assert dispatcher.ack([pending[0].id]) == 0  # an ack is idempotent
    assert [m.sequence for m in dispatcher.pending(limit=1)] == [2]
    assert dispatcher.ack(m.id for m in pending) == 2
    assert (dispatcher.pending(), dispatcher.backlog()) == ([], 0)


def test_a_message_repr_carries_no_clinical_data(service: PathwayService) -> None:
    pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
    service.fire(pathway_id, "hold", {"reason": "CANARY-REASON"}, actor=COORD, at=T0)
    messages = Dispatcher(service).pending()
    assert "CANARY-REASON" in str(messages[-1].entry.payload)
    assert all("CANARY" not in repr(m) and "PT-" not in repr(m) for m in messages)


def test_prune_deletes_only_what_was_delivered_before(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
    dispatcher = Dispatcher(service)
    dispatcher.drain(lambda m, c: None)
    _toggle(service, pathway_id, 1)  # pending
    assert dispatcher.prune(T0) == 0  # delivered at T0, not before
    assert dispatcher.prune(T0 + timedelta(seconds=1)) == 1
    assert [r["sequence"] for r in _outbox(service)] == [2]


def test_concurrent_dispatchers_deliver_each_message_once_in_order(host: PathwayService) -> None:
    pathways = [host.refer(referral(), actor=COORD, at=T0).pathway_id for _ in range(4)]
    for pathway_id in pathways:
        _toggle(host, pathway_id, 5)
    dispatchers = [Dispatcher(host, batch=3) for _ in range(3)]
    threads = [threading.Thread(target=d.drain, args=(record_delivery,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    got = _received(host)
    assert len(got) == len({o for o, _, _ in got}) == 4 * 6
    for pathway_id in pathways:
        assert [s for _, p, s in got if p == pathway_id] == list(range(1, 7))


# --- schema --------------------------------------------------------------------------------


def test_upgrading_a_live_database_marks_its_history_delivered(db_url: str) -> None:
    clock = ManualClock(T0)
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = service.refer(referral(), actor=COORD, at=T0).pathway_id
        _toggle(service, pathway_id, 3)
        with service.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        assert current_revision(service.engine) == "0001"
        with service.engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        assert current_revision(service.engine) == head_revision()
        rows = _outbox(service)
        assert [(r["sequence"], r["delivered_at"], r["attempts"]) for r in rows] == [(n, T0, 0) for n in range(1, 5)]
        assert outbox_mismatches(service.engine) == []
        assert Dispatcher(service).backlog() == 0
    finally:
        service.engine.dispose()


def test_a_dispatcher_refuses_a_database_not_at_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/empty.sqlite")
    try:
        with pytest.raises(SchemaOutOfDate):
            Dispatcher(engine)
    finally:
        engine.dispose()


def test_a_handler_can_fire_commands_in_the_delivering_transaction(service: PathwayService) -> None:
    """A reaction to a message (here: hold the linked pathway when one is held) commits with
    the delivery mark, or not at all, and is announced in turn."""
    held, linked = (service.refer(referral(), actor=COORD, at=T0).pathway_id for _ in range(2))
    service.fire(held, "hold", HOLD, actor=COORD, at=T0)

    def react(message: Message, connection: Connection) -> None:
        with Session(bind=connection) as session:
            service.fire(linked, "hold", HOLD, actor=COORD, at=T0, session=session)
            session.commit()  # releases the session's SAVEPOINT; the round commits both

    dispatcher = Dispatcher(service, handlers={"transition.hold": react})
    assert dispatcher.run_once(limit=10) == DispatchReport(delivered=1, unhandled=2)
    assert service.snapshot(linked).phase is Phase.ON_HOLD
    assert [m.topic for m in dispatcher.pending()] == ["transition.hold"]  # the reaction's own row
    assert outbox_mismatches(service.engine) == []
