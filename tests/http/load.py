"""A bounded hold/resume load over HTTP, and its audit against the log (lost 0, duplicated 0).

Shared by the two-server end-to-end test and benchmarks/http.py. Every command carries its own
Idempotency-Key, so each answered command (200 or a 409 refusal) must have exactly one entry
with that key, and no entry may carry a key that was not answered.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

COMMANDS = ("hold", "resume")
BODIES = {"hold": {"with": {"reason": "bed availability"}}, "resume": {}}


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    answered: dict[str, str] = field(default_factory=dict)  # key -> pathway
    replays_differing: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def drive(
    bases: list[str],
    pathways: list[str],
    *,
    clients: int,
    per_client: int,
    token: str,
    spread: bool = False,
    resend_every: int = 0,
    time_limit_s: float = 120.0,
) -> Tally:
    """`clients` threads, client i on server `bases[i % len(bases)]`, each sending `per_client`
    commands, alternately hold and resume: to pathway i (`spread`: round-robin over all, so
    clients race and some commands are refused); every `resend_every`-th is sent again to the
    next server with the same key, and must answer the same."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + time_limit_s
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        own, other = bases[i % len(bases)], bases[(i + 1) % len(bases)]
        with httpx.Client(headers=headers, timeout=30) as http:
            start.wait()
            for n in range(per_client):
                if time.monotonic() > deadline:
                    return
                pathway = pathways[(i + n if spread else i) % len(pathways)]
                command = COMMANDS[n % 2]
                key = {"Idempotency-Key": f"load-{i}-{n}"}
                url = f"/pathways/{pathway}/commands/{command}"
                began = time.perf_counter()
                response = http.post(own + url, json=BODIES[command], headers=key)
                took = time.perf_counter() - began
                same = True
                if resend_every and n % resend_every == 0:
                    again = http.post(other + url, json=BODIES[command], headers=key)
                    same = (again.status_code, again.json()) == (response.status_code, response.json())
                with tally._lock:
                    tally.statuses[response.status_code] += 1
                    tally.latencies_s.append(took)
                    tally.replays_differing += not same
                    if response.status_code in (200, 409):
                        tally.answered[key["Idempotency-Key"]] = pathway

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=time_limit_s + 30)
    tally.seconds = time.perf_counter() - began
    return tally


def audit(base: str, pathways: list[str], tally: Tally, token: str) -> tuple[int, int]:
    """(lost, duplicated): answered keys without an entry, and entries beyond one per key."""
    headers = {"Authorization": f"Bearer {token}"}
    seen: Counter[str] = Counter()
    with httpx.Client(headers=headers, timeout=60) as http:
        for pathway in pathways:
            cursor = None
            for _ in range(10_000):
                params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                page = http.get(f"{base}/pathways/{pathway}/history", params=params).json()
                seen.update(e["idempotency_key"] for e in page["items"] if e["idempotency_key"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
    lost = sum(1 for key in tally.answered if seen[key] == 0)
    duplicated = sum(n - 1 for n in seen.values() if n > 1) + sum(1 for key in seen if key not in tally.answered)
    return lost, duplicated
