"""Delivering committed entries to the host: the dispatcher of the transactional outbox.

Every entry is written with an outbox row in the same transaction, so a row exists exactly
when its entry committed. The dispatcher hands each row to the host's handler in a
transaction of its own and marks it delivered in that same transaction: a handler that writes
through the connection it is given commits its writes atomically with the mark, so each
message takes effect exactly once, however often the process dies or dispatchers race.
Effects outside the database (an e-mail, an HTTP call) are at least once: dedupe on
`message.id`. Each pathway's messages go out in sequence order; a handler that raises leaves
its message pending (attempts + 1) and holds back the later messages of that pathway only.
See docs/concurrency.md.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from persistence.engine import configure_engine, create_engine
from persistence.schema import ensure_current
from persistence.store import OutboxMessage, Store, translate_errors
from workflow.clock import Clock, SystemClock
from workflow.faults import DISPATCH_AFTER_COMMIT, DISPATCH_BEFORE_COMMIT
from workflow.retry import RetryPolicy, own_transaction, transient
from workflow.service import PathwayService

__all__ = ["DispatchReport", "Dispatcher", "Handler", "Message"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

Message = OutboxMessage
T = TypeVar("T")

Handler = Callable[[Message, Connection], None]
"""Called with a message and the dispatcher's connection, inside its transaction (a SAVEPOINT
per message). Write through the connection to commit with the delivery mark; never commit or
roll it back. An ORM session on it (`Session(bind=connection)`, e.g. to fire commands with
`session=`) must be committed: that releases its own SAVEPOINT, and closing it uncommitted
undoes its work. Raising marks the message failed and undoes what the handler wrote."""

DEFAULT_BATCH = 100


@dataclass(frozen=True)
class DispatchReport:
    """What one or more rounds did: handled, failed (left pending) and with no handler."""

    delivered: int = 0
    failed: int = 0
    unhandled: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.delivered + other.delivered, self.failed + other.failed, self.unhandled + other.unhandled
        )


class Dispatcher:
    """Delivers outbox rows to handlers, or lets the host pull them with `pending` and `ack`.

    `Dispatcher(service)` shares the service's engine, clock and retry policy; an Engine or a
    URL must be at the schema head already. Handlers are registered by topic,
    "<entry kind>.<trigger>" (e.g. "transition.infuse", "refusal.infuse"), or by an fnmatch
    pattern ("transition.*", "*"). Any number of dispatchers may run at once, in threads or
    processes: on PostgreSQL they take disjoint rows (FOR UPDATE SKIP LOCKED), on SQLite they
    take turns (BEGIN IMMEDIATE), so keep handlers short there: writers wait meanwhile.
    """

    def __init__(
        self,
        target: PathwayService | Engine | str,
        *,
        handlers: Mapping[str, Handler] | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if isinstance(target, PathwayService):
            self.engine = target.engine
            clock = clock or target.clock
            retry = retry or target.retry
        else:
            self.engine = create_engine(target) if isinstance(target, str) else configure_engine(target)
            with translate_errors():
                ensure_current(self.engine, auto_upgrade_empty=False)
        self.clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.batch = batch
        self._handlers: list[tuple[str, Handler]] = []
        self._by_topic: dict[str, tuple[Handler, ...]] = {}
        for pattern, handler in (handlers or {}).items():
            self.register(pattern, handler)

    def register(self, pattern: str, handler: Handler) -> None:
        """Call `handler` for every message whose topic matches `pattern`, in registration order."""
        self._handlers.append((pattern, handler))
        self._by_topic.clear()

    def _handlers_for(self, topic: str) -> tuple[Handler, ...]:
        found = self._by_topic.get(topic)
        if found is None:
            found = self._by_topic[topic] = tuple(h for p, h in self._handlers if fnmatch.fnmatchcase(topic, p))
        return found

    # --- push: handlers called inside the delivering transaction --------------------------

    def run_once(self, handler: Handler | None = None, *, limit: int | None = None) -> DispatchReport:
        """One round in one transaction: up to `limit` messages (default `batch`), then commit.

        `handler` takes every message; without it the registered handlers do, and a message
        no handler matches is marked delivered as `unhandled`. After a failed message the
        rest of its pathway waits for a later round. A transaction that loses a race (SQLite
        busy, a serialization failure) is run again under the retry policy: what the handlers
        wrote was rolled back with it, so nothing is applied twice.
        """
        return self._transact(
            lambda store: self._deliver(store, handler, limit or self.batch),
            before_commit=DISPATCH_BEFORE_COMMIT,
            after_commit=DISPATCH_AFTER_COMMIT,
        )

    def drain(self, handler: Handler | None = None, *, limit: int | None = None) -> DispatchReport:
        """Rounds until one delivers nothing: everything deliverable now, in order, is out.

        Stops early at a round in which every message failed (they stay pending).
        """
        total = DispatchReport()
        while True:
            done = self.run_once(handler, limit=limit)
            total += done
            if not (done.delivered or done.unhandled):
                return total

    def _deliver(self, store: Store, handler: Handler | None, limit: int) -> DispatchReport:
        connection = store.session
        assert isinstance(connection, Connection)
        delivered: list[int] = []
        blocked: set[str] = set()
        failed = unhandled = 0
        for message in store.outbox_batch(limit, lock=True):
            if message.pathway_id in blocked:
                continue
            handlers = (handler,) if handler is not None else self._handlers_for(message.topic)
            if not handlers:
                unhandled += 1
                delivered.append(message.id)
                continue
            try:
                with connection.begin_nested():
                    for each in handlers:
                        each(message, connection)
            except Exception as exc:
                # The class name only: a handler's message may quote clinical data.
                logger.warning("outbox message %d (%s) failed: %s", message.id, message.topic, type(exc).__name__)
                store.outbox_failed(message.id, type(exc).__name__)
                blocked.add(message.pathway_id)
                failed += 1
                continue
            delivered.append(message.id)
        store.outbox_delivered(delivered, self.clock.now())
        return DispatchReport(len(delivered) - unhandled, failed, unhandled)

    # --- pull: the host reads, handles, then acknowledges -------------------------------

    def pending(self, limit: int | None = None) -> list[Message]:
        """Up to `limit` undelivered messages, each pathway's in sequence order, without taking
        them: until `ack`, another reader sees them too (at least once; dedupe on `id`). Handle
        them in the order given and ack what was handled; do not mix with `run_once`."""
        return self._transact(lambda store: store.outbox_batch(limit or self.batch, lock=False))

    def ack(self, ids: Iterable[int]) -> int:
        """Mark messages delivered; returns how many were still pending (an ack is idempotent)."""
        wanted = list(ids)
        return self._transact(lambda store: store.outbox_delivered(wanted, self.clock.now()))

    def backlog(self) -> int:
        """How many messages are not delivered yet (for monitoring)."""
        return self._transact(Store.outbox_backlog)

    def prune(self, delivered_before: datetime) -> int:
        """Delete messages delivered before the given time; returns how many."""
        return self._transact(lambda store: store.outbox_prune(delivered_before))

    def _transact(
        self, work: Callable[[Store], T], *, before_commit: str | None = None, after_commit: str | None = None
    ) -> T:
        """`work` in a transaction of the dispatcher's own, run again after a lost race or a
        lost connection: every operation here may safely run twice (rows are marked once)."""
        return self.retry.call(
            lambda: own_transaction(
                self.engine,
                lambda connection: work(Store(connection)),
                before_commit=before_commit,
                after_commit=after_commit,
            ),
            lambda error: transient(error, resend_safe=True),
        )
