"""Transactions the library owns, and the bounded retry policy applied to them.

A command that loses a race is re-run from the start (reload, re-judge, append), never
re-committed from what it saw: the facts its guards read are those of the transaction that
commits. A host that passes its own Session owns the retry; the service never retries there.
See docs/concurrency.md.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from persistence.store import DuplicateIdempotencyKey, StorageError, translate_error
from states.errors import ConcurrencyConflict, HsctError
from workflow.faults import crash_point

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

T = TypeVar("T")

RetryHook = Callable[[int, HsctError, float], None]
"""Called before each retry with the failed attempt's number (from 1), its error and the delay."""


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries within `budget` seconds, with full-jitter backoff.

    Before try n+1 the policy waits a uniform random time in [0, min(max_delay,
    base_delay * 2**(n-1))], drawn from `rng` (inject a seeded Random for reproducible runs).
    It gives up, re-raising the last error, when the tries are used up or the wait would end
    past the budget. A DuplicateIdempotencyKey is retried at once: the other command has
    committed, so the next try finds its result. `RetryPolicy.never()` surfaces the first error.
    """

    max_attempts: int = 5
    base_delay: float = 0.01
    max_delay: float = 0.5
    budget: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    on_retry: RetryHook | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.base_delay, self.max_delay, self.budget) < 0:
            raise ValueError("delays and budget must be >= 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One try: every error reaches the caller (e.g. a host with its own retry loop)."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number `attempt` (from 1), before jitter's draw."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))

    def call(self, operation: Callable[[], T], retryable: Callable[[HsctError], bool]) -> T:
        """Run `operation`, again after each library error `retryable` accepts, within bounds."""
        started = self.monotonic()
        attempt = 1
        while True:
            try:
                return operation()
            except HsctError as error:
                if attempt >= self.max_attempts or not retryable(error):
                    raise
                immediate = isinstance(error, DuplicateIdempotencyKey)
                delay = 0.0 if immediate else self.rng.uniform(0.0, self.backoff(attempt))
                if self.monotonic() - started + delay > self.budget:
                    raise
                logger.debug("retrying after %s (attempt %d, wait %.3f s)", type(error).__name__, attempt, delay)
                if self.on_retry is not None:
                    self.on_retry(attempt, error, delay)
                if delay:
                    self.sleep(delay)
                attempt += 1


def transient(error: HsctError, *, resend_safe: bool) -> bool:
    """May the transaction that raised `error` be run again from the start?

    Lost races are transient: conflicts, serialization failures, deadlocks, lock timeouts,
    SQLite busy, a duplicate idempotency key. So is a lost connection when nothing can have
    committed (lost before COMMIT), or when running it again is harmless (`resend_safe`: a
    command with an idempotency key replays if it had committed).
    """
    if isinstance(error, ConcurrencyConflict):
        return True
    if isinstance(error, StorageError) and error.connection_invalidated:
        return resend_safe or not error.outcome_unknown
    return False


class Begins(Protocol):
    """What opens a transaction and yields its connection: an Engine, or a KeptConnection over one."""

    def begin(self) -> AbstractContextManager[Connection]: ...


def own_transaction(
    engine: Begins,
    work: Callable[[Connection], T],
    *,
    before_commit: str | None = None,
    after_commit: str | None = None,
) -> T:
    """One try of `work` in a transaction of its own, committed here.

    Driver errors (BEGIN, COMMIT, or SQL a listener or handler ran itself) become library
    errors; a connection lost during COMMIT is marked `outcome_unknown`. The crash points
    named bracket the COMMIT (workflow/faults.py).
    """
    committing = False
    try:
        with engine.begin() as connection:
            done = work(connection)
            if before_commit is not None:
                crash_point(before_commit)
            committing = True
    except DBAPIError as exc:
        error = translate_error(exc)
        if committing and isinstance(error, StorageError) and error.connection_invalidated:
            error.outcome_unknown = True
        raise error from None
    if after_commit is not None:
        crash_point(after_commit)
    return done
