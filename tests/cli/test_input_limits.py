"""Bad files at the command line (outside tester, item 8): exit 2 with the library's message
naming the file, the step (number and `do`), the field path and the rule; never a traceback.
The limits are those of docs/decisions.md ("Input limits")."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.conftest import invoke
from workflow.input_limits import MAX_NESTING_DEPTH, MAX_POLICY_BYTES, MAX_SCENARIO_BYTES

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "scenarios" / "happy_autologous.yaml").read_text(encoding="utf-8")
STEP_3 = "{on: 2026-03-03, by: co_ames, do: begin_evaluation}"  # line 24, step 3
CHECK_4 = "check: {phase: evaluation}"  # line 26, step 4
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
"""Nine levels of ten aliases each: 10^9 values once expanded, 400 bytes written."""

CASES = {
    "nested_500_brackets": (BASE + "\nx: " + "[" * 500 + "]" * 500 + "\n",
                            f"values are nested more than {MAX_NESTING_DEPTH} deep [too_deep]"),
    "on_feb_30": (BASE.replace(STEP_3, STEP_3.replace("2026-03-03", "2026-02-30")),
                  ":24: step 3 (begin_evaluation): on: is not a calendar date"),
    "on_month_13": (BASE.replace(STEP_3, STEP_3.replace("2026-03-03", "2026-13-01")),
                    ":24: step 3 (begin_evaluation): on: is not a calendar date"),
    "planned_day0_feb_30": (BASE.replace(CHECK_4, "check: {phase: evaluation, planned_day0: 2026-02-30}"),
                            ":26: step 4 (check): check.planned_day0: Input should be a valid date"),
    "odd_key_in_final": (BASE.replace("\nfinal:", "\nfinal:\n  \u00b2: 1", 1),
                         "final.<key>: Extra inputs are not permitted [extra_forbidden]"),
    "unhashable_key_in_final": (BASE.replace("\nfinal:", "\nfinal:\n  ? [a, b]\n  : 1", 1),
                                "found unhashable key [yaml_syntax]"),
    "billion_laughs": (BASE + "\n" + LAUGHS, "aliases counted in full) [too_many_nodes]"),
    "too_large": (BASE + ("# padding\n" * (MAX_SCENARIO_BYTES // 10 + 1)),
                  f"bytes; the limit is {MAX_SCENARIO_BYTES:,} [too_large]"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_scenario_file_exits_2_naming_where_and_which_rule(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    for command in ("validate", "run"):
        result = invoke("scenario", command, path)
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)  # not a traceback
        assert f"{path}" in result.stderr
        assert expected in result.stderr


def test_a_file_far_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as out:  # 48 MB of a scenario's lines: once 2 GB and minutes to refuse
        out.write(BASE.encode() + b"  - {on: 2026-03-03, by: co_ames, do: begin_evaluation}\n" * 900_000)
    started = time.perf_counter()
    result = invoke("scenario", "validate", path)
    assert result.exit_code == 2
    assert "[too_large]" in result.stderr
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(("name", "text"), [
    ("deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n"),
    ("deep.yaml", "x: " + "[" * 500 + "]" * 500 + "\n"),
    ("digits.toml", "max_payload_depth = " + "9" * 5000 + "\n"),
    ("large.toml", "# padding\n" * (MAX_POLICY_BYTES // 10 + 1)),
    ("list.yaml", "[1, 2]\n"),
])
def test_a_bad_policy_file_exits_2_naming_it(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = invoke("commands", "--policy", path)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert name in result.stderr


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("deep.json", "[" * 5000 + "]" * 5000, "nested more than"),
    ("digits.json", '{"entries": ' + "1" * 5000 + "}", "not JSON"),
    ("types.json", json.dumps({"format": 1, "heads": []}), "exactly the members"),
])
def test_a_malformed_checkpoint_exits_2(name: str, text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = invoke("audit", "verify", "--db", f"sqlite:///{tmp_path / 'absent.sqlite'}", "--checkpoint", path)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert expected in result.stderr


def test_a_public_key_file_that_is_not_text_exits_2(tmp_path: Path) -> None:
    key = tmp_path / "key.bin"
    key.write_bytes(b"\xff\xfe" * 10)
    checkpoint = tmp_path / "cp.json"
    checkpoint.write_text("{}", encoding="utf-8")
    result = invoke("audit", "verify", "--checkpoint", checkpoint, "--public-key", key)
    assert result.exit_code == 2, result.output
    assert "--public-key" in result.stderr
