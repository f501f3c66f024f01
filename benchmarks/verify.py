"""T14: verifying the whole log at scale, next to what hashing and reading the entries alone cost.

Seeds at least 100,000 entries in 1,000 pathways (realistic chains: the walks of tests/walks.py
with a long follow-up of labs, played through the service once, then cloned through the Store,
which seals every entry itself), then times `workflow.audit.verify_log` over all of it:

- verify: every chain recomputed from the columns (body rebuilt and compared byte for byte,
  SHA-256, prev_hash links, pathway rows against their logs), with 1 worker and with several;
- sha256 floor: `hashlib.sha256(body).hexdigest()` over the same stored bodies, already in
  memory, one call per entry: what hashing alone costs (the brief's ~0.6 us per entry);
- read floor: the verifier's own query through the same driver cursor, rows fetched and
  dropped: what getting the entries out of the database costs before any check.

Prints figures only (nothing asserts on a time). Target (issue #14): >= 250,000 entries/s on
one worker.

    .venv/bin/python benchmarks/verify.py [--pathways 1000] [--entries 100] [--db URL] [--workers 1,2]
    .venv/bin/python benchmarks/verify.py --file /tmp/verify1m/verify.sqlite --pathways 10000   # 1M, seeded once
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy

from persistence.audit_queries import CHECK_COLUMNS, audit_snapshot
from persistence.engine import masked_url
from tests.audit.seeding import Template, make_templates, seed
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

TARGET = 250_000
BODY = CHECK_COLUMNS.index("body")
BATCH = 500  # verify_log's default


def timed(run: Callable[[], object], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pathways", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100, help="entries per pathway (about)")
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--file", type=Path, help="a SQLite file, seeded only if missing, and kept (large runs)")
    args = parser.parse_args()

    folder = None if args.db or args.file else Path(tempfile.mkdtemp(prefix="hsct-verify-", dir=args.dir))
    file: Path | None = args.file or (folder / "verify.sqlite" if folder is not None else None)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    fresh = file is None or not file.exists()
    url = args.db or f"sqlite:///{file}"
    print(f"python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; database {masked_url(url)}")
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    service = PathwayService(url, clock=clock, auto_upgrade=True)
    try:
        started = time.perf_counter()
        templates: list[Template] = []
        if fresh:
            templates = make_templates(service, clock, args.entries)
            seed(service, templates, args.pathways - len(templates))
        seeded = time.perf_counter() - started

        first = verify_log(service)
        if not first.ok:
            print(f"the seeded log does not verify: {first.first}")
            return 1
        n = first.entries
        if fresh:
            print(f"seeded {n:,} entries in {first.pathways:,} pathways in {seeded:.1f} s "
                  f"({len(templates)} templates of {[len(log) for log, _ in templates]} entries)")
        else:
            print(f"reused {args.file}: {n:,} entries in {first.pathways:,} pathways")

        # Floors, on the same entries: hashing the stored bodies, and reading the rows.
        with audit_snapshot(service.engine) as reader:
            bodies = [row[BODY] for batch in reader.check_batches(batch_size=BATCH) for row in batch]

        def hash_all() -> None:
            sha256 = hashlib.sha256
            for body in bodies:
                sha256(body).hexdigest()

        def read_all() -> None:
            with audit_snapshot(service.engine) as reader:
                for _batch in reader.check_batches(batch_size=BATCH):
                    pass

        sha = statistics.median(timed(hash_all, args.rounds)) / n
        read = statistics.median(timed(read_all, args.rounds)) / n
        mean_body = sum(len(b) for b in bodies) / n
        print(f"sha256 floor: {sha * 1e6:.2f} us/entry ({1 / sha:,.0f} entries/s), bodies {mean_body:.0f} bytes "
              "on average")
        print(f"read floor:   {read * 1e6:.2f} us/entry ({1 / read:,.0f} entries/s): the verifier's query, "
              "rows fetched and dropped")

        results = {}
        for workers in (int(w) for w in args.workers.split(",")):
            runs = [verify_log(service, workers=workers) for _ in range(args.rounds)]
            assert all(run.ok and run.entries == n for run in runs)
            median = statistics.median(run.seconds for run in runs)
            results[workers] = n / median
            print(f"verify, {workers} worker(s): median {median * 1e3:.0f} ms = {n / median:,.0f} entries/s "
                  f"({median / n * 1e6:.2f} us/entry = {median / n / sha:.1f}x the sha256 floor, "
                  f"{median / n / read:.1f}x the read floor)")
        best = max(results.values())
        figures = ", ".join(f"{rate:,.0f} entries/s with {w} worker(s)" for w, rate in results.items())
        print()
        print(f"summary: {n:,} entries in {first.pathways:,} pathways; verify {figures}; target >= {TARGET:,} "
              f"({'met' if best >= TARGET else 'not met'}); sha256 floor {sha * 1e6:.2f} us/entry "
              f"({1 / sha:,.0f}/s), read floor {read * 1e6:.2f} us/entry ({1 / read:,.0f}/s)")
    finally:
        service.engine.dispose()
        if folder is not None and args.keep:
            print(f"kept {folder}")
        elif folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
