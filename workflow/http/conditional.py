"""`If-Match`: fire only when the pathway is still at the version the client last saw.

The version is compared under the pathway's row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE
serialises writers) in the transaction that fires the command, so no writer can slip in
between the check and the command. A re-send whose Idempotency-Key is stored replays instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from persistence.store import Store
from states.actor import Actor
from states.command_names import CommandName
from states.errors import Refused, UnknownPathway
from workflow.http.problems import HttpProblem, etag
from workflow.retry import own_transaction, transient
from workflow.service import PathwayService, Result


def matches(if_match: str, version: int) -> bool:
    """Strong comparison (RFC 9110 13.1.1): `*`, or one of the listed tags equals the version's."""
    return any(tag.strip() in ("*", etag(version)) for tag in if_match.split(","))


def fire_if_match(
    service: PathwayService,
    pathway_id: str,
    command: CommandName,
    payload: Mapping[str, Any] | None,
    *,
    actor: Actor,
    at: datetime,
    idempotency_key: str | None,
    if_match: str,
) -> Result:
    """`service.fire` in a transaction that first checks `If-Match`; 412 when it fails."""

    def work(connection: Connection) -> Result | Refused:
        store = Store(connection)
        record = store.load(pathway_id, for_update=True)
        if record is None:
            raise UnknownPathway(pathway_id)
        replay = idempotency_key is not None and store.entry_by_idempotency_key(idempotency_key) is not None
        if not replay and not matches(if_match, record.version):
            raise HttpProblem(
                412,
                "precondition-failed",
                "The pathway changed since the given ETag",
                headers={"ETag": etag(record.version)},
            )
        with Session(bind=connection) as session:
            try:
                done: Result | Refused = service.fire(
                    pathway_id, command, payload, actor=actor, at=at, idempotency_key=idempotency_key, session=session
                )
            except Refused as refusal:  # its entry commits with this transaction
                done = refusal
            session.commit()
        return done

    outcome = service.retry.call(
        partial(own_transaction, service.engine, work), partial(transient, resend_safe=idempotency_key is not None)
    )
    if isinstance(outcome, Refused):
        raise outcome
    return outcome
