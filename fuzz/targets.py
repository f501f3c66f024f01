#!/usr/bin/env python3
"""Coverage-guided fuzzing with atheris (libFuzzer) of the readers tests/fuzz checks with hypothesis.

    .venv/bin/python fuzz/targets.py scenario [libFuzzer options] [CORPUS_DIR ...]
    .venv/bin/python fuzz/targets.py scenario -max_total_time=600 tests/fuzz/corpus/scenario

TARGET is one of: scenario, policy_toml, policy_yaml, checkpoint, export_jsonl, export_csv,
fire_payload (a command and its payload on a pathway of a prepared world: tests/fuzz/targets.py).
Each input is one file's bytes; a crash is any exception other than the reader's documented
error (tests/fuzz/targets.py). libFuzzer writes a crashing input to crash-<hash>: copy it into
tests/fuzz/corpus/<reader>/ so tests/fuzz/test_corpus.py replays it. Needs the `fuzz` extra.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import atheris  # type: ignore[import-untyped]  # the `fuzz` extra; no stubs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The project's own code only: PyYAML's pure-Python parser and tomllib, instrumented line by line,
# made the scenario and policy targets 10-100 times slower (60 and 2 inputs a second) while the
# coverage they add is the parsers', not the readers' under test.
with atheris.instrument_imports(include=["workflow", "states", "persistence", "verify_export"]):
    from tests.fuzz import targets

# tools/verify_export.py is loaded from its path, past the import hook: instrument it by hand, or
# the export targets run blind (no coverage feedback, the corpus never grows).
for _function in vars(targets.VERIFY_EXPORT).values():
    if inspect.isfunction(_function):
        atheris.instrument_func(_function)

TARGETS: dict[str, Callable[[bytes], None]] = {
    "scenario": targets.scenario_file,
    "policy_toml": partial(targets.policy_file, suffix=".toml"),
    "policy_yaml": partial(targets.policy_file, suffix=".yaml"),
    "checkpoint": targets.checkpoint_file,
    "export_jsonl": lambda data: targets.export_files(data, None, ".jsonl"),
    "export_csv": lambda data: targets.export_files(data, None, ".csv"),
    "fire_payload": targets.fire_payload,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS_DIR ...]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
