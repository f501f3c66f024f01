"""Opening a service on a current database reads the version table directly: Alembic (and the
Mako and Pygments it brings) is imported only to migrate or to explain a mismatch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from persistence.engine import create_engine
from persistence.schema import head_revision, scripted_head, upgrade


def test_the_scripted_head_is_alembics_head() -> None:
    assert scripted_head() == head_revision()


def _opens_without_alembic(url: str) -> str:
    code = (
        "import sys\n"
        "from workflow.service import PathwayService\n"
        f"service = PathwayService({url!r}, auto_upgrade=False)\n"
        "service.engine.dispose()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako', 'pygments')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    return done.stdout.strip() if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-400:]}"


def test_a_current_database_is_opened_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'current.sqlite'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    assert _opens_without_alembic(url) == "[]"


def test_an_older_database_is_still_refused_through_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'older.sqlite'}"
    engine = create_engine(url)
    upgrade(engine, "0005")
    engine.dispose()
    answer = _opens_without_alembic(url)
    assert answer.startswith("exit 1")
    assert "SchemaOutOfDate" in answer
    assert "hsct db upgrade" in answer
