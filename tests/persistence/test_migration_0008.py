"""Migration 0008 on both backends: `pathways.schedule`, the stored milestone schedule.

The service writes it with the facts; a row without one (written before 0008) is read from its
facts, giving the same worklist, until `hsct db upgrade` stores it; a stored text that is not
a schedule is an IntegrityError naming the pathway, not a wrong worklist.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from persistence.store import Store
from states.errors import IntegrityError
from states.milestones import NO_SCHEDULE, RULES, schedule
from states.vocabulary import EntryKind, Phase
from tests.helpers_core import reach
from tests.persistence.conftest import Backend
from tests.persistence.helpers import T0, draft, new_pathway, step_adds_and_drops
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService
from workflow.upgrade import rederive_facts


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("pathways")}


def _schedules(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(text("SELECT id, schedule FROM pathways"))}


def test_0008_adds_the_column_and_its_downgrade_drops_it(backend: Backend) -> None:
    step_adds_and_drops(backend.engine(), "0008", "0007", lambda engine: "schedule" in _columns(engine))


@pytest.fixture
def several(service: PathwayService, clock: ManualClock) -> list[str]:
    """Pathways with something planned in every part of the pathway, and one with nothing."""
    phases = (Phase.REFERRED, Phase.CONDITIONING, Phase.AWAITING_ENGRAFTMENT, Phase.FOLLOW_UP, Phase.DAY100_COMPLETE)
    return [reach(service, clock, "autologous", phase) for phase in phases]


def test_every_write_stores_the_schedule_its_facts_give(
    service: PathwayService, clock: ManualClock, several: list[str]
) -> None:
    stored = _schedules(service.engine)
    for pathway_id in several:
        facts = service.snapshot(pathway_id).facts
        assert stored[pathway_id] == schedule(facts, service.policy).dumps()
    assert stored[several[0]] == NO_SCHEDULE  # referred: nothing planned yet
    assert all(stored[p] != NO_SCHEDULE for p in several[1:])


def test_rows_without_a_schedule_read_their_facts_until_the_upgrade_stores_it(
    service: PathwayService, clock: ManualClock, several: list[str]
) -> None:
    stored = _schedules(service.engine)
    days = [clock.now() + timedelta(days=n) for n in (0, 20, 45, 120, 400)]
    worklists = [service.all_milestones(at=at) for at in days]
    work = service.open_work(at=days[2])
    assert any(worklists)
    with service.engine.begin() as connection:  # as a database from before migration 0008 holds them
        connection.execute(text("UPDATE pathways SET schedule = NULL"))
    assert [service.all_milestones(at=at) for at in days] == worklists
    assert service.open_work(at=days[2]) == work
    assert rederive_facts(service.engine, clock=clock).facts_changed == 0
    assert _schedules(service.engine) == stored
    assert [service.all_milestones(at=at) for at in days] == worklists


def test_plans_of_earlier_rules_are_read_from_the_facts_until_the_upgrade_replans(
    service: PathwayService, clock: ManualClock, several: list[str]
) -> None:
    """A release that changes a milestone rule increases RULES: the plans stored before it,
    even "nothing planned", are not trusted (nor reported by verify) until replanned."""
    stored = _schedules(service.engine)
    at = clock.now() + timedelta(days=45)
    worklist = service.all_milestones(at=at)
    with service.engine.begin() as connection:
        connection.execute(text("UPDATE pathways SET schedule = :s"), {"s": f"[{RULES - 1}]"})
    assert service.all_milestones(at=at) == worklist
    assert verify_log(service.engine).ok
    rederive_facts(service.engine, clock=clock)
    assert _schedules(service.engine) == stored


def test_new_facts_without_a_schedule_store_none_and_a_refusal_keeps_it(store: Store, session: Session) -> None:
    """The store writes the schedule in the facts' own statement: new facts with none (a host
    writing through the store) leave NULL, never the old facts' plan; no new facts keep it."""
    pathway_id = new_pathway(store, schedule='["UTC"]')
    head = store.load(pathway_id, checked=False)
    assert head is not None
    refusal = draft(pathway_id, kind=EntryKind.REFUSAL, reasons=("wrong_phase",))
    store.append(pathway_id, refusal, expected_version=1, head_hash=head.head_hash, phase=Phase.REFERRED,
                 facts_json=None, now=T0)  # fmt: skip
    assert _schedule_of(session, pathway_id) == '["UTC"]'
    head = store.load(pathway_id, checked=False)
    assert head is not None
    store.append(pathway_id, draft(pathway_id), expected_version=2, head_hash=head.head_hash, phase=Phase.REFERRED,
                 facts_json='{"x":1}', now=T0)  # fmt: skip
    assert _schedule_of(session, pathway_id) is None


def _schedule_of(session: Session, pathway_id: str) -> str | None:
    found = session.execute(text("SELECT schedule FROM pathways WHERE id = :id"), {"id": pathway_id})
    value: str | None = found.scalar_one()
    return value


def test_a_stored_text_that_is_not_a_schedule_is_an_integrity_error(
    service: PathwayService, clock: ManualClock, several: list[str]
) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            text("UPDATE pathways SET schedule = :s WHERE id = :id"), {"s": f'[{RULES},"UTC",[1]]', "id": several[1]}
        )
    with pytest.raises(IntegrityError, match=several[1]):
        service.all_milestones(at=clock.now())
    with service.engine.begin() as connection:  # put back for the invariants check after the test
        connection.execute(text("UPDATE pathways SET schedule = NULL WHERE id = :id"), {"id": several[1]})
