"""A command on a pathway this process wrote last judges the row that write left, without
loading it (SQLite), once one probe has found the row still that one: whatever a load would
have refused or seen newer is refused or seen newer all the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from persistence.models import entries_table
from states.entry import Entry
from states.errors import IntegrityError, Refused
from states.facts import PathwayFacts
from states.vocabulary import Phase
from tests.audit.conftest import privileged
from tests.helpers_core import fire, reach, refused, stored_record
from tests.walks import PHYS, WALKS, played
from workflow.audit.verify import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

EVENT = {"type": "mucositis", "grade": 2}
_LOAD = "FROM pathways LEFT OUTER JOIN entries"  # Store.load's query, and only it
_PROBE = "AND pathways.facts = ?"  # Store.holds' query, and only it


@pytest.fixture
def sqlite_service(tmp_path: Any, clock: ManualClock) -> Iterator[PathwayService]:
    service = PathwayService(f"sqlite:///{tmp_path}/held.sqlite", clock=clock, auto_upgrade=True)
    try:
        yield service
    finally:
        service.engine.dispose()


@pytest.fixture
def statements(sqlite_service: PathwayService) -> Iterator[list[str]]:
    """Every statement the service's engine runs, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(sqlite_service.engine, "before_cursor_execute", record)
    yield seen
    event.remove(sqlite_service.engine, "before_cursor_execute", record)


def _entries(service: PathwayService, pathway_id: str) -> int:
    counted = select(func.count()).select_from(entries_table).where(entries_table.c.pathway_id == pathway_id)
    with service.engine.connect() as connection:
        return int(connection.execute(counted).scalar_one())


def _adverse_events(service: PathwayService, pathway_id: str) -> int:
    return service.snapshot(pathway_id).facts.adverse_events


def test_along_a_walk_each_command_judges_the_held_row_which_is_what_a_load_reads(
    sqlite_service: PathwayService, clock: ManualClock, statements: list[str]
) -> None:
    """After the first command no command loads the row (each probes it), and after each one
    the record held is equal, field by field, to what a load reads; the log verifies."""
    judged: set[str] = set()  # pathways whose row the service has loaded once
    for _, command, result in played(sqlite_service, clock, WALKS["autologous"]()):
        loads = [s for s in statements if _LOAD in s]
        if command == "refer":  # a referral keeps its facts, not its row: the first command loads
            assert sqlite_service._facts.held(result.pathway_id) is None
        elif result.pathway_id in judged:
            assert not loads, command
            assert len([s for s in statements if _PROBE in s]) == 1, command
        else:
            assert loads, command
            judged.add(result.pathway_id)
        if command != "refer":
            held = sqlite_service._facts.held(result.pathway_id)
            assert held == stored_record(sqlite_service, result.pathway_id), command
        statements.clear()
    assert len(judged) == 1
    assert verify_log(sqlite_service).ok


def test_a_refusal_moves_the_held_row_on(
    sqlite_service: PathwayService, clock: ManualClock, statements: list[str]
) -> None:
    pathway_id = reach(sqlite_service, clock, "autologous", Phase.EVALUATION)
    with pytest.raises(Refused):  # no collection yet
        sqlite_service.fire(pathway_id, "complete_collection", {}, actor=PHYS, at=clock.now())
    assert sqlite_service._facts.held(pathway_id) == stored_record(sqlite_service, pathway_id)
    statements.clear()
    sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    assert not [s for s in statements if _LOAD in s]


def test_another_writers_command_is_seen_before_judging(
    sqlite_service: PathwayService, clock: ManualClock, statements: list[str]
) -> None:
    """A second service (another worker) writes between two commands of the first: the first's
    held row is stale, the probe finds no such row, and the command is judged on a load of the
    newer row instead, so nothing of the other writer's is lost."""
    pathway_id = reach(sqlite_service, clock, "autologous", Phase.EVALUATION)
    sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    other = PathwayService(sqlite_service.engine.url.render_as_string(hide_password=False), clock=clock)
    try:
        other.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    finally:
        other.engine.dispose()
    statements.clear()
    result = sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    assert [s for s in statements if _LOAD in s]  # judged again on a load
    assert result.entry.sequence == _entries(sqlite_service, pathway_id)
    assert _adverse_events(sqlite_service, pathway_id) == 3
    assert sqlite_service._facts.held(pathway_id) == stored_record(sqlite_service, pathway_id)
    assert verify_log(sqlite_service).ok


def test_a_write_rolled_back_after_the_row_was_held_is_not_built_on(
    sqlite_service: PathwayService, clock: ManualClock
) -> None:
    """A listener fails inside the transaction after the entry was appended: the write is
    rolled back although the service already holds the row it would have left, and the next
    command follows the stored head, not the one that never committed."""
    pathway_id = reach(sqlite_service, clock, "autologous", Phase.EVALUATION)
    before = _entries(sqlite_service, pathway_id)

    def fail(entry: Entry, _facts: PathwayFacts) -> None:
        if entry.trigger == "record_adverse_event":
            raise RuntimeError("host listener failed")

    sqlite_service.listeners.append(fail)
    with pytest.raises(RuntimeError):
        sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    sqlite_service.listeners.remove(fail)
    assert _entries(sqlite_service, pathway_id) == before
    result = sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    assert result.entry.sequence == before + 1
    assert _adverse_events(sqlite_service, pathway_id) == 1
    assert verify_log(sqlite_service).ok


_HEAD = " WHERE pathway_id = ? AND sequence = ?"


@pytest.mark.parametrize(
    ("statement", "value"),
    [
        ("UPDATE pathways SET facts = facts || ? WHERE id = ? AND version = ?", " "),  # still the same JSON
        ("UPDATE entries SET facts_digest = ?" + _HEAD, "0" * 64),
        ("UPDATE entries SET to_phase = ?" + _HEAD, Phase.FOLLOW_UP.value),
    ],
    ids=["facts column", "head entry's digest", "head entry's phase"],
)
def test_an_edit_under_a_held_row_is_refused_as_a_load_refuses_it(
    sqlite_service: PathwayService, clock: ManualClock, statement: str, value: str
) -> None:
    pathway_id = reach(sqlite_service, clock, "autologous", Phase.EVALUATION)
    sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    held = sqlite_service._facts.held(pathway_id)
    assert held is not None
    with privileged(sqlite_service.engine) as sql:
        sql(statement, value, pathway_id, held.version)
        [(changed,)] = sql("SELECT changes()")
        assert changed == 1
    before = _entries(sqlite_service, pathway_id)
    with pytest.raises(IntegrityError):
        sqlite_service.fire(pathway_id, "record_adverse_event", EVENT, actor=PHYS, at=clock.now())
    assert _entries(sqlite_service, pathway_id) == before


def test_a_linked_opening_keeps_no_row_and_the_next_command_loads_it(
    sqlite_service: PathwayService, clock: ManualClock, statements: list[str]
) -> None:
    """`reinstate` sets the old row's successor before its entry: the service keeps no record of
    that row, so the next command on it loads the row (with its successor), and holds it again."""
    old = reach(sqlite_service, clock, "matched_unrelated", Phase.READY_FOR_CONDITIONING)
    at = clock.now() + timedelta(hours=1)
    fire(sqlite_service, clock, old, at, PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    fire(sqlite_service, clock, old, at + timedelta(hours=1), PHYS, "withdraw", {"reason": "patient withdrew consent"})
    fire(sqlite_service, clock, old, at + timedelta(days=1), PHYS, "reinstate", {"reason": "patient asks to go ahead"})
    assert sqlite_service._facts.held(old) is None
    statements.clear()
    assert refused(sqlite_service, clock, old, at + timedelta(days=1), PHYS, "reinstate", {"reason": "twice"})
    assert [s for s in statements if _LOAD in s]
    held = sqlite_service._facts.held(old)
    assert held is not None
    assert held.successor is not None
    assert held == stored_record(sqlite_service, old)


def test_a_write_the_host_rolled_back_is_not_judged_on(sqlite_service: PathwayService, clock: ManualClock) -> None:
    """Found by the model's long run: a `hold` in the host's transaction left the service holding
    the row as `on_hold`; the host rolled back; a correction then read the stored log (the
    referral only) against the held facts. The probe finds the held row gone, and the
    correction is judged on the stored pathway."""
    pathway_id = sqlite_service.refer(WALKS["autologous"]().refer, actor=PHYS, at=clock.now()).pathway_id
    with Session(sqlite_service.engine) as session, session.begin():
        sqlite_service.fire(pathway_id, "hold", {"reason": "pneumonia"}, actor=PHYS, at=clock.now(), session=session)
        session.rollback()
    result = sqlite_service.fire(
        pathway_id, "correct_entry", {"sequence": 1, "changes": {"abo_samples": []}, "reason": "entered twice"},
        actor=PHYS, at=clock.now(),
    )  # fmt: skip
    assert (result.phase, result.entry.sequence) == (Phase.REFERRED, 2)
    assert sqlite_service._facts.held(pathway_id) == stored_record(sqlite_service, pathway_id)
    assert verify_log(sqlite_service).ok
