"""The URLs hosting services hand out work as they are: `postgres://` and `postgresql://` both
mean PostgreSQL through psycopg 3; the library, the CLI and a scenario run accept them."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from persistence.engine import create_engine
from tests.cli.conftest import invoke
from tests.conftest import PG_ENV
from workflow.service import PathwayService


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_every_postgres_spelling_means_psycopg_3(scheme: str) -> None:
    engine = create_engine(f"{scheme}://hsct:secret@db.example:5433/hsct?sslmode=require")
    try:
        url = engine.url
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port, url.database, url.query["sslmode"]) == ("db.example", 5433, "hsct", "require")
        assert engine.hide_parameters is True
    finally:
        engine.dispose()


def test_other_databases_are_still_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        create_engine("mysql://hsct@db.example/hsct")


def _bare(url: str, scheme: str) -> str:
    """`url` (any PostgreSQL spelling) written with the bare `scheme`, as a hosting service gives it."""
    return make_url(url).set(drivername=scheme).render_as_string(hide_password=False)


@pytest.fixture
def postgres_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("needs the PostgreSQL server named by " + PG_ENV)
    return db_url


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_bare_url_reaches_the_server(postgres_url: str, scheme: str) -> None:
    bare = _bare(postgres_url, scheme)
    assert bare.startswith(f"{scheme}://")
    service = PathwayService(bare, auto_upgrade=True)
    try:
        assert service.engine.url.drivername == "postgresql+psycopg"
        assert service.pathway_ids() == []
    finally:
        service.engine.dispose()
    result = invoke("db", "current", "--db", bare)
    assert result.exit_code == 0, result.output
