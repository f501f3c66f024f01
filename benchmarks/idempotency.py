"""One idempotency key sent 1,000 times, concurrently (RELIABILITY.md T8).

`--processes` worker processes x `--threads` threads each, released together, send the same
command with the same key `--sends` times in all: a referral (no pathway yet: the losers'
inserts wait on the unique key, then replay) and a hold of one pathway (the losers wait on the
pathway's row, then replay). Then `--misuse` sends of the same key with another payload,
equally concurrent. On a fresh PostgreSQL schema (dropped afterwards) or, with --sqlite, a
SQLite file in WAL mode. Asserts what T8 promises; prints the figures.

    HSCT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/idempotency.py [--sends 1000] [--processes 4] [--threads 8]
    .venv/bin/python benchmarks/idempotency.py --sqlite
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from tests.concurrency.harness import Report, Tally, make_service, refer, run_workers, scratch_database
from tests.invariants import assert_invariants

PG_ENV = "HSCT_TEST_POSTGRES_URL"


def _send(
    url: str, key: str, sends: int, processes: int, threads: int, pathway_id: str | None, variant: bool
) -> Report:
    per_process = [sends // processes + (n < sends % processes) for n in range(processes)]
    target = ["--pathway", pathway_id] if pathway_id else []
    flags = ["--variant"] if variant else []
    args = [
        ["same-key", "--db", url, "--key", key, "--count", str(count), "--threads", str(threads), *target, *flags]
        for count in per_process
    ]
    return run_workers(args, prefix="misuse" if variant else "same")


def run(url: str, command: str, sends: int, misuse: int, processes: int, threads: int) -> str:
    """Both rounds for `command` ("refer" or "hold") on the empty database at `url`."""
    setup = make_service(url)
    try:
        pathway_id = None if command == "refer" else refer(setup)
    finally:
        setup.engine.dispose()
    key = f"bench-{uuid.uuid4()}"
    report = _send(url, key, sends, processes, threads, pathway_id, variant=False)
    refused = _send(url, key, misuse, processes, threads, pathway_id, variant=True)

    kinds = [o.kind for o in report.outcomes]
    results = {(o.pathway_id, o.sequence, o.hash) for o in report.outcomes}
    first = sum(not o.replayed for o in report.outcomes)
    check = make_service(url)
    try:
        with check.engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT count(*) FROM entries WHERE idempotency_key = :key"), {"key": key}
            ).scalar_one()
        pathways = len(check.pathway_ids())
        assert_invariants(check.engine)
    finally:
        check.engine.dispose()
    misuse_kinds = {o.kind for o in refused.outcomes}
    timing = Tally(latencies=[o.seconds for o in report.outcomes])
    figures = (
        f"{command:5}  sends {len(kinds)}  answered {kinds.count('committed')}  first {first}  "
        f"replayed {len(kinds) - first}  distinct results {len(results)}  entries with the key {stored}  "
        f"pathways {pathways}  misuse sends {len(refused.outcomes)} refused as {sorted(misuse_kinds)}  "
        f"retries {report.retries}  p50 {timing.percentile(0.5) * 1e3:.1f} ms  "
        f"p99 {timing.percentile(0.99) * 1e3:.1f} ms  wall {report.finished - report.started:.2f} s"
    )
    expected = (["committed"] * sends, 1, 1, 1, 1, {"error:IdempotencyMisuse"})
    if (kinds, first, len(results), stored, pathways, misuse_kinds) != expected:
        raise AssertionError(figures)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get(PG_ENV), help=f"PostgreSQL URL (default ${PG_ENV})")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file in WAL mode instead")
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--misuse", type=int, default=100, help="sends of the key with another payload")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="per process")
    args = parser.parse_args(argv)
    if not args.sqlite and not args.db:
        parser.error(f"name a PostgreSQL server with --db or ${PG_ENV}, or pass --sqlite")
    print(
        f"{'SQLite (WAL, file)' if args.sqlite else 'PostgreSQL'}: one key, {args.sends} sends from "
        f"{args.processes} processes x {args.threads} threads released together, then {args.misuse} misuses"
    )
    for command in ("refer", "hold"):
        with scratch_database(None if args.sqlite else args.db) as url:
            print(run(url, command, args.sends, args.misuse, args.processes, args.threads), flush=True)
    print("T8 holds: exactly one entry per key, every replay returns the stored result, every misuse refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
