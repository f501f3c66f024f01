"""Helpers for the CLI tests: scenario files written into tmp_path, and the CliRunner.

Valid payloads come from tests/walks.py: `walk_scenario` turns a walk into a scenario file's
data (actors named by their ids, the referral split into the pathway declaration and the
`refer` step), so the expected outcomes are those of the reference's worked scenarios.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.walks import PHYS, WALKS, Walk, d, t
from workflow.cli import app

WIDE = {"COLUMNS": "250"}


def invoke(*args: str | Path) -> Result:
    """Run `hsct ARGS` (wide terminal, so rich does not fold the words tests look for)."""
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


def walk_scenario(
    name: str,
    *,
    upto: str | None = None,
    title: str | None = None,
    extra_steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The walk `name` as scenario data, stopping before the first `upto` step (if given)."""
    walk: Walk = WALKS[name]()
    actors: dict[str, dict[str, str]] = {}

    def actor(who: dict[str, str]) -> str:
        actors[who["id"]] = {"role": who["role"]}
        return who["id"]

    refer = dict(walk.refer)
    pathway = {
        "patient": refer.pop("patient_ref"),
        "route": refer.pop("route"),
        "graft_source": refer.pop("graft_source"),
    }
    if "donor_type" in refer:
        pathway["donor_type"] = refer.pop("donor_type")
    start = t(d("2026-01-05"))  # where run_walk refers
    steps: list[dict[str, Any]] = [{"on": start.isoformat(), "by": actor(PHYS), "do": "refer", "with": refer}]
    for at, who, command, payload in walk.steps:
        if command == upto:
            break
        steps.append({"on": at.isoformat(), "by": actor(who), "do": command, "with": payload})
    steps += extra_steps or []
    return {
        "scenario": title or f"walk {name}",
        "actors": actors,
        "pathways": {"p1": pathway},
        "steps": steps,
    }


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(data_or_text, name="scenario.yaml") -> the file, in tmp_path."""

    def _write(content: dict[str, Any] | str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kept.sqlite'}"
