"""docs/sql/app_role.sql: a pathway runs under the least-privilege role, and the log cannot be
changed with it (PostgreSQL only; SQLite has no roles)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from persistence.engine import create_engine
from persistence.schema import upgrade
from tests.helpers_core import QM
from tests.walks import WALKS, run_walk
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "sql" / "app_role.sql"


@pytest.fixture
def app_engine(db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """(owner engine, engine whose every connection runs SET ROLE to a fresh copy of the role)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no roles or grants")
    role = f"hsct_app_{uuid.uuid4().hex[:10]}"  # roles are cluster-wide: one per test
    owner = create_engine(db_url)
    upgrade(owner)
    raw = owner.raw_connection()  # the script as psql would send it: no parameters at all
    try:
        with raw.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(SCRIPT.read_text(encoding="utf-8").replace("hsct_app", role))
        raw.driver_connection.commit()  # type: ignore[union-attr]
    finally:
        raw.close()
    app = create_engine(db_url)

    @sa.event.listens_for(app, "connect")
    def _set_role(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()  # a SET in a rolled-back transaction would be undone

    try:
        yield owner, app
    finally:
        app.dispose()
        with owner.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')
        owner.dispose()


DENIED = [
    "UPDATE entries SET actor_id = 'x'",
    "DELETE FROM entries",
    "TRUNCATE entries",
    "ALTER TABLE entries DISABLE TRIGGER USER",
    "UPDATE pathways SET patient_ref = 'x'",
    "DELETE FROM pathways",
    "UPDATE outbox SET entry_hash = 'x'",
]


def test_a_pathway_runs_under_the_app_role_and_the_log_is_out_of_its_reach(
    app_engine: tuple[sa.Engine, sa.Engine], clock: ManualClock
) -> None:
    owner, app = app_engine
    service = PathwayService(app, clock=clock)
    pathway_id = run_walk(service, clock, WALKS["autologous"]())  # lab values: rows of fact_series
    labs = [entry for entry in service.history(pathway_id) if entry.trigger == "record_lab"]
    assert labs
    assert service.snapshot(pathway_id).facts.labs
    # A correction of a lab value rewrites that series' rows (DELETE, then INSERT).
    changes = {"anc_x10e9_per_l": 0.1}
    payload = {"sequence": labs[0].sequence, "changes": changes, "reason": "transcription error"}
    service.fire(pathway_id, "correct_entry", payload, actor=QM, at=clock.now())
    assert service.snapshot(pathway_id).facts.labs[0].anc_x10e9_per_l == 0.1
    assert verify_log(owner, deep=True).ok
    with app.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_user").scalar_one().startswith("hsct_app_")
    for statement in DENIED:
        with pytest.raises(DBAPIError) as raised, app.begin() as connection:
            connection.exec_driver_sql(statement)
        assert getattr(raised.value.orig, "sqlstate", None) in ("42501",), statement  # insufficient_privilege
