"""`hsct serve` processes on loopback for tests and benchmarks: started, awaited, always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from workflow.http.auth import token_digest

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def write_tokens(path: Path, accounts: dict[str, tuple[str, list[str]]]) -> Path:
    entries = [{"sha256": token_digest(t), "id": i, "roles": r} for t, (i, r) in accounts.items()]
    path.write_text(json.dumps({"tokens": entries}), encoding="utf-8")
    return path


@contextmanager
def pg_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A fresh schema at the current revision, as a URL with its search_path; dropped after."""
    from persistence.engine import create_engine
    from persistence.schema import upgrade

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    try:
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def server(db_url: str, tokens: Path, *, workers: int = 1, token: str, log: Path | None = None) -> Iterator[str]:
    """`hsct serve` on a free loopback port; yields its base URL once it answers, stops it after."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from workflow.cli import main; main()",
        "serve",
        "--db",
        db_url,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--tokens",
        str(tokens),
    ]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hsct serve exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {token}"}).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("hsct serve did not answer in time")
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if log:
            out.close()  # type: ignore[union-attr]
