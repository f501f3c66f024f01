"""Instructions per command, counted by valgrind: the library's fire against raw sqlite3 doing
the same statements.

Time on a shared two-core VM drifts by half or more within an hour (benchmarks/README.md, fourth
and fifth passes), so a change worth 5 % of a command cannot be seen in microseconds unless
both trees run interleaved, many times. An instruction count does not drift: the same code on
the same database executes the same instructions, whatever the neighbours do. This script
counts, under `valgrind --tool=callgrind`, the instructions the whole process executes for
`--low` and for `--high` fires and prints the difference per fire (start-up and seeding
cancel out), for:

- library: `PathwayService.fire` of a repeatable event at synchronous=OFF, in its own transaction;
- floor, same statements: raw sqlite3 running the library's statements (floor.py's
  `SameStatements`: the probe that the row and its head entry are still what the last write
  left (instead of the load, as the library on a pathway whose last entry it wrote), the UPDATE,
  the INSERTs of the entry and its outbox row, BEGIN IMMEDIATE and COMMIT) on a copy of the same
  database;
- steps, transaction, store (`--kinds`, not run by default): layers.py's variants, the same
  command with every check and none, one or two of the layers around its steps;
- journeys (`--kinds journeys`, not run by default): whole journeys of journeys.py (every route
  and donor type, referral to Day +100) at synchronous=OFF on a fresh database, per command:
  the mixed work the 10,000-journey target measures, where a repeatable event is only one kind.

The difference of the two is the library's own work in instructions; their ratio is what the
time ratio at synchronous=OFF would be if every instruction cost the same. Instructions are
not time (a cache miss costs more than an add), so this complements `floor.py`, it does not
replace it. Needs valgrind (on this machine kind: `apt-get install valgrind`); about three
minutes. To compare two trees, run the script from each (a `git worktree` of the other).

    .venv/bin/python benchmarks/instructions.py [--low 100] [--high 600]
    .venv/bin/python benchmarks/instructions.py --kinds journeys [--journeys 12 48]
    .venv/bin/python benchmarks/instructions.py --kinds library steps transaction store
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import COMMANDS, Database, build, copy_database, library_op
from floor import SameStatements, set_synchronous
from journeys import ROUTES, WALK_START, journey
from layers import COMMAND as LAYERED_COMMAND
from layers import LAYERS, Layers

from tests.walks import WALKS
from workflow.clock import ManualClock
from workflow.service import PathwayService

KINDS = ("library", "floor")
JOURNEYS = "journeys"
COLLECTED = re.compile(r"Collected : (\d+)")


def child(kind: str, folder: Path, fires: int, command: str) -> None:
    """Inside valgrind: open the seeded database and fire `fires` times (after a short warm-up)."""
    if kind == JOURNEYS:
        clock = ManualClock(WALK_START)
        svc = PathwayService(f"sqlite:///{folder / f'journeys-{fires}.db'}", clock=clock, auto_upgrade=True)
        set_synchronous(svc, [], "OFF")
        for number in range(len(ROUTES) + fires):  # one of each route first: every code path warm
            journey(svc, clock, number)
        return
    seeded = json.loads((folder / "targets.json").read_text())
    if kind == "library" or kind in LAYERS:
        clock = ManualClock(datetime.fromisoformat(seeded["at"]))
        svc = PathwayService(f"sqlite:///{folder / 'library.db'}", clock=clock)
        set_synchronous(svc, [], "OFF")
        db = Database("library", folder / "library.db", svc, clock, seeded["targets"])
        op = library_op(db, command)
        if kind in LAYERS:  # the library's fires first: each target's row held, as the layers expect
            for _ in db.targets:
                op()
            op = Layers(db).ops()[kind]
    else:
        floor = SameStatements(folder / "floor.db", seeded["targets"], command, 5000)
        floor.conn.execute("PRAGMA synchronous = OFF").fetchall()
        op = floor.once
    for _ in range(20 + fires):
        op()


def counted(kind: str, folder: Path, fires: int, command: str) -> int:
    """The instructions the whole process executes with `fires` fires (valgrind's total)."""
    run = subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, __file__, "--child", kind, str(folder), str(fires), "--command", command,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts in every run
        check=False,
    )  # fmt: skip
    found = COLLECTED.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({kind}, {fires} fires):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def journeys_per_command(folder: Path, low: int, high: int) -> str:
    """Instructions per command of whole journeys: the difference of a `low`- and a
    `high`-journey run over the commands (referral included) the extra journeys hold."""
    if low % len(ROUTES) or high % len(ROUTES) or not 0 <= low < high:
        raise SystemExit(f"--journeys takes two multiples of {len(ROUTES)}, the lower first")
    extra = high - low
    commands = extra // len(ROUTES) * sum(1 + len(WALKS[route]().steps) for route in ROUTES)
    counts = [counted(JOURNEYS, folder, n, "record_adverse_event") for n in (low, high)]  # no command: whole walks
    per_command = (counts[1] - counts[0]) / commands
    return (f"journeys {per_command:12,.0f} instructions per command ({low} and {high} journeys: "
            f"{counts[0]:,} and {counts[1]:,}; {commands:,} commands between them)")  # fmt: skip


def seed(folder: Path, command: str) -> None:
    """Ten pathways walked to awaiting engraftment through the service, and a copy for the floor."""
    db = build(folder / "library.db", "library", targets=10, total=10, walk=WALKS["autologous"](), command=command,
               seed="store", batch=1000)  # fmt: skip
    copy_database(db, folder / "floor.db")
    (folder / "targets.json").write_text(json.dumps({"targets": db.targets, "at": db.clock.now().isoformat()}))
    db.svc.engine.dispose()


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--low", type=int, default=100, help="fires in the shorter run")
    p.add_argument("--high", type=int, default=600, help="fires in the longer run")
    p.add_argument("--command", choices=sorted(COMMANDS), default="record_adverse_event")
    p.add_argument(
        "--kinds",
        nargs="+",
        choices=(*KINDS, *LAYERS, JOURNEYS),
        default=list(KINDS),
        help="library alone: an A/B of two trees; steps, transaction, store: layers.py's variants; "
        "journeys: mixed commands",
    )
    p.add_argument(
        "--journeys",
        nargs=2,
        type=int,
        default=(12, 48),
        metavar=("LOW", "HIGH"),
        help="journeys in the two runs of --kinds journeys (multiples of the routes: every route alike)",
    )
    p.add_argument("--child", nargs=3, metavar=("KIND", "FOLDER", "FIRES"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        kind, folder, fires = args.child
        child(kind, Path(folder), int(fires), args.command)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if not 0 <= args.low < args.high:
        raise SystemExit("--low must be at least 0 and below --high")
    if set(LAYERS) & set(args.kinds) and args.command != LAYERED_COMMAND:
        raise SystemExit(f"the layers' variants fire {LAYERED_COMMAND} only")
    folder = Path(tempfile.mkdtemp(prefix="hsct-instructions-"))
    try:
        if JOURNEYS in args.kinds:
            print(journeys_per_command(folder, *args.journeys))
        fired = [kind for kind in args.kinds if kind != JOURNEYS]
        if fired:
            seed(folder, args.command)
        per_fire = {}
        for kind in fired:
            low, high = counted(kind, folder, args.low, args.command), counted(kind, folder, args.high, args.command)
            per_fire[kind] = (high - low) / (args.high - args.low)
            print(f"{kind:11s} {per_fire[kind]:12,.0f} instructions per fire "
                  f"({args.low} and {args.high} fires: {low:,} and {high:,})")  # fmt: skip
        if not set(KINDS) <= per_fire.keys():  # not both the library and its floor
            return
        own = per_fire["library"] - per_fire["floor"]
        print(f"library's own work {own:,.0f} instructions per fire; ratio library / floor "
              f"{per_fire['library'] / per_fire['floor']:.2f} ({args.command}, synchronous=OFF)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
