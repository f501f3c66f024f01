"""docs/coverage.md stays true: every row states a status (never "partly"), every scenario it
names exists, and a modelled element's scenario really runs one of the commands the row names."""

from __future__ import annotations

import re
from pathlib import Path

from states.chart import CHART, INITIAL_COMMAND

ROOT = Path(__file__).resolve().parents[1]
TABLE_ROW = re.compile(r"^\| (?!element|---)(.+) \|$", flags=re.MULTILINE)
COMMANDS = {*CHART.commands, INITIAL_COMMAND}


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")
    return [[cell.strip() for cell in match.split(" | ")] for match in TABLE_ROW.findall(text)]


def _scenario_commands(name: str) -> set[str]:
    text = (ROOT / "scenarios" / name).read_text(encoding="utf-8")
    done = set(re.findall(r"\bdo: ([a-z_0-9]+)", text))
    # Every pathway of a scenario is referred, by a `refer` step or by its declaration.
    return done | {INITIAL_COMMAND}


def test_every_row_has_a_stated_status() -> None:
    rows = _rows()
    assert len(rows) >= 30
    for element, _where, _scenario, status in rows:
        assert "partly" not in status, element
        assert status == "modelled" or status.startswith(("not modelled: ", "pending")), element


def test_named_scenarios_exist_and_show_a_command_of_their_row() -> None:
    for element, where, scenario, status in _rows():
        named = re.findall(r"`([a-z0-9_]+\.yaml)`", scenario)
        commands = set(re.findall(r"`([a-z_0-9]+)`", where)) & COMMANDS
        if status == "modelled":
            assert named, element
            assert commands, element
        for name in named:
            assert (ROOT / "scenarios" / name).is_file(), f"{element}: {name}"
            if status == "modelled":
                assert _scenario_commands(name) & commands, f"{element}: {name} runs none of {sorted(commands)}"
