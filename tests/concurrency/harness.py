"""What the concurrency tests and benchmarks/concurrency.py, benchmarks/idempotency.py share.

Workers fire commands that each carry their own idempotency key and report what the caller
saw (committed, refused, conflict, or any other error). `audit_outcomes` then sets those
reports against the database: an outcome that reported a commit must have exactly its entry
(else it is lost), and every entry must belong to exactly one outcome that reported it
(else it is duplicated, or written by a command that reported failure). Nothing here trusts
what the library says it did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from persistence.engine import create_engine
from persistence.store import OutboxMessage, Store
from states.errors import ConcurrencyConflict, Refused
from states.vocabulary import Phase
from workflow.faults import ENV as CRASH_ENV
from workflow.retry import RetryPolicy
from workflow.service import PathwayService, Result

COORD = {"id": "co-ames", "role": "transplant_coordinator"}
REFERRAL = {"patient_ref": "PT-RACE01", "route": "autologous", "graft_source": "pbsc"}
HOLD = {"reason": "awaiting bed"}
HOLDABLE = Phase.REFERRED  # where a referral starts; hold / resume toggle it and on_hold


@dataclass(frozen=True)
class Outcome:
    """One command as its caller saw it."""

    key: str
    kind: str  # committed | refused | conflict | error:<ExceptionClass>
    pathway_id: str
    sequence: int | None
    hash: str | None
    seconds: float
    replayed: bool = False


@dataclass
class Counter:
    """Retries the service's policy made (its on_retry hook); threads share one."""

    retries: int = 0

    def hook(self, _attempt: int, _error: Exception, _delay: float) -> None:
        self.retries += 1


def make_service(url: str, *, counter: Counter | None = None, isolation: str | None = None) -> PathwayService:
    """A service on `url` with the default retry policy, its retries counted; on the system
    clock; `isolation` e.g. "SERIALIZABLE" (PostgreSQL)."""
    options: dict[str, Any] = {"isolation_level": isolation} if isolation else {}
    engine = create_engine(url, **options)
    retry = RetryPolicy(on_retry=None if counter is None else counter.hook)  # the defaults, counted
    return PathwayService(engine, retry=retry, auto_upgrade=True)


def referral() -> dict[str, str]:
    """A referral of a new patient: a patient has one open pathway at a time."""
    return {**REFERRAL, "patient_ref": f"PT-{uuid.uuid4().hex[:12].upper()}"}


def refer(service: PathwayService) -> str:
    return service.refer(referral(), actor=COORD, at=datetime.now(UTC)).pathway_id


def timed(key: str, pathway_id: str, call: Callable[[], Any]) -> Outcome:
    """Run one command and classify what came back; never raises."""
    started = time.perf_counter()
    sequence: int | None = None
    digest: str | None = None
    replayed = False
    try:
        result = call()
    except Refused as refusal:
        kind, sequence = "refused", refusal.sequence
    except ConcurrencyConflict:
        kind = "conflict"
    except Exception as exc:
        kind = f"error:{type(exc).__name__}"
    else:
        kind, sequence, digest = "committed", result.entry.sequence, result.entry.hash
        pathway_id, replayed = result.pathway_id, result.replayed
    return Outcome(key, kind, pathway_id, sequence, digest, time.perf_counter() - started, replayed)


def fire_now(service: PathwayService, pathway_id: str, command: str, payload: dict[str, Any], key: str) -> Result:
    return service.fire(pathway_id, command, payload, actor=COORD, at=datetime.now(UTC), idempotency_key=key)


def toggle(service: PathwayService, pathway_id: str, count: int, *, key_prefix: str) -> list[Outcome]:
    """`count` transitions on one pathway: hold when it looks held-able, else resume.

    Each worker only guesses the phase (from its own last answer), so racing workers keep
    firing commands the pathway has just left: those are re-judged and refused, as they must be.
    """
    held = False
    outcomes = []
    for n in range(count):
        command, payload = ("resume", {}) if held else ("hold", HOLD)
        key = f"{key_prefix}-{n}"
        outcome = timed(key, pathway_id, partial(fire_now, service, pathway_id, command, payload, key))
        if outcome.kind == "committed":
            held = command == "hold"
        elif outcome.kind == "refused":
            held = not held
        outcomes.append(outcome)
    return outcomes


def same_key(
    service: PathwayService, key: str, count: int, *, pathway_id: str | None = None, variant: bool = False
) -> list[Outcome]:
    """Send one command `count` times with one key: a referral, or a hold of `pathway_id`.
    `variant` changes the payload, which must be refused as a misuse of the key."""
    if pathway_id is None:
        referral = {**REFERRAL, "graft_source": "bone_marrow"} if variant else REFERRAL
        return [
            timed(key, "", lambda: service.refer(referral, actor=COORD, at=datetime.now(UTC), idempotency_key=key))
            for _ in range(count)
        ]
    hold = {"reason": "another reason"} if variant else HOLD
    return [timed(key, pathway_id, partial(fire_now, service, pathway_id, "hold", hold, key)) for _ in range(count)]


def in_threads(count: int, work: Callable[[int], list[Outcome]]) -> list[Outcome]:
    """Run `work(thread_number)` in `count` threads released together; all their outcomes."""
    start = threading.Barrier(count)
    results: list[list[Outcome]] = [[] for _ in range(count)]

    def run(n: int) -> None:
        start.wait()
        results[n] = work(n)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return [o for outcomes in results for o in outcomes]


def waiting_for(engine: sa.Engine, holder: int, timeout: float = 20.0) -> int:
    """PostgreSQL: the pid of a backend waiting for a lock the backend `holder` holds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as probe:
            waiting = probe.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"),
                {"holder": holder},
            ).scalar()
        if waiting is not None:
            return int(waiting)
        time.sleep(0.01)
    raise AssertionError("nobody waited for the lock")


def wait_for_barrier(directory: Path, parties: int, me: str, timeout: float = 60.0) -> None:
    """A start line across processes: each marks itself ready, all go when all are."""
    (directory / f"ready-{me}").touch()
    deadline = time.monotonic() + timeout
    while sum(1 for p in directory.iterdir() if p.name.startswith("ready-")) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other workers never arrived")
        time.sleep(0.002)


# --- auditing what the workers reported against the database --------------------------------


@dataclass
class Tally:
    attempts: int = 0
    committed: int = 0
    refused: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    lost: int = 0
    duplicated: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return (self.committed + self.refused) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"attempts {self.attempts}  commits {self.committed + self.refused} "
            f"(transitions {self.committed}, refusals {self.refused})  conflicts {self.conflicts}  "
            f"retries {self.retries}  lost {self.lost}  duplicated {self.duplicated}  errors {len(self.errors)}  "
            f"p50 {self.percentile(0.5) * 1e3:.1f} ms  p99 {self.percentile(0.99) * 1e3:.1f} ms  "
            f"throughput {self.throughput:.0f}/s"
        )


def audit_outcomes(engine: sa.Engine, outcomes: Sequence[Outcome], keys_from: str = "") -> Tally:
    """Set the outcomes against the entries whose idempotency key starts with `keys_from`."""
    tally = Tally(attempts=len(outcomes), latencies=[o.seconds for o in outcomes])
    with engine.connect() as connection:
        store = Store(connection)
        pathway_ids = sorted({o.pathway_id for o in outcomes})
        stored = {
            e.idempotency_key: e
            for pid in pathway_ids
            for e in store.entries(pid)
            if e.idempotency_key is not None and e.idempotency_key.startswith(keys_from)
        }
    claimed: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.kind in ("committed", "refused"):
            tally.committed += outcome.kind == "committed"
            tally.refused += outcome.kind == "refused"
            entry = stored.get(outcome.key)
            if entry is None or entry.sequence != outcome.sequence or (outcome.hash not in (None, entry.hash)):
                tally.lost += 1
            else:
                claimed[outcome.key] = claimed.get(outcome.key, 0) + 1
        elif outcome.kind == "conflict":
            tally.conflicts += 1
        else:
            tally.errors.append(outcome.kind)
    # An entry no outcome reported (e.g. of a command that said "conflict"), or one reported
    # twice, is a duplicate: the caller would have to retry and the fact would be there twice.
    tally.duplicated = sum(1 for key in stored if claimed.get(key) != 1) + sum(n - 1 for n in claimed.values() if n > 1)
    return tally


# --- the crash script (T10) -----------------------------------------------------------------

SCRIPT: tuple[tuple[str, dict[str, Any]], ...] = (("hold", HOLD), ("resume", {}), ("hold", HOLD))
SCRIPT_END = Phase.ON_HOLD

received_table = sa.Table(
    "received",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("pathway_id", sa.String(36), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)
"""The host's own table: what its handler took, written in the dispatcher's transaction."""


def run_script(service: PathwayService, pathway_id: str) -> list[Phase]:
    """The same commands with the same keys, however often it is run: a restart re-sends all."""
    return [
        fire_now(service, pathway_id, command, payload, f"{n}-{pathway_id}").phase
        for n, (command, payload) in enumerate(SCRIPT)
    ]


def record_delivery(message: OutboxMessage, connection: sa.Connection) -> None:
    """A host handler whose effect commits with the delivery mark, or not at all."""
    connection.execute(
        received_table.insert(),
        {
            "outbox_id": message.id,
            "pathway_id": message.pathway_id,
            "sequence": message.sequence,
            "entry_hash": message.entry.hash,
        },
    )


@dataclass(frozen=True)
class Report:
    """What one worker process sends back: its outcomes, its service's retries, and when its
    commands started and ended (wall clock, comparable across processes)."""

    outcomes: list[Outcome]
    retries: int
    started: float
    finished: float

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "outcomes": [asdict(o) for o in self.outcomes]})

    @classmethod
    def from_json(cls, text: str) -> Report:
        data = json.loads(text)
        return cls([Outcome(**o) for o in data.pop("outcomes")], **data)


# --- scratch databases for the benchmarks ----------------------------------------------------


@contextmanager
def scratch_database(postgres_url: str | None) -> Iterator[str]:
    """A URL to an empty database, removed afterwards: a fresh schema on the PostgreSQL
    server named, or a SQLite file (WAL, as the library configures it) in a temporary folder."""
    if postgres_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        joiner = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# --- worker processes ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def worker_env(crash_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    return env


def start_worker(args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m tests.concurrency.worker ARGS` from the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.concurrency.worker", *args],
        cwd=REPO,
        env=dict(env or worker_env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_workers(arg_lists: Sequence[Sequence[str]], *, prefix: str, timeout: float = 600.0) -> Report:
    """Start the workers, named `prefix` + number (their keys start so), released together by
    a barrier, and merge their reports: the span runs from the first worker's release to the
    last one's end (process start-up excluded)."""
    with tempfile.TemporaryDirectory() as barrier:
        extra = ["--barrier", barrier, "--parties", str(len(arg_lists))]
        procs = [start_worker([*args, *extra, "--name", f"{prefix}{n}"]) for n, args in enumerate(arg_lists)]
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    reports = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"worker exited with {proc.returncode}: {err[-3000:]}")
        reports.append(Report.from_json(out.strip().splitlines()[-1]))
    return Report(
        [o for r in reports for o in r.outcomes],
        sum(r.retries for r in reports),
        min(r.started for r in reports),
        max(r.finished for r in reports),
    )
