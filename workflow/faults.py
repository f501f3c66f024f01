"""Crash points: where a test may kill the process as `kill -9` would (tests/concurrency/test_crashes.py).

The durability tests run a worker as a subprocess with HSCT_CRASH_AT set to one of
`CRASH_POINTS`; the first time the worker reaches that point it dies by SIGKILL, with no
rollback, no commit, no cleanup. The variable is read once at import, so in a normal process a
crash point costs one comparison with None.
"""

from __future__ import annotations

import os
import signal

ENV = "HSCT_CRASH_AT"

BEFORE_FLUSH = "before_flush"
"""The command is judged; nothing of it has been written."""
AFTER_FLUSH_BEFORE_COMMIT = "after_flush_before_commit"
"""Entry, pathway row and outbox row are written (and listeners called), not committed."""
AFTER_COMMIT_BEFORE_DISPATCH = "after_commit_before_dispatch"
"""The command committed; the caller has no result and nothing has been delivered."""
DISPATCH_BEFORE_COMMIT = "dispatch_after_handler_before_commit"
"""The dispatcher's handlers ran and the rows are marked, in a transaction not yet committed."""
DISPATCH_AFTER_COMMIT = "dispatch_after_commit"
"""The dispatcher committed a batch of deliveries."""

CRASH_POINTS = (
    BEFORE_FLUSH,
    AFTER_FLUSH_BEFORE_COMMIT,
    AFTER_COMMIT_BEFORE_DISPATCH,
    DISPATCH_BEFORE_COMMIT,
    DISPATCH_AFTER_COMMIT,
)

_ARMED: str | None = os.environ.get(ENV) or None


def crash_point(name: str) -> None:
    """Die here, as by `kill -9`, if HSCT_CRASH_AT named this point when the process started."""
    if name == _ARMED:
        _die()


def _die() -> None:  # pragma: no cover - runs only in the killed subprocess
    kill = getattr(signal, "SIGKILL", None)
    if kill is not None:
        os.kill(os.getpid(), kill)
    os._exit(128 + 9)
