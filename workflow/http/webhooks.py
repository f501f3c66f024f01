"""Committed entries to the host's webhook: the outbox dispatcher with an HTTP POST handler.

Each message is POSTed as JSON, signed with HMAC-SHA256 over "<timestamp>.<body>" (header
`Hsct-Signature: t=<unix seconds>,v1=<hex>`). The dispatcher keeps each pathway's order: a
message that fails (transport error or a non-2xx answer) stays pending with its attempt
counted and holds back the later messages of its pathway only. Rounds with nothing but
failures wait with exponential backoff; a message that failed `max_attempts` times is a dead
letter: no longer sent, listed by `dead_letters`, skipped deliberately with `skip`.
Delivery is at least once: receivers dedupe on `Hsct-Message-Id`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Connection

from states.errors import HsctError
from workflow.outbox import Dispatcher, Message

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

SIGNATURE_HEADER = "Hsct-Signature"


class WebhookFailed(Exception):
    """The host did not take the message (a transport error or a non-2xx status)."""


class DeadLettered(Exception):
    """The message failed `max_attempts` times; it is no longer sent."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how to deliver. `secret` signs every body; `topics` are fnmatch patterns."""

    url: str
    secret: bytes = field(repr=False)
    topics: tuple[str, ...] = ("*",)
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    poll_s: float = 0.5


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Hsct-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def message_body(message: Message) -> bytes:
    return json.dumps(
        {
            "id": message.id,
            "topic": message.topic,
            "pathway_id": message.pathway_id,
            "sequence": message.sequence,
            "entry_hash": message.entry_hash,
            "created_at": message.created_at.isoformat(),
            "entry": message.entry.model_dump(mode="json"),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class WebhookRelay:
    """Runs dispatcher rounds that POST each message to one target."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        target: WebhookTarget,
        *,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.target = target
        self.client = client or httpx.Client(timeout=target.timeout_s)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._posts_failed = 0
        for pattern in target.topics:
            dispatcher.register(pattern, self.deliver)

    def deliver(self, message: Message, _connection: Connection) -> None:
        """The dispatcher's handler: one signed POST; raising leaves the message pending."""
        if message.attempts >= self.target.max_attempts:
            raise DeadLettered
        body = message_body(message)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.target.secret, int(self.dispatcher.clock.now().timestamp()), body),
            "Hsct-Message-Id": str(message.id),
            "Hsct-Topic": message.topic,
        }
        try:
            response = self.client.post(self.target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._posts_failed += 1
            raise WebhookFailed(type(exc).__name__) from None
        if not response.is_success:
            self._posts_failed += 1
            raise WebhookFailed(f"HTTP {response.status_code}")

    def round(self) -> tuple[int, int]:
        """One dispatcher round: (messages delivered or skipped as unhandled, POSTs that failed)."""
        self._posts_failed = 0
        report = self.dispatcher.run_once()
        return report.delivered + report.unhandled, self._posts_failed

    def run(self, stop: threading.Event, sleep: Callable[[float], bool] | None = None) -> None:
        """Rounds until `stop` is set: at once while messages go out, backing off while the
        host fails, polling otherwise. Database errors are logged by class and backed off."""
        wait = sleep or stop.wait
        failures = 0
        while not stop.is_set():
            try:
                moved, failed = self.round()
            except HsctError as exc:
                logger.warning("webhook round failed: %s", type(exc).__name__)
                moved, failed = 0, 1
            if moved:
                failures = 0
                continue
            failures = failures + 1 if failed else 0
            wait(self._delay(failures) if failures else self.target.poll_s)

    def _delay(self, failures: int) -> float:
        ceiling = min(self.target.backoff_max_s, self.target.backoff_base_s * 2 ** (failures - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def dead_letters(self, limit: int) -> list[Message]:
        """Pending messages that failed `max_attempts` times (each blocks its pathway)."""
        return [m for m in self.dispatcher.pending(limit) if m.attempts >= self.target.max_attempts]

    def skip(self, message_id: int) -> bool:
        """Mark a message delivered without sending it, releasing its pathway's later ones."""
        return self.dispatcher.ack([message_id]) == 1

    def close(self) -> None:
        self.client.close()
