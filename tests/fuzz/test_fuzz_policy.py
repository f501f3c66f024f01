"""Fuzz policy files (TOML and YAML): a Policy or PolicyError, nothing else (T23)."""

from __future__ import annotations

import contextlib

import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from states.errors import PolicyError
from states.policy import Policy, policy_from_mapping
from tests.fuzz.strategies import FUZZ, mutated
from tests.fuzz.targets import policy_file

DEFAULTS = Policy().model_dump(mode="json")
TOML_LITERALS = ("[" * 400 + "]" * 400, "9" * 5000, "1e400", "nan", "{a = {b = {c = 1}}}", "'\\ud800'",
                 "1979-05-27T07:32:00+25:00", "2026-02-30", '"x"', "[[1], {a = 1}]")


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from((".toml", ".yaml")))
def test_any_bytes(data: bytes, suffix: str) -> None:
    policy_file(data, suffix)


@FUZZ
@given(st.text(max_size=2000), st.sampled_from((".toml", ".yaml")))
def test_any_text(text: str, suffix: str) -> None:
    policy_file(text.encode("utf-8"), suffix)


@FUZZ
@given(mutated(DEFAULTS))
def test_near_valid_mappings(data: object) -> None:
    with contextlib.suppress(PolicyError):
        policy_from_mapping(data)


@FUZZ
@given(mutated(DEFAULTS))
def test_near_valid_yaml_files(data: object) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        assume(False)
    policy_file(text.encode("utf-8", "surrogatepass"), ".yaml")


@FUZZ
@given(st.sampled_from(sorted(DEFAULTS)), st.sampled_from(TOML_LITERALS))
def test_odd_toml_values(key: str, literal: str) -> None:
    policy_file(f"{key} = {literal}\n".encode(), ".toml")
