"""Fuzz the scenario loader: any bytes, any text, near-valid files and data (T23).

A failure is any exception other than the documented ones (tests/fuzz/targets.py).
"""

from __future__ import annotations

import json

import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzz.strategies import (
    BASE_SCENARIO,
    BASE_SCENARIO_TEXT,
    FUZZ,
    NASTY_STRINGS,
    date_like,
    json_values,
    mutated,
)
from tests.fuzz.targets import scenario_data, scenario_file


def test_the_base_scenario_is_valid() -> None:
    # The near-valid examples are one mutation away from this file: it must load and run.
    scenario_file(BASE_SCENARIO_TEXT)
    scenario_data(BASE_SCENARIO)


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes(data: bytes) -> None:
    scenario_file(data)


@FUZZ
@given(st.text(max_size=3000))
def test_any_text(text: str) -> None:
    scenario_file(text.encode("utf-8"))


@FUZZ
@given(mutated(BASE_SCENARIO))
def test_near_valid_data_through_the_python_api(data: object) -> None:
    scenario_data(data)


def _yaml_bytes(data: object) -> bytes:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # values YAML cannot write (e.g. digits over Python's limit)
        assume(False)
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(mutated(BASE_SCENARIO))
def test_near_valid_files(data: object) -> None:
    scenario_file(_yaml_bytes(data))


def _flow(value: object) -> str:
    """A value as one line of YAML (JSON is YAML's flow style)."""
    return json.dumps(value, ensure_ascii=False)


TARGETS = (b"on: 2026-03-03", b"on: 2026-04-03T13:00", b"check: {phase: evaluation}", b"bags: 4",
           b"timezone: UTC", b"cd34_x10e6_per_kg: 6.4")


@FUZZ
@given(st.sampled_from(TARGETS), date_like | st.sampled_from(NASTY_STRINGS) | json_values.map(_flow))
def test_odd_scalars_in_a_valid_file(where: bytes, scalar: str) -> None:
    """Impossible dates, odd offsets and zones, huge numbers written straight into the YAML."""
    key = where.split(b":")[0]
    text = BASE_SCENARIO_TEXT.replace(where, key + b": " + scalar.encode("utf-8", "surrogatepass"), 1)
    if where.startswith(b"check"):
        text = BASE_SCENARIO_TEXT.replace(where, b"check: {phase: evaluation, planned_day0: " +
                                          scalar.encode("utf-8", "surrogatepass") + b"}", 1)
    scenario_file(text)
