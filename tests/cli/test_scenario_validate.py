"""The file format is checked as a whole before anything runs: `hsct scenario validate`,
`hsct scenario schema`, and the problems (file, line, step, field path, rule) of invalid files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from states.chart import CHART
from tests.cli.conftest import invoke
from workflow.scenario import ScenarioInvalid, parse_scenario
from workflow.scenario.models import ASSERTION_KEYS

Write = Callable[..., Path]

BASE = """\
scenario: base
actors:
  dr_ross: {role: transplant_physician}
  lab: {role: laboratory}
pathways:
  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}
steps:
  - {on: 2026-01-05, by: dr_ross, do: refer, with: {diagnosis: multiple_myeloma}}
  - on: 2026-01-18
    by: dr_ross
    do: begin_evaluation
  - on: 2026-02-17
    check: {phase: evaluation, day: null}
final: {phase: evaluation}
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(text, file="s.yaml")
    return [(p.step, p.path, p.rule) for p in caught.value.problems]


def test_the_base_file_is_valid() -> None:
    scenario = parse_scenario(BASE)
    assert len(scenario.steps) == 3


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("scenario: base", "scenario: base\ntitle: x", (None, "title", "extra_forbidden")),
        ("do: begin_evaluation", "do: begin_evaluation\n    expect: {refused: [x], also: 1}",
         (2, "expect.also", "extra_forbidden")),
        ("do: begin_evaluation", "do: begin_evalution", (2, "do", "unknown_command")),
        ("by: dr_ross\n    do: begin", "by: dr_roos\n    do: begin", (2, "by", "undeclared_actor")),
        ("on: 2026-01-18", "on: 18 January", (2, "on", "iso_date_or_datetime")),
        ("day: null", "dayy: 13", (3, "check.dayy", "extra_forbidden")),
        ("day: null", "day: thirteen", (3, "check.day", "int_parsing")),
        ("final: {phase: evaluation}", "final: {phase: evaluation, gvhd_grade: 2}",
         (None, "final.gvhd_grade", "extra_forbidden")),
        ("final: {phase: evaluation}", "final: {phase: null}", (None, "final.phase", "not_nullable")),
        ("check: {phase", "pathway: p2\n    check: {phase", (3, "pathway", "undeclared_pathway")),
        ("role: laboratory", "role: lab_tech", (None, "actors.lab.role", "enum")),
        ("with: {diagnosis: multiple_myeloma}", "with: {diagnosis: multiple_myeloma, route: autologous}",
         (1, "with.route", "declared_twice")),
        ("graft_source: pbsc}", "graft_source: cord_blood}", (None, "pathways.p1", "graft_source_inconsistent")),
        ("do: begin_evaluation", "do: record_lab\n    with: {anc: 0.6}", (2, "with.anc", "extra_forbidden")),
        ("do: begin_evaluation", "do: confirm_engraftment\n    with: {recovery_on: 2026-01-18}",
         (2, "with.recovery_on", "derived_field")),
        ("do: begin_evaluation", "do: begin_evaluation\n    do: hold", (2, "do", "duplicate_key")),
        ("scenario: base", "scenario: base\ntimezone: Mars/Olympus", (None, "timezone", "unknown_timezone")),
        ("scenario: base", "scenario: base\npolicy: {min_cd34_autologous: 2}", (None, "policy", "invalid_policy")),
    ],
)
def test_each_kind_of_mistake_is_named_by_step_and_field(old: str, new: str, expected: tuple[Any, ...]) -> None:
    assert old in BASE
    assert expected in problems(BASE.replace(old, new, 1))


def test_a_step_before_the_referral_and_a_pathway_never_referred_are_errors() -> None:
    text = BASE.replace("  - {on: 2026-01-05, by: dr_ross, do: refer, with: {diagnosis: multiple_myeloma}}\n", "")
    found = problems(text)
    assert (1, "", "not_referred_yet") in found
    assert (None, "pathways.p1", "never_referred") in found


def test_several_pathways_need_names_on_steps_and_in_final() -> None:
    text = BASE.replace(
        "  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}",
        "  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}\n"
        "  p2: {patient: PT-8F3A22, route: autologous, graft_source: pbsc}",
    )
    found = problems(text)
    assert {(1, "pathway", "pathway_required"), (2, "pathway", "pathway_required"),
            (3, "pathway", "pathway_required"), (None, "final", "pathway_required")} <= set(found)


def test_problems_carry_the_line_of_the_offending_key() -> None:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(BASE.replace("do: begin_evaluation", "do: begin_evalution"), file="s.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.step, problem.path) == ("s.yaml", 11, 2, "do")
    assert str(problem) == "s.yaml:11: step 2: do: not a trigger or event of the chart [unknown_command]"


def test_yaml_1_2_booleans_keep_no_and_on_as_strings() -> None:
    """`on:` is a key and `no` a consent version, not YAML 1.1 booleans."""
    scenario = parse_scenario(BASE.replace(
        "do: begin_evaluation", "do: record_consent\n    with: {consent_version: no}"
    ))
    assert scenario.steps[1].with_ == {"consent_version": "no"}  # type: ignore[union-attr]


def test_yaml_syntax_errors_are_invalid_files_with_a_line() -> None:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario("scenario: x\nsteps: [\n", file="s.yaml")
    assert caught.value.problems[0].rule == "yaml_syntax"
    assert caught.value.problems[0].line is not None


def test_validate_command_exit_codes_and_messages(write: Write) -> None:
    good = write(BASE, "good.yaml")
    ok = invoke("scenario", "validate", good)
    assert ok.exit_code == 0, ok.output
    assert "valid:" in ok.stdout
    assert "good.yaml" in ok.stdout

    bad = write(BASE.replace("do: begin_evaluation", "do: record_collection\n    with: {product: DIN-A}"),
                "bad.yaml")
    result = invoke("scenario", "validate", good, bad)
    assert result.exit_code == 2
    assert (f"{bad}:12: step 2 (record_collection): with.product: Extra inputs are not permitted "
            "[extra_forbidden]") in result.stderr
    assert "step 2 (record_collection): with.product_id: Field required [missing]" in result.stderr


def test_run_refuses_an_invalid_file_with_exit_2(write: Write) -> None:
    bad = write(BASE.replace("by: dr_ross\n    do: begin", "by: nobody\n    do: begin"), "bad.yaml")
    result = invoke("scenario", "run", bad)
    assert result.exit_code == 2
    assert (f"{bad}:10: step 2 (begin_evaluation): by: 'nobody' is not declared under `actors` "
            "[undeclared_actor]") in result.stderr
    assert "nothing was run" in result.stderr
    assert result.stdout == ""


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("scenario", "run", tmp_path / "nowhere.yaml")
    assert result.exit_code == 2


def test_schema_is_json_schema_of_the_format() -> None:
    result = invoke("scenario", "schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"scenario", "timezone", "policy", "actors", "pathways", "steps", "final"}
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert set(defs["ActionStep"]["properties"]) == {"on", "by", "do", "pathway", "with", "expect"}
    assert set(defs["CheckStep"]["properties"]) == {"on", "pathway", "check"}
    assert set(defs["Assertions"]["properties"]) == set(ASSERTION_KEYS) == {
        "phase", "day", "planned_day0", "day0", "neutrophil_recovery_day", "platelet_recovery_day",
        "platelet_recovery_50_day", "gvhd_max_grade", "chronic_gvhd_severity", "hct_number", "entries", "refusals",
        "flags", "due", "overdue", "cryopreservation_reason", "bags", "carried_products", "donor_mobilizations",
        "length_of_stay_days", "growth_factor_day", "mucositis_peak_who_grade", "infections", "transfusions",
        "prophylaxis_doses",
    }
    assert set(defs["ActionStep"]["properties"]["do"]["enum"]) == {"refer", *CHART.commands}
    for name in ("ActionStep", "CheckStep", "Assertions", "ActorSpec", "PathwaySpec"):
        assert defs[name]["additionalProperties"] is False, name
    refs = _refs(schema)
    assert refs
    assert all(ref.removeprefix("#/$defs/") in defs for ref in refs)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_run_paths_reports_the_problems_of_every_invalid_file(write: Write, tmp_path: Path) -> None:
    from workflow.scenario import run_paths

    write(BASE.replace("do: begin_evaluation", "do: begin_evalution"), "lib/a.yaml")
    write(BASE.replace("role: laboratory", "role: lab_tech"), "lib/b.yaml")
    write(BASE, "lib/c.yaml")
    with pytest.raises(ScenarioInvalid) as caught:
        run_paths([tmp_path / "lib"])
    assert [(Path(p.file or "").name, p.path) for p in caught.value.problems] == [
        ("a.yaml", "do"), ("b.yaml", "actors.lab.role")
    ]
