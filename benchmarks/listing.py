"""Reads across many pathways: `hsct pathway list`, `all_milestones`, `hsct audit log`, `audit verify`.

Seeds `--pathways` pathways (walked targets cloned through the store, as fire.py's `--seed
store` does), then times each read `--repetitions` times and prints median, p10 and p90 in
seconds. The CLI commands run as subprocesses with their output to /dev/null, start-up
included, with the project's modules compiled to bytecode first, as an installed package has
them (an environment with PYTHONDONTWRITEBYTECODE=1 would otherwise compile them from source on
every start). Prints figures only. See README.md.

    .venv/bin/python benchmarks/listing.py [--pathways 10000] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import build, workdir

from persistence.store import LogFilter
from tests.walks import WALKS
from workflow.audit.verify import verify_log

HSCT = str(Path(sys.executable).with_name("hsct"))
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflow", "states", "persistence")


def compile_bytecode() -> str:
    """The project's modules compiled into their __pycache__ folders (git ignores them), as
    `pip install` of a wheel leaves them: what a start-up reads when bytecode is not written."""
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    without = (
        "PYTHONDONTWRITEBYTECODE is set: without it every start would compile them from source"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "without it the first start would write it"
    )
    return f"bytecode of {', '.join(PACKAGES)} compiled first, as an installed package has it ({without})"


def seconds(op: Callable[[], object], repetitions: int) -> list[float]:
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        op()
        samples.append(time.perf_counter() - started)
    return samples


def describe(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {statistics.median(ordered):7.3f} s  min {ordered[0]:7.3f}  max {ordered[-1]:7.3f}  n={len(ordered)}"
    )


def cli(*args: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run([HSCT, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pathways", type=int, default=10_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--dir", help="where the database goes (default: a fresh temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    with workdir(args.dir, args.keep) as where:
        path = where / "many.sqlite"
        db = build(
            path,
            "many",
            targets=10,
            total=args.pathways,
            walk=WALKS["autologous"](),
            command="record_adverse_event",
            seed="store",
            batch=1000,
        )
        svc, url = db.svc, f"sqlite:///{path}"
        print(f"{db.count():,} pathways seeded in {db.seconds_to_seed:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
        print(compile_bytecode())
        middle = db.clock.now()
        reads: dict[str, Callable[[], object]] = {
            "service.listing (in process)": svc.listing,
            "service.all_milestones (in process)": svc.all_milestones,
            "service.log, one pathway (in process)": lambda: svc.log(LogFilter(pathway_id=db.targets[0])),
            "service.log, since a time (in process)": lambda: svc.log(LogFilter(since=middle)),
            "hsct pathway list --format csv": cli("pathway", "list", "--db", url, "--format", "csv"),
            "hsct pathway list (plain table)": cli("pathway", "list", "--db", url),
            "hsct --help": cli("--help"),
        }
        width = max(map(len, reads))
        for name, op in reads.items():
            print(f"  {name:<{width}}  {describe(seconds(op, args.repetitions))}")
        verification = verify_log(svc)
        rate = verification.entries_per_second
        print(f"  {'audit verify (1 worker)':<{width}}  {verification.entries:,} entries, {rate:,.0f} entries/s")
        print(f"chain: {'verifies' if verification.ok else 'DOES NOT VERIFY'}")
        svc.engine.dispose()


if __name__ == "__main__":
    main()
