"""The policy registry: each policy version's full content, stored once and never changed.

An entry records only its `policy_version`; the registry (table `policies`, migration 0004)
keeps what that version said, so an auditor can re-run any judgement (`hsct audit rejudge`)
and a service can judge a running pathway under the policy it was started on. Rows are
content-addressed by version: registering a version again with the same rules is a no-op,
with different rules an error (a declared `version` must name one set of rules forever).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from persistence.models import policies_table as T
from persistence.store import translate_error
from states.errors import PolicyError
from states.policy import Policy, policy_from_canonical

__all__ = ["PolicyBook", "RegisteredPolicy", "all_policies", "check", "register", "registered"]

_SELECT_ONE = select(T).where(T.c.version == bindparam("b_version"))
_SELECT_ALL = select(T).order_by(T.c.registered_at, T.c.version)


@dataclass(frozen=True, slots=True)
class RegisteredPolicy:
    """One registry row. `policy` is parsed from `content` (a float written as 48 reads back as
    48.0, so compare policies, not texts: the rules are what the version names)."""

    version: str
    content: str = field(repr=False)
    content_sha256: str
    registered_at: datetime
    release: str

    @property
    def policy(self) -> Policy:
        return policy_from_canonical(self.content, origin=f"registered policy {self.version}")


def _row(row: object) -> RegisteredPolicy:
    mapping = row._mapping  # type: ignore[attr-defined]
    return RegisteredPolicy(**{name: mapping[name] for name in RegisteredPolicy.__slots__})


def registered(connection: Connection, version: str) -> RegisteredPolicy | None:
    """The registry row of `version`, or None."""
    try:
        row = connection.execute(_SELECT_ONE, {"b_version": version}).first()
    except DBAPIError as exc:
        raise translate_error(exc) from None
    return None if row is None else _row(row)


def all_policies(connection: Connection) -> list[RegisteredPolicy]:
    """Every registered version, oldest first."""
    try:
        return [_row(row) for row in connection.execute(_SELECT_ALL)]
    except DBAPIError as exc:
        raise translate_error(exc) from None


def check(connection: Connection, policy: Policy) -> bool:
    """Is `policy` registered? False when its version is not; PolicyError when the version is
    registered with other rules (a declared version must name one set of rules forever)."""
    stored = registered(connection, policy.version_id)
    if stored is None:
        return False
    if stored.content != policy.canonical_json() and stored.policy != policy:
        raise PolicyError(
            f"policy version {policy.version_id!r} is registered with different rules: a declared version "
            "names one set of rules forever; give the changed policy a new version"
        )
    return True


def register(connection: Connection, policy: Policy, *, now: datetime, release: str) -> bool:
    """Store `policy` under its version in the caller's transaction unless the registry holds
    it; True when it was already there (committed before), False when this call added it. A
    concurrent registration of the same version loses quietly; other rules raise PolicyError."""
    if check(connection, policy):
        return True
    content = policy.canonical_json()
    values = {
        "version": policy.version_id,
        "content": content,
        "content_sha256": hashlib.sha256(content.encode()).hexdigest(),
        "registered_at": now,
        "release": release,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    try:
        connection.execute(dialect.insert(T).values(**values).on_conflict_do_nothing(index_elements=["version"]))
    except DBAPIError as exc:
        raise translate_error(exc) from None
    check(connection, policy)  # a concurrent registration with other rules
    return False


class PolicyBook:
    """Registered policies by version, read once per process (rows never change)."""

    def __init__(self, *known: Policy) -> None:
        self._cache: dict[str, Policy] = {p.version_id: p for p in known}

    def get(self, connection: Connection, version: str) -> Policy | None:
        """The policy registered as `version`, or None when the registry does not hold it."""
        found = self._cache.get(version)
        if found is None:
            row = registered(connection, version)
            if row is None:
                return None
            found = self._cache[version] = row.policy
        return found
