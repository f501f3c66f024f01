"""Backend fixtures: every test taking `backend` runs on SQLite and, when configured, PostgreSQL.

PostgreSQL runs when HSCT_TEST_POSTGRES_URL names a server (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets a fresh schema of its own,
dropped afterwards. Every engine made here is disposed, so no connection outlives its test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session

from persistence.engine import create_engine, default_sqlite_url
from persistence.schema import upgrade
from persistence.store import Store

POSTGRES_ENV = "HSCT_TEST_POSTGRES_URL"


@dataclass
class Backend:
    """One database for one test; `engine()` makes engines on it and disposes them later."""

    name: str
    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    engines: list[Engine] = field(default_factory=list)

    def engine(self, url: URL | None = None, **kw: Any) -> Engine:
        if self.connect_args:
            kw.setdefault("connect_args", dict(self.connect_args))
        made = create_engine(url or self.url, **kw)
        self.engines.append(made)
        return made

    def dispose(self) -> None:
        for made in self.engines:
            made.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        db = Backend("sqlite", make_url(default_sqlite_url(tmp_path / "test.sqlite")))
        try:
            yield db
        finally:
            db.dispose()
        return
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    url = make_url(raw)
    schema = f"hsct_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        db = Backend("postgresql", url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            yield db
        finally:
            db.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(backend: Backend) -> Engine:
    """A migrated database."""
    made = backend.engine()
    upgrade(made)
    return made


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as opened:
        yield opened


@pytest.fixture
def store(session: Session) -> Store:
    return Store(session)
