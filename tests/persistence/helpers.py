"""Builders shared by the persistence tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import Connection, Engine, event

from persistence.schema import alembic_config, current_revision, upgrade
from persistence.store import Store
from states.entry import Draft
from states.vocabulary import EntryKind, Phase, Role

T0 = datetime(2026, 2, 4, 9, 30, 0, 123456, tzinfo=UTC)


def draft(pathway_id: str, **overrides: Any) -> Draft:
    """A valid draft: an event on a pathway in `referred` (where `new_pathway` leaves it), which
    keeps it there; tests override what they look at."""
    fields: dict[str, Any] = {
        "pathway_id": pathway_id,
        "kind": EntryKind.EVENT,
        "trigger": "record_lab",
        "from_phase": Phase.REFERRED,
        "to_phase": Phase.REFERRED,
        "effective_at": T0,
        "recorded_at": T0,
        "actor_id": "lab-1",
        "actor_role": Role.LABORATORY,
        "payload": {},
        "policy_version": "default-1",
    }
    fields.update(overrides)
    return Draft(**fields)


def new_pathway(store: Store, pathway_id: str | None = None, **overrides: Any) -> str:
    """Insert a pathway in `referred` with its `refer` entry; returns its id (not committed).

    Each pathway gets a patient of its own (one open pathway per patient)."""
    pid = pathway_id or str(uuid.uuid4())
    first = draft(
        pid,
        kind=EntryKind.TRANSITION,
        trigger="refer",
        from_phase=None,
        to_phase=Phase.REFERRED,
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        payload={"diagnosis": "multiple_myeloma"},
    )
    args: dict[str, Any] = {
        "pathway_id": pid,
        "patient_ref": f"PT-{uuid.uuid4().hex[:12]}",
        "route": "autologous",
        "donor_type": None,
        "graft_source": "pbsc",
        "hct_number": 1,
        "previous_pathway": None,
        "phase": Phase.REFERRED,
        "facts_json": "{}",
        "first": first,
        "now": T0,
    }
    args.update(overrides)
    store.insert_pathway(**args)
    return pid


def step_adds_and_drops(engine: Engine, revision: str, previous: str, present: Callable[[Engine], bool]) -> None:
    """Upgrading from `previous` to `revision` makes `present` true, and downgrading back makes it
    false again (what each schema migration promises about the thing it adds)."""
    upgrade(engine, previous)
    assert not present(engine), f"already there at {previous}"
    upgrade(engine, revision)
    assert current_revision(engine) == revision
    assert present(engine), f"missing at {revision}"
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), previous)
    assert current_revision(engine) == previous
    assert not present(engine), f"left behind by the downgrade to {previous}"


def statements_sent(connection: Connection, call: Callable[[Store], object]) -> list[tuple[str, Any]]:
    """The statements (and parameters) the store sends for `call` (a generator it returns is run out)."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        result = call(Store(connection))
        if isinstance(result, Iterator):
            list(result)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    return seen


def query_plan(connection: Connection, statement: str, parameters: Any = None, *, discourage: str) -> list[str]:
    """The database's plan for `statement`, a line per step: EXPLAIN QUERY PLAN on SQLite; on
    PostgreSQL EXPLAIN with the planner setting `discourage` (e.g. "enable_seqscan") off for the
    transaction, since with a few rows it would otherwise pick the step under test anyway."""
    if connection.dialect.name == "sqlite":
        return [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    connection.exec_driver_sql(f"SET LOCAL {discourage} = off")
    return [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)]
