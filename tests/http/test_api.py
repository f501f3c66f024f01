"""The HTTP conventions, each against the published rule (docs/http.md), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from states.chart import CHART
from states.reasons import REASONS
from tests.http.conftest import COORD, PHYS, REFER, refer
from workflow.clock import ManualClock

PROBLEM = "application/problem+json"


def _fire(client: TestClient, pathway: str, command: str, body: dict | None = None, **headers: str):
    return client.post(f"/pathways/{pathway}/commands/{command}", json=body or {}, headers=headers)


def test_every_route_refuses_a_request_without_a_valid_token(client: TestClient) -> None:
    routes = [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert len(routes) > 2 * len(CHART.commands)
    for route in routes:
        path = route.path.replace("{pathway_id}", "p-1").replace("{message_id}", "1")
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
            response = client.request(next(iter(route.methods)), path, headers=headers, json={})
            assert response.status_code == 401, (route.path, headers)
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_refer_fire_and_read_back_with_the_caller_as_actor(client: TestClient, clock: ManualClock) -> None:
    created = client.post("/pathways", json=REFER, headers=PHYS)
    assert created.status_code == 201
    pathway = created.json()["pathway_id"]
    assert created.headers["location"] == f"/pathways/{pathway}"
    assert created.headers["etag"] == '"1"'
    clock.set(datetime(2026, 1, 5, 10, tzinfo=UTC))
    fired = _fire(client, pathway, "begin_evaluation", **COORD)
    assert fired.status_code == 200, fired.text
    assert fired.json()["phase"] == "evaluation"
    assert fired.json()["entry"]["actor_id"] == "co-ames"
    assert fired.json()["entry"]["actor_role"] == "transplant_coordinator"
    assert fired.headers["etag"] == '"2"'
    snapshot = client.get(f"/pathways/{pathway}", headers=PHYS)
    assert snapshot.json()["phase"] == "evaluation"
    assert snapshot.headers["etag"] == '"2"'
    history = client.get(f"/pathways/{pathway}/history", headers=PHYS).json()
    assert [e["trigger"] for e in history["items"]] == ["refer", "begin_evaluation"]
    assert [e["actor_id"] for e in history["items"]] == ["dr-ross", "co-ames"]
    before = client.get(f"/pathways/{pathway}/state", params={"at": "2026-01-05T09:00:00Z"}, headers=PHYS)
    assert before.status_code == 200
    assert before.json()["version"] == 1


def test_an_actor_in_the_body_is_rejected(client: TestClient) -> None:
    body = {**REFER, "actor": {"id": "dr-evil", "role": "transplant_physician"}}
    response = client.post("/pathways", json=body, headers=PHYS)
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["actor"]


def test_an_invalid_payload_is_422_with_the_field_path(client: TestClient) -> None:
    body = {**REFER, "with": {**REFER["with"], "route": "sideways"}}
    response = client.post("/pathways", json=body, headers=PHYS)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert [(e["path"], e["pointer"]) for e in errors] == [("with.route", "/with/route")]
    assert "with.route" in response.json()["detail"]  # the body's key, not the Python API's `payload`
    assert "payload." not in response.text
    assert "sideways" not in response.text  # the submitted value is never echoed
    assert client.get("/pathways", headers=PHYS).json()["items"] == []


def test_a_refusal_is_409_with_its_reason_codes_and_is_logged(client: TestClient) -> None:
    pathway = refer(client)
    _fire(client, pathway, "begin_evaluation", **COORD)
    refused = _fire(client, pathway, "complete_evaluation", **PHYS)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["status"] == 409
    assert {"consent_missing", "eligibility_missing"} <= set(problem["reasons"])
    texts = {e["code"]: (e["rule"], e["source"]) for e in problem["explanations"]}
    assert set(texts) == set(problem["reasons"])
    assert texts["consent_missing"] == (REASONS["consent_missing"].rule, REASONS["consent_missing"].source)
    assert problem["sequence"] == 3
    assert refused.headers["etag"] == '"3"'
    kinds = [e["kind"] for e in client.get(f"/pathways/{pathway}/history", headers=PHYS).json()["items"]]
    assert kinds == ["transition", "transition", "refusal"]


def test_an_unknown_pathway_is_404(client: TestClient) -> None:
    assert client.get("/pathways/no-such-pathway", headers=PHYS).status_code == 404
    assert _fire(client, "no-such-pathway", "begin_evaluation", **COORD).status_code == 404


def test_an_idempotency_key_replays_the_first_answer(client: TestClient) -> None:
    key = {"Idempotency-Key": "msg-4711"}
    first = client.post("/pathways", json=REFER, headers={**PHYS, **key})
    again = client.post("/pathways", json=REFER, headers={**PHYS, **key})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(client.get("/pathways", headers=PHYS).json()["items"]) == 1
    other = {**REFER, "with": {**REFER["with"], "patient_ref": "PT-OTHER1"}}
    misuse = client.post("/pathways", json=other, headers={**PHYS, **key})
    assert misuse.status_code == 422
    assert "msg-4711" not in misuse.text


def test_a_replayed_refusal_answers_the_same_refusal(client: TestClient) -> None:
    pathway = refer(client)
    key = {"Idempotency-Key": "evaluate-1"}
    first = _fire(client, pathway, "complete_evaluation", **PHYS, **key)
    again = _fire(client, pathway, "complete_evaluation", **PHYS, **key)
    assert first.status_code == again.status_code == 409
    assert again.json()["reasons"] == first.json()["reasons"]
    assert len(client.get(f"/pathways/{pathway}/history", headers=PHYS).json()["items"]) == 2


def test_if_match_fires_only_on_the_current_version(client: TestClient) -> None:
    pathway = refer(client)
    stale = _fire(client, pathway, "begin_evaluation", **COORD, **{"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"1"'
    assert len(client.get(f"/pathways/{pathway}/history", headers=PHYS).json()["items"]) == 1
    current = _fire(client, pathway, "begin_evaluation", **COORD, **{"If-Match": '"1"', "Idempotency-Key": "k-1"})
    assert current.status_code == 200
    assert current.headers["etag"] == '"2"'
    # the re-send of that command still carries the ETag it was sent with: it replays, not 412
    again = _fire(client, pathway, "begin_evaluation", **COORD, **{"If-Match": '"1"', "Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json() == current.json()
    refused = _fire(client, pathway, "complete_evaluation", **PHYS, **{"If-Match": '"2"'})
    assert refused.status_code == 409
    assert refused.json()["sequence"] == 3


def test_dry_runs_write_nothing_and_give_reasons(client: TestClient) -> None:
    pathway = refer(client)
    check = client.post(f"/pathways/{pathway}/commands/begin_evaluation/check", json={}, headers=COORD)
    assert check.json() == {"command": "begin_evaluation", "passed": True, "reasons": [], "needs_payload": False}
    no = client.post(f"/pathways/{pathway}/commands/complete_evaluation/check", json={}, headers=PHYS)
    assert no.json()["passed"] is False
    assert "trigger_not_allowed_in_phase" in no.json()["reasons"]
    offered = {a["command"]: a for a in client.get(f"/pathways/{pathway}/available", headers=COORD).json()}
    assert offered["begin_evaluation"]["passed"] is True
    assert len(client.get(f"/pathways/{pathway}/history", headers=PHYS).json()["items"]) == 1


def test_the_acting_role_must_be_granted_to_the_principal(client: TestClient) -> None:
    multi = {"Authorization": "Bearer tok-multi"}
    assert client.post("/pathways", json=REFER, headers=multi).status_code == 403
    denied = client.post("/pathways", json=REFER, headers={**PHYS, "Hsct-Role": "transplant_coordinator"})
    assert denied.status_code == 403
    acting = client.post("/pathways", json=REFER, headers={**multi, "Hsct-Role": "transplant_physician"})
    assert acting.status_code == 201
    assert acting.json()["entry"]["actor_id"] == "sys-all"


def test_lists_are_paged_without_gaps_or_repeats(client: TestClient) -> None:
    made = sorted(refer(client, f"PT-PAGE{n:02d}") for n in range(5))
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/pathways", params=params, headers=PHYS).json()
        seen += [p["pathway_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert client.get("/pathways", params={"cursor": "!!"}, headers=PHYS).status_code == 422


def test_worklist_milestones_and_audit_status(client: TestClient) -> None:
    pathway = refer(client)
    assert client.get(f"/pathways/{pathway}/milestones", headers=PHYS).status_code == 200
    assert client.get("/worklist", headers=PHYS).status_code == 200
    status = client.get("/audit/verify", headers=PHYS).json()
    assert status["ok"] is True
    assert status["entries"] == 1


def test_the_openapi_document_has_a_request_schema_per_command(client: TestClient) -> None:
    document = client.get("/openapi.json", headers=PHYS).json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    for name, spec in CHART.commands.items():
        operation = document["paths"][f"/pathways/{{pathway_id}}/commands/{name}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        envelope = schemas[ref.rsplit("/", 1)[1]]
        payload = schemas[envelope["properties"]["with"]["$ref"].rsplit("/", 1)[1]]
        assert not set(payload.get("properties", {})) & spec.payload.derived_fields
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("security"), (method, path)


def test_lookup_by_patient_ref_finds_that_patients_pathways_only(client: TestClient) -> None:
    mine = refer(client, "PT-LOOKUP1")
    refer(client, "PT-LOOKUP2")
    found = client.post("/pathways/lookup", json={"patient_ref": "PT-LOOKUP1"}, headers=PHYS)
    assert found.status_code == 200
    assert [p["pathway_id"] for p in found.json()["items"]] == [mine]
    none = client.post("/pathways/lookup", json={"patient_ref": "PT-NOBODY1"}, headers=PHYS)
    assert none.json()["items"] == []


def test_a_body_that_is_not_an_object_or_not_json_is_rejected(client: TestClient) -> None:
    pathway = refer(client)
    not_json = client.post(f"/pathways/{pathway}/commands/begin_evaluation", content=b"{", headers=COORD)
    assert not_json.status_code == 400
    listed = client.post(f"/pathways/{pathway}/commands/begin_evaluation", json=[1], headers=COORD)
    assert listed.status_code == 422
    assert [e["path"] for e in listed.json()["errors"]] == [""]
    assert len(client.get(f"/pathways/{pathway}/history", headers=PHYS).json()["items"]) == 1
