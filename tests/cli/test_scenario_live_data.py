"""Scenario runs never touch live data (outside tester, item 10): `hsct scenario run` ignores
HSCT_DB, refuses a database holding live entries before writing anything, and marks every
entry it writes with the origin "scenario:<file name>". On both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from persistence.origins import has_live_entries
from tests.cli.conftest import WIDE, invoke
from tests.walks import PHYS
from workflow.cli import app
from workflow.clock import ManualClock
from workflow.scenario import run_scenario
from workflow.scenario.runner import LiveDatabaseRefused, scenario_origin
from workflow.service import PathwayService

Write = Callable[..., Path]

SCENARIO = """\
scenario: a short one
actors:
  dr_ross: {role: transplant_physician}
pathways:
  p1: {patient: PT-5C3D90, route: autologous, graft_source: pbsc}
steps:
  - {on: 2026-01-05, by: dr_ross, do: refer}
  - {on: 2026-01-06, by: dr_ross, do: begin_evaluation}
final: {phase: evaluation, entries: 2}
"""


def _live_database(url: str) -> None:
    """A database in use: one real referral, written the way a host writes (origin "live")."""
    service = PathwayService(url, clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)), auto_upgrade=True)
    try:
        service.refer({"patient_ref": "PT-LIVE01", "route": "autologous", "graft_source": "pbsc"},
                      actor=PHYS, at=service.clock.now())
    finally:
        service.engine.dispose()


def _origins(url: str) -> list[str | None]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT origin FROM entries ORDER BY id")).scalars())
    finally:
        engine.dispose()


def test_the_run_ignores_hsct_db(write: Write, tmp_path: Path) -> None:
    live = f"sqlite:///{tmp_path / 'live.sqlite'}"
    _live_database(live)
    result = CliRunner().invoke(app, ["scenario", "run", str(write(SCENARIO))], env={**WIDE, "HSCT_DB": live})
    assert result.exit_code == 0, result.output
    assert _origins(live) == ["live"]  # not one scenario entry in the live log


def test_a_database_with_live_entries_is_refused_before_anything_is_written(write: Write, db_url: str) -> None:
    _live_database(db_url)
    result = invoke("scenario", "run", "--db", db_url, write(SCENARIO))
    assert result.exit_code == 2, result.output
    assert "holds live entries" in result.stderr
    assert "Traceback" not in result.output
    assert _origins(db_url) == ["live"]
    with pytest.raises(LiveDatabaseRefused):
        run_scenario(write(SCENARIO), db_url=db_url)


def test_entries_carry_the_scenario_origin_and_runs_may_share_a_database(write: Write, db_url: str) -> None:
    first, second = write(SCENARIO, "first run.yaml"), write(SCENARIO.replace("PT-5C3D90", "PT-5C3D91"), "b.yaml")
    assert invoke("scenario", "run", "--db", db_url, first).exit_code == 0
    assert invoke("scenario", "run", "--db", db_url, second).exit_code == 0
    assert _origins(db_url) == ["scenario:first_run.yaml"] * 2 + ["scenario:b.yaml"] * 2
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            assert not has_live_entries(connection)
    finally:
        engine.dispose()


def test_an_empty_or_new_database_has_no_live_entries(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")
    try:
        with engine.connect() as connection:
            assert not has_live_entries(connection)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("file", "origin"), [
    ("s01.yaml", "scenario:s01.yaml"),
    ("dir/with space/ß.yml", "scenario:_.yml"),
    (None, "scenario:unnamed"),
    ("x" * 300 + ".yaml", "scenario:" + "x" * 119),
])
def test_the_origin_is_the_file_name_as_an_origin_allows(file: str | None, origin: str) -> None:
    assert scenario_origin(file) == origin
