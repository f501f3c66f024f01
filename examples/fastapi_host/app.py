"""A FastAPI host: its own tables and migrations, one Session transaction per request, and the
common `with session.begin(): ... raise HTTPException(...)` pattern, which rolls back the host's
work while the library keeps the refused attempt in its log.

Run from the repository root: uvicorn --factory examples.fastapi_host.app:create_app
(the database comes from HOST_DB, default a SQLite file host.sqlite).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from examples.fastapi_host.models import CommandLog, ReferralRequest
from states.actor import Actor
from states.command_names import Refer
from states.entry import Entry
from states.errors import InvalidCommand, Refused, UnknownPathway
from states.facts import PathwayFacts
from workflow.service import PathwayService, command_name

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(url: str) -> None:
    """`alembic upgrade head` of the host's environment: the host's history, then the library's."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # the ini file's escaping
    command.upgrade(config, "head")


def _session(request: Request) -> Iterator[Session]:
    """One Session per request, on the library's engine (the same database)."""
    with Session(request.app.state.service.engine) as opened:
        yield opened


def _user(x_user_id: Annotated[str, Header()], x_user_role: Annotated[str, Header()]) -> Actor:
    return Actor(id=x_user_id, role=x_user_role)  # a real host takes these from its login


Db = Annotated[Session, Depends(_session)]
User = Annotated[Actor, Depends(_user)]


class Fired(BaseModel):
    pathway_id: str
    phase: str
    sequence: int


def create_app(url: str | None = None, *, notify: list[str] | None = None) -> FastAPI:
    """The host's app on `url`; `notify` (if given) collects what the after-commit listener heard."""
    url = url or os.environ.get("HOST_DB", "sqlite:///host.sqlite")
    migrate(url)
    heard = notify if notify is not None else []

    def after_commit(entry: Entry, facts: PathwayFacts) -> None:  # e.g. tell the ward's worklist
        heard.append(f"{entry.trigger}:{facts.phase.value}")

    service = PathwayService(url, after_commit=[after_commit])
    app = FastAPI(title="Care coordination (example host)")
    app.state.service = service

    @app.post("/referrals", status_code=201)
    def refer(body: Refer, db: Db, who: User) -> Fired:
        with db.begin():
            result = service.refer(body, actor=who, at=datetime.now(UTC), session=db)
            db.add(ReferralRequest(pathway_id=result.pathway_id, requested_by=who.id))
        return Fired(pathway_id=result.pathway_id, phase=result.phase.value, sequence=result.entry.sequence)

    @app.post("/pathways/{pathway_id}/{name}")
    def fire(pathway_id: str, name: str, body: dict[str, Any], db: Db, who: User) -> Fired:
        with db.begin():
            db.add(CommandLog(pathway_id=pathway_id, command=name[:64], user_id=who.id))
            try:
                result = service.fire(pathway_id, command_name(name), body, actor=who, at=datetime.now(UTC), session=db)
            except Refused as refusal:  # the host's log row goes; the refusal entry stays
                raise HTTPException(409, {"reasons": list(refusal.reasons), "sequence": refusal.sequence}) from None
            except InvalidCommand as bad:
                raise HTTPException(422, [f"{p.path}: {p.message}" for p in bad.problems]) from None
            except UnknownPathway:
                raise HTTPException(404, "no such pathway") from None
        return Fired(pathway_id=pathway_id, phase=result.phase.value, sequence=result.entry.sequence)

    @app.get("/pathways/{pathway_id}")
    def show(pathway_id: str) -> dict[str, Any]:
        try:
            history = service.history(pathway_id)
        except UnknownPathway:
            raise HTTPException(404, "no such pathway") from None
        return {"phase": service.snapshot(pathway_id).phase.value, "log": [e.kind.value for e in history]}

    return app
