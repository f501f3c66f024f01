"""A worker process for the concurrency and crash tests and the benchmarks.

    python -m tests.concurrency.worker toggle --db URL --pathway ID --count N --name W [--threads T]
    python -m tests.concurrency.worker same-key --db URL --key K --count N [--pathway ID] [--threads T]
    python -m tests.concurrency.worker script --db URL --pathway ID      (with HSCT_CRASH_AT set)

`toggle` and `same-key` print one JSON object (what each command returned, and the retries
the service made) on stdout; with --barrier DIR --parties P they wait until P workers are ready.
`script` runs harness.run_script then delivers the outbox into the host's `received` table:
the crash tests set HSCT_CRASH_AT so that it dies at one crash point on the way.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.concurrency.harness import (
    Counter,
    Outcome,
    Report,
    in_threads,
    make_service,
    record_delivery,
    run_script,
    same_key,
    toggle,
    wait_for_barrier,
)
from workflow.outbox import Dispatcher
from workflow.service import PathwayService


def _split(total: int, parts: int, n: int) -> int:
    return total // parts + (n < total % parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="worker")
    parser.add_argument("mode", choices=["toggle", "same-key", "script"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--pathway")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="w")
    parser.add_argument("--key", default="")
    parser.add_argument("--variant", action="store_true")
    parser.add_argument("--isolation")
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--parties", type=int, default=1)
    args = parser.parse_args(argv)

    counter = Counter()
    service = make_service(args.db, counter=counter, isolation=args.isolation)
    try:
        if args.mode == "script":
            run_script(service, args.pathway)
            Dispatcher(service).drain(record_delivery)
            return 0
        if args.barrier is not None:
            wait_for_barrier(args.barrier, args.parties, args.name)
        started = time.time()
        outcomes = in_threads(args.threads, _work(service, args))
        print(Report(outcomes, counter.retries, started, time.time()).to_json())
        return 0
    finally:
        service.engine.dispose()


def _work(service: PathwayService, args: argparse.Namespace) -> Callable[[int], list[Outcome]]:
    count = args.count

    def work(n: int) -> list[Outcome]:
        mine = _split(count, args.threads, n)
        if args.mode == "toggle":
            return toggle(service, args.pathway, mine, key_prefix=f"{args.name}.{n}")
        return same_key(service, args.key, mine, pathway_id=args.pathway, variant=args.variant)

    return work


if __name__ == "__main__":
    sys.exit(main())
