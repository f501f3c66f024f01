"""What the fuzzers feed: one function per reader, taking raw bytes.

Each target may raise only the reader's documented error (`DOCUMENTED`); anything else
escaping (RecursionError, ValueError, UnicodeEncodeError, OverflowError, ...) is a crash.
The hypothesis tests (tests/fuzz/test_*.py), the corpus replay and the atheris scripts
(fuzz/) call the same functions.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.orm import Session

from states.chart import CHART
from states.command_names import CommandName
from states.days import clinical_date
from states.errors import HsctError, IdempotencyMisuse, InvalidCommand, PolicyError, Refused
from states.vocabulary import Phase, Role
from workflow.audit.checkpoint import CheckpointInvalid, load_checkpoint
from workflow.clock import ManualClock
from workflow.policy_files import load_policy
from workflow.scenario.loader import load_scenario
from workflow.scenario.models import Scenario, ScenarioInvalid, check_references, effective_policy, step_time
from workflow.service import PathwayService, Result

ROOT = Path(__file__).resolve().parents[2]


def _verify_export_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", ROOT / "tools" / "verify_export.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VERIFY_EXPORT = _verify_export_module()


def _in_file(data: bytes, suffix: str, read: Callable[[Path], Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="hsct-fuzz-") as folder:
        path = Path(folder, "input" + suffix)
        path.write_bytes(data)
        return read(path)


def scenario_file(data: bytes) -> None:
    """A scenario file: valid, or ScenarioInvalid; a valid one has times the runner can use."""
    try:
        scenario = _in_file(data, ".yaml", load_scenario)
    except ScenarioInvalid:
        return
    _runnable(scenario)


def scenario_data(data: Any) -> None:
    """A scenario built in Python (the embedding API): pydantic's ValidationError for the shape,
    then `check_references` returns problems and never raises."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError:
        return
    if not check_references(scenario):
        _runnable(scenario)


def _runnable(scenario: Scenario) -> None:
    """What the runner computes before its first step: the policy, and every step's time in UTC."""
    zone = effective_policy(scenario).timezone
    for index in range(len(scenario.steps)):
        at = step_time(scenario, index, zone)
        at.astimezone(UTC)
        clinical_date(at, zone)


def policy_file(data: bytes, suffix: str = ".toml") -> None:
    """A policy file: a Policy, or PolicyError."""
    try:
        _in_file(data, suffix, load_policy)
    except PolicyError:
        return


def checkpoint_file(data: bytes) -> None:
    """A checkpoint file: a Checkpoint, or CheckpointInvalid (CheckpointMalformed among them)."""
    try:
        _in_file(data, ".json", load_checkpoint)
    except CheckpointInvalid:
        return


def export_files(export: bytes, checkpoint: bytes | None, suffix: str = ".jsonl") -> None:
    """tools/verify_export.py on an export (and its checkpoint): a result, Failed or Unreadable."""
    with tempfile.TemporaryDirectory(prefix="hsct-fuzz-") as folder:
        export_path = Path(folder, "export" + suffix)
        export_path.write_bytes(export)
        checkpoint_path = None
        if checkpoint is not None:
            checkpoint_path = Path(folder, "export.checkpoint.json")
            checkpoint_path.write_bytes(checkpoint)
        try:
            VERIFY_EXPORT.verify(export_path, checkpoint_path, None, partial=checkpoint is None)
        except (VERIFY_EXPORT.Failed, VERIFY_EXPORT.Unreadable):
            return


# --- payloads through PathwayService.fire ---------------------------------------------------

WORLD_PHASES: tuple[tuple[str, str], ...] = (
    ("autologous", "evaluation"),
    ("autologous", "collection"),
    ("autologous", "conditioning"),
    ("autologous", "awaiting_engraftment"),
    ("autologous", "follow_up"),
    ("autologous", "on_hold"),
    ("autologous", "day100_complete"),
    ("matched_unrelated", "donor_search"),
    ("matched_unrelated", "donor_workup"),
    ("matched_unrelated", "ready_for_conditioning"),
    ("matched_unrelated", "awaiting_engraftment"),
    ("cord_blood", "donor_workup"),
    ("cord_blood", "conditioning"),
    ("haploidentical", "donor_search"),
    ("matched_sibling", "graft_failure"),
    ("matched_sibling", "deceased"),
)
"""(walk, phase) of the world's pathways: a payload meets each phase's guards and effects."""

FIRE_DOCUMENTED = (Refused, InvalidCommand, IdempotencyMisuse)
"""What `fire` may raise on any payload from a permitted or unpermitted actor (states/errors.py)."""

HEADER = 4
"""Bytes before the payload: pathway, command, actor, time shift."""


@dataclass(frozen=True)
class WorldPathway:
    """One pathway of the world, with what an input needs without reading the database."""

    pathway_id: str
    patient_ref: str
    now: datetime
    """An hour after its last entry: the world's clock when a command is fired at it."""
    version: int


@dataclass(frozen=True)
class World:
    """Pathways in many phases on a SQLite file, built once per process: every input is fired
    in a host transaction that is rolled back, so each starts from this same state."""

    service: PathwayService
    clock: ManualClock
    pathways: tuple[WorldPathway, ...]
    folder: tempfile.TemporaryDirectory[str]


@functools.cache
def world() -> World:
    from tests.helpers_core import reach  # pytest and the walks: loaded only by this target

    folder = tempfile.TemporaryDirectory(prefix="hsct-fuzz-world-")
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    service = PathwayService(f"sqlite:///{folder.name}/world.sqlite", clock=clock, durable_refusals=False)
    pathways = []
    for walk, phase in WORLD_PHASES:
        pathway_id = reach(service, clock, walk, Phase(phase))
        snapshot = service.snapshot(pathway_id)
        now = service.history(pathway_id)[-1].effective_at + timedelta(hours=1)
        pathways.append(WorldPathway(pathway_id, snapshot.facts.patient_ref, now, snapshot.version))
    return World(service, clock, tuple(pathways), folder)


def commands() -> list[str]:
    """The chart's commands, read at run time: a new command is fuzzed without being listed."""
    return sorted(CHART.commands)


ROLES = tuple(Role)


def permitted_actor(command: str) -> Mapping[str, str]:
    from tests.helpers_core import COMMANDS

    return COMMANDS[command][0]


def decode_fire(data: bytes) -> tuple[int, str, Mapping[str, str], timedelta, Any]:
    """(pathway index, command, actor, time shift, payload) from raw bytes.

    Byte 0 picks the pathway, byte 1 the command, byte 2 the actor (0: the command's permitted
    actor, else a role), byte 3 a signed shift of the effective time (v*|v| minutes: minutes to
    eleven days, before or after); the rest is the payload, JSON if it parses (any value), else
    the raw text (undecodable bytes as lone surrogates)."""
    head = data[:HEADER].ljust(HEADER, b"\x00")
    names = commands()
    command = names[head[1] % len(names)]
    pick = head[2] % (len(ROLES) + 1)
    actor = permitted_actor(command) if pick == 0 else {"id": f"fuzz-{pick}", "role": ROLES[pick - 1].value}
    shift = int.from_bytes(head[3:4], signed=True)
    body = data[HEADER:]
    payload: Any
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or nested past the parser's depth)
        payload = body.decode("utf-8", "surrogateescape")
    return head[0], command, actor, timedelta(minutes=shift * abs(shift)), payload


def fire_in_world(
    pathway: int, command: str, actor: Mapping[str, str], shift: timedelta, payload: Any
) -> Result | HsctError:
    """Fire at the world's `pathway` (modulo their number) in a host transaction that is rolled
    back; the Result or the documented error. The pathway must be as it was afterwards."""
    here = world()
    target = here.pathways[pathway % len(here.pathways)]
    here.clock.set(target.now)
    outcome: Result | HsctError
    with Session(here.service.engine) as session:
        session.begin()
        try:
            outcome = here.service.fire(
                target.pathway_id,
                cast("CommandName", command),
                payload,
                actor=actor,
                at=target.now + shift,
                session=session,
            )
        except FIRE_DOCUMENTED as error:
            outcome = error
        finally:
            session.rollback()
    after = here.service.snapshot(target.pathway_id).version
    assert after == target.version, f"{command} left version {after} after the rollback, not {target.version}"
    return outcome


def fire_payload(data: bytes) -> None:
    """Raw bytes as one command on one of the world's pathways (format: `decode_fire`)."""
    fire_in_world(*decode_fire(data))


def encode_fire(walk: str, phase: str, command: str, payload: Any) -> bytes:
    """The input `decode_fire` reads as `command` with `payload` by its permitted actor, now, at
    the world's pathway of `walk` in `phase`: how the seeds in fuzz/seeds/fire_payload/ are written."""
    head = (WORLD_PHASES.index((walk, phase)), commands().index(command), 0, 0)
    return bytes(head) + json.dumps(payload).encode()
