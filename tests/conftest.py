"""One suite, two backends: every test that takes `db_url` runs on SQLite and PostgreSQL.

PostgreSQL tests run when HSCT_TEST_POSTGRES_URL names a server (`.ci/run` sets it) and are
skipped with that reason otherwise; each test gets its own schema, dropped afterwards.
Every test that writes through `service` is followed by the invariants I1-I5.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import settings

from tests.invariants import assert_invariants
from workflow.clock import ManualClock
from workflow.service import PathwayService

PG_ENV = "HSCT_TEST_POSTGRES_URL"

# CI must be reproducible: the same examples every run, no wall-clock deadlines on a busy machine.
# `HYPOTHESIS_PROFILE=explore pytest` searches new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _postgres_url_with_schema(base: str, schema: str) -> str:
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hsct.sqlite"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL tests skipped")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_url_with_schema(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def service(db_url: str, clock: ManualClock) -> Iterator[PathwayService]:
    svc = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        yield svc
        assert_invariants(svc.engine)
    finally:
        svc.engine.dispose()
