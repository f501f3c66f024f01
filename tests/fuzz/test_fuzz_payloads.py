"""Fuzz every command's payload through `PathwayService.fire` (T23): near-valid payloads (a valid
one with one value replaced, removed or added) and any bytes, fired at pathways in many phases.

A failure is any exception but a Result, `Refused`, `InvalidCommand` or `IdempotencyMisuse`, or a
pathway changed after its host transaction was rolled back (tests/fuzz/targets.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from states.errors import InvalidCommand
from tests.fuzz.strategies import EXAMPLES, FUZZ, json_values, mutated, paths, texts, values
from tests.fuzz.targets import WORLD_PHASES, commands, fire_in_world, fire_payload, world
from tests.model.machine import VALID, Actor

PER_COMMAND = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
"""Half the budget per command, each example fired at all the world's pathways: 64 commands x 50
examples x 16 pathways took 38 s on two cores beside a fuzzer run; a long run (HSCT_FUZZ_EXAMPLES)
scales it."""


def near_valid(payload: dict[str, Any]) -> st.SearchStrategy[Any]:
    """One mutation of `payload`; a command without fields gets one unexpected field."""
    if paths(payload):
        return mutated(payload)
    return st.dictionaries(texts, values, min_size=1, max_size=1)


def relabelled(payload: Any, pathway: int) -> Any:
    """The infusion label names the pathway's patient, so a mutation elsewhere gets past the
    bedside identity check to the code behind it."""
    if isinstance(payload, dict) and "label_recipient_ref" in payload:
        here = world().pathways[pathway]
        return {**payload, "label_recipient_ref": here.patient_ref}
    return payload


@st.composite
def near_valid_fire(draw: st.DrawFn, command: str) -> tuple[Actor, Any]:
    """A permitted actor and a near-valid payload of `command`."""
    actor, payload = draw(st.sampled_from(VALID[command]), label="valid payload")
    return actor, draw(near_valid(payload), label="mutated payload")


@pytest.mark.parametrize("command", commands())
def test_the_payloads_mutated_are_valid(command: str) -> None:
    """Each mutation is one step from a payload the service validates (accepted or refused by a
    guard, not InvalidCommand), so a near-valid input reaches the guards and effects."""
    for actor, payload in VALID[command]:
        outcome = fire_in_world(0, command, actor, timedelta(0), relabelled(payload, 0))
        assert not isinstance(outcome, InvalidCommand), (payload, outcome)


@pytest.mark.parametrize("command", commands())
@PER_COMMAND
@given(data=st.data())
def test_near_valid_payloads_of_every_command_at_every_phase(command: str, data: st.DataObject) -> None:
    actor, payload = data.draw(near_valid_fire(command))
    for pathway in range(len(WORLD_PHASES)):
        fire_in_world(pathway, command, actor, timedelta(0), relabelled(payload, pathway))


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    fire_payload(data)


@FUZZ
@given(st.binary(min_size=4, max_size=4), json_values)
def test_any_json_value_as_the_payload(head: bytes, payload: object) -> None:
    """Lists, strings, numbers and nested objects where a command's object belongs."""
    fire_payload(head + json.dumps(payload).encode("utf-8", "surrogatepass"))
