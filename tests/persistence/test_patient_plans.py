"""Lookups by patient read `pathways` through an index, never the whole table.

A referral asks for the patient's open pathways (the one-open-pathway rule), and `find` for all
of them; a full scan there makes every referral cost more as pathways accumulate. The statements
are caught as the store sends them and explained by the database (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN with sequential scans discouraged on PostgreSQL, where a few rows would otherwise always
be scanned); a read of every pathway filtered on a column no index holds is the control that
shows a scan would be seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, inspect

from persistence.store import Store
from states.vocabulary import Phase
from tests.helpers_core import reach
from tests.persistence.conftest import Backend
from tests.persistence.helpers import query_plan, statements_sent, step_adds_and_drops
from workflow.clock import ManualClock
from workflow.service import PathwayService


def _scans_pathways(connection: Connection, statement: str, parameters: Any) -> bool:
    plan = query_plan(connection, statement, parameters, discourage="enable_seqscan")
    if connection.dialect.name == "sqlite":
        return any(line.strip().startswith("SCAN pathways") for line in plan)
    return any("Seq Scan on pathways" in line for line in plan)


def test_lookups_by_patient_read_pathways_through_an_index(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    reach(service, clock, "autologous", Phase.EVALUATION)
    patient = service.snapshot(pathway_id).facts.patient_ref
    lookups: dict[str, Callable[[Store], object]] = {
        "open pathways of a patient": lambda store: store.open_pathways_of(patient),
        "every pathway of a patient": lambda store: store.pathways_of(patient),
    }
    with service.engine.connect() as connection, connection.begin():
        control = "SELECT id FROM pathways WHERE hct_number >= 1"
        assert _scans_pathways(connection, control, {}), "the control must be a full scan"
        for name, call in lookups.items():
            sent = statements_sent(connection, call)
            assert sent, name
            for statement, parameters in sent:
                assert not _scans_pathways(connection, statement, parameters), f"{name} scans every pathway"
        assert Store(connection).open_pathways_of(patient) == [pathway_id]


def test_0009_adds_the_patient_index_and_its_downgrade_drops_it(backend: Backend) -> None:
    def indexed(engine: Engine) -> bool:
        return "ix_pathways_patient_ref" in {index["name"] for index in inspect(engine).get_indexes("pathways")}

    step_adds_and_drops(backend.engine(), "0009", "0008", indexed)
