"""Errors speak the caller's terms: the Python API names a payload's fields after the parameter
that carries it (`payload.<field>`); scenario files and HTTP bodies (their `with`) are worded
by `on_surface` (tests/cli/test_scenario_run.py and tests/http/test_api.py show those)."""

from __future__ import annotations

import inspect

import pytest

from states.errors import FieldProblem, InvalidCommand
from states.vocabulary import Phase
from tests.helpers_core import COORD, PHYS, QM, Written, problems, reach
from workflow.clock import ManualClock
from workflow.policy_change import preview_policy_change
from workflow.service import PathwayService
from workflow.validation import PAYLOAD, on_surface

REFERRAL = {"patient_ref": "PT-WORD01", "route": "autologous", "graft_source": "pbsc"}


def test_the_payload_is_named_after_the_parameter_of_fire_refer_and_can_fire() -> None:
    """If `fire` renamed its parameter, the errors would name a parameter that no longer exists."""
    for method in (PathwayService.fire, PathwayService.can_fire, PathwayService.refer):
        assert PAYLOAD in inspect.signature(method).parameters, method.__name__


def test_fire_names_a_misspelt_field_on_payload_with_the_closest_name(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    before = Written.of(service, pathway_id)
    with pytest.raises(InvalidCommand) as bad:
        service.fire(pathway_id, "record_consent", {"consent_versoin": "v3"}, actor=COORD, at=clock.now())
    assert problems(bad.value) == {
        ("payload.consent_versoin", "extra_forbidden"),
        ("payload.consent_version", "missing"),
    }
    assert "payload.consent_versoin: Extra inputs are not permitted; did you mean consent_version?" in str(bad.value)
    assert "with." not in str(bad.value)
    assert Written.of(service, pathway_id) == before


def test_can_fire_and_refer_word_payload_problems_the_same_way(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    with pytest.raises(InvalidCommand) as dry:
        service.can_fire(pathway_id, "record_consent", {"consent_version": 3}, actor=COORD)
    assert problems(dry.value) == {("payload.consent_version", "string_type")}
    with pytest.raises(InvalidCommand) as referral:
        service.refer({**REFERRAL, "graft_sourse": "pbsc"}, actor=PHYS, at=clock.now())
    assert ("payload.graft_sourse", "extra_forbidden") in problems(referral.value)
    assert referral.value.problems[0].message.endswith("did you mean graft_source?")


def test_the_whole_payload_and_a_corrections_changes_are_payload_too(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    with pytest.raises(InvalidCommand) as whole:
        service.fire(pathway_id, "hold", ["pneumonia"], actor=PHYS, at=clock.now())  # type: ignore[arg-type]
    assert problems(whole.value) == {("payload", "model_type")}
    correction = {"sequence": 1, "changes": {"surname": "Doe"}, "reason": "typo"}
    with pytest.raises(InvalidCommand) as changes:
        service.fire(pathway_id, "correct_entry", correction, actor=QM, at=clock.now())
    assert problems(changes.value) == {("payload.changes.surname", "extra_forbidden")}


def test_on_surface_renames_only_the_leading_payload_segment() -> None:
    error = InvalidCommand(
        "hold",
        [
            FieldProblem("payload", "model_type", "must be a mapping"),
            FieldProblem("payload.reason.0", "string_type", "must be text"),
            FieldProblem("payloads.reason", "extra_forbidden", "kept"),
            FieldProblem("actor.id", "string_pattern_mismatch", "kept"),
            FieldProblem("", "unknown_command", "kept"),
        ],
    )
    worded = on_surface(error, "with")
    assert worded.command == "hold"
    assert [p.path for p in worded.problems] == ["with", "with.reason.0", "payloads.reason", "actor.id", ""]
    assert [(p.rule, p.message) for p in worded.problems] == [(p.rule, p.message) for p in error.problems]
    assert str(worded).startswith("invalid 'hold': with: must be a mapping [model_type]; with.reason.0:")


def test_a_policy_preview_names_its_own_parameter(service: PathwayService, clock: ManualClock) -> None:
    """`preview_policy_change(service, pathway_id, version)`: the version is a parameter, not a payload."""
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    with pytest.raises(InvalidCommand) as unknown:
        preview_policy_change(service, pathway_id, "never-registered")
    assert problems(unknown.value) == {("version", "policy_version_unknown")}
