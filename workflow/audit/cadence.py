"""A checkpoint cadence run by the outbox dispatcher: sign the log's heads as it grows.

An insider who can write the tables can forge the tail of a chain (docs/audit.md); what bounds
that is how often a signed checkpoint fixes the heads. Registered on every topic of the host's
dispatcher (beside the host's own handlers: one delivery mark per message), this handler signs
a checkpoint after every `entries` delivered entries, or at the first delivery once `interval`
has passed since the last one, and writes it to `directory` under a name that sorts by time.
Writing a file is an effect outside the database, so a redelivered round may write one more
checkpoint: each is a complete statement on its own, and more of them only narrow the window.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Connection

from persistence.store import OutboxMessage
from workflow.audit.checkpoint import create_checkpoint, load_private_key
from workflow.service import PathwayService

__all__ = ["CheckpointCadence"]


class CheckpointCadence:
    """A dispatcher handler: `dispatcher.register("*", CheckpointCadence(service, key, dir))`."""

    def __init__(
        self,
        service: PathwayService,
        key: str | os.PathLike[str],
        directory: str | os.PathLike[str],
        *,
        entries: int = 1000,
        interval: timedelta = timedelta(hours=24),
    ) -> None:
        if entries < 1 or interval <= timedelta(0):
            raise ValueError("a cadence needs entries >= 1 and a positive interval")
        self.service = service
        self.key = load_private_key(key)  # read once: a bad key fails at set-up, not mid-delivery
        self.directory = Path(directory)
        self.entries = entries
        self.interval = interval
        self.written: list[Path] = []
        self._since = 0
        self._last: datetime | None = None

    def __call__(self, message: OutboxMessage, connection: Connection) -> None:
        self._since += 1
        now = self.service.clock.now()
        if self._last is None:
            self._last = now
        if self._since >= self.entries or now - self._last >= self.interval:
            self.sign(now)

    def sign(self, now: datetime) -> Path:
        """Verify the committed log, sign its heads and write the checkpoint; reset the count."""
        checkpoint = create_checkpoint(self.service, self.key)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = checkpoint.write(self.directory / f"checkpoint-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json")
        self.written.append(path)
        self._since, self._last = 0, now
        return path
