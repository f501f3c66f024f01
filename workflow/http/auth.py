"""Who is calling: a bearer token checked by a host callback, never an actor in the body.

A verifier maps a token to a `Principal` (an account id and the roles it may act in). The
request names its acting role in the `Hsct-Role` header when the principal holds several.
Whether the actor still holds that role when a command commits is the service's role
directory's question (`PathwayService(roles=...)`); `TokenFile` answers both for development.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from states.actor import Actor
from states.vocabulary import Role
from workflow.http.problems import HttpProblem

ROLE_HEADER = "Hsct-Role"


@dataclass(frozen=True)
class Principal:
    """An authenticated account: a personal or system id and the roles it may act in."""

    id: str
    roles: frozenset[Role]


Verifier = Callable[[str], Principal | None]
"""The host's check of a bearer token: the principal, or None when the token is not valid.
Called in a worker thread for every request; it must not log the token."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hsct"'}


def authenticate(verifier: Verifier, token: str | None, role: Role | None) -> Actor:
    """The acting `Actor` of a request bearing `token`, or a 401/403 problem."""
    if not token or not token.strip():
        raise HttpProblem(401, "unauthenticated", "A bearer token is required", headers=_CHALLENGE)
    principal = verifier(token.strip())
    if principal is None:
        raise HttpProblem(401, "unauthenticated", "The bearer token is not valid", headers=_CHALLENGE)
    if role is None:
        if len(principal.roles) != 1:
            raise HttpProblem(403, "role-required", f"Name the acting role in the {ROLE_HEADER} header")
        (role,) = principal.roles
    elif role not in principal.roles:
        raise HttpProblem(403, "role-not-granted", "The principal may not act in this role")
    return Actor(id=principal.id, role=role)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenFile:
    """Development credentials: a JSON file of token digests, account ids and roles.

    `{"tokens": [{"sha256": "<hex of sha256(token)>", "id": "dr-ross", "roles": ["transplant_physician"]}]}`
    Only digests are stored, so the file is no secret worth stealing. It is read once.
    """

    def __init__(self, entries: Iterable[dict[str, Any]]) -> None:
        self._by_digest: dict[str, Principal] = {}
        for item in entries:
            principal = Principal(str(item["id"]), frozenset(Role(r) for r in item["roles"]))
            Actor(id=principal.id, role=next(iter(principal.roles)))  # the id must be a valid actor id
            self._by_digest[str(item["sha256"]).lower()] = principal
        self._roles = {p.id: p.roles for p in self._by_digest.values()}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenFile:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return cls(data["tokens"])

    def verify(self, token: str) -> Principal | None:
        return self._by_digest.get(token_digest(token))

    def roles(self, _connection: Connection, actor_id: str) -> frozenset[Role]:
        """A role directory for the service: the roles the file grants the account now."""
        return self._roles.get(actor_id, frozenset())
