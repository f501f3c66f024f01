"""One command through the library against raw sqlite3 doing the same writes, durable and not.

For synchronous=FULL (the library's default) and synchronous=OFF (no fsync: what is left is
CPU), interleaved in one process and repeated `--repetitions` times, it prints median, p10
and p90 in microseconds of:

- library: `PathwayService.fire` of a repeatable event, in its own transaction;
- floor: raw sqlite3 BEGIN IMMEDIATE; UPDATE pathways; INSERT entries; COMMIT;
- floor, same statements: the library's own statement list done raw (on a pathway whose last
  entry the service wrote: the probe that the row and its head entry are still that write's,
  the UPDATE, the INSERT of the entry and of its outbox row).

At OFF, library minus "same statements" is the library's own Python per command. Prints figures
and ratios only; nothing asserts on a time. See README.md.

    .venv/bin/python benchmarks/floor.py [--iterations 600] [--repetitions 3] [--labs 0] [--history 2000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import (
    COMMANDS,
    RawFloor,
    build,
    copy_database,
    library_op,
    timed,
    us,
    workdir,
)

from tests.walks import WALKS
from workflow.audit.verify import verify_log
from workflow.service import PathwayService

MODES = ("FULL", "OFF")


class SameStatements(RawFloor):
    """The floor plus what the library's statements also do on a pathway whose last entry it
    wrote itself (a held row, docs/decisions.md): instead of the load, one probe that the row
    and its head entry (digest, form, phase) are still what that write left; the stored
    schedule beside the facts; and (`announce`) the outbox row."""

    announce = True
    update = (
        "UPDATE pathways SET version = :version, head_hash = :head, updated_at = :now, facts = :facts,"
        " schedule = :schedule WHERE id = :id AND version = :expected AND head_hash = :old_head AND phase = :phase"
    )
    probe = (
        "SELECT id FROM pathways WHERE id = ? AND version = ? AND head_hash = ? AND phase = ? AND facts = ?"
        " AND EXISTS (SELECT id FROM entries WHERE pathway_id = pathways.id AND sequence = ? AND hash = ?"
        " AND facts_digest = ? AND form = ? AND to_phase = ?)"
    )
    outbox = (
        "INSERT INTO outbox (pathway_id, sequence, entry_hash, topic, created_at, attempts) VALUES (?, ?, ?, ?, ?, 0)"
    )

    def __init__(self, path: Path, targets: Sequence[str], command: str, busy_timeout_ms: int) -> None:
        super().__init__(path, targets, command, busy_timeout_ms)
        self.schedules = {
            pid: self.conn.execute("SELECT schedule FROM pathways WHERE id = ?", (pid,)).fetchone()[0]
            for pid in targets
        }
        # The head entries' digests: the library's own at first, then the copied row's.
        self.digests = {
            pid: self.conn.execute(
                "SELECT facts_digest FROM entries WHERE pathway_id = ? AND sequence = ?", (pid, self.heads[pid][0])
            ).fetchone()[0]
            for pid in targets
        }

    def binds(self, pid: str) -> dict[str, Any]:
        return {"schedule": self.schedules[pid]}

    def once(self) -> None:
        pid = next(self.cycle)
        self.conn.execute("BEGIN IMMEDIATE")
        version, head, phase, facts, _ = self.heads[pid]
        form = self.template["form"]
        args = (pid, version, head, phase, facts, version, head, self.digests[pid], form, phase)
        if not self.conn.execute(self.probe, args).fetchall():
            raise RuntimeError("raw floor lost its own head")
        self._write(pid, *self.heads[pid])
        self.digests[pid] = self.template["facts_digest"]
        if self.announce:
            version, head, _, _, updated = self.heads[pid]
            self.conn.execute(self.outbox, (pid, version, head, "event.x", updated))
        self.conn.execute("COMMIT")


_MODE = {"synchronous": "FULL"}


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA synchronous = {_MODE['synchronous']}").fetchall()


def set_synchronous(svc: PathwayService, floors: Sequence[RawFloor], mode: str) -> None:
    """The library's connections (set after the library's own PRAGMAs) and the floors' at `mode`."""
    _MODE["synchronous"] = mode
    if not event.contains(svc.engine, "connect", _on_connect):
        event.listen(svc.engine, "connect", _on_connect)
    svc.engine.dispose()
    for floor in floors:
        floor.conn.execute(f"PRAGMA synchronous = {mode}").fetchall()


def describe(samples: Sequence[int]) -> str:
    d = statistics.quantiles(samples, n=10)
    return f"median {us(statistics.median(samples)):8.1f}  p10 {us(d[0]):8.1f}  p90 {us(d[-1]):8.1f}"


def interleaved(ops: dict[str, Callable[[], object]], iterations: int, rounds: int) -> dict[str, list[int]]:
    per_round = -(-iterations // rounds)
    samples: dict[str, list[int]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            gc.collect()
            samples[name] += timed(op, per_round)
    return samples


def add_labs(svc: PathwayService, targets: Sequence[str], n: int, at: Any) -> None:
    """`n` lab values on every target, through the service (the history a command carries)."""
    actor, payload = COMMANDS["record_lab"]
    for pid in targets:
        for _ in range(n):
            svc.fire(pid, "record_lab", payload, actor=actor, at=at)


def interleaving_options(description: str | None, *, warmup: int) -> argparse.ArgumentParser:
    """A parser with the options of an interleaved timing (this script's and anchor.py's)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=600, help="timed operations per figure and repetition")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks per repetition")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=warmup)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = interleaving_options(__doc__, warmup=50)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--labs", type=int, default=0, help="lab values recorded on each target first")
    parser.add_argument("--command", choices=sorted(COMMANDS), default="record_adverse_event")
    parser.add_argument(
        "--large", type=int, default=0, help="also fire on a database of this many pathways, interleaved"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="also fire on targets holding this many lab values each, interleaved (cost flat in history)",
    )
    parser.add_argument(
        "--no-outbox", action="store_true", help="the library writes no outbox row: PathwayService(outbox=False)"
    )
    parser.add_argument("--dir", help="where the databases go (default: a fresh temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    with workdir(args.dir, args.keep) as where:
        db = build(
            where / "library.sqlite",
            "small",
            targets=args.targets,
            total=args.targets,
            walk=WALKS["autologous"](),
            command=args.command,
            seed="store",
            batch=1000,
        )
        if args.labs:
            add_labs(db.svc, db.targets, args.labs, db.clock.now())
        if args.no_outbox:
            db.svc.engine.dispose()
            db.svc = PathwayService(f"sqlite:///{db.path}", clock=db.clock, outbox=False)
        copy_database(db, where / "raw.sqlite")
        copy_database(db, where / "same.sqlite")
        floor = RawFloor(where / "raw.sqlite", db.targets, args.command, busy_timeout_ms=5000)
        same = SameStatements(where / "same.sqlite", db.targets, args.command, busy_timeout_ms=5000)
        same.announce = not args.no_outbox

        def seeded(label: str, total: int) -> Any:
            """Another database of `args.targets` walked targets among `total` pathways."""
            return build(
                where / f"{label}.sqlite",
                label,
                targets=args.targets,
                total=total,
                walk=WALKS["autologous"](),
                command=args.command,
                seed="store",
                batch=1000,
            )

        large = seeded("large", args.large) if args.large else None
        deep = seeded("history", args.targets) if args.history else None
        if deep is not None:
            add_labs(deep.svc, deep.targets, args.history, deep.clock.now())
        ops = {
            "library fire": library_op(db, args.command),
            "floor UPDATE+INSERT": floor.once,
            "floor, same statements": same.once,
        }
        if large is not None:
            ops[f"library fire, {args.large:,} pathways"] = library_op(large, args.command)
        if deep is not None:
            ops[f"library fire, {args.history:,} labs"] = library_op(deep, args.command)
        print(
            f"{args.targets} targets, {args.labs} labs each, facts {floor.facts_bytes} B, "
            f"entry row ~{floor.entry_bytes} B; {args.repetitions} repetitions x {args.iterations} fires"
        )
        pooled: dict[tuple[str, str], list[int]] = {}
        for mode in MODES:
            set_synchronous(db.svc, [floor, same], mode)
            for extra in (large, deep):
                if extra is not None:
                    set_synchronous(extra.svc, [], mode)
            for op in ops.values():
                timed(op, args.warmup)
            for rep in range(1, args.repetitions + 1):
                samples = interleaved(ops, args.iterations, args.rounds)
                for name, values in samples.items():
                    pooled.setdefault((mode, name), []).extend(values)
                lib, raw, stmts = (statistics.median(samples[name]) for name in list(ops)[:3])
                print(
                    f"synchronous={mode} repetition {rep}: library/floor {lib / raw:.2f}, "
                    f"library - same statements {us(lib - stmts):.0f} us"
                )
                for name, values in samples.items():
                    print(f"  {name:<32} {describe(values)}  (us)")
        print("\nall repetitions pooled")
        for (mode, name), values in pooled.items():
            print(f"  synchronous={mode:<4} {name:<32} {describe(values)}  (us)")
        for mode in MODES:
            lib, raw, stmts = (statistics.median(pooled[(mode, name)]) for name in list(ops)[:3])
            print(
                f"synchronous={mode}: ratio library / floor {lib / raw:.2f}; "
                f"library Python (library - same statements) {us(lib - stmts):.0f} us"
            )
            if large is not None:
                many = statistics.median(pooled[(mode, f"library fire, {args.large:,} pathways")])
                print(f"synchronous={mode}: {args.large:,} vs {args.targets} pathways stored: ratio {many / lib:.2f}")
            if deep is not None:
                long = statistics.median(pooled[(mode, f"library fire, {args.history:,} labs")])
                print(f"synchronous={mode}: {args.history:,} vs {args.labs} labs per pathway: ratio {long / lib:.2f}")
        verification = verify_log(db.svc)
        print(f"chain after the run: {'verifies' if verification.ok else 'DOES NOT VERIFY'}")
        floor.close()
        same.close()
        db.svc.engine.dispose()
        for name, extra in (("large", large), ("history", deep)):
            if extra is not None:
                print(f"{name} database chain: {'verifies' if verify_log(extra.svc).ok else 'DOES NOT VERIFY'}")
                extra.svc.engine.dispose()


if __name__ == "__main__":
    main()
