"""The library's exceptions. Every layer raises these, never a driver's or a framework's.

Messages name fields, rules and reason codes; they never carry patient data (a pathway is
named by its random id, never by its patient reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HsctError(Exception):
    """Base of every error the library raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One reason a command was rejected: where (a dotted field path) and which rule."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<command>'}: {self.message} [{self.rule}]"


class InvalidCommand(HsctError):
    """The command was malformed: nothing was written, not even a refusal."""

    def __init__(self, command: str, problems: Sequence[FieldProblem]) -> None:
        self.command = command
        self.problems = tuple(problems)
        detail = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid {command!r}: {detail}")

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(p.rule for p in self.problems)


class UnknownPathway(HsctError):
    def __init__(self, pathway_id: str) -> None:
        self.pathway_id = pathway_id
        super().__init__(f"no pathway with id {pathway_id!r}")


class BeforeFirstEntry(HsctError):
    """The pathway exists, but nothing of it was recorded (or effective) by the time asked
    about: there is no state to show yet. `first` is when its first entry was recorded
    (`state_at`) or took effect (`state_on`)."""

    def __init__(self, pathway_id: str, asked: str, first: str) -> None:
        self.pathway_id = pathway_id
        self.asked = asked
        self.first = first
        super().__init__(f"pathway {pathway_id} had no entry by {asked}: its first entry is of {first}")


class AmbiguousId(HsctError):
    """An id prefix matched more than one pathway: give more characters."""

    def __init__(self, prefix: str, matches: int) -> None:
        self.prefix = prefix
        self.matches = matches
        super().__init__(f"id prefix {prefix!r} matches {matches} pathways: give more characters")


class Refused(HsctError):
    """A well-formed attempt the chart, a guard or the role table refused.

    A refusal entry with the same reason codes was appended (and committed when the service
    owns the transaction).
    """

    def __init__(self, pathway_id: str, command: str, reasons: Sequence[str], sequence: int | None) -> None:
        self.pathway_id = pathway_id
        self.command = command
        self.reasons = tuple(reasons)
        self.sequence = sequence
        super().__init__(f"{command!r} refused on pathway {pathway_id}: {', '.join(self.reasons)}")


class ConcurrencyConflict(HsctError):
    """Another writer changed the pathway between load and commit; reload and try again."""

    def __init__(self, pathway_id: str, detail: str = "") -> None:
        self.pathway_id = pathway_id
        super().__init__(f"pathway {pathway_id} was changed concurrently{': ' + detail if detail else ''}")


class IdempotencyMisuse(HsctError):
    """An idempotency key was reused for a different command or payload."""

    def __init__(self, key_digest: str) -> None:
        super().__init__(f"idempotency key (sha256 {key_digest[:12]}) was already used for another command")


class SchemaOutOfDate(HsctError):
    """The database schema is older (or newer) than this library; nothing was touched."""


class ChartError(HsctError):
    """The chart failed validation when it was built."""


class PolicyError(HsctError):
    """A policy file could not be read or failed validation."""


class IntegrityError(HsctError):
    """The stored pathway row disagrees with its log's head entry (the facts it commits to, or
    its hash): the database was changed outside the library. Nothing was appended; run
    `hsct audit verify` and restore from a verified copy."""

    def __init__(self, pathway_id: str) -> None:
        self.pathway_id = pathway_id
        super().__init__(f"pathway {pathway_id}: the stored state does not match its log; nothing was written")


class PatientHasOpenPathway(HsctError):
    """The patient already has an open pathway (no successor): a second one was not opened."""

    def __init__(self, pathway_id: str = "") -> None:
        self.pathway_id = pathway_id
        where = f"pathway {pathway_id}: " if pathway_id else ""
        super().__init__(f"{where}the patient already has an open pathway")
