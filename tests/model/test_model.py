"""T27 on both backends: the state machine of tests/model/machine.py, one fresh database per example.

Budgets (docs/testing.md): the default `ci` profile runs 40 derandomized examples of up to 40 steps;
`HYPOTHESIS_PROFILE=explore` runs 1,000 examples of 50 steps per backend.
`HSCT_MODEL_EXAMPLES` and `HSCT_MODEL_STEPS` override either.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.machine import PG_ENV, PathwayMachine

EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
EXAMPLES = int(os.environ.get("HSCT_MODEL_EXAMPLES", 1000 if EXPLORE else 40))
STEPS = int(os.environ.get("HSCT_MODEL_STEPS", 50 if EXPLORE else 40))

BUDGET = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_service_agrees_with_the_model(backend: str) -> None:
    if backend == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL model run is skipped")
    machine = type(f"PathwayMachine_{backend}", (PathwayMachine,), {"backend": backend})
    run_state_machine_as_test(machine, settings=BUDGET)
