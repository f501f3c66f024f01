"""The clinical scenario library (scenarios/*.yaml) runs, and every expectation in it holds.

The library holds one file per worked scenario of HSCT_REFERENCE.md section 5 and one plain
happy path per route and donor type. Their expectations come from the reference and the chart
(PATHWAY.md), never from what the code printed, so a failure here is either a scenario file
that misreads the reference or a library that contradicts it.

A file that needs a rule the library does not have yet is marked xfail(strict=True) with the
missing rule as its reason, so that it fails loudly once the rule lands; none is marked now.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from states.vocabulary import DonorType, Phase, Route
from workflow.scenario import load_scenario, run_scenario
from workflow.scenario.models import ActionStep
from workflow.scenario.runner import ScenarioResult, StepRow

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))

# HSCT_REFERENCE.md section 5: the worked scenarios the library must contain.
REFERENCE_IDS = ("S01", "S02", "S05", "S07", "S09", "S10", "S13", "S14", "S15", "S17", "S19", "S20")
# One plain happy path per route and donor type (PATHWAY.md "Words").
HAPPY_PATHS = (Route.AUTOLOGOUS.value, *(donor_type.value for donor_type in DonorType))


def _report(result: ScenarioResult, rows: list[StepRow]) -> str:
    lines = [f"{result.file}: {result.title}"]
    lines += [f"  {row.name} on {row.on} ({row.day_label}): {row.message or row.outcome}" for row in rows]
    return "\n".join(lines)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_holds(path: Path) -> None:
    result = run_scenario(path)
    assert result.passed, _report(result, result.failures)


def _titles() -> dict[str, str]:
    return {path.name: load_scenario(path).scenario for path in FILES}


def test_library_contains_every_reference_scenario() -> None:
    titles = _titles()
    for scenario_id in REFERENCE_IDS:
        named = [f for f in titles if f.startswith(scenario_id.lower() + "_")]
        assert len(named) == 1, f"{scenario_id}: expected one file scenarios/{scenario_id.lower()}_*.yaml"
        title = titles[named[0]]
        assert title.split()[0] == scenario_id, f"{named[0]}: its title should start with {scenario_id}"


@pytest.mark.parametrize("kind", HAPPY_PATHS)
def test_happy_path_per_route_and_donor_type(kind: str) -> None:
    path = SCENARIOS / f"happy_{kind}.yaml"
    assert path.is_file(), f"no happy path for {kind}"
    scenario = load_scenario(path)
    assert len(scenario.pathways) == 1
    (pathway,) = scenario.pathways.values()
    if kind == Route.AUTOLOGOUS.value:
        assert pathway.route is Route.AUTOLOGOUS
    else:
        assert (pathway.route, pathway.donor_type) == (Route.ALLOGENEIC, DonorType(kind))
    final = scenario.final_by_pathway()
    assert [a.phase for a in final.values()] == [Phase.DAY100_COMPLETE], "a happy path ends at Day +100"
    refused = [n for n, step in enumerate(scenario.steps, 1) if isinstance(step, ActionStep) and step.expect]
    assert not refused, f"a happy path expects no refusal (steps {refused})"
