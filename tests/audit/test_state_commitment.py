"""The state commitment of canonical form 2, on random walks, and `--workers` on a small log.

Property (for random prefixes of the walks of tests/walks.py with refusals and events mixed
in): after every command, replay(log) == the stored facts, and the stored facts text is the
text whose SHA-256 the head entry commits to; a refusal commits to the same digest as the
entry before it. (Facts compare as values: the stored text keeps payload keys in the order
sent, so the digest is of the stored text, not of a re-serialised replay.) Expectations
come from the definition (docs/canonical-form.md): the digest is sha256 of the stored facts
text, and the facts are the fold of the log.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.errors import Refused
from states.facts import PathwayFacts
from states.fold import replay
from states.vocabulary import EntryKind
from tests.cli.conftest import invoke
from tests.walks import COORD, PHYS, WALKS, run_walk
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

EXTRA = st.lists(st.sampled_from(["none", "refused", "adverse"]), min_size=1, max_size=40)


def _stored_facts(service: PathwayService, pathway_id: str) -> str:
    with service.engine.connect() as connection:
        return str(connection.exec_driver_sql(f"SELECT facts FROM pathways WHERE id = '{pathway_id}'").scalar_one())


def _check(service: PathwayService, pathway_id: str) -> None:
    stored = _stored_facts(service, pathway_id)
    log = service.history(pathway_id)
    head = log[-1]
    replayed = replay(log)
    assert replayed == PathwayFacts.model_validate_json(stored)
    assert head.form == 2
    assert head.facts_digest == hashlib.sha256(stored.encode("utf-8")).hexdigest()
    if head.kind is EntryKind.REFUSAL and len(log) > 1:
        assert head.facts_digest == log[-2].facts_digest


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(WALKS)), extra=EXTRA)
def test_stored_facts_are_the_fold_and_what_the_head_commits_to(
    service: PathwayService, clock: ManualClock, name: str, extra: list[str]
) -> None:
    walk = WALKS[name]().for_patient(f"PT-{uuid.uuid4().hex[:12]}")  # examples share the database
    pathway_id = run_walk(service, clock, walk.__class__(walk.name, walk.refer, (), walk.day0))
    _check(service, pathway_id)
    steps = iter(walk.steps)
    for what in extra:
        clock.set(clock.now() + timedelta(minutes=1))
        if what == "refused":
            with pytest.raises(Refused):  # never allowed to a coordinator, in any phase
                service.fire(pathway_id, "complete_day100", {}, actor=COORD, at=clock.now())
        elif what == "adverse" and service.snapshot(pathway_id).phase.value not in ("day100_complete",):
            service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 1}, actor=PHYS,
                         at=clock.now())
        else:
            step = next(steps, None)
            if step is None:
                break
            at, actor, command, payload = step
            clock.set(max(at, clock.now()))
            service.fire(pathway_id, command, payload, actor=actor, at=at)
        _check(service, pathway_id)
    assert verify_log(service, pathway_id=pathway_id, deep=True).ok


def test_verify_with_more_workers_than_pathways_checks_with_one(db_url: str, clock: ManualClock) -> None:
    """Reproduced: `audit verify --workers 2` on a one-pathway database exited 2 unverified."""
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"]())
        n = len(service.history(pathway_id))
        found = invoke("audit", "verify", "--db", db_url, "--workers", "2")
        assert found.exit_code == 0, found.output
        assert verify_log(service, workers=4).heads[pathway_id].entries == n
    finally:
        service.engine.dispose()
