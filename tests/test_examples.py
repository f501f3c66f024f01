"""Every program in examples/ runs against both backends and says what it should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from persistence.engine import create_engine
from persistence.schema import upgrade

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, url: str) -> str:
    """Run an example on a migrated database (PostgreSQL is never upgraded implicitly)."""
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), url], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_embed_basic(db_url: str) -> None:
    out = run_example("embed_basic.py", db_url)
    # Evaluation cannot complete without consent and eligibility (PATHWAY.md complete_evaluation).
    assert "refused: consent_missing, eligibility_missing" in out
    assert "complete_evaluation          eligibility_missing" in out
    assert "phase: evaluation entries: 4" in out


def test_host_transaction(db_url: str) -> None:
    out = run_example("host_transaction.py", db_url)
    assert "after rollback, pathways: 0" in out
    assert "after commit, pathways: 1" in out


def test_every_example_is_tested() -> None:
    tested = {"embed_basic.py", "host_transaction.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
