"""The seeds of the coverage-guided runs (fuzz/seeds/<reader>/) are inputs each reader accepts.

A seed that a reader refuses at its first byte gives the fuzzer nothing to mutate towards the
deeper code: the CSV export target once ran a million inputs without passing its header because
its only seeds were refused crash regressions. These are kept apart from tests/fuzz/corpus/,
which holds only inputs that must be refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import ROOT, VERIFY_EXPORT
from workflow.policy_files import load_policy
from workflow.scenario.loader import load_scenario

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
