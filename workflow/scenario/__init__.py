"""Scenario scripts (docs/scenarios.md): the file format, its loader and the runner.

`run_scenario`, `run_paths` and `ScenarioResult` are imported on first use: validating a file
needs neither SQLAlchemy nor the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflow.scenario.loader import expand_paths, load_paths, load_scenario, parse_scenario
from workflow.scenario.models import Scenario, ScenarioInvalid, ScenarioProblem

if TYPE_CHECKING:
    from workflow.scenario.runner import AssertionOutcome, ScenarioResult, StepRow, run_paths, run_scenario

__all__ = [
    "AssertionOutcome",
    "Scenario",
    "ScenarioInvalid",
    "ScenarioProblem",
    "ScenarioResult",
    "StepRow",
    "expand_paths",
    "load_paths",
    "load_scenario",
    "parse_scenario",
    "run_paths",
    "run_scenario",
]

_RUNNER = {"AssertionOutcome", "ScenarioResult", "StepRow", "run_paths", "run_scenario"}


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from workflow.scenario import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
