"""`hsct serve`: an install hint without the extra, no server without authentication, a fast --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workflow.cli import app

WIDE = {"COLUMNS": "250"}


def test_without_the_http_extra_serve_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    result = CliRunner().invoke(app, ["serve", "--tokens", "t.json"], env=WIDE)
    assert result.exit_code == 2
    assert "pip install 'hsct-pathway[http]'" in result.output


def test_serve_refuses_to_start_without_authentication(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path}/x.sqlite"], env=WIDE)
    assert result.exit_code == 2
    assert "no authentication configured" in result.output


def test_help_does_not_import_fastapi() -> None:
    probe = "import sys; from workflow.cli import app; print('fastapi' in sys.modules or 'uvicorn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"
