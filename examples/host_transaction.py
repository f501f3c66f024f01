"""A host that owns the transaction: its own row and the pathway's entry commit together.

The service works inside the host's Session (in a SAVEPOINT) and never commits; if the host
rolls back, neither its row nor the entry exists.

Run: python examples/host_transaction.py [DATABASE_URL]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from workflow.service import PathwayService


def main(url: str) -> None:
    service = PathwayService(url)
    physician = {"id": "dr-ross", "role": "transplant_physician"}
    with Session(service.engine) as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS host_referrals (pathway_id TEXT PRIMARY KEY)"))
        session.commit()

        result = service.refer(
            {"patient_ref": "PT-77C0DE", "route": "allogeneic", "donor_type": "matched_unrelated",
             "graft_source": "pbsc"},
            actor=physician,
            at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            session=session,
        )
        session.execute(text("INSERT INTO host_referrals VALUES (:id)"), {"id": result.pathway_id})
        session.rollback()  # the host changes its mind: nothing of either is kept
    print("after rollback, pathways:", len(service.pathway_ids()))

    with Session(service.engine) as session, session.begin():
        result = service.refer(
            {"patient_ref": "PT-77C0DE", "route": "allogeneic", "donor_type": "matched_unrelated",
             "graft_source": "pbsc"},
            actor=physician,
            at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            session=session,
        )
        session.execute(text("INSERT INTO host_referrals VALUES (:id)"), {"id": result.pathway_id})
    print("after commit, pathways:", len(service.pathway_ids()))
    service.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'example.sqlite'}")
