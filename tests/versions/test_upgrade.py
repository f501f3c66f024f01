"""Upgrading the library: stored facts re-derived from the log by appending an entry that
commits them (never an UPDATE), and the fixture database of every release upgraded by this one.

The stale snapshot below is what release 0.1.0 stored before the snapshot carried the
pathway's policy version: the same JSON without `policy_version`, committed by its entry.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from persistence.engine import create_engine
from persistence.schema import current_revision, head_revision
from persistence.store import Store
from states.entry import Draft
from states.errors import IntegrityError
from states.facts import PathwayFacts
from states.fold import FACTS_REDERIVED, apply_entry, replay
from states.vocabulary import EntryKind, GraftSource, Phase, Role, Route
from tests.cli.conftest import invoke
from tests.invariants import assert_invariants
from tests.walks import PATIENT
from workflow import __version__
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService
from workflow.upgrade import UPGRADE_ACTOR, rederive_facts, upgrade_database

UPGRADE_AT = datetime(2026, 6, 1, 9, tzinfo=UTC)
FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures").glob("release-*.sqlite"))


def _stale_pathway(service: PathwayService, clock: ManualClock) -> str:
    """A pathway whose stored snapshot an older derivation wrote (no policy version in it)."""
    now = clock.now()
    opening = Draft(
        pathway_id="stale-1",
        kind=EntryKind.TRANSITION,
        trigger="refer",
        from_phase=None,
        to_phase=Phase.REFERRED,
        effective_at=now,
        recorded_at=now,
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        payload={"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc"},
        policy_version=service.policy.version_id,
        origin="live",
        release="0.1.0",
    )
    old = json.loads(apply_entry(None, opening, 1).model_dump_json())
    del old["policy_version"]
    with service.engine.begin() as connection:
        Store(connection).insert_pathway(
            pathway_id="stale-1", patient_ref=PATIENT, route=Route.AUTOLOGOUS, donor_type=None,
            graft_source=GraftSource.PBSC, hct_number=1, previous_pathway=None, phase=Phase.REFERRED,
            facts_json=json.dumps(old, separators=(",", ":")), first=opening, now=now,
        )
    return "stale-1"


def _counts(engine: Engine) -> list[int]:
    """Pathways, entries, registered policies."""
    with engine.connect() as connection:
        return [
            connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in ("pathways", "entries", "policies")
        ]


def test_stale_facts_are_rederived_by_an_entry_that_commits_them(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = _stale_pathway(service, clock)
    stored = PathwayFacts.model_validate_json(_facts(service, pathway_id))
    assert stored.policy_version is None  # what the older derivation left
    clock.set(clock.now().replace(hour=12))

    result = rederive_facts(service.engine, clock=clock)
    assert (result.pathways, result.facts_changed, result.milestones_changed) == (1, 1, 0)
    last = service.history(pathway_id)[-1]
    assert (last.sequence, last.kind, last.trigger, last.actor_role, last.actor_id) == (
        2, EntryKind.EVENT, FACTS_REDERIVED, Role.SYSTEM, UPGRADE_ACTOR)
    assert last.payload == {"release": __version__, "changed_fields": 1}
    assert (last.from_phase, last.to_phase, last.release) == (Phase.REFERRED, Phase.REFERRED, __version__)
    assert PathwayFacts.model_validate_json(_facts(service, pathway_id)) == replay(service.history(pathway_id))
    assert verify_log(service.engine, deep=True).ok
    assert rederive_facts(service.engine, clock=clock).facts_changed == 0  # nothing left to do
    # The pathway moves on after the upgrade: its load checks the new commitment.
    service.fire(pathway_id, "begin_evaluation", {}, actor={"id": "co-ames", "role": "transplant_coordinator"},
                 at=clock.now())


def _facts(service: PathwayService, pathway_id: str) -> str:
    with service.engine.connect() as connection:
        record = Store(connection).load(pathway_id, checked=False)
    assert record is not None
    return record.facts


def test_the_upgrade_refuses_facts_that_break_their_commitment(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = service.refer({"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc"},
                               actor={"id": "dr-ross", "role": "transplant_physician"}, at=clock.now()).pathway_id
    facts = _facts(service, pathway_id)
    _set_facts(service, pathway_id, facts.replace('"hct_number":1', '"hct_number":2'))
    with pytest.raises(IntegrityError, match=pathway_id):
        rederive_facts(service.engine, clock=clock)
    _set_facts(service, pathway_id, facts)
    assert len(service.history(pathway_id)) == 1  # nothing appended  # put back for the invariant check


def _set_facts(service: PathwayService, pathway_id: str, facts: str) -> None:
    with service.engine.begin() as connection:
        connection.execute(text("UPDATE pathways SET facts = :f WHERE id = :id"), {"f": facts, "id": pathway_id})


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_every_release_fixture_upgrades_verifies_and_loses_nothing(fixture: Path, tmp_path: Path) -> None:
    copy = tmp_path / fixture.name
    shutil.copyfile(fixture, copy)
    engine = create_engine(f"sqlite:///{copy}")
    try:
        pathways, entries, policies = _counts(engine)
        result = upgrade_database(engine, clock=ManualClock(UPGRADE_AT))
        assert current_revision(engine) == head_revision()
        assert verify_log(engine, deep=True).ok
        assert assert_invariants(engine) == pathways  # facts equal replay, chains, phases
        assert _counts(engine) == [pathways, entries + result.facts_changed, policies]
        assert result.pathways == pathways
    finally:
        engine.dispose()


def test_hsct_db_upgrade_reports_the_rederivation(tmp_path: Path) -> None:
    copy = tmp_path / "db.sqlite"
    shutil.copyfile(FIXTURES[0], copy)
    result = invoke("db", "upgrade", "--db", f"sqlite:///{copy}")
    assert result.exit_code == 0, result.output
    assert "facts re-derived from the log: " in result.output
    assert " of 4 pathways changed" in result.output


