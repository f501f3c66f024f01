"""Complete journeys through the service: referral to Day +100, every route and donor type.

Each journey is one of the walks of tests/walks.py (autologous; matched sibling, matched
unrelated, mismatched unrelated and haploidentical donors; cord blood), in turn, for a patient
of its own, every command through `PathwayService` in its own transaction, on a durable
database (SQLite: WAL, synchronous=FULL, as the library configures it; one worker process, or
`--sqlite-workers`, which share SQLite's one write lock). With
HSCT_TEST_POSTGRES_URL set, the same journeys run on PostgreSQL (a fresh schema per run) with
1, 2 and 4 worker processes. A rich progress bar counts journeys; the chain is verified after
every run. Each run also prints the CPU time its workers used (user and system, from the
operating system's accounts of the finished processes) per entry: next to the wall time it says
whether the journeys waited for the disk or for the library's Python. Prints figures only. See
README.md.

    .venv/bin/python benchmarks/journeys.py                 # 10,000 journeys
    .venv/bin/python benchmarks/journeys.py --journeys 300  # a quick run
    .venv/bin/python benchmarks/journeys.py --journeys 1000 --sqlite-workers 1 2  # SQLite, 1 and 2 processes
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import workdir

from tests.walks import PHYS, WALKS
from workflow.audit.verify import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

POSTGRES_ENV = "HSCT_TEST_POSTGRES_URL"
ROUTES = tuple(WALKS)


def journey(svc: PathwayService, clock: ManualClock, number: int) -> int:
    """One complete journey (walk `number` modulo the routes) for a new patient; its entry count."""
    walk = WALKS[ROUTES[number % len(ROUTES)]]().for_patient(f"PT-{uuid.uuid4().hex[:12].upper()}")
    clock.set(walk.steps[0][0])
    pathway_id = svc.refer(walk.refer, actor=PHYS, at=walk.steps[0][0]).pathway_id
    for at, actor, command, payload in walk.steps:
        clock.set(at)
        svc.fire(pathway_id, command, payload, actor=actor, at=at)
    return 1 + len(walk.steps)


def worker(url: str, numbers: range, done: Any) -> None:
    """Run the journeys `numbers` on a service of this process's own, counting each in `done`."""
    clock = ManualClock(WALK_START)
    svc = PathwayService(url, clock=clock, auto_upgrade=True)
    try:
        for number in numbers:
            journey(svc, clock, number)
            done.put(1)
    finally:
        svc.engine.dispose()


WALK_START = WALKS["autologous"]().steps[0][0]


def run(url: str, journeys: int, workers: int, label: str) -> None:
    """`journeys` split over `workers` processes, with a progress bar; then the chain is verified."""
    PathwayService(url, auto_upgrade=True).engine.dispose()  # the schema, before the workers race for it
    context = multiprocessing.get_context("spawn")
    done = context.Queue()
    share = -(-journeys // workers)
    slices = [range(start, min(start + share, journeys)) for start in range(0, journeys, share)]
    processes = [context.Process(target=worker, args=(url, numbers, done)) for numbers in slices]
    columns = (
        TextColumn(f"{label}, {workers} worker(s)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers', once they are joined
    with Progress(*columns) as progress:
        task = progress.add_task("journeys", total=journeys)
        for process in processes:
            process.start()
        finished = 0
        while finished < journeys:
            finished += done.get()
            progress.update(task, completed=finished)
        for process in processes:
            process.join()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if any(process.exitcode for process in processes):
        raise SystemExit(f"{label}: a worker failed")
    svc = PathwayService(url)
    try:
        verification = verify_log(svc)
    finally:
        svc.engine.dispose()
    print(
        f"{label}, {workers} worker(s): {journeys:,} journeys, {verification.entries:,} entries in {elapsed:.1f} s"
        f" ({journeys / elapsed:,.1f} journeys/s, {verification.entries / elapsed:,.0f} entries/s);"
        f" chain {'verifies' if verification.ok else 'DOES NOT VERIFY'}"
    )
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    per_entry = 1e6 / max(verification.entries, 1)
    print(
        f"{label}, {workers} worker(s): workers' CPU {user:.1f} s user, {system:.1f} s system"
        f" ({user * per_entry:,.0f} and {system * per_entry:,.0f} us an entry; wall {elapsed * per_entry:,.0f} us"
        f" an entry{'' if workers == 1 else ' across the workers'})"
    )


def postgres_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    joiner = "&" if "?" in base else "?"
    return schema, f"{base}{joiner}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="PostgreSQL worker counts")
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        nargs="+",
        default=[1],
        help="SQLite worker processes (each count on a fresh database; they share SQLite's one write lock)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--dir", help="where the SQLite database goes (default: a fresh temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPU(s) for client and database server together; routes: {', '.join(ROUTES)}")
    if not args.skip_sqlite:
        for number, workers in enumerate(args.sqlite_workers, start=1):  # a file per run: `1 2 1 2` repeats
            with workdir(args.dir, args.keep) as where:
                run(f"sqlite:///{where / f'journeys-{number}.sqlite'}", args.journeys, workers, "SQLite")
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        print(f"PostgreSQL skipped: {POSTGRES_ENV} is not set")
        return
    for workers in args.workers:
        schema, url = postgres_schema(base)
        try:
            run(url, args.journeys, workers, "PostgreSQL")
        finally:
            drop_schema(base, schema)


if __name__ == "__main__":
    main()
