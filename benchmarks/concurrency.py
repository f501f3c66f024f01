"""Racing writers at full size (RELIABILITY.md T2, T3, T6): nothing lost, nothing duplicated.

For 1, 2, 4 and 8 workers (threads in one process, and separate processes), each sending
`--count` transitions with their own idempotency keys, against one pathway and against one
pathway per worker, on a fresh PostgreSQL schema (dropped afterwards). `--sqlite` runs T6
instead: 4 processes x 250 on a SQLite file in WAL mode. Every run is audited against the
database (tests/concurrency/harness.audit_outcomes), checked for I1-I5 and one outbox row per
entry, and its outbox delivered once. Prints figures; asserts only correctness, never a time.

    HSCT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/concurrency.py [--workers 1,2,4,8] [--count 500]
    .venv/bin/python benchmarks/concurrency.py --sqlite [--workers 4] [--count 250]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

import sqlalchemy

from tests.concurrency.harness import (
    Counter,
    Report,
    Tally,
    audit_outcomes,
    in_threads,
    make_service,
    refer,
    run_workers,
    scratch_database,
    toggle,
)
from tests.invariants import assert_invariants, outbox_mismatches
from workflow.outbox import Dispatcher

PG_ENV = "HSCT_TEST_POSTGRES_URL"


def _threads(url: str, workers: int, count: int, targets: list[str], isolation: str | None) -> Report:
    counter = Counter()
    service = make_service(url, counter=counter, isolation=isolation)
    try:
        started = time.time()
        outcomes = in_threads(
            workers, lambda n: toggle(service, targets[n % len(targets)], count, key_prefix=f"thread{n}")
        )
        return Report(outcomes, counter.retries, started, time.time())
    finally:
        service.engine.dispose()


def _processes(url: str, workers: int, count: int, targets: list[str], isolation: str | None) -> Report:
    extra = ["--isolation", isolation] if isolation else []
    args = [
        ["toggle", "--db", url, "--pathway", targets[n % len(targets)], "--count", str(count), *extra]
        for n in range(workers)
    ]
    return run_workers(args, prefix="proc")


def run_one(url: str, mode: str, workers: int, count: int, distinct: bool, isolation: str | None) -> Tally:
    """One configuration on the empty database at `url`: race, audit, check, deliver."""
    setup = make_service(url)
    try:
        targets = [refer(setup) for _ in range(workers if distinct else 1)]
    finally:
        setup.engine.dispose()
    report = (_threads if mode == "threads" else _processes)(url, workers, count, targets, isolation)
    check = make_service(url)
    try:
        tally = audit_outcomes(check.engine, report.outcomes)
        tally.retries, tally.seconds = report.retries, report.finished - report.started
        assert_invariants(check.engine)
        problems = outbox_mismatches(check.engine)
        delivered = Dispatcher(check, batch=500).drain(lambda message, connection: None)
        again = Dispatcher(check).drain(lambda message, connection: None)
    finally:
        check.engine.dispose()
    entries = len(targets) + tally.committed + tally.refused
    if problems or delivered.delivered != entries or again.delivered:
        raise AssertionError(f"outbox: {problems[:3]}, delivered {delivered}, then {again}, entries {entries}")
    if tally.errors or tally.lost or tally.duplicated:
        raise AssertionError(f"{tally.line()}: errors {tally.errors[:5]}")
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get(PG_ENV), help=f"PostgreSQL URL (default ${PG_ENV})")
    parser.add_argument("--sqlite", action="store_true", help="T6: a SQLite file in WAL mode instead")
    parser.add_argument("--workers", default=None, help="comma-separated (default 1,2,4,8; --sqlite: 4)")
    parser.add_argument("--count", type=int, default=None, help="commands per worker (default 500; --sqlite: 250)")
    parser.add_argument("--modes", default=None, help="threads,processes (default both; --sqlite: processes)")
    parser.add_argument("--targets", default="one,distinct", help="one pathway, or one per worker")
    parser.add_argument("--isolation", default=None, help='e.g. "SERIALIZABLE" (PostgreSQL)')
    args = parser.parse_args(argv)
    if not args.sqlite and not args.db:
        parser.error(f"name a PostgreSQL server with --db or ${PG_ENV}, or pass --sqlite")
    workers = [int(w) for w in (args.workers or ("4" if args.sqlite else "1,2,4,8")).split(",")]
    count = args.count or (250 if args.sqlite else 500)
    modes = (args.modes or ("processes" if args.sqlite else "threads,processes")).split(",")
    targets = args.targets.split(",")

    backend = "SQLite (WAL, file)" if args.sqlite else f"PostgreSQL, isolation {args.isolation or 'READ COMMITTED'}"
    print(f"{backend}; {count} transitions per worker (hold/resume, each with its own idempotency key)")
    print(f"python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, {os.cpu_count()} CPUs")
    print("commits = entries written (transitions + refusals of commands the race made stale)")
    print("conflicts = ConcurrencyConflict reaching a caller; retries = the service's own re-runs")
    print("p50/p99 per command, retries included; throughput = commits / (first start .. last end)\n")
    for target in targets:
        for mode in modes:
            for n in workers:
                with scratch_database(None if args.sqlite else args.db) as url:
                    tally = run_one(url, mode, n, count, target == "distinct", args.isolation)
                label = f"{target:8} {mode:9} {n} worker{'s' if n > 1 else ' '}"
                print(f"{label}  {tally.line()}", flush=True)
    print("\nall runs: lost 0, duplicated 0, no raw driver error, I1-I5 hold, each outbox row delivered once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
