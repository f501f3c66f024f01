"""The HTTP API under load on loopback: 1, 2 and 4 `hsct serve` workers on PostgreSQL.

Per worker count: a fresh schema (dropped afterwards), one server with that many uvicorn
workers on 127.0.0.1, `--clients` client threads each sending `--per-client` hold/resume
commands with their own Idempotency-Key (every `--resend-every`-th sent twice, and checked to
answer the same), one pathway per client. Audited through the API: every answered command has
exactly one entry with its key (lost 0, duplicated 0), and the audit chain verifies. Prints
figures; asserts only correctness, never a time. Bounded: a run stops at `--time-limit`.

    HSCT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/http.py [--workers 1,2,4] [--clients 8] [--per-client 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path and its name shadows the
# standard library's `http`: put the repository root there instead, before anything imports it.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402

import httpx  # noqa: E402

from tests.http.conftest import ACCOUNTS, REFER  # noqa: E402
from tests.http.load import audit, drive  # noqa: E402
from tests.http.servers import pg_schema, server, write_tokens  # noqa: E402

TOKEN = "tok-coord"


def run(base: str, workers: int, clients: int, per_client: int, resend_every: int, time_limit: float) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        tokens = write_tokens(Path(scratch) / "tokens.json", ACCOUNTS)
        with pg_schema(base, "bench_http") as url, server(url, tokens, workers=workers, token=TOKEN) as api:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            pathways = [
                httpx.post(
                    f"{api}/pathways", json={"with": {**REFER["with"], "patient_ref": f"PT-BENCH{n:04d}"}}, headers=auth
                ).json()["pathway_id"]
                for n in range(clients)
            ]
            tally = drive(
                [api],
                pathways,
                clients=clients,
                per_client=per_client,
                token=TOKEN,
                resend_every=resend_every,
                time_limit_s=time_limit,
            )
            lost, duplicated = audit(api, pathways, tally, TOKEN)
            verified = httpx.get(f"{api}/audit/verify", headers=auth, timeout=120).json()["ok"]
    sent = sum(tally.statuses.values())
    errors = sent - tally.statuses[200] - tally.statuses[409]
    assert lost == duplicated == errors == tally.replays_differing == 0, (lost, duplicated, tally.statuses)
    assert verified
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items()))
    return (
        f"| {workers} | {clients} | {sent} | {statuses} | {sent / tally.seconds:.0f}/s | "
        f"{tally.percentile(0.5) * 1000:.1f} ms | {tally.percentile(0.99) * 1000:.1f} ms | {lost} | {duplicated} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=200)
    parser.add_argument("--resend-every", type=int, default=10)
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args()
    base = os.environ.get("HSCT_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set HSCT_TEST_POSTGRES_URL (a PostgreSQL on 127.0.0.1)")
    print(
        f"{platform.python_version()} on {os.cpu_count()} cores; hold/resume, one pathway per client, "
        f"every {args.resend_every}th command re-sent with its key (re-sends not timed)"
    )
    print("| server workers | clients | requests | statuses | throughput | p50 | p99 | lost | duplicated |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for workers in (int(w) for w in args.workers.split(",")):
        print(run(base, workers, args.clients, args.per_client, args.resend_every, args.time_limit), flush=True)


if __name__ == "__main__":
    main()
