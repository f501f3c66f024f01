"""Webhooks: a test host on loopback receives every committed entry, signed, in order per pathway."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.http.conftest import COORD, PHYS, make_app, refer
from workflow.clock import ManualClock
from workflow.http.webhooks import WebhookTarget

SECRET = b"test-webhook-secret"
MAX_ROUNDS = 20


class Host:
    """Records what it receives; answers 500 while `failing` is set."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failing = False
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if host.failing:
                    self.send_response(500)
                else:
                    host.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def host() -> Iterator[Host]:
    test_host = Host()
    thread = threading.Thread(target=test_host.server.serve_forever, daemon=True)
    thread.start()
    yield test_host
    test_host.server.shutdown()
    test_host.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def hooked(db_url: str, clock: ManualClock, host: Host) -> Iterator[TestClient]:
    target = WebhookTarget(url=host.url, secret=SECRET, max_attempts=2, timeout_s=2)
    with TestClient(make_app(db_url, clock, webhook=target), base_url="http://127.0.0.1") as client:
        yield client


def _rounds(client: TestClient) -> None:
    relay = client.app.state.relay  # type: ignore[attr-defined]
    for _ in range(MAX_ROUNDS):
        moved, _failed = relay.round()
        if not moved:
            return
    raise AssertionError("the relay kept delivering")


def _verified(headers: dict[str, str], body: bytes) -> bool:
    """The recipe of docs/http.md, written from it: HMAC-SHA256 over '<t>.<body>'."""
    parts = dict(item.split("=", 1) for item in headers["Hsct-Signature"].split(","))
    expected = hmac.new(SECRET, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_every_entry_reaches_the_host_once_signed_and_in_order(hooked: TestClient, host: Host) -> None:
    first, second = refer(hooked, "PT-HOOK01"), refer(hooked, "PT-HOOK02")
    for pathway in (first, second):
        hooked.post(f"/pathways/{pathway}/commands/begin_evaluation", json={}, headers=COORD)
        hooked.post(f"/pathways/{pathway}/commands/complete_evaluation", json={}, headers=PHYS)  # a refusal
    _rounds(hooked)
    assert all(_verified(headers, body) for headers, body in host.received)
    messages = host.messages()
    assert len({m["id"] for m in messages}) == len(messages) == 6
    for pathway in (first, second):
        mine = [m for m in messages if m["pathway_id"] == pathway]
        assert [m["sequence"] for m in mine] == [1, 2, 3]
        assert [m["topic"] for m in mine] == [
            "transition.refer",
            "transition.begin_evaluation",
            "refusal.complete_evaluation",
        ]
    tampered = host.received[0][1].replace(b'"sequence":1', b'"sequence":9')
    assert not _verified(host.received[0][0], tampered)


def test_a_failing_host_is_retried_then_dead_lettered_and_skipped(hooked: TestClient, host: Host) -> None:
    host.failing = True
    pathway = refer(hooked, "PT-HOOK03")
    hooked.post(f"/pathways/{pathway}/commands/begin_evaluation", json={}, headers=COORD)
    relay = hooked.app.state.relay  # type: ignore[attr-defined]
    for _ in range(3):  # max_attempts=2 POSTs, then no more
        relay.round()
    assert host.received == []
    dead = hooked.get("/webhooks/dead-letters", headers=PHYS).json()
    assert [(d["pathway_id"], d["sequence"]) for d in dead] == [(pathway, 1)]
    assert dead[0]["attempts"] >= 2
    host.failing = False
    _rounds(hooked)
    assert host.received == []  # the dead letter still holds its pathway back
    assert hooked.post(f"/webhooks/dead-letters/{dead[0]['id']}/skip", headers=PHYS).status_code == 204
    _rounds(hooked)
    assert [m["sequence"] for m in host.messages()] == [2]
    assert hooked.get("/webhooks/dead-letters", headers=PHYS).json() == []


def test_rounds_of_failures_back_off_exponentially(hooked: TestClient, host: Host) -> None:
    host.failing = True
    refer(hooked, "PT-HOOK04")
    relay = hooked.app.state.relay  # type: ignore[attr-defined]
    stop = threading.Event()
    delays: list[float] = []

    def sleep(seconds: float) -> bool:
        delays.append(seconds)
        if len(delays) == 4:
            stop.set()
        return stop.is_set()

    relay.run(stop, sleep)
    target = relay.target
    # two failed POSTs (max_attempts), then the dead letter: rounds that merely poll
    assert target.backoff_base_s / 2 <= delays[0] <= target.backoff_base_s
    assert target.backoff_base_s <= delays[1] <= 2 * target.backoff_base_s
    assert delays[2:] == [target.poll_s, target.poll_s]
