"""`hsct scenario run` and the runner behind it: outcomes, expectations, output formats, time."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from states.errors import FieldProblem, InvalidCommand
from tests.cli.conftest import invoke, walk_scenario
from tests.walks import LAB, PHYS, WALKS
from workflow.scenario import ScenarioInvalid, load_scenario, run_paths, run_scenario
from workflow.service import PathwayService

Write = Callable[..., Path]

REFUSALS = """\
scenario: refusals are entries too
actors:
  dr_ross: {role: transplant_physician}
  rn_lee: {role: infusion_nurse}
pathways:
  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}
steps:
  - {on: 2026-01-05, by: dr_ross, do: refer, with: {diagnosis: multiple_myeloma}}
  - {on: 2026-01-06, by: rn_lee, do: begin_evaluation, expect: {refused: [role_not_permitted]}}
  - {on: 2026-01-06, by: dr_ross, do: begin_evaluation}
  - {on: 2026-01-07, by: dr_ross, do: begin_evaluation, expect: refused}
  - {on: 2026-01-07, by: dr_ross, do: record_consent, with: {consent_version: no}}
final: {phase: evaluation, entries: 5, refusals: 2, day: null, day0: null, flags: []}
"""

FAILING = """\
scenario: a step that should have been refused
actors:
  dr_ross: {role: transplant_physician}
pathways:
  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}
steps:
  - {on: 2026-01-05, by: dr_ross, do: refer}
  - {on: 2026-01-06, by: dr_ross, do: begin_evaluation, expect: {refused: [role_not_permitted]}}
"""


def _autologous_with_checks() -> dict[str, Any]:
    """The autologous walk (S01: Day 0 2026-02-04, neutrophil recovery Day +11) with a check on
    Day +13 and three platelet counts on Days +16..+18, the first transfusion-free week after
    the Day +8 platelet transfusion, so platelet recovery is Day +16 ([F:CIBMTR-PLT])."""
    walk = WALKS["autologous"]()
    data = walk_scenario("autologous")
    steps = data["steps"]
    confirm = next(i for i, s in enumerate(steps) if s["do"] == "confirm_engraftment")
    steps.insert(confirm, {
        "on": "2026-02-17T12:00",
        "check": {"phase": "awaiting_engraftment", "day": 13, "neutrophil_recovery_day": 11,
                  "platelet_recovery_day": None, "day0": "2026-02-04"},
    })
    labs = [
        {"on": (datetime(2026, 2, 4, 7, tzinfo=UTC) + timedelta(days=n)).isoformat(), "by": LAB["id"],
         "do": "record_lab", "with": {"anc_x10e9_per_l": 3.0, "platelets_x10e9_per_l": 30}}
        for n in (16, 17, 18)
    ]
    steps[-1:-1] = labs
    data["final"] = {
        "phase": "day100_complete",
        "planned_day0": "2026-02-04",
        "day0": "2026-02-04",
        "neutrophil_recovery_day": 11,
        "platelet_recovery_day": 16,
        "gvhd_max_grade": 0,
        "hct_number": 1,
        "entries": 1 + len(walk.steps) + len(labs),
        "refusals": 0,
        "flags": ["conditioning_length_outside_policy"],  # Mel200, one dose: accepted with its reason
    }
    return data


def test_a_whole_autologous_pathway_passes(write: Write) -> None:
    result = invoke("scenario", "run", write(_autologous_with_checks()))
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 0 failed"
    assert "PASSED" in result.stdout
    assert "D+11" in result.stdout  # the Day label column


def test_refusals_count_and_reason_codes_are_matched(write: Write) -> None:
    result = invoke("scenario", "run", write(REFUSALS))
    assert result.exit_code == 0, result.output
    assert "role_not_permitted" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 0 failed"


def test_a_failed_expectation_exits_1_and_names_the_step(write: Write) -> None:
    result = invoke("scenario", "run", write(FAILING))
    assert result.exit_code == 1, result.output
    assert "step 2 (begin_evaluation): expected a refusal with role_not_permitted, it succeeded" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "0 passed, 1 failed"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("", "expected success, it was refused (role_not_permitted)"),
        ("expect: {refused: [trigger_not_allowed_in_phase]}",
         "expected a refusal with trigger_not_allowed_in_phase, it was refused (role_not_permitted): "
         "missing trigger_not_allowed_in_phase"),
    ],
)
def test_a_refusal_that_was_not_expected_fails(write: Write, expect: str, message: str) -> None:
    text = FAILING.replace(
        "{on: 2026-01-06, by: dr_ross, do: begin_evaluation, expect: {refused: [role_not_permitted]}}",
        "{on: 2026-01-06, by: rn_lee, do: begin_evaluation" + (", " + expect if expect else "") + "}",
    ).replace("  dr_ross: {role: transplant_physician}", "  dr_ross: {role: transplant_physician}\n"
              "  rn_lee: {role: infusion_nurse}")
    result = run_scenario(write(text))
    assert not result.passed
    (failure,) = result.failures
    assert (failure.number, failure.outcome, failure.message) == (2, "refused", message)


def test_json_gives_the_same_results(write: Write) -> None:
    result = invoke("scenario", "run", "--json", write(REFUSALS))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["passed"], document["failed"]) == (1, 0)
    (scenario,) = document["scenarios"]
    assert scenario["verdict"] == "passed"
    steps = scenario["steps"]
    assert [s["trigger"] for s in steps] == [
        "refer", "begin_evaluation", "begin_evaluation", "begin_evaluation", "record_consent", "final"
    ]
    assert [s["outcome"] for s in steps[:5]] == ["succeeded", "refused", "succeeded", "refused", "succeeded"]
    assert steps[1]["reasons"] == ["role_not_permitted"]
    assert steps[1]["actor"] == "rn_lee"
    assert steps[1]["on"] == "2026-01-06"
    assert all(s["held"] for s in steps)


def test_junit_has_a_suite_per_scenario_and_a_failure_per_failed_step(write: Write, tmp_path: Path) -> None:
    write(REFUSALS, "suite/a.yaml")
    write(FAILING, "suite/b.yml")
    report = tmp_path / "junit.xml"
    result = invoke("scenario", "run", tmp_path / "suite", "--junit", report)
    assert result.exit_code == 1, result.output
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 1 failed"
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["refusals are entries too", "a step that should have been refused"]
    assert [s.get("failures") for s in suites] == ["0", "1"]
    failed = [c for c in suites[1].findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["step 2 (begin_evaluation)"]
    assert root.get("tests") == str(6 + 2)


def test_folders_expand_to_sorted_yaml_files(write: Write, tmp_path: Path) -> None:
    write(FAILING.replace("a step that should", "B"), "lib/b.yaml")
    write(REFUSALS.replace("refusals are entries too", "A"), "lib/a.yml")
    write(REFUSALS.replace("refusals are entries too", "C"), "lib/sub/c.yaml")
    write("not a scenario", "lib/notes.txt")
    results = run_paths([tmp_path / "lib"])
    assert [r.title for r in results] == ["A", "B have been refused", "C"]
    assert [r.passed for r in results] == [True, False, True]


def test_an_invalid_file_among_several_stops_everything_before_it_runs(
    write: Write, tmp_path: Path, sqlite_url: str
) -> None:
    write(REFUSALS, "lib/a.yaml")
    write(REFUSALS.replace("do: record_consent", "do: record_consnet"), "lib/b.yaml")
    result = invoke("scenario", "run", "--db", sqlite_url, tmp_path / "lib")
    assert result.exit_code == 2, result.output
    assert "b.yaml" in result.stderr
    assert "step 5: do: not a trigger or event of the chart [unknown_command]" in result.stderr
    assert not (tmp_path / "kept.sqlite").exists()


def test_kept_database_holds_the_scenario_times(write: Write, sqlite_url: str) -> None:
    """Date-only steps start their clinical day, plus their index in seconds (file order);
    a step dated before the previous one keeps its own effective time while the clock,
    which records, does not go back."""
    text = """\
scenario: late documentation
timezone: Europe/Oslo
actors:
  dr_ross: {role: transplant_physician}
pathways:
  p1: {patient: PT-8F3A21, route: autologous, graft_source: pbsc}
steps:
  - {on: 2026-01-05, by: dr_ross, do: refer}
  - {on: 2026-01-05, by: dr_ross, do: begin_evaluation}
  - {on: 2026-01-09T10:30, by: dr_ross, do: record_eligibility, with: {evidence: ECOG 1}}
  - {on: 2026-01-07, by: dr_ross, do: record_consent, with: {consent_version: v3}}
"""
    result = invoke("scenario", "run", "--db", sqlite_url, write(text))
    assert result.exit_code == 0, result.output
    service = PathwayService(sqlite_url)
    try:
        (pathway_id,) = service.pathway_ids()
        entries = service.history(pathway_id)
    finally:
        service.engine.dispose()
    # Oslo is UTC+1 in January: the clinical day 2026-01-05 starts at 23:00 UTC the day before.
    effective = [e.effective_at for e in entries]
    assert effective == [
        datetime(2026, 1, 4, 23, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 4, 23, 0, 1, tzinfo=UTC),
        datetime(2026, 1, 9, 9, 30, tzinfo=UTC),
        datetime(2026, 1, 6, 23, 0, 3, tzinfo=UTC),
    ]
    recorded = [e.recorded_at for e in entries]
    assert recorded == [*effective[:3], effective[2]]


def test_milestone_assertions_compare_whole_sets(write: Write) -> None:
    # In evaluation nothing is due yet: no conditioning, no Day 0 (states/milestones.py).
    held = run_scenario(write(REFUSALS.replace("final: {", "final: {due: [], overdue: [], ")))
    assert held.passed, held.failures
    text = REFUSALS.replace("final: {", "final: {due: [day100_assessment], overdue: [], ")
    final = run_scenario(write(text)).rows[-1]
    failed = {a.key: a.message for a in final.assertions if not a.held}
    assert failed == {"due": "due: expected [day100_assessment], got []"}


def test_assertion_mismatches_say_what_was_expected_and_found(write: Write) -> None:
    text = REFUSALS.replace("entries: 5", "entries: 4").replace("phase: evaluation", "phase: referred")
    result = run_scenario(write(text))
    (final,) = result.failures
    assert final.name == "final (p1)"
    assert final.message == "phase: expected referred, got evaluation; entries: expected 4, got 5"


def test_an_invalid_command_during_a_run_fails_the_step_naming_the_field(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service names payload fields in API terms (`payload.`); the runner words them as the
    scenario file does (the step's `with:`)."""

    def invalid(*args: object, **kwargs: object) -> None:
        problem = FieldProblem("payload.consent_version", "string_too_long", "too long")
        raise InvalidCommand("record_consent", [problem, FieldProblem("at", "timezone_aware", "naive")])

    monkeypatch.setattr(PathwayService, "fire", invalid)
    result = run_scenario(write(FAILING.replace(", expect: {refused: [role_not_permitted]}", "")))
    (failure,) = result.failures
    assert failure.outcome == "invalid"
    assert failure.message.endswith(
        "invalid command: with.consent_version: too long [string_too_long]; at: naive [timezone_aware]"
    )


def test_a_correction_the_service_finds_malformed_is_reported_on_the_steps_with(write: Write) -> None:
    """Only the service checks a correction's changes against the corrected entry's payload."""
    steps = FAILING.split("  - {on: 2026-01-06")[0]
    steps += "  - {on: 2026-01-06, by: dr_ross, do: correct_entry,\n"
    steps += "     with: {sequence: 1, changes: {surname: Doe}, reason: typo}}\n"
    result = run_scenario(write(steps))
    (failure,) = result.failures
    assert failure.outcome == "invalid"
    assert "with.changes.surname: the corrected entry's payload has no such field [extra_forbidden]" in failure.message
    assert "payload." not in failure.message


def test_several_pathways_and_final_per_pathway(write: Write, sqlite_url: str) -> None:
    text = """\
scenario: two patients
actors:
  dr_ross: {role: transplant_physician}
pathways:
  auto: {patient: PT-0001, route: autologous, graft_source: pbsc}
  sib: {patient: PT-0002, route: allogeneic, donor_type: matched_sibling, graft_source: pbsc}
steps:
  - {on: 2026-01-05, pathway: auto, by: dr_ross, do: refer}
  - {on: 2026-01-05, pathway: sib, by: dr_ross, do: refer, with: {diagnosis: aml}}
  - {on: 2026-01-06, pathway: sib, by: dr_ross, do: begin_evaluation}
  - {on: 2026-01-07, pathway: auto, check: {phase: referred, entries: 1}}
final:
  auto: {phase: referred}
  sib: {phase: evaluation, entries: 2}
"""
    result = invoke("scenario", "run", "--db", sqlite_url, write(text))
    assert result.exit_code == 0, result.output
    assert "pathway" in result.stdout  # the pathway column appears when there are several
    listed = invoke("pathway", "list", "--db", sqlite_url, "--phase", "evaluation")
    assert listed.exit_code == 0, listed.output
    assert "1 pathway(s)" in listed.stdout
    assert "allogeneic" in listed.stdout


def test_the_name_follows_the_linked_pathway_of_a_subsequent_transplant(write: Write) -> None:
    data = walk_scenario("autologous", upto="complete_day100")
    relapse_on = (WALKS["autologous"]().day0 + timedelta(days=60)).isoformat()
    data["steps"] += [
        {"on": relapse_on, "by": PHYS["id"], "do": "report_relapse", "with": {"method": "pet_ct"}},
        {"on": relapse_on + "T12:00", "by": PHYS["id"], "do": "start_subsequent_transplant",
         "with": {"reason": "relapse", "route": "autologous", "graft_source": "pbsc"}},
        {"on": relapse_on + "T13:00", "by": PHYS["id"], "do": "record_eligibility", "with": {"evidence": "ECOG 1"}},
    ]
    data["final"] = {"phase": "evaluation", "hct_number": 2, "entries": 2, "day0": None}
    result = run_scenario(write(data))
    assert result.passed, [r.message for r in result.failures]


def test_the_python_api_takes_a_model_and_checks_it_first(write: Write) -> None:
    scenario = load_scenario(write(REFUSALS))
    assert run_scenario(scenario).passed
    broken = scenario.model_copy(update={"actors": {"dr_ross": scenario.actors["dr_ross"]}})
    with pytest.raises(ScenarioInvalid) as caught:
        run_scenario(broken)
    assert (caught.value.step, caught.value.path) == (2, "by")


def test_rows_carry_date_day_label_actor_and_reasons(write: Write) -> None:
    result = run_scenario(write(_autologous_with_checks()))
    assert result.passed, [r.message for r in result.failures]
    check = next(r for r in result.rows if r.kind == "check")
    assert (check.on, check.day_label) == (date(2026, 2, 17), "D+13")
    infuse = next(r for r in result.rows if r.trigger == "infuse")
    assert (infuse.day_label, infuse.actor, infuse.outcome) == ("D0", "rn-lee", "succeeded")
    assert {r.kind for r in result.rows} == {"action", "check", "final"}
    refused = run_scenario(write(REFUSALS, "refusals.yaml")).rows[1]
    assert (refused.actor, refused.outcome, refused.reasons) == ("rn_lee", "refused", ("role_not_permitted",))


def test_json_over_several_files_keeps_stdout_pure_json(write: Write, tmp_path: Path) -> None:
    write(REFUSALS, "lib/a.yaml")
    write(FAILING, "lib/b.yaml")
    result = invoke("scenario", "run", "--json", tmp_path / "lib")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert [s["verdict"] for s in document["scenarios"]] == ["passed", "failed"]
    assert [Path(s["file"]).name for s in document["scenarios"]] == ["a.yaml", "b.yaml"]
    assert (document["passed"], document["failed"]) == (1, 1)


LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


def test_a_run_sent_again_into_its_database_replays_without_writing(sqlite_url: str) -> None:
    """README command 1 can be re-run: every step replays (same idempotency keys), each check reads
    its pathway as it stood at that step, and no pathway or entry is written twice. The files have
    checks in every phase, a linked subsequent transplant, and an emergency donor whose payload has
    nested optional fields (a re-send compares payloads as stored, without their nulls)."""
    names = ["happy_autologous.yaml", "s13_mud_bm_primary_graft_failure_second_hct.yaml",
             "rule_emergency_haplo_dsa_pending.yaml"]
    files = [LIBRARY / name for name in names]
    first = run_paths(files, db_url=sqlite_url)
    service = PathwayService(sqlite_url)
    pathways = service.pathway_ids()
    entries = sum(len(service.history(p)) for p in pathways)
    again = run_paths(files, db_url=sqlite_url)
    assert [r.passed for r in first] == [r.passed for r in again] == [True] * len(files)
    assert service.pathway_ids() == pathways
    assert sum(len(service.history(p)) for p in pathways) == entries
    service.engine.dispose()
