"""One line of a pathway's append-only log, as every layer sees it.

The chain fields (`sequence`, `prev_hash`, `hash`) are filled in by persistence when the entry
is sealed; the rest is decided by the service. Times are timezone-aware UTC.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from states.vocabulary import EntryKind, Phase, Role

GENESIS_HASH = "0" * 64

CANONICAL_FORM_VERSION = 2
"""The canonical form new entries are sealed in (docs/canonical-form.md); kept here so that an
Entry built outside persistence (a provisional one) says which form it would be sealed in."""

ORIGIN_LENGTH = 128
_ORIGIN = re.compile(rf"live|scenario:[A-Za-z0-9._-]{{1,{ORIGIN_LENGTH - len('scenario:')}}}")


def origin_label(value: str) -> str:
    """Check an entry origin: "live", or "scenario:<file name>" (a bounded, plain file name).

    Bounded and plain because it is hashed into every entry and shown to auditors.
    """
    if not isinstance(value, str) or _ORIGIN.fullmatch(value) is None:
        raise ValueError('origin must be "live" or "scenario:<file name>" (letters, digits, ".", "_", "-")')
    return value


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
    reason: str | None = Field(None, repr=False)  # free text: never in a repr
    payload: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold the patient reference
    reasons: tuple[str, ...] = ()
    policy_version: str
    idempotency_key: str | None = None
    corrects: int | None = None
    # Canonical form 2 (None in entries sealed in form 1): the sha256 of the stored facts
    # after this entry (filled in by the store from the JSON it writes), where the entry
    # came from, and the library release that wrote it.
    facts_digest: str | None = None
    origin: str | None = None
    release: str | None = None

    @field_validator("effective_at", "recorded_at")
    @classmethod
    def _utc(cls, value: AwareDatetime) -> AwareDatetime:
        return value.astimezone(UTC)


class Entry(Draft):
    """A sealed entry: its place in the chain, its hash, and the canonical form that sealed it."""

    sequence: int = Field(ge=1)
    form: int = Field(default=CANONICAL_FORM_VERSION, ge=1, le=CANONICAL_FORM_VERSION)
    prev_hash: str
    hash: str
