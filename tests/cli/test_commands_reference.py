"""`hsct commands` and docs/commands.md: the reference is read off the chart, never kept by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from states.chart import CHART
from states.policy import DEFAULT_ROLES
from tests.cli.conftest import invoke
from workflow.reference import command_names, markdown, payload_fields, unit_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_docs_commands_md_is_generated_from_the_chart() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/commands.md drifted from the chart: run `hsct commands --output docs/commands.md`"
    )


def test_every_command_of_the_chart_and_refer_is_listed() -> None:
    assert set(command_names()) == set(CHART.commands) | {"refer"}
    text = markdown()
    for name in command_names():
        assert f"## `{name}`" in text


@pytest.mark.parametrize("name", sorted(CHART.commands))
def test_a_command_shows_its_guards_roles_and_caller_fields(name: str) -> None:
    command = CHART.commands[name]
    result = invoke("commands", name)
    assert result.exit_code == 0, result.output
    for guard in command.guards:
        assert f"`{guard}`" in result.output
    for role in DEFAULT_ROLES[name]:
        assert f"`{role}`" in result.output
    sent = set(command.payload.model_fields) - command.payload.derived_fields
    shown = {row["field"] for row in payload_fields(command)}
    assert shown == sent
    for field in sent:
        assert f"| `{field}` |" in result.output


def test_limits_and_units_come_from_the_payload_model() -> None:
    rows = {row["field"]: row for row in payload_fields(CHART.commands["infuse"])}
    assert "at least 2 items" in rows["verifiers"]["limits"]
    assert unit_of("anc_x10e9_per_l") == "x10^9/L"
    assert unit_of("cd34_x10e6_per_kg") == "x10^6/kg"
    assert unit_of("sample_id") is None


def test_a_misspelt_command_gets_the_closest_names_and_exit_2() -> None:
    result = invoke("commands", "infsue")
    assert result.exit_code == 2
    assert "did you mean infuse" in result.output


REASONS_DOC = DOC.parent / "reason-codes.md"


def test_docs_reason_codes_md_is_generated_from_states_reasons() -> None:
    from workflow.reference import reason_codes_markdown

    assert REASONS_DOC.read_text(encoding="utf-8") == reason_codes_markdown(), (
        "docs/reason-codes.md drifted from states/reasons.py: run `hsct explain --output docs/reason-codes.md`"
    )


def test_explain_prints_the_rule_and_source_of_a_code() -> None:
    from states.reasons import REASONS

    result = invoke("explain", "donor_idm_stale", "role_not_permitted")
    assert result.exit_code == 0, result.output
    for code in ("donor_idm_stale", "role_not_permitted"):
        assert f"{code}: {REASONS[code].rule} [{REASONS[code].source}]" in result.output
    everything = invoke("explain")
    assert everything.exit_code == 0
    assert len(everything.output.strip().splitlines()) == len(REASONS)


def test_a_misspelt_code_gets_the_closest_codes_and_exit_2() -> None:
    result = invoke("explain", "donor_idm_stal")
    assert result.exit_code == 2
    assert "did you mean donor_idm_stale" in result.output
