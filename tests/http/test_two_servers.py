"""Two `hsct serve` processes on one PostgreSQL database, firing at the same pathways."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_ENV
from tests.http.conftest import ACCOUNTS, REFER
from tests.http.load import audit, drive
from tests.http.servers import pg_schema, server, write_tokens

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TOKEN = "tok-coord"


def test_two_servers_one_database_nothing_lost_nothing_duplicated(tmp_path: Path) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL tests skipped")
    tokens = write_tokens(tmp_path / "tokens.json", ACCOUNTS)
    with (
        pg_schema(base, "http_e2e") as url,
        server(url, tokens, token=TOKEN, log=tmp_path / "a.log") as first,
        server(url, tokens, token=TOKEN, log=tmp_path / "b.log") as second,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        pathways = []
        for n in range(3):
            body = {"with": {**REFER["with"], "patient_ref": f"PT-E2E{n:03d}"}}
            pathways.append(httpx.post(f"{first}/pathways", json=body, headers=auth).json()["pathway_id"])
        tally = drive(
            [first, second],
            pathways,
            clients=4,
            per_client=40,
            token=TOKEN,
            spread=True,
            resend_every=5,
            time_limit_s=90,
        )
        assert set(tally.statuses) <= {200, 409}, tally.statuses
        assert sum(tally.statuses.values()) == 4 * 40
        assert tally.replays_differing == 0
        assert audit(second, pathways, tally, TOKEN) == (0, 0)
        status = httpx.get(f"{first}/audit/verify", headers=auth, timeout=60).json()
        assert status["ok"] is True
        assert status["entries"] == 3 + len(tally.answered)
