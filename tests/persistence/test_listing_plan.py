"""A listing reads the pathways in creation order from an index, without sorting them.

`Store.records` (what `hsct pathway list` shows) and `Store.pathway_ids` return every pathway in
creation order. Sorting the rows, snapshots included, was about a third of the listing's query
at 10,000 pathways on SQLite; migration 0010 indexes (created_at, id) so the rows come in order.
The statements are caught as the store sends them and explained by the database (EXPLAIN QUERY
PLAN on SQLite; EXPLAIN with sorts discouraged on PostgreSQL, whose planner would otherwise sort
a few rows); the same query ordered by another column is the control that shows a sort would be seen.
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


def _sorts(connection: Connection, statement: str, parameters: Any) -> bool:
    plan = query_plan(connection, statement, parameters, discourage="enable_sort")
    if connection.dialect.name == "sqlite":
        return any("TEMP B-TREE FOR ORDER BY" in line for line in plan)
    return any(line.strip().lstrip("-> ").startswith("Sort") for line in plan)


def test_listings_read_pathways_in_creation_order_without_sorting(service: PathwayService, clock: ManualClock) -> None:
    for walk in ("autologous", "matched_sibling"):
        reach(service, clock, walk, Phase.EVALUATION)
    reads: dict[str, Callable[[Store], Any]] = {
        "records (pathway list)": lambda store: store.records(),
        "pathway ids": lambda store: store.pathway_ids(),
    }
    with service.engine.connect() as connection, connection.begin():
        for name, call in reads.items():
            sent = statements_sent(connection, call)
            assert sent, name
            for statement, parameters in sent:
                assert not _sorts(connection, statement, parameters), f"{name} sorts the pathways"
                control = statement.replace("ORDER BY pathways.created_at, pathways.id", "ORDER BY pathways.updated_at")
                assert control != statement, f"{name}: not in creation order"
                assert _sorts(connection, control, parameters), "the control must sort"


def test_0010_adds_the_creation_order_index_and_its_downgrade_drops_it(backend: Backend) -> None:
    def indexed(engine: Engine) -> bool:
        return "ix_pathways_created_at_id" in {index["name"] for index in inspect(engine).get_indexes("pathways")}

    step_adds_and_drops(backend.engine(), "0010", "0009", indexed)
