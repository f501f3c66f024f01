"""Typed commands: the generated names module is in step with the chart, names from outside
are checked with "did you mean", and mypy catches a misspelt name or payload field."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mypy import api

from states.chart import CHART
from states.command_names import COMMAND_NAMES, PAYLOADS, CommandName
from states.errors import InvalidCommand
from tests.cli.conftest import invoke
from tests.walks import COORD, PHYS
from workflow.command_module import python_module
from workflow.service import PathwayService, command_name

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "states" / "command_names.py"
AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_the_generated_module_is_in_step_with_the_chart() -> None:
    assert GENERATED.read_text(encoding="utf-8") == python_module(), (
        "run `hsct commands --python --output states/command_names.py`"
    )
    assert set(typing.get_args(CommandName)) == set(COMMAND_NAMES) == set(CHART.commands)
    assert {name: spec.payload for name, spec in CHART.commands.items()} == PAYLOADS


def test_a_misspelt_name_from_outside_gets_the_closest_names() -> None:
    assert command_name("record_consent") == "record_consent"
    with pytest.raises(InvalidCommand) as bad:
        command_name("record_concent")
    [problem] = bad.value.problems
    assert (problem.path, problem.rule) == ("command", "unknown_command")
    assert "did you mean record_consent" in problem.message
    with pytest.raises(InvalidCommand, match=r"not a trigger or event \[unknown_command\]"):
        command_name(42)


HOST = """
from datetime import UTC, datetime

from states.command_names import RecordConsent
from workflow.service import PathwayService

service = PathwayService("sqlite:///host.sqlite")
actor = {"id": "co-ames", "role": "transplant_coordinator"}
at = datetime(2026, 1, 7, 10, tzinfo=UTC)
service.fire("p", "record_consent", RecordConsent(consent_version="v3"), actor=actor, at=at)
service.fire("p", "record_concent", RecordConsent(consent_version="v3"), actor=actor, at=at)
service.fire("p", "record_consent", RecordConsent(consent_versoin="v3"), actor=actor, at=at)
"""


def test_mypy_catches_a_misspelt_command_and_a_wrong_payload_field(tmp_path: Path) -> None:
    host = tmp_path / "host.py"
    host.write_text(HOST, encoding="utf-8")
    out, err, status = api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / ".mypy"), str(host)]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, err
    assert len(errors) == 2, out
    assert 'host.py:11: error: Argument 2 to "fire" of "PathwayService" has incompatible type' in errors[0]
    assert "Literal['record_concent']" in errors[0]
    assert "host.py:12: error:" in errors[1]
    assert "consent_versoin" in errors[1]


def test_a_misspelt_payload_field_gets_the_closest_names(service: PathwayService) -> None:
    referral = {"patient_ref": "PT-TYPED1", "route": "autologous", "graft_source": "pbsc"}
    pathway_id = service.refer(referral, actor=PHYS, at=AT).pathway_id
    with pytest.raises(InvalidCommand) as bad:
        service.fire(pathway_id, "record_consent", {"consent_versoin": "v3"}, actor=COORD, at=AT)
    by_path = {p.path: p for p in bad.value.problems}
    assert by_path["payload.consent_versoin"].rule == "extra_forbidden"
    assert by_path["payload.consent_versoin"].message.endswith("did you mean consent_version?")
    assert by_path["payload.consent_version"].rule == "missing"
    assert len(service.history(pathway_id)) == 1  # nothing written


def test_hsct_commands_python_prints_the_module() -> None:
    printed = invoke("commands", "--python")
    assert printed.exit_code == 0
    assert printed.stdout == python_module()
