"""A host system refers a patient and records the first steps, on an embedded SQLite file.

Run: python examples/embed_basic.py [DATABASE_URL]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from states.errors import Refused
from workflow.service import PathwayService


def main(url: str) -> None:
    service = PathwayService(url)  # the system clock; a fresh SQLite file is set up on first use
    physician = {"id": "dr-ross", "role": "transplant_physician"}
    coordinator = {"id": "co-ames", "role": "transplant_coordinator"}

    referred = service.refer(
        {"patient_ref": "PT-8F3A21", "route": "autologous", "graft_source": "pbsc"},
        actor=physician,
        at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    )
    pathway = referred.pathway_id
    service.fire(pathway, "begin_evaluation", actor=coordinator, at=datetime(2026, 1, 6, 9, tzinfo=UTC))
    try:
        service.fire(pathway, "complete_evaluation", actor=physician, at=datetime(2026, 1, 7, 9, tzinfo=UTC))
    except Refused as refusal:
        # The refusal is already in the log; the host shows its reasons to the coordinator.
        print("refused:", ", ".join(refusal.reasons))
    service.fire(pathway, "record_consent", {"consent_version": "v3"}, actor=coordinator,
                 at=datetime(2026, 1, 7, 10, tzinfo=UTC))
    for answer in service.available(pathway, actor=physician, at=datetime(2026, 1, 7, 11, tzinfo=UTC)):
        verdict = "needs a payload" if answer.needs_payload else "ok" if answer.passed else ", ".join(answer.reasons)
        print(f"{answer.command:28} {verdict}")
    print("phase:", service.snapshot(pathway).phase.value, "entries:", len(service.history(pathway)))
    service.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'example.sqlite'}")
