"""The `hsct` app as a whole: help, version, start-up imports, the diagram and its drift check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from persistence.engine import default_sqlite_url
from states.chart import CHART
from tests.cli.conftest import invoke
from workflow import __version__
from workflow.cli import app
from workflow.cli._common import DEFAULT_DB_URL
from workflow.cli.diagram import markdown

ROOT = Path(__file__).resolve().parents[2]
DIAGRAM = ROOT / "docs" / "diagram.md"


def test_help_lists_every_group_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    for group in ("scenario", "pathway", "audit", "db", "diagram"):
        assert group in result.stdout
    assert invoke("--version").stdout.strip() == f"hsct-pathway {__version__}"
    assert app.pretty_exceptions_short is not None
    assert app.pretty_exceptions_show_locals is False


def test_every_database_command_names_its_default_url() -> None:
    assert default_sqlite_url() == DEFAULT_DB_URL
    for command in (["pathway", "list"], ["pathway", "show"], ["audit", "log"], ["db", "upgrade"],
                    ["db", "current"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0, result.output
        assert DEFAULT_DB_URL in result.stdout, command
    assert "fresh temporary" in invoke("scenario", "run", "--help").stdout


def test_importing_the_cli_stays_light() -> None:
    """`hsct --help` must start fast: no SQLAlchemy, service, runner or pydantic models."""
    code = (
        "import sys, workflow.cli\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'pydantic', 'transitions', 'yaml', 'workflow.service',"
        " 'workflow.scenario', 'states.chart') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_diagram_prints_every_edge_of_the_chart() -> None:
    result = invoke("diagram")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "stateDiagram-v2" in text
    assert f"[*] --> {CHART.initial_phase.value}" in text
    edges: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        head, sep, labels = line.strip().partition(": ")
        if sep and " --> " in head:
            source, dest = head.split(" --> ")
            edges[(source, dest)] = labels.split(" | ")
    expected = {
        (edge.source.value, edge.dest.value, command.name + (f" [{edge.when}]" if edge.when else ""))
        for command in CHART.triggers
        for edge in command.edges
    }
    drawn = {(source, dest, label) for (source, dest), labels in edges.items() for label in labels}
    assert drawn == expected


def test_diagram_output_writes_markdown(tmp_path: Path) -> None:
    target = tmp_path / "chart.md"
    result = invoke("diagram", "--output", target)
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# The pathway chart")
    assert "```mermaid\n---\nHSCT pathway\n---\nstateDiagram-v2" in text
    raw = tmp_path / "chart.mmd"
    invoke("diagram", "-o", raw)
    assert raw.read_text(encoding="utf-8") == invoke("diagram").stdout


def test_docs_diagram_is_current() -> None:
    """docs/diagram.md is regenerated from the chart; regenerate with
    `hsct diagram --output docs/diagram.md` when this fails."""
    assert DIAGRAM.read_text(encoding="utf-8") == markdown()
