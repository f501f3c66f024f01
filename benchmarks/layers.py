"""What the layers around a command's steps cost: the same command, every check kept, built up one
layer at a time, beside the library's fire and eventsourcing's own Python (issue #14).

A `record_adverse_event` on a pathway whose last entry this service wrote goes through the same
steps in every variant: the payload's size walk, validation and dump; the actor; the probe that
the held row and its head entry are still the stored ones (before judging); the guards; the
draft; the fold; the milestone plan reused when nothing it reads changed (checked as the library
checks it); the snapshot text with its series heads; sealing (canonical body, SHA-256, the entry
model); the conditional UPDATE, the entry's and its outbox row's INSERTs; the held row and facts
kept for the next command. The variants differ only in what wraps those steps:

- steps: BEGIN IMMEDIATE and COMMIT, and the statements, on a sqlite3 connection of its own;
- + transaction: the same statements on the driver, inside the service's own transaction on its
  kept connection (`KeptConnection.begin`: the lease, BEGIN IMMEDIATE and COMMIT on the driver;
  before the thirteenth pass, SQLAlchemy's `Connection.begin` with its BEGIN listener);
- + store: `Store.holds` and `Store.append` in that transaction (their per-call checks);
- library: `PathwayService.fire` (the retry loop, the unit of work, the policy lookup, the
  idempotency and role hooks, the result with its Day label, logging).

The variants share one database and one service (each keeps the held row as the library does, so
the next fire of any variant probes it), at synchronous=OFF. Own Python = median minus raw sqlite3
running the library's statements (floor.py's "same statements"), beside eventsourcing's own Python
per event (anchor.py). The chain is verified at the end. Prints figures only; nothing asserts on a
time. `instructions.py --kinds library steps transaction store` counts the same variants'
instructions. The variants reach under the service's and the store's private names: they are a
measurement of those layers, not a way to write. See README.md.

    .venv/bin/python benchmarks/layers.py [--iterations 1000] [--repetitions 6]
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchor import EVENTSOURCING, EVENTSOURCING_RAW, LIBRARY, LIBRARY_RAW, anchored
from fire import COMMANDS, Database, timed, us, workdir
from floor import interleaved, interleaving_options

from persistence import store as store_module
from persistence.chain import facts_digest, seal_with_body
from persistence.series import split_facts
from persistence.store import Store
from states.actor import Actor
from states.fold import apply_entry
from states.judge import judge
from states.vocabulary import EntryKind
from workflow.audit.verify import verify_log
from workflow.service import PathwayService, aware
from workflow.validation import bounded, idempotency_key, stored_payload, validated

COMMAND = "record_adverse_event"
LAYERS = ("steps", "transaction", "store")
Statement = Callable[[str, Any], Any]


class Layers:
    """The command's steps with none, one or two of the layers around them (module docstring)."""

    def __init__(self, db: Database) -> None:
        self.svc = db.svc
        self.actor, self.payload = COMMANDS[COMMAND]
        self.at = db.clock.now()
        self.spec = PathwayService._command(COMMAND)
        self.targets = itertools.cycle(db.targets)
        with self.svc.engine.connect() as connection:
            self.hot = store_module._hot(connection)
        self.raw = sqlite3.connect(db.path, isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = OFF", "foreign_keys = ON", "busy_timeout = 5000"):
            self.raw.execute(f"PRAGMA {pragma}").fetchall()

    def ops(self) -> dict[str, Callable[[], object]]:
        return {"steps": self.steps, "transaction": self.in_transaction, "store": self.in_store}

    def steps(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            done = self._command(self.raw.execute, None)
            self.raw.execute("COMMIT")
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self._kept(*done)

    def in_transaction(self) -> None:
        with self.svc._connections.begin() as connection:
            done = self._command(connection.connection.driver_connection.execute, None)
        self._kept(*done)

    def in_store(self) -> None:
        with self.svc._connections.begin() as connection:
            done = self._command(None, Store(connection, announce=self.svc.outbox))
        self._kept(*done)

    def _command(self, execute: Statement | None, store: Store | None) -> tuple[Any, ...]:
        """The steps: statements by `execute` (driver SQL) or, given `store`, by its calls."""
        svc, spec, hot, command = self.svc, self.spec, self.hot, COMMAND
        bounded(self.payload, command=command, policy=svc.policy)
        body = validated(spec.payload, self.payload, command=command)
        dumped = stored_payload(body, command=command, policy=svc.policy)
        who = validated(Actor, self.actor, command=command, prefix="actor")
        at = aware(self.at, command=command)
        idempotency_key(None, command=command)
        pathway_id = next(self.targets)
        record = svc._facts.held(pathway_id)
        if record is None:
            raise SystemExit(f"no held row for {pathway_id}: fire the library on it first")
        if store is not None:
            held = store.holds(record)
        else:
            assert execute is not None
            held = bool(execute(hot.still_held.text, hot.still_held.args(store_module._held_params(record))).fetchall())
        if not held:
            raise SystemExit(f"the held row of {pathway_id} is no longer the stored one")
        facts = svc._facts.parsed(record, store)  # a hit: the facts this service wrote
        now = svc.clock.now()
        policy = svc._policies.get(None, facts.policy_version) or svc.policy  # a hit, as in the library
        judgement = judge(spec, facts, body, actor_id=who.id, actor_role=who.role, at=at, now=now, policy=policy)
        if judgement.verdict.reasons:
            raise SystemExit(f"{command} was refused: {judgement.verdict.reasons}")
        draft = svc._draft(record.id, EntryKind.EVENT, spec.name, facts.phase, facts.phase, at, now, who, body,
                           dumped, None, policy_version=policy.version_id)  # fmt: skip
        new_facts = apply_entry(facts, draft, record.version + 1)
        planned = svc._schedule_text(store, new_facts, record.id, facts)  # reused: nothing it reads changed
        split = split_facts(new_facts, facts, record.facts, svc._facts.members_of(record.id, facts))
        if store is not None:
            entry = store.append(record.id, draft, expected_version=record.version, head_hash=record.head_hash,
                                 phase=new_facts.phase, facts_json=split, now=now, schedule=planned)  # fmt: skip
        else:
            assert execute is not None
            sealed = seal_with_body(draft, record.version + 1, record.head_hash, facts_digest(split.text))
            entry = sealed.entry
            values = store_module._entry_params(sealed, "sqlite")
            advance = {"b_id": record.id, "b_expected": record.version, "b_head": record.head_hash,
                       "b_version": entry.sequence, "b_new_head": entry.hash, "b_phase": str(new_facts.phase),
                       "b_now": values["recorded_at"], "b_facts": split.text, "b_schedule": planned}  # fmt: skip
            update = hot.advances[True, False]
            if execute(update.text, update.args(advance)).rowcount != 1:
                raise SystemExit(f"the row of {pathway_id} moved under the benchmark")
            execute(hot.insert_entry.text, hot.insert_entry.args(values))
            if svc.outbox:
                outbox = store_module._outbox_params(entry, values)
                execute(hot.insert_outbox.text, hot.insert_outbox.args(outbox))
        return record, entry, now, split, new_facts, planned

    def _kept(self, record: Any, entry: Any, now: Any, split: Any, new_facts: Any, planned: Any) -> None:
        """After commit, as the library: the row as this write left it, for the next probe."""
        kept = record.advanced(entry, now, split.text)
        self.svc._facts.wrote(record.id, entry.facts_digest, new_facts, planned, split.members, kept)

    def close(self) -> None:
        self.raw.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = interleaving_options(__doc__, warmup=200)
    parser.set_defaults(iterations=1000, repetitions=6)
    parser.add_argument("--dir", help="where the databases go (default: a fresh temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    with workdir(args.dir, args.keep) as where, anchored(where, COMMAND) as (db, reference):
        layers = Layers(db)
        ops = {**reference, **layers.ops()}
        for op in ops.values():
            timed(op, args.warmup)
        print(f"synchronous=OFF, {args.repetitions} repetitions x {args.iterations} per figure, interleaved; "
              "own Python = median - the library's statements raw, and its ratio to eventsourcing's own")  # fmt: skip
        ratios: dict[str, list[float]] = {name: [] for name in (LIBRARY, *LAYERS)}
        for rep in range(1, args.repetitions + 1):
            medians = {name: us(statistics.median(values)) for name, values in
                       interleaved(ops, args.iterations, args.rounds).items()}  # fmt: skip
            floor = medians[LIBRARY_RAW]
            anchor_own = medians[EVENTSOURCING] - medians[EVENTSOURCING_RAW]
            for name in ratios:
                ratios[name].append((medians[name] - floor) / anchor_own)
            print(f"repetition {rep}: eventsourcing {anchor_own:.0f} us; " + ", ".join(
                f"{name} {medians[name] - floor:.0f} us ({ratios[name][-1]:.2f})" for name in ratios))  # fmt: skip
        print("\nmedian ratio to eventsourcing's own Python (the issue's target: 1.18): " + ", ".join(
            f"{name} {statistics.median(values):.2f}" for name, values in ratios.items()))  # fmt: skip
        result = verify_log(db.svc.engine)
        print(f"chain after the run: {'verifies' if result.ok else result.first}")
        layers.close()


if __name__ == "__main__":
    main()
