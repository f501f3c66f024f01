"""`--format table|json|csv` of `worklist`, `pathway list` and `pathway show`, piped output and
NO_COLOR (docs/worklist.md), and `pathway show --on`.

CliRunner's stdout is not a terminal: what these tests see is what a pipe sees. The database
is the autologous walk up to follow-up (Day 0 2026-02-04; ANC 0.6 / 1.6 / 2.6 on Days +11..+13
after the Day +5 nadir, so neutrophil recovery on Day +11 once three values are known
[F:CIBMTR-ANC]).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.cli.conftest import walk_scenario
from tests.walks import PATIENT
from workflow.cli import app
from workflow.cli.pathway import LIST_KEYS, TIMELINE_KEYS
from workflow.cli.worklist import KEYS
from workflow.service import PathwayService

BOXES = re.compile("[│┃━─┏┗┡╇]")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
ON = "2026-03-06"  # Day +30: the Day +30 assessment is due, the Pre-TED form overdue


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "60", "NO_COLOR": None, "FORCE_COLOR": None, **env})


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(database URL, pathway id) of the autologous walk run to follow-up."""
    import yaml

    folder = tmp_path_factory.mktemp("formats")
    url = f"sqlite:///{folder / 'kept.sqlite'}"
    scenario = folder / "walk.yaml"
    scenario.write_text(yaml.safe_dump(walk_scenario("autologous", upto="complete_day100"), sort_keys=False))
    result = run("scenario", "run", "--db", url, str(scenario))
    assert result.exit_code == 0, result.output
    service = PathwayService(url)
    (pathway_id,) = service.pathway_ids()
    service.engine.dispose()
    return url, pathway_id


Command = Callable[[tuple[str, str]], list[str]]
COMMANDS: dict[str, tuple[Command, tuple[str, ...]]] = {
    "worklist": (lambda k: ["worklist", "--db", k[0], "--on", ON], KEYS),
    "pathway list": (lambda k: ["pathway", "list", "--db", k[0]], LIST_KEYS),
    "pathway show": (lambda k: ["pathway", "show", k[1], "--db", k[0]], TIMELINE_KEYS),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_piped_table_is_plain_and_unwrapped_at_60_columns(kept: tuple[str, str], name: str) -> None:
    args, keys = COMMANDS[name]
    result = run(*args(kept))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not BOXES.search(out)
    assert not COLOUR.search(out)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == list(keys[:2]))
    assert lines[header].split() == list(keys)
    assert len(lines[header]) > 60  # longer than the terminal: not folded
    rows = lines[header + 1:]
    if name != "pathway show":
        rows = rows[:-1]  # the count line
    assert rows
    if name != "pathway show":
        assert all(line.startswith(kept[1]) for line in rows)  # the whole id on each row's line
    # every row has a cell per column: an empty one is "-"
    assert all(len(re.split(r"\s{2,}", line)) == len(keys) for line in rows)
    assert PATIENT not in out


@pytest.mark.parametrize("name", COMMANDS)
def test_json_is_one_document_with_stable_keys(kept: tuple[str, str], name: str) -> None:
    args, keys = COMMANDS[name]
    result = run(*args(kept), "--format", "json")
    assert result.exit_code == 0, result.output
    document: Any = json.loads(result.stdout)
    rows = document["timeline"] if name == "pathway show" else document
    assert rows
    assert all(list(row) == list(keys) for row in rows)
    if name == "pathway show":
        assert document["pathway"]["id"] == kept[1]
        assert document["pathway"]["neutrophil_recovery"] == "2026-02-15"
        assert rows[0]["trigger"] == "refer"
    assert PATIENT not in result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_csv_has_a_header_row(kept: tuple[str, str], name: str) -> None:
    args, keys = COMMANDS[name]
    result = run(*args(kept), "--format", "csv")
    assert result.exit_code == 0, result.output
    reader = csv.reader(io.StringIO(result.stdout))
    header, *rows = list(reader)
    assert header == list(keys)
    assert rows
    assert all(len(row) == len(keys) for row in rows)
    json_rows = json.loads(run(*args(kept), "--format", "json").stdout)
    assert len(rows) == len(json_rows["timeline"] if name == "pathway show" else json_rows)


def test_unknown_format_is_a_usage_error(kept: tuple[str, str]) -> None:
    assert run("pathway", "list", "--db", kept[0], "--format", "xml").exit_code == 2


def test_terminal_table_is_coloured_unless_no_color(kept: tuple[str, str]) -> None:
    """FORCE_COLOR makes rich treat the output as a terminal: boxes and colour; NO_COLOR drops the colour."""
    args = COMMANDS["worklist"][0](kept)
    coloured = run(*args, FORCE_COLOR="1", COLUMNS="250").stdout
    assert BOXES.search(coloured)
    assert re.search(r"\x1b\[[0-9;]*3[1-3]m", coloured)  # overdue red / due yellow
    plain = run(*args, FORCE_COLOR="1", NO_COLOR="1", COLUMNS="250").stdout
    assert BOXES.search(plain)
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", plain)
    assert "overdue" in plain


def test_tty_compatible_is_rich_to_decide(kept: tuple[str, str]) -> None:
    """The piped fast path leaves to rich what rich reads: TTY_COMPATIBLE=1 gets boxes, =0 does not."""
    args = COMMANDS["pathway list"][0](kept)
    assert BOXES.search(run(*args, TTY_COMPATIBLE="1", COLUMNS="250").stdout)
    assert not BOXES.search(run(*args, TTY_COMPATIBLE="0", COLUMNS="250").stdout)


def test_a_piped_table_does_not_import_rich() -> None:
    """Rich is a twentieth of a second of start-up: a plain table and its footer are written without it."""
    code = (
        "import sys\n"
        "from workflow.cli.output import Format, emit\n"
        "emit([{'id': 'a', 'phase': 'referred'}], ['id', 'phase'], Format.TABLE, title='t', footer='1 row')\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.splitlines() == ["id  phase", "a   referred", "1 row"]
    assert out.stderr.strip() == "False"


def test_show_on_a_clinical_date(kept: tuple[str, str]) -> None:
    url, pathway_id = kept

    def on(day: str) -> dict[str, Any]:
        result = run("pathway", "show", pathway_id, "--db", url, "--on", day, "--format", "json")
        assert result.exit_code == 0, result.output
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    day11 = on("2026-02-15")
    assert day11["pathway"]["day"] == "D+11"
    assert day11["pathway"]["phase"] == "awaiting_engraftment"
    assert day11["pathway"]["neutrophil_recovery"] is None  # one value >= 0.5 so far
    assert day11["pathway"]["as_of"] == "on 2026-02-15, as known now"
    assert all(row["effective"] <= "2026-02-15 23:59" for row in day11["timeline"])
    day13 = on("2026-02-17")
    assert (day13["pathway"]["neutrophil_recovery"], day13["pathway"]["neutrophil_recovery_day"]) == (
        "2026-02-15",
        "D+11",
    )
    assert len(day13["timeline"]) > len(day11["timeline"])
    table = run("pathway", "show", pathway_id, "--db", url, "--on", "2026-02-15").stdout
    assert "as known now" in table
    assert "Day: D+11 on 2026-02-15" in table
    both = run("pathway", "show", pathway_id, "--db", url, "--on", "2026-02-15", "--at", "2026-02-15")
    assert both.exit_code == 2
    assert run("pathway", "show", pathway_id, "--db", url, "--on", "2026-01-01").exit_code == 2  # before referral
    assert run("pathway", "show", pathway_id, "--db", url, "--on", "15/02/2026").exit_code == 2


def test_timeline_command_writes_the_picture(kept: tuple[str, str], tmp_path: Path) -> None:
    url, pathway_id = kept
    svg = tmp_path / "t.svg"
    result = run("pathway", "timeline", pathway_id, "--db", url, "--out", str(svg))
    assert result.exit_code == 0, result.output
    assert "ANC recovery D+11" in svg.read_text()
    assert run("pathway", "timeline", pathway_id, "--db", url, "--out", str(tmp_path / "t.pdf")).exit_code == 2
    assert run("pathway", "timeline", "no-such-id", "--db", url, "--out", str(svg)).exit_code == 2


def test_timeline_without_matplotlib_says_how_to_install_it(
    kept: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("pathway", "timeline", kept[1], "--db", kept[0], "--out", str(tmp_path / "t.html"))
    assert result.exit_code == 2
    assert "hsct-pathway[timeline]" in result.stderr
