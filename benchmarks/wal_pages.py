"""Which pages one persisted command writes: SQLite WAL frames per command, by table and index.

A commit at synchronous=FULL writes each changed page to the write-ahead log and syncs it, so
the pages a command touches are part of its cost, and an index that changes on every command
shows here. The script walks `--targets` pathways to awaiting engraftment through the service
(as fire.py does), folds the log into the database, fires `--commands` commands, and reads the
page number of every frame the log now holds, named by SQLite's `dbstat` (a page allocated
during the run has no name yet: "new page"). Prints figures only. See README.md.

    .venv/bin/python benchmarks/wal_pages.py [--command record_adverse_event] [--commands 60]
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire import COMMANDS, build, library_op, workdir

from tests.walks import WALKS

_WAL_HEADER, _FRAME_HEADER = 32, 24
# SQLite checkpoints on its own once the log holds 1,000 pages and then reuses the log from its
# start: the commands must fit below that for every frame to be counted.
_AUTOCHECKPOINT_PAGES = 1000


def frames_by_btree(wal: bytes, names: dict[int, str]) -> Counter[str]:
    """The frames of a WAL file, counted by the b-tree (table or index) their page belongs to."""
    page_size = struct.unpack(">I", wal[8:12])[0]
    frame = _FRAME_HEADER + page_size
    counts: Counter[str] = Counter()
    for offset in range(_WAL_HEADER, len(wal) - frame + 1, frame):
        (page,) = struct.unpack(">I", wal[offset : offset + 4])
        counts[names.get(page, "new page")] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=sorted(COMMANDS), default="record_adverse_event")
    parser.add_argument("--commands", type=int, default=60, help="commands fired and counted")
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--walk", choices=sorted(WALKS), default="autologous")
    parser.add_argument("--dir", help="where the database goes (default: a temporary directory)")
    args = parser.parse_args()
    with workdir(args.dir, keep=False) as where:
        path = where / "pages.sqlite"
        db = build(path, "pages", targets=args.targets, total=args.targets, walk=WALKS[args.walk](),
                   command=args.command, seed="store", batch=1000)  # fmt: skip
        fire = library_op(db, args.command)
        with sqlite3.connect(path) as reader:
            reader.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            names = dict(reader.execute("SELECT pageno, name FROM dbstat"))
        for _ in range(args.commands):
            fire()
        counts = frames_by_btree((where / "pages.sqlite-wal").read_bytes(), names)
        db.svc.engine.dispose()
    total = sum(counts.values())
    if total >= _AUTOCHECKPOINT_PAGES:
        print(f"{total} frames: SQLite checkpointed during the run; use fewer --commands")
        return 1
    print(f"{args.command} x {args.commands} on {args.targets} pathways ({args.walk}): "
          f"{total / args.commands:.2f} WAL frames per command")  # fmt: skip
    for name, count in counts.most_common():
        print(f"  {count / args.commands:5.2f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
