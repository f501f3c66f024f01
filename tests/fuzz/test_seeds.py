"""The seeds of the coverage-guided runs (fuzz/seeds/<reader>/) are inputs each reader accepts.

A seed that a reader refuses at its first byte gives the fuzzer nothing to mutate towards the
deeper code: the CSV export target once ran a million inputs without passing its header because
its only seeds were refused crash regressions. These are kept apart from tests/fuzz/corpus/,
which holds only inputs that must be refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import ROOT, VERIFY_EXPORT, decode_fire, encode_fire, fire_in_world
from tests.helpers_core import COMMANDS
from workflow.policy_files import load_policy
from workflow.scenario.loader import load_scenario
from workflow.service import Result

SEEDS = ROOT / "fuzz" / "seeds"


def _seeds(reader: str, *suffixes: str) -> list[Path]:
    found = sorted(p for p in (SEEDS / reader).iterdir() if p.suffix in suffixes)
    assert found, f"no seeds for {reader}"
    return found


@pytest.mark.parametrize("path", _seeds("scenario", ".yaml"), ids=lambda p: p.name)
def test_scenario_seed_loads(path: Path) -> None:
    assert load_scenario(path).steps


@pytest.mark.parametrize("path", _seeds("policy", ".toml", ".yaml"), ids=lambda p: p.name)
def test_policy_seed_loads(path: Path) -> None:
    assert load_policy(path).version == "fuzz-seed-1"


@pytest.mark.parametrize("path", _seeds("export", ".csv", ".jsonl"), ids=lambda p: p.name)
def test_export_seed_verifies(path: Path) -> None:
    """Entries and pathways counted, no failure raised: the whole reader ran."""
    entries, pathways = VERIFY_EXPORT.verify(path, None, None, partial=True)
    assert entries >= pathways >= 1


@pytest.mark.parametrize("path", _seeds("fire_payload", ".bin"), ids=lambda p: p.name)
def test_fire_payload_seed_is_accepted(path: Path) -> None:
    """Named <walk>.<phase>.<command>: still that command with its valid payload on that pathway
    (a new command shifts the chart's order: re-encode with `encode_fire`), and accepted."""
    walk, phase, command = path.stem.split(".")
    data = path.read_bytes()
    assert data == encode_fire(walk, phase, command, COMMANDS[command][1]), "stale seed: re-encode it"
    outcome = fire_in_world(*decode_fire(data))
    assert isinstance(outcome, Result), outcome
