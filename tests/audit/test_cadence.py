"""A checkpoint cadence run by the outbox dispatcher: the heads are signed as the log grows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from states.vocabulary import Phase
from tests.audit.conftest import Key
from tests.walks import WALKS, run_walk
from workflow.audit import load_checkpoint, verify_log
from workflow.audit.cadence import CheckpointCadence
from workflow.clock import ManualClock
from workflow.outbox import Dispatcher
from workflow.service import PathwayService


def test_every_n_entries_a_signed_checkpoint_of_the_committed_log(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    run_walk(service, clock, WALKS["autologous"](), until=Phase.CONDITIONING)
    entries = len(service.history(service.pathway_ids()[0]))
    cadence = CheckpointCadence(service, key.path, tmp_path / "checkpoints", entries=5, interval=timedelta(days=365))
    Dispatcher(service, handlers={"*": cadence}).drain()

    assert len(cadence.written) == entries // 5
    assert sorted(cadence.written) == cadence.written  # names sort by time
    latest = load_checkpoint(cadence.written[-1], public_key=key.public)
    assert latest.entries == entries  # the whole committed log, not only what was delivered
    assert verify_log(service, checkpoint=latest).ok


def test_an_interval_signs_at_the_first_delivery_after_it(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    walk = WALKS["autologous"]()
    pathway_id = run_walk(service, clock, walk, until=Phase.EVALUATION)
    cadence = CheckpointCadence(service, key.path, tmp_path, entries=10_000, interval=timedelta(hours=1))
    dispatcher = Dispatcher(service, handlers={"*": cadence})
    dispatcher.drain()
    assert cadence.written == []  # the interval has not passed since the first delivery
    clock.set(clock.now() + timedelta(hours=2))
    service.fire(pathway_id, "record_consent", {"consent_version": "v3"},
                 actor={"id": "co-ames", "role": "transplant_coordinator"}, at=clock.now())
    dispatcher.drain()
    assert len(cadence.written) == 1
    assert load_checkpoint(cadence.written[0], public_key=key.public).entries == len(service.history(pathway_id))


def test_a_cadence_needs_a_positive_count_and_interval(service: PathwayService, key: Key, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cadence"):
        CheckpointCadence(service, key.path, tmp_path, entries=0)
    with pytest.raises(ValueError, match="cadence"):
        CheckpointCadence(service, key.path, tmp_path, interval=timedelta(0))
