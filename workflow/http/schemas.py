"""The HTTP shapes: response models, the command envelope, and one request schema per command.

Command payloads are validated by the service (one validation path, one error format), so the
request body is read as JSON and its schema is written into the OpenAPI document from the
chart's payload models, with the fields the library derives left out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from states.chart import CHART, INITIAL_COMMAND
from states.entry import Entry
from states.facts import PathwayFacts
from states.payloads import Payload, Refer
from states.vocabulary import Phase

T = TypeVar("T")
COMPONENTS = "#/components/schemas/{model}"


class Envelope(BaseModel):
    """A command body: the clinical (effective) time and the payload. The actor is the caller."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at: AwareDatetime | None = None
    with_: dict[str, Any] | None = Field(default=None, alias="with")


class CommandResult(BaseModel):
    pathway_id: str
    phase: Phase
    day_label: str | None
    entry: Entry


class SnapshotOut(BaseModel):
    pathway_id: str
    version: int
    phase: Phase
    at: datetime
    day: int | None
    day_label: str | None
    day0: date | None
    planned_day0: date | None
    neutrophil_recovery_on: date | None
    platelet_recovery_on: date | None
    gvhd_max_grade: int
    flags: list[str]
    facts: PathwayFacts


class AvailabilityOut(BaseModel):
    command: str
    passed: bool
    reasons: list[str]
    needs_payload: bool = False


class MilestoneOut(BaseModel):
    name: str
    status: str
    due_on: date
    detail: str
    opens: date | None
    closes: date | None


class WorklistItem(BaseModel):
    pathway_id: str
    milestones: list[MilestoneOut]


class PathwaySummary(BaseModel):
    pathway_id: str


class LookupRequest(BaseModel):
    """Sent in a body, not a URL, so the reference never lands in an access log."""

    model_config = ConfigDict(extra="forbid")

    patient_ref: str = Field(min_length=1, max_length=64)


class AuditProblem(BaseModel):
    pathway_id: str
    sequence: int
    check: str
    detail: str


class AuditStatus(BaseModel):
    ok: bool
    entries: int
    pathways: int
    problems: list[AuditProblem]


class DeadLetter(BaseModel):
    id: int
    pathway_id: str
    sequence: int
    topic: str
    attempts: int
    created_at: datetime


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next (null on the last)."""

    items: list[T]
    next_cursor: str | None = None


class FieldErrorOut(BaseModel):
    path: str
    pointer: str
    rule: str
    message: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details with the library's extensions."""

    type: str
    title: str
    status: int
    detail: str | None = None
    reasons: list[str] | None = Field(default=None, description="reason codes (docs/reason-codes.md)")
    sequence: int | None = Field(default=None, description="the refusal entry's sequence number")
    command: str | None = None
    errors: list[FieldErrorOut] | None = Field(default=None, description="invalid fields, with their paths")


def request_name(command: str) -> str:
    return "".join(part.capitalize() for part in command.split("_")) + "Request"


def _payloads() -> dict[str, type[Payload]]:
    found: dict[str, type[Payload]] = {INITIAL_COMMAND: Refer}
    found.update({name: spec.payload for name, spec in CHART.commands.items()})
    return found


def command_components() -> dict[str, Any]:
    """OpenAPI components: every payload model (derived fields removed) and, per command, an
    envelope `{at, with}` whose `with` is that command's payload."""
    payloads = _payloads()
    models = list(dict.fromkeys(payloads.values()))
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=COMPONENTS)
    components: dict[str, Any] = dict(top.get("$defs", {}))
    for model in models:
        schema = components[model.__name__]
        for name in model.derived_fields:
            schema.get("properties", {}).pop(name, None)
    for command, model in payloads.items():
        required = bool(components[model.__name__].get("required"))
        components[request_name(command)] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "at": {"type": "string", "format": "date-time", "description": "effective time (default: now)"},
                "with": {"$ref": COMPONENTS.format(model=model.__name__)},
            },
            "required": ["with"] if required else [],
        }
    return components
