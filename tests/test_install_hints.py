"""A missing optional package is named with the extra that installs it, never left as a
traceback: `hsct` exits 2 with `pip install 'hsct-pathway[EXTRA]'`, and the library's engine
raises `MissingExtra` for a PostgreSQL URL without psycopg. Each case runs in a subprocess whose
import system refuses the package, as if it were not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from persistence.extras import EXTRAS, MissingExtra, install_hint, missing_extra
from workflow.scenario import run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "happy_autologous.yaml"

BLOCKED = """\
import sys

class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
"""

CLI = (
    BLOCKED
    + """
sys.argv = ["hsct", *{args!r}]
from workflow.console import main
main()
"""
)


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(database URL, pathway id) of a library scenario run into a file."""
    from workflow.service import PathwayService

    url = f"sqlite:///{tmp_path_factory.mktemp('hints') / 'kept.sqlite'}"
    assert run_scenario(SCENARIO, db_url=url).passed
    service = PathwayService(url)
    (pathway_id,) = service.pathway_ids()
    service.engine.dispose()
    return url, pathway_id


def _cases(url: str, pathway_id: str, out: Path) -> dict[str, list[str]]:
    return {
        "typer": ["--help"],
        "yaml": ["scenario", "validate", str(SCENARIO)],
        "psycopg": ["db", "current", "--db", "postgres://hsct@127.0.0.1:1/hsct"],
        "fhir": ["audit", "fhir", "--pathway", pathway_id, "--db", url],
        "matplotlib": ["pathway", "timeline", pathway_id, "--out", str(out / "t.svg"), "--db", url],
    }


@pytest.mark.parametrize("module", ["typer", "yaml", "psycopg", "fhir", "matplotlib"])
def test_the_cli_names_the_extra_of_a_missing_package(module: str, kept: tuple[str, str], tmp_path: Path) -> None:
    args = _cases(*kept, tmp_path)[module]
    done = _python(CLI.format(module=module, args=args), tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert line.endswith(f"pip install 'hsct-pathway[{EXTRAS[module]}]'")
    assert "Traceback" not in done.stderr


def test_the_same_commands_run_when_the_packages_are_there(kept: tuple[str, str], tmp_path: Path) -> None:
    code = CLI.format(module="no_such_package", args=_cases(*kept, tmp_path)["matplotlib"])
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "t.svg").exists()


def test_the_engine_raises_missing_extra_for_postgres_without_psycopg(tmp_path: Path) -> None:
    code = (
        BLOCKED.format(module="psycopg")
        + """
from persistence.engine import create_engine
from persistence.extras import MissingExtra
try:
    create_engine("postgresql://hsct@127.0.0.1:1/hsct")
except MissingExtra as exc:
    print(exc)
"""
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == install_hint("psycopg")


def test_an_unrelated_missing_module_is_not_dressed_up() -> None:
    plain = ModuleNotFoundError("No module named 'nowhere'", name="nowhere")
    assert install_hint("nowhere") is None
    assert missing_extra(plain) is plain
    wrapped = missing_extra(ModuleNotFoundError("No module named 'fhir.resources'", name="fhir.resources"))
    assert isinstance(wrapped, MissingExtra)
    assert "hsct-pathway[fhir]" in str(wrapped)


def test_every_extra_named_exists_in_pyproject() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras)
