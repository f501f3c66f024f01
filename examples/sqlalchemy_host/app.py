"""A plain SQLAlchemy host: its own tables and migrations, the library's beside them, and the
host's Session owning each transaction.

Run from the repository root: python -m examples.sqlalchemy_host.app [DATABASE_URL]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from examples.sqlalchemy_host.models import CareTask
from states.command_names import RecordConsent
from states.entry import Entry
from states.errors import Refused
from states.facts import PathwayFacts
from workflow.service import PathwayService

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PHYSICIAN = {"id": "dr-ross", "role": "transplant_physician"}
COORDINATOR = {"id": "co-ames", "role": "transplant_coordinator"}


def migrate(url: str) -> None:
    """`alembic upgrade head` of the host's environment: the host's history, then the library's."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # the ini file's escaping
    command.upgrade(config, "head")


def announce(entry: Entry, facts: PathwayFacts) -> None:
    """An after-commit listener: it never hears of an entry that was rolled back."""
    print(f"committed: {entry.trigger} (seq {entry.sequence}, now {facts.phase.value})")


def main(url: str) -> None:
    migrate(url)
    service = PathwayService(url, after_commit=[announce])
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)

    with Session(service.engine) as session, session.begin():  # the referral and the task commit together
        referred = service.refer(
            {"patient_ref": "PT-5E1D0A", "route": "autologous", "graft_source": "pbsc"},
            actor=PHYSICIAN,
            at=at,
            session=session,
        )
        pathway = referred.pathway_id
        session.add(CareTask(pathway_id=pathway, title="Book the evaluation"))

    with Session(service.engine) as session:  # the host changes its mind: neither is kept, nobody is told
        service.fire(pathway, "begin_evaluation", actor=COORDINATOR, at=at, session=session)
        session.add(CareTask(pathway_id=pathway, title="Collect consent"))
        session.rollback()

    try:
        with Session(service.engine) as session, session.begin():
            session.add(CareTask(pathway_id=pathway, title="Plan conditioning"))
            service.fire(pathway, "complete_evaluation", actor=PHYSICIAN, at=at, session=session)
    except Refused as refusal:  # the host's task is rolled back; the refused attempt stays in the log
        print("refused:", ", ".join(refusal.reasons))

    with Session(service.engine) as session, session.begin():
        service.fire(pathway, "begin_evaluation", actor=COORDINATOR, at=at, session=session)
        service.fire(
            pathway, "record_consent", RecordConsent(consent_version="v3"), actor=COORDINATOR, at=at, session=session
        )

    with Session(service.engine) as session:
        tasks = session.scalar(select(func.count()).select_from(CareTask))
    kinds = [entry.kind.value for entry in service.history(pathway)]
    print("care tasks:", tasks)
    print("log:", ", ".join(kinds))
    service.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'host.sqlite'}")
