"""`hsct diagram` marks no phase unless `--active` asks (a chart is not a pathway), and
docs/img/chart.svg is the chart drawn by Graphviz: every phase and every edge of the engine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from states.vocabulary import Phase
from tests.cli.conftest import invoke
from workflow.cli.diagram import SVG_COMMAND, svg_text

ROOT = Path(__file__).resolve().parents[2]
CHART_SVG = ROOT / "docs" / "img" / "chart.svg"
MARKED = re.compile(r"^\s*Class (\S+) s_active$", re.MULTILINE)


def _titles(svg: str) -> set[str]:
    """Graphviz's <title> of every node and edge (edges as `source->dest`), the graph's own left out."""
    titles = {t.replace("&#45;&gt;", "->") for t in re.findall(r"<title>([^<]*)</title>", svg)}
    return titles - {"HSCT pathway"}


def test_the_mermaid_chart_marks_no_phase_by_default() -> None:
    result = invoke("diagram")
    assert result.exit_code == 0, result.output
    assert MARKED.findall(result.stdout) == []
    assert "Class referred s_default" in result.stdout


@pytest.mark.parametrize("phase", [Phase.REFERRED, Phase.CONDITIONING, Phase.FOLLOW_UP])
def test_active_marks_the_phase_asked_for_and_no_other(phase: Phase) -> None:
    result = invoke("diagram", "--active", phase.value)
    assert result.exit_code == 0, result.output
    assert MARKED.findall(result.stdout) == [phase.value]


def test_active_does_not_go_into_the_docs_page(tmp_path: Path) -> None:
    target = tmp_path / "chart.md"
    result = invoke("diagram", "--active", "conditioning", "--output", target)
    assert result.exit_code == 2
    assert not target.exists()


def test_the_committed_svg_draws_every_phase_unmarked() -> None:
    svg = CHART_SVG.read_text(encoding="utf-8")
    phases = {title for title in _titles(svg) if "->" not in title}
    assert phases == {phase.value for phase in Phase}, f"docs/img/chart.svg is stale: run `{SVG_COMMAND}`"
    assert "darksalmon" not in svg  # transitions' style for the active state


def test_the_committed_svg_has_the_edges_of_the_chart(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is not installed; .ci/run installs it (apt-get install graphviz)")
    assert _titles(CHART_SVG.read_text(encoding="utf-8")) == _titles(svg_text()), (
        f"docs/img/chart.svg drifted from the chart: run `{SVG_COMMAND}`"
    )
    target = tmp_path / "chart.svg"
    result = invoke("diagram", "--output", target)
    assert result.exit_code == 0, result.output
    assert _titles(target.read_text(encoding="utf-8")) == _titles(svg_text())
    marked = svg_text(Phase.CONDITIONING)
    assert marked.count("darksalmon") == 1
