"""Verification of the whole log: T14 at a reduced scale, the canonical body, progress, the CLI.

The full-scale figure (>= 100,000 entries in >= 1,000 pathways, entries/s against the sha256
and read floors) is benchmarks/verify.py; it seeds the same way (tests/audit/seeding.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from persistence.audit_queries import audit_snapshot
from persistence.chain import entry_body
from persistence.engine import create_engine
from persistence.schema import upgrade
from persistence.store import Store
from states.entry import Draft
from states.errors import UnknownPathway
from states.vocabulary import EntryKind, GraftSource, Phase, Role, Route
from tests.audit.conftest import privileged
from tests.audit.seeding import make_templates, seed
from tests.cli.conftest import invoke
from tests.walks import WALKS, run_walk
from workflow.audit import verify_log
from workflow.audit.verify import rebuilt_body
from workflow.clock import ManualClock
from workflow.service import PathwayService

T0 = datetime(2026, 2, 4, 9, 30, 0, 123456, tzinfo=UTC)
PER_PATHWAY = 40
CLONES = 24


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        entries = connection.execute(sa.text("SELECT count(*) FROM entries")).scalar_one()
        pathways = connection.execute(sa.text("SELECT count(*) FROM pathways")).scalar_one()
    return int(entries), int(pathways)


def test_t14_every_chain_verifies_at_reduced_scale(service: PathwayService, clock: ManualClock) -> None:
    templates = make_templates(service, clock, PER_PATHWAY)
    assert [len(log) for log, _ in templates] == [PER_PATHWAY] * len(WALKS)
    ids = seed(service, templates, CLONES, batch=10)
    totals: list[int] = []
    done: list[int] = []

    verification = verify_log(service, on_total=totals.append, progress=done.append, batch_size=100)

    assert verification.ok, verification.first
    assert (verification.entries, verification.pathways) == _counts(service.engine)
    assert verification.entries == PER_PATHWAY * (len(WALKS) + CLONES)
    assert totals == [verification.entries]
    assert done[-1] == verification.entries
    assert done == sorted(done)
    assert len(done) > 1
    for pathway_id in ids[:3]:
        log = service.history(pathway_id)
        head = verification.heads[pathway_id]
        assert (head.entries, head.hash) == (len(log), log[-1].hash)


def test_workers_split_the_work_and_agree(service: PathwayService, clock: ManualClock) -> None:
    seed(service, make_templates(service, clock, 30), 12)
    one = verify_log(service)
    done: list[int] = []
    two = verify_log(service, workers=2, progress=done.append)
    assert one.ok
    assert two.ok
    assert (two.entries, two.pathways, dict(two.heads)) == (one.entries, one.pathways, dict(one.heads))
    assert done[-1] == one.entries


def test_one_pathway_alone(service: PathwayService, clock: ManualClock) -> None:
    first = run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
    run_walk(service, clock, WALKS["cord_blood"]().for_patient("PT-2"), until=Phase.DONOR_SEARCH)
    verification = verify_log(service, pathway_id=first)
    assert verification.ok
    assert (verification.pathways, verification.entries) == (1, len(service.history(first)))
    assert list(verification.heads) == [first]
    with pytest.raises(UnknownPathway):
        verify_log(service, pathway_id="no-such-pathway")


def _opening(pathway_id: str) -> Draft:
    return Draft(
        pathway_id=pathway_id, kind=EntryKind.TRANSITION, trigger="refer", from_phase=None,
        to_phase=Phase.REFERRED, effective_at=T0, recorded_at=T0, actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN, policy_version="default-1",
        payload={"patient_ref": "PT-8F3A21", "route": "autologous", "graft_source": "pbsc", "hct_number": 1},
    )


EDGE_PAYLOADS = [
    {"ü": [1, 2.5, None, True], "small": 1e-07, "big": 1e16, "neg": -0.0},
    {"text": "quote \" backslash \\ slash / controls \x01\x1f\x7f \b\f\n\r\t", "line": "\u2028\u2029"},
    {"astral": "\U0001f9ec\U0010ffff", "rtl": "\u202eevil", "nested": {"b": {"a": []}, "a": {}}},
]


def test_the_fast_body_is_the_canonical_body_on_edge_values(db_url: str) -> None:
    """The verifier's template and persistence.chain agree byte for byte, even on odd values."""
    engine = create_engine(db_url)
    upgrade(engine)
    try:
        pathway_id = str(uuid.uuid4())
        with Session(engine) as session, session.begin():
            store = Store(session)
            head = store.insert_pathway(
                pathway_id=pathway_id, patient_ref="PT-8F3A21", route=Route.AUTOLOGOUS, donor_type=None,
                graft_source=GraftSource.PBSC, hct_number=1, previous_pathway=None, phase=Phase.REFERRED,
                facts_json="{}", first=_opening(pathway_id), now=T0,
            )
            for n, payload in enumerate(EDGE_PAYLOADS):
                draft = _opening(pathway_id).model_copy(update={
                    "kind": EntryKind.EVENT, "trigger": "record_lab", "from_phase": Phase.REFERRED,
                    "to_phase": Phase.REFERRED, "payload": payload,
                    "reason": "reason \u2028 \x1b[31m ü \U0001f9ec", "idempotency_key": f"key \"{n}\" \\",
                    # shared columns go into a template once: a "%" or a quote in them must stay text
                    "actor_id": f'dr "%s" 100%% \\ ü {n}', "policy_version": "p%d\n", "release": "1.0%",
                    "recorded_at": T0 + timedelta(microseconds=n + 1), "reasons": ("a_b", "ü"), "corrects": n or None,
                    "effective_at": datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                })
                head = store.append(pathway_id, draft, expected_version=head.sequence, head_hash=head.hash,
                                    phase=Phase.REFERRED, facts_json=None, now=T0)
            entries = store.entries(pathway_id)
        with audit_snapshot(engine) as reader:
            rows = [row for batch in reader.check_batches() for row in batch]
        assert [rebuilt_body(row) for row in rows] == [entry_body(e, e.sequence, e.prev_hash) for e in entries]
        assert verify_log(engine).ok
    finally:
        engine.dispose()


def test_plain_verify_compares_the_stored_facts_with_the_head_digest(db_url: str, clock: ManualClock) -> None:
    """Canonical form 2: the head entry commits to sha256 of the stored facts, so an edited
    facts column is found without replaying anything."""
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
        assert verify_log(service, deep=True).ok
        n = len(service.history(pathway_id))
        with service.engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT facts FROM pathways WHERE id = :id"), {"id": pathway_id})
            facts = json.loads(stored.scalar_one())
        facts["hct_number"] = 2
        with privileged(service.engine) as sql:
            sql("UPDATE pathways SET facts = ? WHERE id = ?", json.dumps(facts), pathway_id)
        for found in (verify_log(service), verify_log(service, deep=True)):
            assert found.first is not None
            assert (found.first.pathway_id, found.first.sequence, found.first.check) == (pathway_id, n, "digest")
    finally:
        service.engine.dispose()


def test_deep_mode_replays_what_the_head_commits_to(db_url: str) -> None:
    """Facts that match the head's digest but are not the fold of the log (written through the
    store, bypassing the service) pass the digest check; only `deep` replays and sees them."""
    engine = create_engine(db_url)
    upgrade(engine)
    try:
        pathway_id = str(uuid.uuid4())
        with Session(engine) as session, session.begin():
            Store(session).insert_pathway(
                pathway_id=pathway_id, patient_ref="PT-8F3A21", route=Route.AUTOLOGOUS, donor_type=None,
                graft_source=GraftSource.PBSC, hct_number=1, previous_pathway=None, phase=Phase.REFERRED,
                facts_json="{}", first=_opening(pathway_id), now=T0,
            )
        assert verify_log(engine).ok
        deep = verify_log(engine, deep=True)
        assert deep.first is not None
        assert (deep.first.pathway_id, deep.first.sequence, deep.first.check) == (pathway_id, 1, "pathway")
    finally:
        engine.dispose()


# --- the command line -----------------------------------------------------------------------


def test_cli_verify_reports_figures_and_exits_0(service: PathwayService, clock: ManualClock, db_url: str) -> None:
    run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
    entries = len(service.history(service.pathway_ids()[0]))
    result = invoke("audit", "verify", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert f"checked {entries} entries in 1 pathways" in result.stdout
    assert "ok" in result.stdout
    report = json.loads(invoke("audit", "verify", "--db", db_url, "--format", "json").stdout)
    assert report | {"seconds": 0} == {"ok": True, "entries": entries, "pathways": 1, "seconds": 0,
                                         "against_checkpoint": None, "first": None, "problems": []}


def test_cli_verify_names_the_first_bad_pathway_and_exits_1(db_url: str, clock: ManualClock) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
        with privileged(service.engine) as sql:
            sql("DELETE FROM entries WHERE pathway_id = ? AND sequence = 3", pathway_id)
        result = invoke("audit", "verify", "--db", db_url)
        assert result.exit_code == 1, result.output
        assert f"first bad pathway {pathway_id} at sequence 3" in result.stdout
        report = json.loads(invoke("audit", "verify", "--db", db_url, "--format", "json").stdout)
        assert report["first"] == {"pathway_id": pathway_id, "sequence": 3, "check": "chain",
                                   "detail": "no entry with sequence number 3 here (deleted, swapped or renumbered)"}
    finally:
        service.engine.dispose()


def test_cli_verify_exits_2_on_a_missing_database(tmp_path: object) -> None:
    result = invoke("audit", "verify", "--db", f"sqlite:///{tmp_path}/none.sqlite")
    assert result.exit_code == 2


@pytest.mark.parametrize("batch_size", [1, 7])
def test_batch_boundaries_do_not_matter(service: PathwayService, clock: ManualClock, batch_size: int) -> None:
    run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
    run_walk(service, clock, WALKS["haploidentical"]().for_patient("PT-2"), until=Phase.DONOR_WORKUP)
    assert verify_log(service, batch_size=batch_size).heads == verify_log(service).heads


@pytest.mark.parametrize(
    ("statement", "detail"),
    [
        ("UPDATE entries SET actor_id = 'someone-else' WHERE pathway_id = ? AND sequence = 2",
         "columns differ from the sealed body: actor_id"),
        ("UPDATE entries SET reason = 'x', trigger = 'refer' WHERE pathway_id = ? AND sequence = 2",
         "columns differ from the sealed body: reason, trigger"),
        ("UPDATE entries SET hash = prev_hash WHERE pathway_id = ? AND sequence = 2", "hash does not match the body"),
        ("UPDATE entries SET payload = '{ }' WHERE pathway_id = ? AND sequence = 2",  # same value, other bytes
         "a column is not in its canonical form"),
        ("UPDATE entries SET payload = 'not json' WHERE pathway_id = ? AND sequence = 2",
         "a column is not in its canonical form (payload or reasons not canonical JSON text)"),
        ("UPDATE entries SET effective_at = (SELECT e.effective_at FROM entries e WHERE e.sequence = 1 "
         "AND e.pathway_id = entries.pathway_id) WHERE pathway_id = ? AND sequence = 3",
         "columns differ from the sealed body: effective_at"),
    ],
)
def test_a_problem_says_what_disagrees_without_values(
    db_url: str, clock: ManualClock, statement: str, detail: str
) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
        with privileged(service.engine) as sql:
            sql(statement, pathway_id)
        first = verify_log(service).first
        assert first is not None
        assert first.detail == detail
    finally:
        service.engine.dispose()


def test_a_time_respelled_as_the_same_instant_is_still_a_changed_column(db_url: str, clock: ManualClock) -> None:
    """SQLite keeps times as text: "...T..." reads back as the same instant, but it is not what was written."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL keeps an instant, not a spelling")
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.EVALUATION)
        before = service.history(pathway_id)[1]
        with privileged(service.engine) as sql:
            sql("UPDATE entries SET recorded_at = replace(recorded_at, ' ', 'T') WHERE pathway_id = ? AND sequence = 2",
                pathway_id)
        assert service.history(pathway_id)[1] == before  # the library reads the same value...
        first = verify_log(service).first  # ...but the stored bytes changed
        assert first is not None
        assert (first.sequence, first.detail) == (2, "a column holds a value of the wrong type or form")
    finally:
        service.engine.dispose()


@pytest.mark.parametrize("column", ["kind", "actor_id", "reasons", "form"])
def test_a_blob_in_a_column_read_as_json_is_still_reported_where_it_is(
    db_url: str, clock: ManualClock, column: str
) -> None:
    """SQLite lets any column hold a BLOB, which its json_array (how verify reads the shared
    columns) refuses: the entry is named, as for any value of the wrong type, not the read failed."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL columns are typed")
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.EVALUATION)
        with privileged(service.engine) as sql:
            sql(f"UPDATE entries SET {column} = CAST({column} AS BLOB) WHERE pathway_id = ? AND sequence = 2",
                pathway_id)
        first = verify_log(service).first
        assert first is not None
        assert (first.pathway_id, first.sequence, first.check) == (pathway_id, 2, "chain")
    finally:
        service.engine.dispose()
