"""Migration 0003 and the store pieces it carries, on both backends.

- a database written by the previous release (form-1 entries, revision 0002) upgrades, keeps
  verifying, is loaded by replaying the log once, and continues in form 2;
- the append-only guard covers the new entry columns;
- one open pathway per patient: the partial unique index, `open_pathways_of`,
  `set_successor`, PatientHasOpenPathway; an upgrade that would break the rule is refused with
  the pathway ids and nothing changed; existing subsequent transplants get their successor.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from persistence.chain import BODY_FIELDS_FORM_1, body_from_fields, canonical_json, facts_digest, hash_body
from persistence.schema import current_revision, head_revision, upgrade
from persistence.store import Store, translate_errors
from persistence.types import bind_value
from states.entry import GENESIS_HASH
from states.errors import IntegrityError, PatientHasOpenPathway, UnknownPathway
from states.vocabulary import Phase
from tests.persistence.conftest import Backend
from tests.persistence.helpers import T0, new_pathway
from tests.walks import PHYS, WALKS, run_walk
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

ENTRY_COLUMNS_0002 = (*BODY_FIELDS_FORM_1, "sequence", "body", "prev_hash", "hash")


def _rows(engine: Engine, statement: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(statement), params))


def _form_1_database(backend: Backend, clock: ManualClock, tmp_path: Path) -> tuple[Engine, str, int]:
    """A database at revision 0002 holding a pathway as the previous release wrote it: a walk
    played by the service (on a scratch SQLite file), its entries sealed again in form 1 (no
    digest, origin or release), and the pathway row with the facts the log folds to."""
    source = PathwayService(f"sqlite:///{tmp_path}/source.sqlite", clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(source, clock, WALKS["autologous"](), until=Phase.EVALUATION)
        log = source.history(pathway_id)
        record = _rows(source.engine, "SELECT * FROM pathways WHERE id = :id", id=pathway_id)[0]._asdict()
    finally:
        source.engine.dispose()
    for later in ("successor", "schedule"):  # columns of migrations 0003 and 0008
        del record[later]
    for name in ("created_at", "updated_at"):
        record[name] = bind_value(T0, backend.name)
    engine = backend.engine()
    upgrade(engine, "0002")
    prev = GENESIS_HASH
    with engine.begin() as connection:
        for entry in log:
            values = entry.model_dump(mode="json", include=set(BODY_FIELDS_FORM_1))
            body = body_from_fields(entry.__dict__, entry.sequence, prev, form=1)
            row = {**values, "payload": canonical_json(values["payload"]).decode(),
                   "reasons": canonical_json(values["reasons"]).decode(), "sequence": entry.sequence, "body": body,
                   "prev_hash": prev, "hash": hash_body(body),
                   "effective_at": bind_value(entry.effective_at, backend.name),
                   "recorded_at": bind_value(entry.recorded_at, backend.name)}
            if entry.sequence == 1:
                connection.execute(text(f"INSERT INTO pathways ({', '.join(record)}) VALUES "
                                        f"({', '.join(':' + name for name in record)})"),
                                   {**record, "version": len(log), "head_hash": "0" * 64})
            connection.execute(text(f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS_0002)}) VALUES "
                                    f"({', '.join(':' + name for name in ENTRY_COLUMNS_0002)})"), row)
            prev = row["hash"]
        connection.execute(text("UPDATE pathways SET head_hash = :h WHERE id = :id"), {"h": prev, "id": pathway_id})
    return engine, pathway_id, len(log)


def test_a_form_1_database_upgrades_verifies_and_continues_in_form_2(
    backend: Backend, clock: ManualClock, tmp_path: Path
) -> None:
    engine, pathway_id, n = _form_1_database(backend, clock, tmp_path)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _rows(engine, "SELECT DISTINCT form FROM entries") == [(1,)]
    assert _rows(engine, "SELECT COUNT(*) FROM entries WHERE facts_digest IS NOT NULL OR origin IS NOT NULL") == [(0,)]
    assert verify_log(engine, deep=True).ok

    service = PathwayService(engine, clock=clock)
    result = service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS,
                          at=clock.now())  # the load replays the form-1 log once and finds it consistent
    assert (result.entry.sequence, result.entry.form, result.entry.origin) == (n + 1, 2, "live")
    assert result.entry.facts_digest == facts_digest(
        _rows(engine, "SELECT facts FROM pathways WHERE id = :id", id=pathway_id)[0][0])
    assert verify_log(engine, deep=True).ok


def test_a_form_1_head_is_checked_by_replaying_the_log(backend: Backend, clock: ManualClock, tmp_path: Path) -> None:
    engine, pathway_id, n = _form_1_database(backend, clock, tmp_path)
    upgrade(engine)
    [(facts,)] = _rows(engine, "SELECT facts FROM pathways WHERE id = :id", id=pathway_id)
    with engine.begin() as connection:
        connection.execute(text("UPDATE pathways SET facts = :f WHERE id = :id"),
                           {"f": facts.replace('"hct_number":1', '"hct_number":2'), "id": pathway_id})
    service = PathwayService(engine, clock=clock)
    with pytest.raises(IntegrityError):
        service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS,
                     at=clock.now())
    assert _rows(engine, "SELECT COUNT(*) FROM entries") == [(n,)]
    assert verify_log(engine).ok  # a form-1 head commits to nothing: only --deep can tell
    deep = verify_log(engine, deep=True)
    assert deep.first is not None
    assert (deep.first.sequence, deep.first.check) == (n, "pathway")


@pytest.mark.parametrize("column", ["facts_digest", "origin", "release", "form"])
def test_the_append_only_guard_covers_the_new_columns(engine: Engine, store: Store, session: Session,
                                                      column: str) -> None:
    new_pathway(store)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(f"UPDATE entries SET {column} = NULL"))


# --- one open pathway per patient -------------------------------------------------------------


def test_a_second_open_pathway_of_a_patient_is_refused(store: Store, session: Session) -> None:
    first = new_pathway(store, patient_ref="PT-SAME")
    session.commit()
    assert store.open_pathways_of("PT-SAME") == [first]
    with pytest.raises(PatientHasOpenPathway) as raised:
        new_pathway(store, patient_ref="PT-SAME")
    assert "PT-SAME" not in str(raised.value)
    session.rollback()
    assert store.open_pathways_of("PT-SAME") == [first]
    assert store.open_pathways_of("PT-NOBODY") == []


def test_a_closed_pathway_or_one_with_a_successor_leaves_room(store: Store, session: Session) -> None:
    first = new_pathway(store, patient_ref="PT-SAME")
    session.commit()
    successor = str(uuid.uuid4())
    store.set_successor(first, successor)  # before the successor exists: checked at commit
    new_pathway(store, successor, patient_ref="PT-SAME", previous_pathway=first)
    session.commit()
    assert store.open_pathways_of("PT-SAME") == [successor]
    assert store.load(first).successor == successor  # type: ignore[union-attr]
    session.execute(text("UPDATE pathways SET phase = 'withdrawn' WHERE id = :id"), {"id": successor})
    third = new_pathway(store, patient_ref="PT-SAME")
    session.commit()
    assert store.open_pathways_of("PT-SAME") == [third]


def test_set_successor_names_a_missing_pathway(store: Store, session: Session) -> None:
    first = new_pathway(store)
    session.commit()
    with pytest.raises(UnknownPathway):
        store.set_successor(str(uuid.uuid4()), first)
    session.rollback()
    store.set_successor(first, "no-such-pathway")
    with pytest.raises(UnknownPathway), translate_errors():  # as the service's unit of work translates
        session.commit()  # the deferred foreign key, checked at commit
    session.rollback()


def _old_pathway(connection: Any, patient: str, phase: str, previous: str | None = None) -> str:
    pid = str(uuid.uuid4())
    connection.execute(
        text("INSERT INTO pathways (id, patient_ref, route, donor_type, graft_source, hct_number, previous_pathway, "
             "phase, version, head_hash, facts, created_at, updated_at) VALUES (:id, :p, 'autologous', NULL, 'pbsc', "
             "1, :prev, :phase, 1, :h, '{}', :t, :t)"),
        {"id": pid, "p": patient, "prev": previous, "phase": phase, "h": "0" * 64,
         "t": bind_value(T0, connection.dialect.name)},
    )
    return pid


def test_upgrade_refuses_two_open_pathways_of_a_patient_and_changes_nothing(backend: Backend) -> None:
    engine = backend.engine()
    upgrade(engine, "0002")
    with engine.begin() as connection:
        a = _old_pathway(connection, "PT-TWICE", "evaluation")
        b = _old_pathway(connection, "PT-TWICE", "collection")
        _old_pathway(connection, "PT-TWICE", "withdrawn")
        _old_pathway(connection, "PT-ONCE", "evaluation")
    with pytest.raises(Exception, match="revision 0003 needs at most one open pathway per patient") as raised:
        upgrade(engine)
    message = str(raised.value)
    assert a in message and b in message  # noqa: PT018
    assert "PT-TWICE" not in message
    assert current_revision(engine) == "0002"
    with engine.connect() as connection:
        assert "successor" not in {c["name"] for c in inspect(connection).get_columns("pathways")}


def test_upgrade_links_existing_subsequent_transplants(backend: Backend) -> None:
    engine = backend.engine()
    upgrade(engine, "0002")
    with engine.begin() as connection:
        first = _old_pathway(connection, "PT-AGAIN", "follow_up")
        second = _old_pathway(connection, "PT-AGAIN", "referred", previous=first)
    upgrade(engine)
    assert _rows(engine, "SELECT id, successor FROM pathways ORDER BY successor") in (
        [(second, None), (first, second)], [(first, second), (second, None)])
