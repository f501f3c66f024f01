"""T15: tampering made directly in SQL is detected, naming the first bad pathway and sequence.

Each case edits a database built by the service (two walked pathways), after a signed
checkpoint was taken, through a privileged connection (tests/audit/conftest.py: the
append-only triggers and the entries foreign key are removed first, as someone with DDL
rights could). The split RELIABILITY.md asks for is asserted exactly: every edit but two is
caught by the chain (and the pathway rows) alone; a truncated tail and a chain recomputed from
scratch, each with the pathway row rewound to match, verify clean without a checkpoint and are
caught only against it.

Expected positions follow the chain's rule (docs/canonical-form.md): the first position that
breaks. A forged entry with a recomputed hash is self-consistent, so the break is the next
entry, whose prev_hash no longer matches; a checkpoint knows only each pathway's head, so a
recomputed chain is named at the checkpointed head's position.

Canonical form 2 adds two kinds of evidence: each entry commits to the stored facts after it
(an edited facts column is reported by plain verification, and refused on the next load), and
invariant I4 (each entry starts where the one before left the pathway) is checked, so a forged
but consistently re-hashed transition that skips phases is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from persistence.chain import BODY_FIELDS, seal_with_body
from persistence.series import split_facts
from persistence.types import bind_value
from states.entry import Draft, Entry
from states.errors import IntegrityError
from states.fold import replay
from states.milestones import Schedule, schedule
from states.policy import Policy
from states.vocabulary import EntryKind, Phase
from tests.audit.conftest import Key, Sql, privileged, run_verifier
from tests.walks import PHYS, WALKS, run_walk
from workflow.audit import create_checkpoint, verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

K = 5  # autologous walk: 5 is complete_evaluation, a transition (evaluation -> collection)
PAYLOAD_AT = 3  # record_consent: a non-empty payload


@dataclass(frozen=True)
class World:
    service: PathwayService
    target: str  # the autologous pathway every case edits
    other: str
    logs: dict[str, list[Entry]]
    dialect: str

    def n(self, pid: str | None = None) -> int:
        return len(self.logs[pid or self.target])


Expected = tuple[str, int, str]  # pathway, sequence, check
Tamper = Callable[[Sql, World], Expected]


def _change_third_char(column: str, sequence: int = K) -> Tamper:
    def tamper(sql: Sql, w: World) -> Expected:
        sql(f"UPDATE entries SET {column} = substr({column}, 1, 2) || 'X' || substr({column}, 4) "
            "WHERE pathway_id = ? AND sequence = ?", w.target, sequence)
        return (w.target, sequence, "chain")

    return tamper


def _set(column: str, value: Any, sequence: int = K) -> Tamper:
    def tamper(sql: Sql, w: World) -> Expected:
        sql(f"UPDATE entries SET {column} = ? WHERE pathway_id = ? AND sequence = ?", value, w.target, sequence)
        return (w.target, sequence, "chain")

    return tamper


def _later_time(column: str) -> Tamper:
    def tamper(sql: Sql, w: World) -> Expected:
        moved = getattr(w.logs[w.target][K - 1], column) + timedelta(microseconds=1)
        sql(f"UPDATE entries SET {column} = ? WHERE pathway_id = ? AND sequence = ?",
            bind_value(moved, w.dialect), w.target, K)
        return (w.target, K, "chain")

    return tamper


def _pathway_id(sql: Sql, w: World) -> Expected:
    moved = w.target[:2] + "X" + w.target[3:]
    sql("UPDATE entries SET pathway_id = ? WHERE pathway_id = ? AND sequence = ?", moved, w.target, K)
    # Two broken logs: the target misses K, the made-up pathway holds only K (so misses 1).
    return min((w.target, K, "chain"), (moved, 1, "chain"))


def _body(sql: Sql, w: World) -> Expected:
    if w.dialect == "sqlite":
        sql("UPDATE entries SET body = CAST(substr(body, 1, 2) || 'X' || substr(body, 4) AS BLOB) "
            "WHERE pathway_id = ? AND sequence = ?", w.target, K)
    else:
        sql("UPDATE entries SET body = overlay(body placing '\\x58'::bytea from 3 for 1) "
            "WHERE pathway_id = ? AND sequence = ?", w.target, K)
    return (w.target, K, "chain")


def _deleted(sql: Sql, w: World) -> Expected:
    sql("DELETE FROM entries WHERE pathway_id = ? AND sequence = ?", w.target, K)
    return (w.target, K, "chain")


def _swapped(sql: Sql, w: World) -> Expected:
    for old, new in ((K, 1000), (K + 1, K), (1000, K + 1)):
        sql("UPDATE entries SET sequence = ? WHERE pathway_id = ? AND sequence = ?", new, w.target, old)
    return (w.target, K, "chain")


def _reseal(sql: Sql, entry: Entry, prev_hash: str, **changes: Any) -> str:
    """Rewrite one entry consistently: columns, body and hash all agree (what a forger computes)."""
    fields = {name: getattr(entry, name) for name in BODY_FIELDS} | changes
    sealed = seal_with_body(Draft(**fields), entry.sequence, prev_hash)
    sql("UPDATE entries SET actor_id = ?, body = ?, prev_hash = ?, hash = ? WHERE pathway_id = ? AND sequence = ?",
        sealed.entry.actor_id, sealed.body, prev_hash, sealed.entry.hash, entry.pathway_id, entry.sequence)
    return sealed.entry.hash


def _forged(sql: Sql, w: World) -> Expected:
    log = w.logs[w.target]
    _reseal(sql, log[K - 1], log[K - 2].hash, actor_id="someone-else")
    return (w.target, K + 1, "chain")  # entry K is self-consistent; K+1 no longer links to it


def _row(column: str, value: Any, sequence: Callable[[World], int]) -> Tamper:
    def tamper(sql: Sql, w: World) -> Expected:
        sql(f"UPDATE pathways SET {column} = ? WHERE id = ?", value(w) if callable(value) else value, w.target)
        return (w.target, sequence(w), "pathway")

    return tamper


def _two_pathways(sql: Sql, w: World) -> Expected:
    sql("UPDATE entries SET actor_id = 'someone-else' WHERE pathway_id = ? AND sequence = ?", w.target, K)
    sql("UPDATE entries SET actor_id = 'someone-else' WHERE pathway_id = ? AND sequence = ?", w.other, 3)
    return min((w.target, K, "chain"), (w.other, 3, "chain"))


def _rewind_row(sql: Sql, w: World, log: list[Entry], head_hash: str) -> None:
    phase = next(e.to_phase for e in reversed(log) if e.kind is EntryKind.TRANSITION)
    assert phase is not None
    sql("UPDATE pathways SET version = ?, head_hash = ?, phase = ? WHERE id = ?",
        len(log), head_hash, phase.value, w.target)


def _truncated(sql: Sql, w: World) -> Expected:
    keep = w.n() - 4
    sql("DELETE FROM entries WHERE pathway_id = ? AND sequence > ?", w.target, keep)
    kept = w.logs[w.target][:keep]
    _rewind_row(sql, w, kept, kept[-1].hash)
    # and the facts the kept head commits to, which the attacker gets by replaying the kept log,
    # with the milestone schedule those facts give (the verifier compares the two)
    facts = replay(kept)
    stored = split_facts(facts, None, None)
    sql("UPDATE pathways SET facts = ?, schedule = ? WHERE id = ?",
        stored.text, schedule(facts, Policy()).dumps(), w.target)
    sql("DELETE FROM fact_series WHERE pathway_id = ?", w.target)
    for write in stored.writes:
        for position, value in enumerate(write.values, start=write.start):
            sql("INSERT INTO fact_series (pathway_id, field, position, value) VALUES (?, ?, ?, ?)",
                w.target, write.field, position, value)
    return (w.target, keep + 1, "checkpoint")


def _schedule_dropped(sql: Sql, w: World) -> Expected:
    """The stored milestone schedule, derived and outside the chain, without its first item:
    the worklist would no longer show that milestone."""
    planned = schedule(w.service.snapshot(w.target).facts, Policy())
    assert planned.planned, "the walked pathway has milestones planned"
    fewer = Schedule(planned.timezone, planned.planned[1:]).dumps()
    sql("UPDATE pathways SET schedule = ? WHERE id = ?", fewer, w.target)
    return (w.target, w.n(), "pathway")


def _series(statement: str) -> Tamper:
    """A lab value's row beside the snapshot, which commits to it through its running hash."""

    def tamper(sql: Sql, w: World) -> Expected:
        sql(statement, w.target)
        return (w.target, w.n(), "digest")

    return tamper


def _facts_edited(sql: Sql, w: World) -> Expected:
    """The outside tester's attack: ordinary write rights, no DDL, only the facts snapshot."""
    [(facts,)] = sql("SELECT facts FROM pathways WHERE id = ?", w.target)
    sql("UPDATE pathways SET facts = ? WHERE id = ?", facts.replace('"hct_number":1', '"hct_number":2'), w.target)
    return (w.target, w.n(), "digest")


def _skipping_transition(sql: Sql, w: World) -> Expected:
    """A forged transition appended at the head, chained and hashed consistently, the row moved
    to match (same facts, so the same digest): it starts from a phase the log never reached."""
    head = w.logs[w.target][-1]
    forged = seal_with_body(
        Draft(**{name: getattr(head, name) for name in BODY_FIELDS}
              | {"trigger": "resume", "from_phase": Phase.ON_HOLD, "to_phase": Phase.FOLLOW_UP, "payload": {}}),
        head.sequence + 1, head.hash,
    )
    entry = forged.entry
    sql("INSERT INTO entries (pathway_id, sequence, kind, trigger, from_phase, to_phase, effective_at, recorded_at, "
        "actor_id, actor_role, reason, payload, reasons, policy_version, idempotency_key, corrects, facts_digest, "
        "origin, release, form, body, prev_hash, hash) "
        "SELECT pathway_id, ?, kind, ?, ?, ?, effective_at, recorded_at, actor_id, actor_role, reason, ?, reasons, "
        "policy_version, idempotency_key, corrects, facts_digest, origin, release, form, ?, prev_hash, ? "
        "FROM entries WHERE pathway_id = ? AND sequence = ?",
        entry.sequence, entry.trigger, "on_hold", "follow_up", forged.payload_json, forged.body, entry.hash,
        w.target, head.sequence)
    sql("UPDATE entries SET prev_hash = ? WHERE pathway_id = ? AND sequence = ?", head.hash, w.target, entry.sequence)
    sql("UPDATE pathways SET version = ?, head_hash = ?, phase = ? WHERE id = ?",
        entry.sequence, entry.hash, "follow_up", w.target)
    return (w.target, entry.sequence, "phases")


def _recomputed(sql: Sql, w: World) -> Expected:
    log = w.logs[w.target]
    prev = log[0].hash
    for entry in log[1:]:
        prev = _reseal(sql, entry, prev, actor_id="someone-else" if entry.sequence == 2 else entry.actor_id)
    _rewind_row(sql, w, log, prev)
    return (w.target, w.n(), "checkpoint")


CHAIN_CASES: dict[str, Tamper] = {
    **{f"byte in entries.{column}": _change_third_char(column) for column in (
        "kind", "trigger", "from_phase", "to_phase", "actor_id", "actor_role", "policy_version", "prev_hash", "hash",
    )},
    "byte in entries.payload": _change_third_char("payload", PAYLOAD_AT),
    **{f"byte in entries.{column}": _change_third_char(column) for column in ("facts_digest", "origin", "release")},
    "entries.form 2 -> 1": _set("form", 1),
    "byte in entries.body": _body,
    "entries.pathway_id": _pathway_id,
    "entries.sequence": _set("sequence", 1000),
    "entries.effective_at +1us": _later_time("effective_at"),
    "entries.recorded_at +1us": _later_time("recorded_at"),
    "entries.reason null -> text": _set("reason", "x"),
    "entries.reasons [] -> [x]": _set("reasons", '["x"]'),
    "entries.idempotency_key null -> text": _set("idempotency_key", "k"),
    "entries.corrects null -> 1": _set("corrects", 1),
    "deleted entry": _deleted,
    "pathways.schedule without an item": _schedule_dropped,
    "two entries swapped": _swapped,
    "forged entry, hash recomputed": _forged,
    "two pathways, first named": _two_pathways,
    "pathways.patient_ref": _row("patient_ref", "PT-OTHER-1", lambda w: 1),
    "pathways.route": _row("route", "allogeneic", lambda w: 1),
    "pathways.graft_source": _row("graft_source", "bone_marrow", lambda w: 1),
    "pathways.hct_number": _row("hct_number", 2, lambda w: 1),
    "pathways.previous_pathway": _row("previous_pathway", lambda w: w.other, lambda w: 1),
    "pathways.phase": _row("phase", Phase.FOLLOW_UP.value, lambda w: w.n()),
    "pathways.version": _row("version", lambda w: w.n() + 1, lambda w: w.n() + 1),
    "pathways.head_hash": _row("head_hash", "0" * 64, lambda w: w.n()),
    "pathways.facts edited": _facts_edited,
    "fact_series value edited": _series(
        "UPDATE fact_series SET value = replace(value, '\"sequence\":', '\"sequence\":9') "
        "WHERE pathway_id = ? AND field = 'labs' AND position = 0"
    ),
    "fact_series row deleted": _series("DELETE FROM fact_series WHERE pathway_id = ? AND position = 0"),
    "fact_series row added": _series(
        "INSERT INTO fact_series (pathway_id, field, position, value) "
        "SELECT pathway_id, field, 1000, value FROM fact_series WHERE pathway_id = ? AND position = 0"
    ),
    "I4 broken: a re-hashed transition from a phase never reached": _skipping_transition,
}
CHECKPOINT_ONLY_CASES: dict[str, Tamper] = {
    "truncated tail (row rewound)": _truncated,
    "whole chain recomputed (row updated)": _recomputed,
}


def _world(db_url: str, clock: ManualClock) -> World:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    target = run_walk(service, clock, WALKS["autologous"]())
    other = run_walk(service, clock, WALKS["matched_sibling"]().for_patient("PT-2"), until=Phase.DONOR_WORKUP)
    logs = {pid: service.history(pid) for pid in (target, other)}
    return World(service, target, other, logs, service.engine.dialect.name)


@pytest.mark.parametrize(
    ("case", "chain_sees_it"),
    [(name, True) for name in CHAIN_CASES] + [(name, False) for name in CHECKPOINT_ONLY_CASES],
)
def test_tampering_is_detected_with_the_documented_split(
    case: str, chain_sees_it: bool, db_url: str, clock: ManualClock, key: Key
) -> None:
    world = _world(db_url, clock)
    try:
        assert verify_log(world.service).ok
        checkpoint = create_checkpoint(world.service, key.path)
        with privileged(world.service.engine) as sql:
            pathway, sequence, check = {**CHAIN_CASES, **CHECKPOINT_ONLY_CASES}[case](sql, world)

        plain = verify_log(world.service)
        against = verify_log(world.service, checkpoint=checkpoint)
        if chain_sees_it:
            assert plain.first is not None, f"{case}: not detected by the chain"
            assert (plain.first.pathway_id, plain.first.sequence, plain.first.check) == (pathway, sequence, check)
        else:
            assert plain.ok, f"{case}: the chain alone should not see this (it needs the checkpoint)"
        assert against.first is not None, f"{case}: not detected against the checkpoint"
        assert (against.first.pathway_id, against.first.sequence, against.first.check) == (pathway, sequence, check)
        if not chain_sees_it:
            assert {p.check for p in against.problems} == {"checkpoint"}
    finally:
        world.service.engine.dispose()


def test_every_entries_column_is_covered_by_a_case() -> None:
    """A new column on `entries` must get a tampering case (the storage id is not evidence)."""
    from persistence.models import entries_table

    covered = {name.split(" ")[-1].split(".")[-1] for name in CHAIN_CASES if "entries." in name}
    covered |= {name.split(" ")[0].split(".")[-1] for name in CHAIN_CASES if name.startswith("entries.")}
    assert {c.name for c in entries_table.columns} - {"id"} <= covered


def _entry_count(sql: Sql, pathway_id: str) -> tuple[int, int]:
    [(entries,)] = sql("SELECT COUNT(*) FROM entries WHERE pathway_id = ?", pathway_id)
    [(version,)] = sql("SELECT version FROM pathways WHERE id = ?", pathway_id)
    return entries, version


def test_the_outside_testers_attack_is_refused_on_load(
    db_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: ordinary write rights (no DDL, no trigger touched) set a referred pathway's
    facts to on_hold from collection; `resume` would have skipped evaluation, consent and
    eligibility. The load sees the facts are not what the head entry commits to."""
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.REFERRED)
        raw = service.engine.raw_connection()
        try:
            sql = Sql(raw.driver_connection, service.engine.dialect.name)  # no privileges taken
            [(facts,)] = sql("SELECT facts FROM pathways WHERE id = ?", pathway_id)
            forged = facts.replace('"phase":"referred"', '"phase":"on_hold"')
            forged = forged.replace('"held_from":null', '"held_from":"collection"')
            assert forged.count("on_hold") == 1 and forged.count('"held_from":"collection"') == 1  # noqa: PT018
            sql("UPDATE pathways SET facts = ? WHERE id = ?", forged, pathway_id)
            before = _entry_count(sql, pathway_id)
            with caplog.at_level("ERROR"), pytest.raises(IntegrityError) as raised:
                service.fire(pathway_id, "resume", {}, actor=PHYS, at=clock.now())
            assert raised.value.pathway_id == pathway_id
            assert _entry_count(sql, pathway_id) == before  # nothing appended, not even a refusal
        finally:
            raw.close()
        logged = [r for r in caplog.records if r.levelname == "ERROR" and pathway_id in r.getMessage()]
        assert logged
        assert all("PT-8F3A21" not in r.getMessage() for r in caplog.records)
        assert "PT-8F3A21" not in str(raised.value)
        found = verify_log(service)
        assert found.first is not None
        assert (found.first.pathway_id, found.first.sequence, found.first.check) == (pathway_id, 1, "digest")
    finally:
        service.engine.dispose()


def test_the_independent_verifier_reports_a_broken_i4(db_url: str, clock: ManualClock, tmp_path: Any) -> None:
    """An export holding the forged, consistently hashed transition: every hash and link checks
    out, and tools/verify_export.py still names the entry, by I4."""
    world = _world(db_url, clock)
    try:
        with privileged(world.service.engine) as sql:
            pathway, sequence, _ = _skipping_transition(sql, world)
            rows = sql("SELECT body, form, hash FROM entries ORDER BY pathway_id, sequence")
        lines = [bytes(body)[:-1] + f',"form":{form},"hash":"{digest}"}}\n'.encode() for body, form, digest in rows]
        export = tmp_path / "forged.jsonl"
        export.write_bytes(b"".join(lines))
        checked = run_verifier(export, "--no-checkpoint")
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert f"pathway {pathway} sequence {sequence}: from_phase is not where" in checked.stdout
        assert "(I4)" in checked.stdout
    finally:
        world.service.engine.dispose()


def test_a_plan_the_lab_values_decide_is_checked_with_them(db_url: str, clock: ManualClock) -> None:
    """Awaiting engraftment, the plan reads the lab values (SERIES_PLANNED_IN): a stored plan
    made from the facts without them (neutrophil recovery still due, though the values show
    it) is reported, and the plan made with them verifies."""
    walk = WALKS["autologous"]()
    confirm = next(i for i, step in enumerate(walk.steps) if step[2] == "confirm_engraftment")
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        pathway_id = run_walk(service, clock, replace(walk, steps=walk.steps[:confirm]))
        facts = service.snapshot(pathway_id).facts
        assert facts.phase is Phase.AWAITING_ENGRAFTMENT
        without_labs = schedule(facts.model_copy(update={"labs": ()}), Policy())
        assert without_labs != schedule(facts, Policy()), "the lab values decide this plan"
        assert verify_log(service).ok
        with privileged(service.engine) as sql:
            sql("UPDATE pathways SET schedule = ? WHERE id = ?", without_labs.dumps(), pathway_id)
        found = verify_log(service)
        assert found.first is not None
        n = len(service.history(pathway_id))
        assert (found.first.pathway_id, found.first.sequence, found.first.check) == (pathway_id, n, "pathway")
    finally:
        service.engine.dispose()
