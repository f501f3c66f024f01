"""The embedding API over HTTP: `create_app(service_factory, verifier)` builds the ASGI app.

Every route needs a bearer token (the actor is the authenticated caller, never a body field).
Commands are read off the chart: each gets `POST /pathways/{id}/commands/<name>` and a dry run
at `.../<name>/check`, with the command's own request schema, so a command added to the chart
appears here without code. Errors are problem+json (workflow.http.problems); lists are paged
by an opaque cursor. See docs/http.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from states.actor import Actor
from states.chart import CHART, INITIAL_COMMAND, Command
from states.entry import Entry
from states.errors import InvalidCommand
from states.milestones import Milestone
from states.vocabulary import Phase, Role
from workflow import __version__
from workflow.http.auth import ROLE_HEADER, Verifier, authenticate
from workflow.http.conditional import fire_if_match
from workflow.http.problems import HANDLERS, MEDIA_TYPE, HttpProblem, etag, problem
from workflow.http.schemas import (
    COMPONENTS,
    AuditProblem,
    AuditStatus,
    AvailabilityOut,
    CommandResult,
    DeadLetter,
    Envelope,
    LookupRequest,
    MilestoneOut,
    Page,
    PathwaySummary,
    ProblemOut,
    SnapshotOut,
    WorklistItem,
    command_components,
    request_name,
)
from workflow.http.webhooks import WebhookRelay, WebhookTarget
from workflow.outbox import Dispatcher
from workflow.service import Availability, PathwayService, Result, Snapshot, command_name
from workflow.validation import problems_of

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

T = TypeVar("T")
ServiceFactory = Callable[[], PathwayService]

PATHWAY_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", description="the pathway's id")]
LIMIT = Annotated[int, Query(ge=1, le=500, description="page size")]
CURSOR = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")]
AT = Annotated[datetime | None, Query(description="the moment to label (timezone-aware; default: now)")]
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, description="a re-send replays the first answer"),
]
IF_MATCH = Annotated[str | None, Header(alias="If-Match", max_length=200, description="the ETag last seen")]

_PROBLEM = {
    "description": "problem details (RFC 9457)",
    "content": {MEDIA_TYPE: {"schema": {"$ref": COMPONENTS.format(model="ProblemOut")}}},
}
_READ_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 404, 422, 500, 503), _PROBLEM)
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 404, 409, 412, 422, 500, 503), _PROBLEM)

_bearer = HTTPBearer(auto_error=False, description="a token the host's verifier accepts")


def create_app(
    service_factory: ServiceFactory,
    verifier: Verifier,
    *,
    webhook: WebhookTarget | None = None,
    relay_in_background: bool = True,
) -> FastAPI:
    """The app. `service_factory` runs once per server process at start-up (after a fork);
    with `webhook`, committed entries are POSTed there by a background thread (or by
    `app.state.relay.round()` when `relay_in_background` is false, as tests do)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = service_factory()
        app.state.service = service
        app.state.relay = None if webhook is None else WebhookRelay(Dispatcher(service), webhook)
        stop = threading.Event()
        thread = None
        if app.state.relay is not None and relay_in_background:
            thread = threading.Thread(target=app.state.relay.run, args=(stop,), name="hsct-webhooks", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=webhook.timeout_s + 1 if webhook else 1)
            if app.state.relay is not None:
                app.state.relay.close()
            service.engine.dispose()

    app = FastAPI(
        title="hsct-pathway",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        exception_handlers={**HANDLERS, Exception: _internal_error},
    )

    app.state.verifier = verifier
    _routes(app)
    _openapi(app)
    return app


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: a 500 that says nothing about the request (it may hold patient data);
    the log gets the exception's class and the path (ids only), never its message."""
    logger.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(500, "internal", "Internal error")


def _actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    hsct_role: Annotated[Role | None, Header(alias=ROLE_HEADER, description="the acting role")] = None,
) -> Actor:
    verifier: Verifier = request.app.state.verifier
    return authenticate(verifier, None if credentials is None else credentials.credentials, hsct_role)


def _service(request: Request) -> PathwayService:
    service: PathwayService = request.app.state.service
    return service


def _relay(request: Request) -> WebhookRelay:
    relay: WebhookRelay | None = request.app.state.relay
    if relay is None:
        raise HttpProblem(404, "no-webhook", "No webhook is configured")
    return relay


async def _envelope(request: Request) -> Envelope:
    """The JSON body as `{at, with}`; malformed JSON is a 400, a wrong shape a 422."""
    try:
        data = json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HttpProblem(400, "invalid-json", "The body is not JSON") from None
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise InvalidCommand("request", problems_of(exc)) from None


Service = Annotated[PathwayService, Depends(_service)]
Caller = Annotated[Actor, Depends(_actor)]
Body = Annotated[Envelope, Depends(_envelope)]


def _result(result: Result, status: int = 200, location: bool = False) -> JSONResponse:
    body = CommandResult(
        pathway_id=result.pathway_id, phase=result.phase, day_label=result.day_label, entry=result.entry
    )
    headers = {"ETag": etag(result.entry.sequence)}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if location:
        headers["Location"] = f"/pathways/{result.pathway_id}"
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _snapshot(snapshot: Snapshot) -> SnapshotOut:
    return SnapshotOut(
        pathway_id=snapshot.pathway_id,
        version=snapshot.version,
        phase=snapshot.phase,
        at=snapshot.at,
        day=snapshot.day,
        day_label=snapshot.day_label,
        day0=snapshot.day0,
        planned_day0=snapshot.planned_day0,
        neutrophil_recovery_on=snapshot.neutrophil_recovery_on,
        platelet_recovery_on=snapshot.platelet_recovery_on,
        gvhd_max_grade=snapshot.gvhd_max_grade,
        flags=sorted(snapshot.flags),
        facts=snapshot.facts,
    )


def _availability(answer: Availability) -> AvailabilityOut:
    return AvailabilityOut(
        command=answer.command, passed=answer.passed, reasons=list(answer.reasons), needs_payload=answer.needs_payload
    )


def _milestones(found: Iterable[Milestone]) -> list[MilestoneOut]:
    return [
        MilestoneOut(name=m.name, status=m.status, due_on=m.due_on, detail=m.detail, opens=m.opens, closes=m.closes)
        for m in found
    ]


def _page(items: Sequence[T], key: Callable[[T], Any], limit: int, cursor: str | None) -> Page[T]:
    """Items after the cursor's key (items sorted by key), and the cursor of the next page."""
    if cursor is not None:
        try:
            after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            items = [item for item in items if key(item) > after]
        except (binascii.Error, ValueError, TypeError):
            raise HttpProblem(422, "invalid-cursor", "The cursor is not one this server issued") from None
    page = list(items[:limit])
    more = len(items) > limit
    next_cursor = base64.urlsafe_b64encode(json.dumps(key(page[-1])).encode()).decode() if more else None
    return Page[T](items=page, next_cursor=next_cursor)


def _routes(app: FastAPI) -> None:
    def now_or(service: PathwayService, at: datetime | None) -> datetime:
        return at if at is not None else service.clock.now()

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document(_: Caller) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.post(
        "/pathways",
        status_code=201,
        response_model=CommandResult,
        responses=_WRITE_ERRORS,
        openapi_extra=_request_body(INITIAL_COMMAND),
        tags=["commands"],
        operation_id="refer",
    )
    def refer(service: Service, caller: Caller, body: Body, key: IDEMPOTENCY_KEY = None) -> JSONResponse:
        """Open a pathway in `referred` (201, Location and ETag of the new pathway)."""
        result = service.refer(body.with_ or {}, actor=caller, at=now_or(service, body.at), idempotency_key=key)
        return _result(result, 201, location=True)

    @app.get("/pathways", response_model=Page[PathwaySummary], responses=_READ_ERRORS, tags=["reading"])
    def list_pathways(
        service: Service, _: Caller, phase: Phase | None = None, limit: LIMIT = 100, cursor: CURSOR = None
    ) -> Page[PathwaySummary]:
        """Pathway ids (optionally in one phase), in id order."""
        ids = sorted(service.pathway_ids(phase=phase))
        return _page([PathwaySummary(pathway_id=i) for i in ids], lambda p: p.pathway_id, limit, cursor)

    @app.post("/pathways/lookup", response_model=Page[PathwaySummary], responses=_READ_ERRORS, tags=["reading"])
    def lookup(
        service: Service, _: Caller, query: LookupRequest, limit: LIMIT = 100, cursor: CURSOR = None
    ) -> Page[PathwaySummary]:
        """The pathways of a patient reference (sent in the body so that no log records it)."""
        ids = sorted(service.find(query.patient_ref))
        return _page([PathwaySummary(pathway_id=i) for i in ids], lambda p: p.pathway_id, limit, cursor)

    @app.get("/pathways/{pathway_id}", response_model=SnapshotOut, responses=_READ_ERRORS, tags=["reading"])
    def snapshot(service: Service, _: Caller, pathway_id: PATHWAY_ID, response: Response, at: AT = None) -> SnapshotOut:
        """The pathway now; `ETag` is its version (send it as `If-Match` with a command)."""
        found = service.snapshot(pathway_id, at=at)
        response.headers["ETag"] = etag(found.version)
        return _snapshot(found)

    @app.get("/pathways/{pathway_id}/state", response_model=SnapshotOut, responses=_READ_ERRORS, tags=["reading"])
    def state_at(
        service: Service,
        _: Caller,
        pathway_id: PATHWAY_ID,
        at: Annotated[datetime, Query()],
        as_known_now: bool = False,
    ) -> SnapshotOut:
        """What was known at `at` (entries recorded by then), or with later corrections applied."""
        return _snapshot(service.state_at(pathway_id, at, as_known_now=as_known_now))

    @app.get("/pathways/{pathway_id}/history", response_model=Page[Entry], responses=_READ_ERRORS, tags=["reading"])
    def history(
        service: Service, _: Caller, pathway_id: PATHWAY_ID, limit: LIMIT = 100, cursor: CURSOR = None
    ) -> JSONResponse:
        """The pathway's log entries in sequence order."""
        page = _page(service.history(pathway_id), lambda e: e.sequence, limit, cursor)
        return JSONResponse(page.model_dump(mode="json"))

    @app.get(
        "/pathways/{pathway_id}/milestones", response_model=list[MilestoneOut], responses=_READ_ERRORS, tags=["reading"]
    )
    def milestones(service: Service, _: Caller, pathway_id: PATHWAY_ID, at: AT = None) -> list[MilestoneOut]:
        """What is due or overdue on the pathway."""
        return _milestones(service.milestones(pathway_id, at=at))

    @app.get(
        "/pathways/{pathway_id}/available",
        response_model=list[AvailabilityOut],
        responses=_READ_ERRORS,
        tags=["dry runs"],
    )
    def available(service: Service, caller: Caller, pathway_id: PATHWAY_ID, at: AT = None) -> list[AvailabilityOut]:
        """Every command the caller's role may use in the current phase, judged now, with reasons."""
        return [_availability(a) for a in service.available(pathway_id, actor=caller, at=at)]

    @app.get("/worklist", response_model=Page[WorklistItem], responses=_READ_ERRORS, tags=["reading"])
    def worklist(
        service: Service, _: Caller, at: AT = None, limit: LIMIT = 100, cursor: CURSOR = None
    ) -> Page[WorklistItem]:
        """Open milestones of every pathway still in care, by pathway id."""
        found = service.all_milestones(at=at)
        items = [WorklistItem(pathway_id=p, milestones=_milestones(found[p])) for p in sorted(found)]
        return _page(items, lambda w: w.pathway_id, limit, cursor)

    @app.get("/audit/verify", response_model=AuditStatus, responses=_READ_ERRORS, tags=["audit"])
    def audit_verify(
        service: Service, _: Caller, pathway_id: Annotated[str | None, Query(max_length=64)] = None
    ) -> AuditStatus:
        """Recompute the hash chains (of one pathway, or all): `ok`, and the first problem of each."""
        from workflow.audit.verify import verify_log

        done = verify_log(service, pathway_id=pathway_id)
        problems = [
            AuditProblem(pathway_id=p.pathway_id, sequence=p.sequence, check=p.check, detail=p.detail)
            for p in done.problems
        ]
        return AuditStatus(ok=done.ok, entries=done.entries, pathways=done.pathways, problems=problems)

    @app.get("/webhooks/dead-letters", response_model=list[DeadLetter], responses=_READ_ERRORS, tags=["webhooks"])
    def dead_letters(
        _: Caller, relay: Annotated[WebhookRelay, Depends(_relay)], limit: LIMIT = 100
    ) -> list[DeadLetter]:
        """Messages the webhook refused `max_attempts` times; each holds back its pathway."""
        return [
            DeadLetter(
                id=m.id,
                pathway_id=m.pathway_id,
                sequence=m.sequence,
                topic=m.topic,
                attempts=m.attempts,
                created_at=m.created_at,
            )
            for m in relay.dead_letters(limit)
        ]

    @app.post("/webhooks/dead-letters/{message_id}/skip", status_code=204, responses=_READ_ERRORS, tags=["webhooks"])
    def skip(_: Caller, relay: Annotated[WebhookRelay, Depends(_relay)], message_id: int) -> Response:
        """Give up on a message deliberately: its pathway's later messages go out again."""
        if not relay.skip(message_id):
            raise HttpProblem(404, "no-such-message", "No pending message with this id")
        return Response(status_code=204)

    for spec in CHART.commands.values():
        _command_routes(app, spec)


def _command_routes(app: FastAPI, spec: Command) -> None:
    """The command's two operations; one closure per command, nothing written per command."""
    name = spec.name
    path = f"/pathways/{{pathway_id}}/commands/{name}"
    tag = "commands" if spec.changes_phase else "events"

    def fire(
        service: Service,
        who: Caller,
        body: Body,
        pathway_id: PATHWAY_ID,
        key: IDEMPOTENCY_KEY = None,
        if_match: IF_MATCH = None,
    ) -> JSONResponse:
        at = body.at if body.at is not None else service.clock.now()
        command = command_name(name)
        if if_match is None:
            result = service.fire(pathway_id, command, body.with_, actor=who, at=at, idempotency_key=key)
        else:
            result = fire_if_match(
                service, pathway_id, command, body.with_, actor=who, at=at, idempotency_key=key, if_match=if_match
            )
        return _result(result)

    def check(service: Service, who: Caller, body: Body, pathway_id: PATHWAY_ID) -> AvailabilityOut:
        return _availability(service.can_fire(pathway_id, command_name(name), body.with_, actor=who, at=body.at))

    fire.__doc__ = f"Fire `{name}` (phase-changing)." if spec.changes_phase else f"Record `{name}`."
    check.__doc__ = f"Would `{name}` pass now? Nothing is written."
    app.post(
        path,
        response_model=CommandResult,
        responses=_WRITE_ERRORS,
        openapi_extra=_request_body(name),
        tags=[tag],
        operation_id=name,
    )(fire)
    app.post(
        f"{path}/check",
        response_model=AvailabilityOut,
        responses=_READ_ERRORS,
        openapi_extra=_request_body(name),
        tags=["dry runs"],
        operation_id=f"check_{name}",
    )(check)


def _request_body(command: str) -> dict[str, Any]:
    schema = {"$ref": COMPONENTS.format(model=request_name(command))}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi(app: FastAPI) -> None:
    """OpenAPI 3.1 with every command's request schema and the problem schema as components."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                routes=app.routes,
                description="The hsct-pathway embedding API over HTTP (docs/http.md).",
            )
            _, problems = models_json_schema([(ProblemOut, "serialization")], ref_template=COMPONENTS)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            schema["components"]["schemas"] = {**command_components(), **problems.get("$defs", {}), **components}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
