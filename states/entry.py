"""One line of a pathway's append-only log, as every layer sees it.

The chain fields (`sequence`, `prev_hash`, `hash`) are filled in by persistence when the entry
is sealed; the rest is decided by the service. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from states.vocabulary import EntryKind, Phase, Role

GENESIS_HASH = "0" * 64


class Draft(BaseModel):
    """An entry before it is chained: everything the service decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pathway_id: str
    kind: EntryKind
    trigger: str
    from_phase: Phase | None
    to_phase: Phase | None
    effective_at: AwareDatetime
    recorded_at: AwareDatetime
    actor_id: str
    actor_role: Role
    reason: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold the patient reference
    reasons: tuple[str, ...] = ()
    policy_version: str
    idempotency_key: str | None = None
    corrects: int | None = None

    @field_validator("effective_at", "recorded_at")
    @classmethod
    def _utc(cls, value: AwareDatetime) -> AwareDatetime:
        return value.astimezone(UTC)


class Entry(Draft):
    """A sealed entry: its place in the chain and its hash."""

    sequence: int = Field(ge=1)
    prev_hash: str
    hash: str
