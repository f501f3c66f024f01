"""Invariants I1-I5 of RELIABILITY.md, checked over every pathway in a database (with the
state commitment of canonical form 2: the head entry commits to the stored facts)."""

from __future__ import annotations

from itertools import pairwise

import sqlalchemy as sa
from sqlalchemy.orm import Session

from persistence.chain import facts_digest, verify_entries
from persistence.models import fact_series_table, outbox_table, pathways_table
from persistence.policies import PolicyBook
from persistence.series import heads_in
from persistence.store import Store
from states.facts import PathwayFacts
from states.fold import replay
from states.milestones import planned_by_these_rules, schedule
from states.policy import Policy
from states.vocabulary import EntryKind


def assert_invariants(engine: sa.Engine) -> int:
    """Check I1-I5 for every pathway; return the number of pathways checked."""
    with Session(engine) as session, session.begin():
        store = Store(session)
        ids = store.pathway_ids()
        for pathway_id in ids:
            record = store.load(pathway_id)
            assert record is not None
            entries = store.entries(pathway_id)
            # I2: sequence numbers are exactly 1..n
            assert [e.sequence for e in entries] == list(range(1, len(entries) + 1)), pathway_id
            # I3: the hash chain verifies
            assert verify_entries(entries) is None, pathway_id
            # I4: each entry starts where the previous one left the pathway (the first from
            # nothing); only transitions move it
            assert entries[0].from_phase is None, pathway_id
            for before, after in pairwise(entries):
                assert after.from_phase == before.to_phase, (pathway_id, after.sequence)
            for entry in entries:
                if entry.kind is not EntryKind.TRANSITION:
                    assert entry.to_phase == entry.from_phase, (pathway_id, entry.sequence)
            transitions = [e for e in entries if e.kind is EntryKind.TRANSITION]
            # I1: phase is the last transition's destination; replay gives the stored facts
            assert transitions, pathway_id
            assert transitions[-1].to_phase == record.phase, pathway_id
            replayed = replay(entries)
            assert replayed == store.facts(record), pathway_id  # its series rows checked on the way
            # every series row is one the snapshot commits to (none left over by a rewrite)
            assert _series_counts(session, pathway_id) == {
                name: head.count for name, head in heads_in(record.facts).items()
            }, pathway_id
            # the head entry commits to the stored facts text (canonical form 2), the fold above
            if entries[-1].form >= 2:
                assert entries[-1].facts_digest == facts_digest(record.facts), pathway_id
            assert replayed.phase == record.phase
            # the stored milestone schedule (derived, outside the chain) is the one the facts
            # give under the pathway's registered policy; NULL: none stored
            stored_schedule = _stored_schedule(session, pathway_id)
            if planned_by_these_rules(stored_schedule):
                assert stored_schedule == schedule(replayed, _policy(session, replayed)).dumps(), pathway_id
            # I5: every entry moves the chain head, so version == number of entries
            assert record.version == len(entries), pathway_id
            assert record.head_hash == entries[-1].hash
    # Outbox rows match their entries, one each (rows may have been pruned after delivery;
    # tests/concurrency checks that none is ever missing).
    assert outbox_mismatches(engine, complete=False) == []
    return len(ids)


def _stored_schedule(session: Session, pathway_id: str) -> str | None:
    found = session.execute(sa.select(pathways_table.c.schedule).where(pathways_table.c.id == pathway_id))
    text: str | None = found.scalar_one()
    return text


def _policy(session: Session, facts: PathwayFacts) -> Policy:
    version = facts.policy_version
    registered = None if version is None else PolicyBook().get(session.connection(), version)
    return registered or Policy()


def _series_counts(session: Session, pathway_id: str) -> dict[str, int]:
    table = fact_series_table
    rows = session.execute(
        sa.select(table.c.field, sa.func.count()).where(table.c.pathway_id == pathway_id).group_by(table.c.field)
    )
    return {str(name): int(count) for name, count in rows}


def outbox_mismatches(engine: sa.Engine, *, complete: bool = True) -> list[str]:
    """Every entry has exactly one outbox row, with its hash and topic (and no row is orphaned).

    `complete=False` accepts entries without a row (delivered rows a host has pruned)."""
    problems = []
    with engine.connect() as connection:
        store = Store(connection)
        rows = connection.execute(
            sa.select(
                outbox_table.c.pathway_id, outbox_table.c.sequence, outbox_table.c.entry_hash, outbox_table.c.topic
            )
        ).all()
        expected = {
            (e.pathway_id, e.sequence): (e.hash, f"{e.kind.value}.{e.trigger}")
            for pid in store.pathway_ids()
            for e in store.entries(pid)
        }
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for pid, seq, digest, topic in rows:
        if (pid, seq) in found:
            problems.append(f"two outbox rows for {pid}#{seq}")
        found[(pid, seq)] = (digest, topic)
    for position, want in expected.items():
        if position not in found and not complete:
            continue
        if found.get(position) != want:
            problems.append(f"outbox row of {position} is {found.get(position)}, expected {want}")
    problems.extend(f"outbox row without an entry: {position}" for position in set(found) - set(expected))
    return problems
