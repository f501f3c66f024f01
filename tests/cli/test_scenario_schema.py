"""docs/scenario.schema.json: generated from the chart and the payload models, each step's `with:`
typed by its `do:`, and every library scenario valid against it. Commands are read from the chart,
never listed here, so a command added to the chart is covered without an edit."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from states.chart import CHART
from tests.cli.conftest import invoke
from workflow.scenario.models import REFERRAL_STEP_FIELDS
from workflow.scenario.schema import scenario_json_schema
from workflow.yaml_safe import load_yaml_tree

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "scenario.schema.json"
LIBRARY = sorted((ROOT / "scenarios").glob("*.yaml"))


def _json_ready(value: Any) -> Any:
    """A loaded YAML document as an editor's validator sees it: dates as their ISO text."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


@functools.cache
def _schema() -> dict[str, Any]:
    return scenario_json_schema()


@functools.cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(_schema())


def _errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.instance_path)}: {e.message}" for e in _validator().iter_errors(document)]


def _rules() -> dict[str, dict[str, Any]]:
    schema = _schema()
    return {rule["if"]["properties"]["do"]["const"]: rule["then"] for rule in schema["$defs"]["ActionStep"]["allOf"]}


def _with_schema(command: str) -> dict[str, Any]:
    schema = _schema()
    body = _rules()[command]["properties"]["with"]
    return schema["$defs"][body["$ref"].removeprefix("#/$defs/")] if "$ref" in body else body


def _file(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": "schema probe",
        "actors": {"dr_ross": {"role": "transplant_physician"}},
        "pathways": {"p1": {"patient": "PT-8F3A21", "route": "autologous", "graft_source": "pbsc"}},
        "steps": [{"on": "2026-01-05", "by": "dr_ross", "do": "refer"}, *steps],
    }


def test_the_committed_schema_is_the_generated_one() -> None:
    result = invoke("scenario", "schema")
    assert result.exit_code == 0, result.output
    assert SCHEMA_FILE.read_text(encoding="utf-8") == result.stdout, (
        "docs/scenario.schema.json drifted from the chart or the payloads: "
        "run `hsct scenario schema --output docs/scenario.schema.json`"
    )


def test_schema_output_option_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "scenario.schema.json"
    result = invoke("scenario", "schema", "--output", target)
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == scenario_json_schema()


def test_every_command_of_the_chart_has_a_rule_typing_its_payload() -> None:
    rules = _rules()
    assert set(rules) == {"refer", *CHART.commands}
    for name, command in CHART.commands.items():
        body = _with_schema(name)
        callers = set(command.payload.model_fields) - command.payload.derived_fields
        assert set(body.get("properties", {})) == callers, name
        assert body["additionalProperties"] is False, name
        required = {field for field in callers if command.payload.model_fields[field].is_required()}
        assert set(body.get("required", [])) == required, name
        assert ("required" in rules[name]) == bool(required), name


def test_the_refer_step_may_only_add_what_a_declaration_leaves_out() -> None:
    assert set(_with_schema("refer")["properties"]) == set(REFERRAL_STEP_FIELDS)
    assert "route" not in REFERRAL_STEP_FIELDS
    assert _errors(_file()) == []
    bad = _file()
    bad["steps"][0]["with"] = {"route": "autologous"}
    assert _errors(bad)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_library_scenarios_are_valid_against_the_schema(path: Path) -> None:
    document, _ = load_yaml_tree(path.read_text(encoding="utf-8"))
    assert _errors(_json_ready(document)) == []


def test_a_payload_error_is_found_at_its_step_by_the_schema() -> None:
    name = next(
        name for name, c in CHART.commands.items() if any(f.is_required() for f in c.payload.model_fields.values())
    )
    missing = _errors(_file({"on": "2026-01-06", "by": "dr_ross", "do": name}))
    assert missing
    assert all(error.startswith("['steps', 1]") for error in missing), missing
    unknown = _errors(_file({"on": "2026-01-06", "by": "dr_ross", "do": name, "with": {"no_such_field": 1}}))
    assert any(error.startswith("['steps', 1, 'with']") and "no_such_field" in error for error in unknown), unknown


def test_a_derived_field_is_refused_by_the_schema() -> None:
    name, command = next((n, c) for n, c in CHART.commands.items() if c.payload.derived_fields)
    field = sorted(command.payload.derived_fields)[0]
    errors = _errors(_file({"on": "2026-01-06", "by": "dr_ross", "do": name, "with": {field: "2026-01-06"}}))
    assert any(field in error for error in errors), errors


@pytest.mark.parametrize("on", ["2026-01-05", "2026-01-05T08:00", "2026-01-05T08:00:30", "2026-01-05T08:00+01:00"])
def test_step_times_the_loader_reads_are_valid(on: str) -> None:
    document = _file()
    document["steps"][0]["on"] = on
    assert _errors(document) == []


def test_a_step_time_that_is_not_iso_is_refused() -> None:
    document = _file()
    document["steps"][0]["on"] = "05/01/2026"
    assert _errors(document)


def test_policy_overrides_are_typed_by_the_policy() -> None:
    from states.policy import Policy
    from workflow.scenario import ScenarioInvalid, parse_scenario

    field = next(name for name, f in Policy.model_fields.items() if f.annotation is int)
    good = _file()
    good["policy"] = {field: 30}
    assert _errors(good) == []
    for bad_policy in ({"no_such_rule": 1}, {field: "thirty"}):
        bad = _file()
        bad["policy"] = bad_policy
        assert any(error.startswith("['policy'") for error in _errors(bad)), bad_policy
        with pytest.raises(ScenarioInvalid):  # the loader refuses what the schema refuses
            parse_scenario(json.dumps(bad), file="probe.yaml")
