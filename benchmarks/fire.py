"""What one persisted command costs, next to what SQLite alone needs for the same write.

Measures `PathwayService.fire` of a repeatable event on a durable file database (WAL,
synchronous=FULL, as persistence.engine configures it) against a raw `sqlite3` floor doing the
same storage work, in a database holding 10 pathways and one holding 10,000, and the memory a
loaded pathway costs. Prints figures only: nothing here asserts on a time. See README.md.

    .venv/bin/python benchmarks/fire.py [--iterations 1000] [--large 10000] [--profile 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import sqlalchemy
import transitions
from sqlalchemy.orm import Session

from persistence.chain import BODY_FIELDS
from persistence.store import Store
from states.vocabulary import Phase
from tests.audit.seeding import clone
from tests.walks import LAB, PHYS, WALKS, Walk
from workflow.clock import ManualClock
from workflow.engine import _Token
from workflow.service import PathwayService

# Where tests.walks.run_walk refers its patients; the walks' later steps follow from there.
WALK_START = datetime(2026, 1, 5, 9, tzinfo=UTC)
TARGET_PHASE = Phase.AWAITING_ENGRAFTMENT

# Events allowed again and again in TARGET_PHASE. record_adverse_event keeps the stored facts
# the same size (a counter); record_lab appends to facts.labs, so its cost creeps up with use.
COMMANDS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "record_adverse_event": (PHYS, {"type": "mucositis", "grade": 2}),
    "record_lab": (LAB, {"anc_x10e9_per_l": 0.6, "platelets_x10e9_per_l": 30}),
}

FLOOR = "raw sqlite3 INSERT+UPDATE+commit, synchronous=FULL, WAL"
ENTRY_COLUMNS = (*BODY_FIELDS, "sequence", "body", "prev_hash", "hash", "form")


# --- seeding ---------------------------------------------------------------------------------


def new_patient() -> str:
    return f"PT-{uuid.uuid4().hex[:12]}"


def walk_to_target(svc: PathwayService, clock: ManualClock, walk: Walk, session: Session | None = None) -> str:
    """Refer and play `walk` until TARGET_PHASE, as tests.walks.run_walk does, in `session` if given,
    for a patient of its own (a patient has one open pathway at a time)."""
    clock.set(WALK_START)
    walk = walk.for_patient(new_patient())
    pathway_id = svc.refer(walk.refer, actor=PHYS, at=WALK_START, session=session).pathway_id
    for at, actor, command, payload in walk.steps:
        clock.set(at)
        if svc.fire(pathway_id, command, payload, actor=actor, at=at, session=session).phase is TARGET_PHASE:
            return pathway_id
    raise RuntimeError(f"walk {walk.name} never reached {TARGET_PHASE}")


@dataclass
class Database:
    """One benchmark database: the library's service on it and the pathways the timed fires use."""

    label: str
    path: Path
    svc: PathwayService
    clock: ManualClock
    targets: list[str]
    seconds_to_seed: float = 0.0

    def count(self) -> int:
        with Session(self.svc.engine) as s:
            return len(Store(s).pathway_ids())


def build(
    path: Path, label: str, *, targets: int, total: int, walk: Walk, command: str, seed: str, batch: int
) -> Database:
    """`targets` pathways walked to TARGET_PHASE through the service, one command fired on each
    (the row the raw floor copies), then filler pathways up to `total`."""
    started = time.perf_counter()
    clock = ManualClock(WALK_START)
    svc = PathwayService(f"sqlite:///{path}", clock=clock, auto_upgrade=True)
    actor, payload = COMMANDS[command]
    ids = [walk_to_target(svc, clock, walk) for _ in range(min(targets, total))]
    for pid in ids:
        svc.fire(pid, command, payload, actor=actor, at=clock.now())
    fillers = total - len(ids)
    if fillers > 0:
        log = svc.history(ids[0])  # the walk and the primer: the log record.facts replays from
        with Session(svc.engine) as s:
            record = Store(s).load(ids[0])
        assert record is not None
        for offset in range(0, fillers, batch):
            with Session(svc.engine) as s, s.begin():
                for _ in range(min(batch, fillers - offset)):
                    if seed == "service":
                        walk_to_target(svc, clock, walk, session=s)
                    else:
                        clone(Store(s), log, record, patient_ref=new_patient())
        clock.set(log[-1].recorded_at)
    db = Database(label, path, svc, clock, ids)
    db.seconds_to_seed = time.perf_counter() - started
    return db


def copy_database(db: Database, dest: Path) -> None:
    """A consistent copy (SQLite's backup API) for the raw floor to write to; then both WALs are
    folded in and the OS flushes its dirty pages, so seeding's writeback does not land on the
    timed commits."""
    source, target = sqlite3.connect(db.path), sqlite3.connect(dest)
    try:
        source.backup(target)
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        source.close()
        target.close()
    os.sync()


# --- the raw floor ---------------------------------------------------------------------------


class RawFloor:
    """The same write with nothing but sqlite3: the same schema, indexes, triggers and pragmas.

    One INSERT of an entries row copied from the library's own row for the command (same
    width, body and hashes included; only chain position and head change), one UPDATE of the
    pathways row guarded by (version, head_hash) and rewriting its facts, and COMMIT, inside
    BEGIN IMMEDIATE. No hashing, no validation: pure storage work. The commands timed keep the
    phase, so the UPDATE holds it in the WHERE, as the library's does, instead of assigning it.
    """

    update = (
        "UPDATE pathways SET version = :version, head_hash = :head, updated_at = :now, facts = :facts"
        " WHERE id = :id AND version = :expected AND head_hash = :old_head AND phase = :phase"
    )

    def __init__(self, path: Path, targets: Sequence[str], command: str, busy_timeout_ms: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            f"PRAGMA busy_timeout = {busy_timeout_ms}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
        ):
            self.conn.execute(pragma).fetchall()
        columns = ", ".join(ENTRY_COLUMNS)
        row = self.conn.execute(
            f"SELECT {columns} FROM entries WHERE trigger = ? ORDER BY id DESC LIMIT 1", (command,)
        ).fetchone()
        self.template = dict(zip(ENTRY_COLUMNS, row, strict=True))
        self.entry_bytes = sum(len(v) if isinstance(v, str | bytes) else 8 for v in row if v is not None)
        self.insert = f"INSERT INTO entries ({columns}) VALUES ({', '.join(':' + c for c in ENTRY_COLUMNS)})"
        self.heads: dict[str, tuple[int, str, str, str, str]] = {}
        for pid in targets:
            version, head, phase, facts, updated = self.conn.execute(
                "SELECT version, head_hash, phase, facts, updated_at FROM pathways WHERE id = ?", (pid,)
            ).fetchone()
            self.heads[pid] = (version, head, phase, facts, updated)
        self.facts_bytes = len(self.heads[targets[0]][3])
        self.pathway_columns = [d[0] for d in self.conn.execute("SELECT * FROM pathways LIMIT 0").description]
        self.cycle = itertools.cycle(list(targets))
        self.counter = itertools.count(1)

    def pragmas(self) -> str:
        mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = self.conn.execute("PRAGMA synchronous").fetchone()[0]
        return f"journal_mode={mode} synchronous={sync}"

    def binds(self, pid: str) -> dict[str, Any]:
        """What a subclass's UPDATE names beyond the floor's own."""
        return {}

    def _write(self, pid: str, version: int, head: str, phase: str, facts: str, updated: str) -> None:
        new_head = f"{next(self.counter):064x}"
        cur = self.conn.execute(
            self.update,
            {
                "version": version + 1,
                "head": new_head,
                "phase": phase,
                "now": updated,
                "facts": facts,
                "id": pid,
                "expected": version,
                "old_head": head,
                **self.binds(pid),
            },
        )
        if cur.rowcount != 1:
            raise RuntimeError("raw floor lost its own head")
        self.conn.execute(
            self.insert,
            {**self.template, "pathway_id": pid, "sequence": version + 1, "prev_hash": head, "hash": new_head},
        )
        self.heads[pid] = (version + 1, new_head, phase, facts, updated)

    def once(self) -> None:
        """BEGIN IMMEDIATE; UPDATE pathways; INSERT entries; COMMIT."""
        pid = next(self.cycle)
        self.conn.execute("BEGIN IMMEDIATE")
        self._write(pid, *self.heads[pid])
        self.conn.execute("COMMIT")

    def once_with_load(self) -> None:
        """The same, after reading the whole pathways row first, as the library's load does."""
        pid = next(self.cycle)
        self.conn.execute("BEGIN IMMEDIATE")
        row = self.conn.execute("SELECT * FROM pathways WHERE id = ?", (pid,)).fetchone()
        r = dict(zip(self.pathway_columns, row, strict=True))
        self._write(pid, r["version"], r["head_hash"], r["phase"], r["facts"], r["updated_at"])
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# --- timing ----------------------------------------------------------------------------------


def library_op(db: Database, command: str) -> Callable[[], object]:
    actor, payload = COMMANDS[command]
    cycle = itertools.cycle(db.targets)
    svc, at = db.svc, db.clock.now()

    def once() -> object:
        return svc.fire(next(cycle), command, payload, actor=actor, at=at)

    return once


def timed(op: Callable[[], object], n: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        start = clock()
        op()
        samples.append(clock() - start)
    return samples


def measure(ops: dict[str, Callable[[], object]], *, warmup: int, iterations: int, rounds: int) -> dict[str, list[int]]:
    """Interleave the ops in `rounds` blocks, so that disk and CPU drift hit all of them alike."""
    for op in ops.values():
        timed(op, warmup)
    per_round = -(-iterations // rounds)
    samples: dict[str, list[int]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            gc.collect()
            samples[name] += timed(op, per_round)
    return samples


def us(ns: float) -> float:
    return ns / 1000


def median_us(samples: Sequence[int]) -> float:
    return us(statistics.median(samples))


def describe(samples: Sequence[int]) -> str:
    deciles = statistics.quantiles(samples, n=10)
    return (
        f"median {median_us(samples):8.1f}   p10 {us(deciles[0]):8.1f}   p90 {us(deciles[-1]):8.1f}   n={len(samples)}"
    )


def run_size(db: Database, raw_path: Path, command: str, args: argparse.Namespace) -> dict[str, list[int]]:
    copy_database(db, raw_path)
    raw = RawFloor(raw_path, db.targets, command, busy_timeout_ms=5000)
    with db.svc.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    print(
        f"\n[{db.label} database: {db.count():,} pathways, seeded in {db.seconds_to_seed:.1f} s; "
        f"timed fires round-robin over {len(db.targets)} of them]"
    )
    print(f"  library connection: journal_mode={mode} synchronous={sync} (2 = FULL); raw: {raw.pragmas()}")
    megabytes = db.path.stat().st_size / 1e6
    print(
        f"  file {megabytes:.1f} MB; row widths: entries row ~{raw.entry_bytes} B, pathways.facts {raw.facts_bytes} B"
    )
    ops = {
        "library PathwayService.fire": library_op(db, command),
        f"floor: {FLOOR}": raw.once,
        "floor + SELECT of the pathway row (info)": raw.once_with_load,
    }
    samples = measure(ops, warmup=args.warmup, iterations=args.iterations, rounds=args.rounds)
    raw.close()
    width = max(len(name) for name in ops)
    for name, values in samples.items():
        print(f"  {name:<{width}}  {describe(values)}  (us)")
    lib, floor = (median_us(samples[name]) for name in list(ops)[:2])
    print(f"  ratio library / floor: {lib / floor:.2f}")
    return samples


# --- memory ----------------------------------------------------------------------------------


def count_instances(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def memory(db: Database, n: int, command: str) -> float:
    """Bytes per loaded pathway (N distinct snapshots held), and what the service keeps itself.

    Read through a service of its own on the same engine: the benchmark's service keeps the facts
    it wrote for the timed targets, and a snapshot of those would share that object instead of
    being read, which made a run with few pathways (`--large 20`: ten of twenty) report half the
    memory. A fresh service reads every snapshot from the database, as one that did not write it.
    """
    svc = PathwayService(db.svc.engine, clock=db.clock)
    with Session(svc.engine) as s:
        ids = Store(s).pathway_ids(TARGET_PHASE)[:n]
    n = len(ids)
    actor, payload = COMMANDS[command]
    for pid in ids[:5]:  # warm statement caches and imports outside the measurement
        svc.snapshot(pid)
    machines, tokens = count_instances(transitions.Machine), count_instances(_Token)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        held = [svc.snapshot(pid) for pid in ids]
        gc.collect()
        per_snapshot = (tracemalloc.get_traced_memory()[0] - base - sys.getsizeof(held)) / n
        facts_json = len(held[0].facts.model_dump_json())
        del held
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        at = db.clock.now()
        for pid in ids:
            svc.fire(pid, command, payload, actor=actor, at=at)
            svc.snapshot(pid)
        gc.collect()
        kept = (tracemalloc.get_traced_memory()[0] - base) / n
    finally:
        tracemalloc.stop()
    print(f"\n[memory, {db.label} database: {n:,} distinct pathways in {TARGET_PHASE.value}]")
    print(
        f"  holding {n:,} snapshots (service.snapshot): {per_snapshot / 1024:.2f} KiB each "
        f"(facts JSON {facts_json} B) -- tracemalloc, after gc"
    )
    print(
        f"  retained after firing on and loading each of them, results dropped: {kept * n / 1024:.1f} KiB in all, "
        f"{kept:.0f} B per pathway (one-off growth of pools and caches, not per-pathway state)"
    )
    print(f"  service attributes: {', '.join(sorted(vars(svc)))}")
    print(
        f"  transitions.Machine objects (one per PathwayService, this run has two): {machines} before, "
        f"{count_instances(transitions.Machine)} after; "
        f"machine models: {len(svc._machine.machine.models)}; "
        f"phase tokens alive: {tokens} before, {count_instances(_Token)} after"
    )
    print("  -> one shared machine, no per-pathway machine or model; a pathway lives only in the database")
    return per_snapshot


# --- profile ---------------------------------------------------------------------------------

# (label, file suffix, function name): cumulative time of each part of a fire.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("PathwayService.fire (everything)", "workflow/service.py", "fire"),
    ("  validate payload and actor", "workflow/validation.py", "validated"),
    ("  unit of work: Session, begin, commit, close", "workflow/service.py", "_unit"),
    ("    sqlite3 COMMIT (fsync)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("  Store.load", "persistence/store.py", "load"),
    ("    Session.connection (pool checkout, BEGIN IMMEDIATE)", "sqlalchemy/orm/session.py", "connection"),
    ("    _record_from_row", "persistence/store.py", "_record_from_row"),
    ("  _attempt", "workflow/service.py", "_attempt"),
    ("    parse stored facts JSON", "pydantic/main.py", "model_validate_json"),
    ("    judge (role, phase, guards)", "states/judge.py", "judge"),
    ("    _draft (Draft model)", "workflow/service.py", "_draft"),
    ("      Policy.version_id", "states/policy.py", "version_id"),
    ("    apply_entry (fold)", "states/fold.py", "apply_entry"),
    ("    dump facts JSON", "pydantic/main.py", "model_dump_json"),
    ("    Store.append", "persistence/store.py", "append"),
    ("      seal (canonical JSON + sha256)", "persistence/chain.py", "seal_with_body"),
    ("all SQLAlchemy Connection.execute (SELECT, UPDATE, INSERT)", "sqlalchemy/engine/base.py", "execute"),
    ("  of which sqlite3 Cursor.execute", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("all logging", "logging/__init__.py", "info"),
)


def profile(db: Database, command: str, fires: int, top: int) -> None:
    """cProfile of `fires` library fires: the time split by part and the top functions by own time."""
    op = library_op(db, command)
    timed(op, 50)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(fires):
        op()
    prof.disable()
    stats = pstats.Stats(prof)
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # pstats' own table
    total = sum(tt for _, _, tt, _, _ in table.values())
    print(
        f"\n[profile: cProfile of {fires} library fires on the {db.label} database; "
        f"{us(total * 1e9) / fires:.0f} us per fire under the profiler; % of profiled time]"
    )
    for label, suffix, name in PARTS:
        # max, not sum: same-named functions of one file nest (Session.commit calls
        # SessionTransaction.commit), and summing would count the inner one twice.
        cumulative = max(
            (
                ct
                for (file, _, fn), (_, _, _, ct, _) in table.items()
                if fn == name and file.replace(os.sep, "/").endswith(suffix)
            ),
            default=None,
        )
        share = "   n/a" if cumulative is None else f"{cumulative / total:6.1%}"
        print(f"  {share}  {label}")
    print(f"  top {top} by own time:  own%   cum%   calls/fire  function")
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, fn), (_, calls, tt, ct, _) in ranked:
        where = fn if file == "~" else f"{fn}  {short_path(file)}:{line}"
        print(f"  {tt / total:22.1%} {ct / total:6.1%} {calls / fires:9.1f}  {where}")


def profile_sampling(db: Database, command: str, fires: int) -> None:
    """pyinstrument's call tree of `fires` library fires (sampling: less distortion than cProfile)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("\n[pyinstrument is not installed: .venv/bin/pip install pyinstrument]")
        return
    op = library_op(db, command)
    timed(op, 50)
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(fires):
        op()
    profiler.stop()
    print(f"\n[profile: pyinstrument of {fires} library fires on the {db.label} database, % of wall time]")
    print(profiler.output_text(unicode=False, color=False, time="percent_of_total"))


def short_path(file: str) -> str:
    parts = Path(file).parts
    for anchor in ("site-packages", "main"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    return "/".join(parts[-2:])


# --- main ------------------------------------------------------------------------------------


@contextmanager
def workdir(given: str | None, keep: bool) -> Iterator[Path]:
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="hsct-bench-"))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if not keep and not given:
            shutil.rmtree(path, ignore_errors=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--iterations", type=int, default=1000, help="timed iterations per figure (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed iterations first (default 50)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved blocks the iterations are split into")
    p.add_argument("--small", type=int, default=10, help="pathways in the small database (default 10)")
    p.add_argument("--large", type=int, default=10_000, help="pathways in the large database (default 10000)")
    p.add_argument("--targets", type=int, default=10, help="pathways the timed fires rotate over (default 10)")
    p.add_argument("--command", choices=sorted(COMMANDS), default="record_adverse_event")
    p.add_argument("--walk", choices=sorted(WALKS), default="autologous", help="how targets reach the phase")
    p.add_argument(
        "--seed",
        choices=("store", "service"),
        default="store",
        help="fillers cloned through persistence.store (fast) or walked through the service",
    )
    p.add_argument("--seed-batch", type=int, default=1000, help="filler pathways per seeding transaction")
    p.add_argument("--memory-pathways", type=int, default=1000, help="snapshots held for the memory figure")
    p.add_argument("--profile", type=int, default=0, metavar="FIRES", help="also cProfile this many fires")
    p.add_argument("--pyinstrument", type=int, default=0, metavar="FIRES", help="also pyinstrument this many fires")
    p.add_argument("--top", type=int, default=25, help="functions listed by the profile")
    p.add_argument("--dir", help="where the databases go (default: a temporary directory, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    walk = WALKS[args.walk]()
    started = time.perf_counter()
    with workdir(args.dir, args.keep) as root:
        print("HSCT pathway: cost of one persisted command")
        print(
            f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy "
            f"{sqlalchemy.__version__}, pydantic {pydantic.VERSION}, {os.cpu_count()} CPUs, {platform.machine()}"
        )
        print(
            f"databases in {root}; command {args.command} on pathways in {TARGET_PHASE.value} "
            f"({args.walk} walk); fillers seeded via {args.seed}"
        )
        print(
            f"floor = {FLOOR}: BEGIN IMMEDIATE; UPDATE the pathways row (version/head check, facts rewritten); "
            "INSERT one entries row copied from the library's; COMMIT -- same schema, indexes, triggers, "
            "foreign_keys=ON, no hashing or validation"
        )
        common = {"walk": walk, "command": args.command, "seed": args.seed, "batch": args.seed_batch}
        print(f"\nseeding the small database ({args.small:,} pathways) ...", flush=True)
        small = build(root / "small.sqlite", "small", targets=args.targets, total=args.small, **common)
        small_samples = run_size(small, root / "small-raw.sqlite", args.command, args)
        print(f"\nseeding the large database ({args.large:,} pathways) ...", flush=True)
        large = build(root / "large.sqlite", "large", targets=args.targets, total=args.large, **common)
        with Session(large.svc.engine) as s:
            filler = Store(s).pathway_ids()[-1]
            intact = Store(s).verify_pathway(filler)
        print(f"a filler's chain verifies (Store.verify_pathway): {intact is None}")
        large_samples = run_size(large, root / "large-raw.sqlite", args.command, args)
        per_pathway = memory(large, args.memory_pathways, args.command)
        if args.profile:
            profile(small, args.command, args.profile, args.top)
        if args.pyinstrument:
            profile_sampling(small, args.command, args.pyinstrument)
        for db in (small, large):
            db.svc.engine.dispose()

    lib_name, floor_name = "library PathwayService.fire", f"floor: {FLOOR}"
    lib, floor = median_us(small_samples[lib_name]), median_us(small_samples[floor_name])
    lib_large = median_us(large_samples[lib_name])
    print(f"\n=== summary ({time.perf_counter() - started:.0f} s) ===")
    print(
        f"library median {lib:.0f} us; raw floor {floor:.0f} us; ratio {lib / floor:.2f} (target <= 1.5)"
        f"   [{args.small:,}-pathway database; floor = {FLOOR}]"
    )
    print(
        f"{args.small:,} vs {args.large:,} pathways: {lib:.0f} us vs {lib_large:.0f} us, "
        f"ratio {lib_large / lib:.2f} (target ~1.0)"
    )
    print(f"memory per loaded pathway: {per_pathway / 1024:.2f} KiB (snapshot held; the service keeps none)")


if __name__ == "__main__":
    main()
