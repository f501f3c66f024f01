"""Cost flat in every series: the command recording one value of each series beside the snapshot
(persistence.series.SERIES_FIELDS: labs, transfusions, chimerism, GVHD, chronic GVHD, VOD,
infections), on a pathway holding few values of it and on one holding `--history` more,
interleaved in one process on a durable SQLite file (synchronous=FULL, as the library sets it).

Both pathways walk a matched-sibling transplant to the phase the value is recorded in
(tests.helpers_core.SERIES_RECORDING). The issue's target is a ratio of at most 1.1 at 2,000
values. Each pathway records a value at every timed fire, so the "few" one ends the run with
`--iterations` of them. Prints figures only; the chain is verified at the end. See README.md.

    .venv/bin/python benchmarks/series.py                     # --history 2000 --iterations 200
    .venv/bin/python benchmarks/series.py --series gvhd vod --history 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import WALK_START, new_patient, workdir
from floor import describe, interleaved

from persistence.series import SERIES_FIELDS
from tests.helpers_core import COMMANDS, SERIES_RECORDING
from tests.walks import WALKS, run_walk
from workflow.audit.verify import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService


def recorder(svc: PathwayService, clock: ManualClock, pathway_id: str, command: str) -> Callable[[], object]:
    """One more value of the series on `pathway_id`, through the service."""
    actor, payload = COMMANDS[command]
    return lambda: svc.fire(pathway_id, command, payload, actor=actor, at=clock.now())


def measure(svc: PathwayService, clock: ManualClock, field: str, args: argparse.Namespace) -> float:
    """The ratio of the medians, long history against few values; prints both."""
    command, phase = SERIES_RECORDING[field]
    walks = (WALKS["matched_sibling"]().for_patient(new_patient()) for _ in range(2))
    few, long = (run_walk(svc, clock, walk, until=phase) for walk in walks)
    grow = recorder(svc, clock, long, command)
    for _ in range(args.history):
        grow()
    ops = {"few": recorder(svc, clock, few, command), f"{args.history:,} more": grow}
    samples = interleaved(ops, args.iterations, args.rounds)
    for name, values in samples.items():
        print(f"  {field:13s} {command:24s} {name:>12s}  {describe(values)}  (us)")
    ratio = statistics.median(samples[f"{args.history:,} more"]) / statistics.median(samples["few"])
    print(f"  {field:13s} ratio {ratio:.2f}")
    return ratio


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=2000, help="values recorded first on the long pathway")
    parser.add_argument("--iterations", type=int, default=200, help="timed fires per pathway")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks")
    parser.add_argument("--series", nargs="+", choices=SERIES_FIELDS, default=list(SERIES_FIELDS))
    parser.add_argument("--dir", help="where the SQLite database goes (default: a fresh temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    with workdir(args.dir, args.keep) as where:
        clock = ManualClock(WALK_START)
        svc = PathwayService(f"sqlite:///{where / 'series.sqlite'}", clock=clock, auto_upgrade=True)
        try:
            ratios = {field: measure(svc, clock, field, args) for field in args.series}
            verification = verify_log(svc)
        finally:
            svc.engine.dispose()
    print(", ".join(f"{field} {ratio:.2f}" for field, ratio in ratios.items()), "(target <= 1.1)")
    print(f"chain after the run: {'verifies' if verification.ok else 'DOES NOT VERIFY'}")


if __name__ == "__main__":
    main()
