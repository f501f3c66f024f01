"""Writing scenarios: `hsct scenario new` drafts a file that runs as it is, and
`hsct scenario run --fail-fast` stops at the first expectation that does not hold."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from states.vocabulary import DonorType, GraftSource, Route
from tests.cli.conftest import invoke
from workflow.scenario import load_scenario, run_scenario
from workflow.scenario.template import default_graft_source, starting_scenario

COMBINATIONS = [(Route.AUTOLOGOUS, None), *((Route.ALLOGENEIC, donor) for donor in DonorType)]


@pytest.mark.parametrize(("route", "donor"), COMBINATIONS, ids=lambda v: getattr(v, "value", "none"))
def test_a_new_file_runs_and_passes(tmp_path: Path, route: Route, donor: DonorType | None) -> None:
    path = tmp_path / "draft.yaml"
    args = ["scenario", "new", path, "--route", route.value, "--start", "2026-03-02"]
    result = invoke(*args, *(["--donor-type", donor.value] if donor else []))
    assert result.exit_code == 0, result.output
    scenario = load_scenario(path)
    (declared,) = scenario.pathways.values()
    assert (declared.route, declared.donor_type, declared.graft_source) == (route, donor, default_graft_source(donor))
    assert scenario.steps[0].on.isoformat() == "2026-03-02"
    ran = run_scenario(path)
    assert ran.passed, [row.message for row in ran.failures]
    assert [row.outcome for row in ran.rows].count("succeeded") == 4


def test_the_draft_names_the_commands_that_may_follow() -> None:
    from states.chart import CHART
    from states.vocabulary import Phase

    text = starting_scenario(Route.AUTOLOGOUS, start=date(2026, 3, 2))
    allowed = {c.name for c in CHART.commands.values() if Phase.EVALUATION in c.phases()}
    assert "complete_evaluation" in allowed
    for name in allowed - {"begin_evaluation", "record_consent", "record_eligibility"}:
        assert f" {name}" in text.split("# Next, in phase evaluation the chart allows:")[1], name


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        (["--route", "autologous", "--donor-type", "matched_sibling"], "donor_type_for_autologous"),
        (["--route", "allogeneic"], "donor_type_missing"),
        (
            ["--route", "allogeneic", "--donor-type", "haploidentical", "--graft-source", "cord_blood"],
            "graft_source_inconsistent",
        ),
    ],
)
def test_a_route_that_does_not_agree_writes_nothing(tmp_path: Path, options: list[str], rule: str) -> None:
    path = tmp_path / "draft.yaml"
    result = invoke("scenario", "new", path, *options)
    assert result.exit_code == 2
    assert f"[{rule}]" in result.output
    assert not path.exists()


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("keep me", encoding="utf-8")
    result = invoke("scenario", "new", path, "--route", "autologous")
    assert result.exit_code == 2
    assert "exists" in result.output
    assert path.read_text(encoding="utf-8") == "keep me"


def test_a_graft_source_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "marrow.yaml"
    result = invoke(
        "scenario",
        "new",
        path,
        "--route",
        "allogeneic",
        "--donor-type",
        "matched_sibling",
        "--graft-source",
        "bone_marrow",
        "--title",
        "MSD marrow",
    )
    assert result.exit_code == 0, result.output
    scenario = load_scenario(path)
    assert scenario.scenario == "MSD marrow"
    assert next(iter(scenario.pathways.values())).graft_source is GraftSource.BONE_MARROW


# --- fail-fast ---------------------------------------------------------------------------------

FAILING_STEP = 2  # begin_evaluation, which succeeds while the file expects a refusal


def _suite(tmp_path: Path) -> Path:
    """a.yaml fails at step 2 with steps after it; b.yaml passes (sorted: a runs first)."""
    folder = tmp_path / "suite"
    folder.mkdir()
    draft = starting_scenario(Route.AUTOLOGOUS, start=date(2026, 3, 2))
    failing = draft.replace("do: begin_evaluation}", "do: begin_evaluation, expect: refused}")
    assert failing != draft
    (folder / "a.yaml").write_text(failing, encoding="utf-8")
    (folder / "b.yaml").write_text(draft, encoding="utf-8")
    return folder


def test_without_fail_fast_every_step_and_file_runs(tmp_path: Path) -> None:
    result = invoke("scenario", "run", "--json", _suite(tmp_path))
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert (document["passed"], document["failed"], document["not_run"]) == (1, 1, 0)
    first = document["scenarios"][0]
    assert first["stopped"] is False
    assert [s["trigger"] for s in first["steps"]][-1] == "final"


def test_fail_fast_stops_at_the_first_failed_step_and_file(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    result = invoke("scenario", "run", "--json", "--fail-fast", suite)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert (document["passed"], document["failed"], document["not_run"]) == (0, 1, 1)
    (only,) = document["scenarios"]
    assert only["stopped"] is True
    assert [s["number"] for s in only["steps"]] == list(range(1, FAILING_STEP + 1))
    assert only["steps"][-1]["held"] is False

    table = invoke("scenario", "run", "--fail-fast", suite)
    assert table.exit_code == 1
    assert table.stdout.rstrip().splitlines()[-1] == "0 passed, 1 failed, 1 not run (stopped at the first failure)"
    assert "--fail-fast" in table.stdout


def test_fail_fast_on_a_passing_run_changes_nothing(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    (suite / "a.yaml").unlink()
    result = invoke("scenario", "run", "--fail-fast", suite)
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 0 failed"


def test_fail_fast_in_the_python_api_stops_before_final(tmp_path: Path) -> None:
    path = _suite(tmp_path) / "a.yaml"
    stopped = run_scenario(path, fail_fast=True)
    assert stopped.stopped
    assert [row.number for row in stopped.rows] == list(range(1, FAILING_STEP + 1))
    whole = run_scenario(path)
    assert not whole.stopped
    assert len(whole.rows) > len(stopped.rows)


def test_the_referral_date_defaults_to_today_in_utc(tmp_path: Path) -> None:
    from freezegun import freeze_time

    path = tmp_path / "today.yaml"
    with freeze_time("2026-05-31T23:30:00-02:00"):  # already 1 June in UTC
        result = invoke("scenario", "new", path, "--route", "autologous")
    assert result.exit_code == 0, result.output
    assert load_scenario(path).steps[0].on == date(2026, 6, 1)
