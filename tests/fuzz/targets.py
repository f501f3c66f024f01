"""What the fuzzers feed: one function per reader, taking raw bytes.

Each target may raise only the reader's documented error (`DOCUMENTED`); anything else
escaping (RecursionError, ValueError, UnicodeEncodeError, OverflowError, ...) is a crash.
The hypothesis tests (tests/fuzz/test_*.py), the corpus replay and the atheris scripts
(fuzz/) call the same functions.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from states.days import clinical_date
from states.errors import PolicyError
from workflow.audit.checkpoint import CheckpointInvalid, load_checkpoint
from workflow.policy_files import load_policy
from workflow.scenario.loader import load_scenario
from workflow.scenario.models import Scenario, ScenarioInvalid, check_references, effective_policy, step_time

ROOT = Path(__file__).resolve().parents[2]


def _verify_export_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", ROOT / "tools" / "verify_export.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VERIFY_EXPORT = _verify_export_module()


def _in_file(data: bytes, suffix: str, read: Callable[[Path], Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="hsct-fuzz-") as folder:
        path = Path(folder, "input" + suffix)
        path.write_bytes(data)
        return read(path)


def scenario_file(data: bytes) -> None:
    """A scenario file: valid, or ScenarioInvalid; a valid one has times the runner can use."""
    try:
        scenario = _in_file(data, ".yaml", load_scenario)
    except ScenarioInvalid:
        return
    _runnable(scenario)


def scenario_data(data: Any) -> None:
    """A scenario built in Python (the embedding API): pydantic's ValidationError for the shape,
    then `check_references` returns problems and never raises."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError:
        return
    if not check_references(scenario):
        _runnable(scenario)


def _runnable(scenario: Scenario) -> None:
    """What the runner computes before its first step: the policy, and every step's time in UTC."""
    zone = effective_policy(scenario).timezone
    for index in range(len(scenario.steps)):
        at = step_time(scenario, index, zone)
        at.astimezone(UTC)
        clinical_date(at, zone)


def policy_file(data: bytes, suffix: str = ".toml") -> None:
    """A policy file: a Policy, or PolicyError."""
    try:
        _in_file(data, suffix, load_policy)
    except PolicyError:
        return


def checkpoint_file(data: bytes) -> None:
    """A checkpoint file: a Checkpoint, or CheckpointInvalid (CheckpointMalformed among them)."""
    try:
        _in_file(data, ".json", load_checkpoint)
    except CheckpointInvalid:
        return


def export_files(export: bytes, checkpoint: bytes | None, suffix: str = ".jsonl") -> None:
    """tools/verify_export.py on an export (and its checkpoint): a result, Failed or Unreadable."""
    with tempfile.TemporaryDirectory(prefix="hsct-fuzz-") as folder:
        export_path = Path(folder, "export" + suffix)
        export_path.write_bytes(export)
        checkpoint_path = None
        if checkpoint is not None:
            checkpoint_path = Path(folder, "export.checkpoint.json")
            checkpoint_path.write_bytes(checkpoint)
        try:
            VERIFY_EXPORT.verify(export_path, checkpoint_path, None, partial=checkpoint is None)
        except (VERIFY_EXPORT.Failed, VERIFY_EXPORT.Unreadable):
            return
