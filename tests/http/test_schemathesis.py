"""Property tests of the OpenAPI document against the app (bounded and derandomized for CI).

Every operation is called with data generated from its schema, authenticated; no answer may
be a server error, and every answer must match its documented status, media type and schema.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient  # noqa: E402

from tests.http.conftest import PHYS, make_app  # noqa: E402
from workflow.clock import ManualClock  # noqa: E402

_APP = make_app(
    f"sqlite:///{os.environ.get('TMPDIR', '/tmp')}/hsct-schemathesis-{os.getpid()}.sqlite",
    ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP, headers=PHYS)
schema.config.phases.update(phases=["examples", "fuzzing"])  # the coverage phase alone takes minutes
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module", autouse=True)
def _running() -> object:
    with TestClient(_APP) as client:  # runs the lifespan: the service exists for the calls
        yield client
    os.remove(_APP.state.service.engine.url.database)


@schema.parametrize()
@settings(max_examples=3, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_api_keeps_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=PHYS, checks=CHECKS)
