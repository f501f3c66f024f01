"""An app per test on both backends, with development tokens; invariants checked afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the http extra is not installed")

from fastapi.testclient import TestClient

from tests.invariants import assert_invariants
from workflow.clock import ManualClock
from workflow.http.app import create_app
from workflow.http.auth import TokenFile, token_digest
from workflow.http.webhooks import WebhookTarget
from workflow.service import PathwayService

ACCOUNTS = {
    "tok-phys": ("dr-ross", ["transplant_physician"]),
    "tok-coord": ("co-ames", ["transplant_coordinator"]),
    "tok-multi": ("sys-all", ["transplant_physician", "transplant_coordinator", "quality_manager"]),
}
TOKENS = TokenFile({"sha256": token_digest(t), "id": i, "roles": r} for t, (i, r) in ACCOUNTS.items())
PHYS = {"Authorization": "Bearer tok-phys"}
COORD = {"Authorization": "Bearer tok-coord"}
REFER = {
    "at": "2026-01-05T09:00:00Z",
    "with": {"patient_ref": "PT-8F3A21", "route": "autologous", "graft_source": "pbsc"},
}


def make_app(db_url: str, clock: ManualClock, webhook: WebhookTarget | None = None) -> Any:
    def service() -> PathwayService:
        return PathwayService(db_url, clock=clock, auto_upgrade=True, roles=TOKENS.roles)

    return create_app(service, TOKENS.verify, webhook=webhook, relay_in_background=False)


@pytest.fixture
def client(db_url: str, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(make_app(db_url, clock), base_url="http://127.0.0.1") as test_client:
        yield test_client
        assert_invariants(test_client.app.state.service.engine)  # type: ignore[attr-defined]


def refer(client: TestClient, patient_ref: str = "PT-8F3A21", **headers: str) -> str:
    body = {**REFER, "with": {**REFER["with"], "patient_ref": patient_ref}}
    response = client.post("/pathways", json=body, headers={**PHYS, **headers})
    assert response.status_code == 201, response.text
    return str(response.json()["pathway_id"])
