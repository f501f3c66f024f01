"""What a guard says: passed, or refused with stable snake_case reason codes.

A guard never answers a bare False: every refusal names its reasons (listed with their rule
and source in docs/reason-codes.md), and a guard that derives a fact (an engraftment date)
hands it back in `derived` so the entry records the library's value, not the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from states.facts import PathwayFacts
from states.payloads import Payload
from states.policy import Policy
from states.vocabulary import Role


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[str, ...] = ()
    derived: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons


PASS = Verdict()


def refuse(*reasons: str) -> Verdict:
    """A refusal for `reasons`; PASS when there are none."""
    return Verdict(reasons=reasons) if reasons else PASS


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """All reasons in order (each once) and every derived value (PASS when there are neither:
    the common case, judged on every command)."""
    reasons: dict[str, None] = {}
    derived: dict[str, Any] = {}
    for verdict in verdicts:
        if verdict is not PASS:
            reasons.update(dict.fromkeys(verdict.reasons))
            derived.update(verdict.derived)
    if not reasons and not derived:
        return PASS
    return Verdict(reasons=tuple(reasons), derived=derived)


@dataclass(frozen=True)
class Attempt:
    """Everything a guard may look at: a snapshot, the command, who and when. No I/O."""

    command: str
    facts: PathwayFacts
    payload: Payload
    at: datetime
    on: date
    actor_id: str
    actor_role: Role
    policy: Policy
