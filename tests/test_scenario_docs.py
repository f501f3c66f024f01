"""docs/scenarios.md describes the format as built: every key of the models is documented, and
the example in it is a valid file. Keys are read from the models, so a key added to the format
without a line in the guide fails here."""

from __future__ import annotations

import re
from pathlib import Path

from workflow.scenario import parse_scenario
from workflow.scenario.models import ASSERTION_KEYS, ActionStep, CheckStep, RefusedWith, Scenario

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def _table_keys(text: str) -> set[str]:
    rows = re.findall(r"^\| `([a-z_0-9]+)` \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted(set(rows)), "a key has two rows in docs/scenarios.md"
    return set(rows)


def test_every_key_of_the_format_has_a_row_in_the_guide() -> None:
    documented = _table_keys(GUIDE.read_text(encoding="utf-8"))
    step_keys = {f.alias or name for model in (ActionStep, CheckStep) for name, f in model.model_fields.items()}
    assert set(Scenario.model_fields) <= documented
    assert step_keys <= documented
    assert set(ASSERTION_KEYS) <= documented


def test_the_guide_documents_no_key_the_format_lacks() -> None:
    step_keys = {f.alias or name for model in (ActionStep, CheckStep) for name, f in model.model_fields.items()}
    known = set(Scenario.model_fields) | step_keys | set(ASSERTION_KEYS) | set(RefusedWith.model_fields)
    documented = _table_keys(GUIDE.read_text(encoding="utf-8"))
    assert documented - known == set()


def test_the_example_in_the_guide_is_a_valid_file() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    examples = [block for block in blocks if block.startswith("scenario:")]
    assert examples
    for block in examples:
        scenario = parse_scenario(block, file="docs/scenarios.md")
        assert scenario.final is not None
