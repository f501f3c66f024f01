"""Replay the inputs that once crashed a reader (tests/fuzz/corpus/<reader>/): each is now
refused with the reader's documented error, and the command line exits 2 (unusable input)
or 1 (a failed check), never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from states.errors import PolicyError
from tests.cli.conftest import invoke
from tests.fuzz.strategies import corpus_dir
from tests.fuzz.targets import VERIFY_EXPORT
from workflow.audit.checkpoint import CheckpointMalformed, load_checkpoint
from workflow.policy_files import load_policy
from workflow.scenario.loader import load_scenario
from workflow.scenario.models import ScenarioInvalid


def _files(target: str) -> list[Path]:
    found = sorted(p for p in corpus_dir(target).iterdir() if not p.name.endswith(".checkpoint.json"))
    assert found, f"no corpus for {target}"
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


SCENARIOS = _files("scenario")
ACCEPTED = {"offset_with_seconds.yaml"}
"""Crashed the loader once, but valid: +00:09:21 (a historical zone's offset) is a real instant."""
POLICIES = _files("policy")
CHECKPOINTS = _files("checkpoint")
EXPORTS = _files("export")


@pytest.mark.parametrize("path", SCENARIOS, ids=_ids(SCENARIOS))
def test_scenario_corpus(path: Path) -> None:
    if path.name in ACCEPTED:
        load_scenario(path)
    else:
        with pytest.raises(ScenarioInvalid) as caught:
            load_scenario(path)
        assert all(p.file == str(path) for p in caught.value.problems)
    expected = 0 if path.name in ACCEPTED else 2
    result = invoke("scenario", "validate", path)
    assert result.exit_code == expected, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("path", POLICIES, ids=_ids(POLICIES))
def test_policy_corpus(path: Path) -> None:
    with pytest.raises(PolicyError, match=path.name):
        load_policy(path)


@pytest.mark.parametrize("path", CHECKPOINTS, ids=_ids(CHECKPOINTS))
def test_checkpoint_corpus(path: Path) -> None:
    with pytest.raises(CheckpointMalformed):
        load_checkpoint(path)


@pytest.mark.parametrize("path", EXPORTS, ids=_ids(EXPORTS))
def test_export_corpus(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = path.with_name(path.name + ".checkpoint.json")
    args = [str(path), *(["--checkpoint", str(checkpoint)] if checkpoint.exists() else ["--no-checkpoint"])]
    assert VERIFY_EXPORT.main(args) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err
