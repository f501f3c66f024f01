"""Errors as RFC 9457 problem details (`application/problem+json`).

One table maps each library error to a status and a problem type; the body carries the
reason codes of a refusal and the field paths of an invalid payload, never a submitted value
or a patient reference (the library's messages are written that way already).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from persistence.store import DuplicateIdempotencyKey, StorageError
from states.errors import (
    ConcurrencyConflict,
    HsctError,
    IdempotencyMisuse,
    IntegrityError,
    InvalidCommand,
    PatientHasOpenPathway,
    Refused,
    UnknownPathway,
)
from states.reasons import REASONS
from workflow.validation import on_surface

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://hsct-pathway.invalid/problems/"
"""Problem type URIs are identifiers, not links (RFC 9457 3.1.1): `.invalid` never resolves."""
PAYLOAD_KEY = "with"
"""What a command body calls its payload (`Envelope.with_`): a payload field's problem is reported
on `with.<field>`, its path in the body, where the Python API says `payload.<field>`."""


class HttpProblem(Exception):
    """A problem raised by the HTTP layer itself (authentication, preconditions, bad JSON)."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "", headers: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers = headers or {}


@dataclass(frozen=True)
class _Kind:
    status: int
    kind: str
    title: str


# Most specific first: DuplicateIdempotencyKey is a ConcurrencyConflict, both are HsctErrors.
_KINDS: tuple[tuple[type[Exception], _Kind], ...] = (
    (InvalidCommand, _Kind(422, "invalid-command", "The command is malformed; nothing was written")),
    (Refused, _Kind(409, "refused", "The command was refused; the refusal is in the log")),
    (UnknownPathway, _Kind(404, "unknown-pathway", "No such pathway")),
    (IdempotencyMisuse, _Kind(422, "idempotency-key-reused", "The Idempotency-Key was used for another request")),
    (PatientHasOpenPathway, _Kind(409, "patient-has-open-pathway", "The patient already has an open pathway")),
    (DuplicateIdempotencyKey, _Kind(409, "in-progress", "A request with this Idempotency-Key is in progress")),
    (ConcurrencyConflict, _Kind(409, "concurrency-conflict", "The pathway was changed concurrently; retry")),
    (IntegrityError, _Kind(500, "integrity", "The stored state does not match its log")),
    (StorageError, _Kind(503, "storage", "The database is unavailable")),
    (HsctError, _Kind(400, "bad-request", "The request cannot be served")),
)


def problem(status: int, kind: str, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _extensions(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, Refused):
        return {"reasons": list(exc.reasons), "explanations": explanations(exc.reasons), "sequence": exc.sequence,
                "command": exc.command}
    if isinstance(exc, InvalidCommand):
        return {"errors": [field_error(p.path, p.rule, p.message) for p in exc.problems]}
    return {}


def explanations(codes: Iterable[str]) -> list[dict[str, str]]:
    """Each reason code with the rule it stands for and its source (states/reasons.py)."""
    known = [REASONS[code] for code in codes if code in REASONS]
    return [{"code": r.code, "rule": r.rule, "source": r.source} for r in known]


def field_error(path: str, rule: str, message: str) -> dict[str, str]:
    """One invalid field: its dotted path, the same path as a JSON Pointer into the body, the rule."""
    pointer = "/" + path.replace(".", "/") if path else ""
    return {"path": path, "pointer": pointer, "rule": rule, "message": message}


async def library_problem(_: Request, exc: Exception) -> JSONResponse:
    """The problem for a library error; 503s and conflicts say when to try again."""
    kind = next(k for cls, k in _KINDS if isinstance(exc, cls))
    if isinstance(exc, InvalidCommand):
        exc = on_surface(exc, PAYLOAD_KEY)
    response = problem(kind.status, kind.kind, kind.title, str(exc), **_extensions(exc))
    if kind.status in (409, 503) and not isinstance(exc, Refused | PatientHasOpenPathway):
        response.headers["Retry-After"] = "1"
    if isinstance(exc, Refused) and exc.sequence is not None:
        response.headers["ETag"] = etag(exc.sequence)
    return response


async def http_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpProblem)
    response = problem(exc.status, exc.kind, exc.title, exc.detail)
    response.headers.update(exc.headers)
    return response


async def starlette_problem(_: Request, exc: Exception) -> JSONResponse:
    """Routing errors (404 no route, 405 method) in the same format."""
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, f"http-{exc.status_code}", str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


async def validation_problem(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation (query, path, headers) as 422 with field paths."""
    assert isinstance(exc, RequestValidationError)
    errors = [field_error(".".join(str(part) for part in e["loc"]), e["type"], e["msg"]) for e in exc.errors()]
    return problem(422, "invalid-request", "The request parameters are invalid", errors=errors)


def etag(version: int) -> str:
    return f'"{version}"'


HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    HsctError: library_problem,
    HttpProblem: http_problem,
    StarletteHTTPException: starlette_problem,
    RequestValidationError: validation_problem,
}
