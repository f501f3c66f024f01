"""`hsct audit log` filters in SQL: the right entries, and plans that never scan all of `entries`.

The plan test asks the database itself (EXPLAIN QUERY PLAN on SQLite, EXPLAIN with sequential
scans discouraged on PostgreSQL, where a handful of rows would otherwise always be scanned)
whether a filtered read can reach its entries through an index. The unfiltered read is the
control: it must be reported as a full scan, or the check could not see one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection

from persistence.store import LogFilter, Store, log_select
from states.entry import Entry
from states.vocabulary import Phase
from tests.helpers_core import reach
from tests.persistence.helpers import query_plan
from tests.walks import COORD, PHYS
from workflow.clock import ManualClock
from workflow.service import PathwayService


def _plan(connection: Connection, where: LogFilter) -> str:
    sql = str(log_select(where).compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    return "\n".join(query_plan(connection, sql, discourage="enable_seqscan"))


def _scans_entries(plan: str, dialect: str) -> bool:
    if dialect == "sqlite":
        # "SEARCH entries USING INDEX ..." narrows; "SCAN entries" (with or without an index) reads all.
        return any(line.strip().startswith("SCAN entries") for line in plan.splitlines())
    lines = plan.splitlines()
    for number, line in enumerate(lines):
        if "on entries" not in line:
            continue
        if "Seq Scan" in line:
            return True
        # An index walked end to end (for its order) has no Index Cond under it.
        detail = [
            lines[i]
            for i in range(number + 1, len(lines))
            if lines[i].startswith(" " * (len(line) - len(line.lstrip()) + 2))
        ]
        if "Index Scan" in line and not any("Index Cond" in d for d in detail):
            return True
    return False


@pytest.fixture
def logged(service: PathwayService, clock: ManualClock) -> tuple[list[str], list[Entry]]:
    ids = [reach(service, clock, "autologous", Phase.EVALUATION) for _ in range(3)]
    return ids, [entry for pathway_id in ids for entry in service.history(pathway_id)]


def test_every_narrowing_filter_reads_entries_through_an_index(
    service: PathwayService, logged: tuple[list[str], list[Entry]]
) -> None:
    ids, entries = logged
    middle = entries[len(entries) // 2].recorded_at
    narrowing = [
        LogFilter(pathway_id=ids[1]),
        LogFilter(since=middle),
        LogFilter(until=middle),
        LogFilter(since=middle, until=middle + timedelta(days=1)),
        LogFilter(pathway_id=ids[0], actor_id=PHYS["id"], kind="transition"),
        LogFilter(since=middle, trigger="begin_evaluation"),
    ]
    dialect = service.engine.dialect.name
    with service.engine.connect() as connection, connection.begin():
        assert _scans_entries(_plan(connection, LogFilter()), dialect), "the control must be a full scan"
        for where in narrowing:
            plan = _plan(connection, where)
            assert not _scans_entries(plan, dialect), f"{where} scans every entry:\n{plan}"


def test_the_log_holds_exactly_the_filtered_entries_oldest_recorded_first(
    service: PathwayService, logged: tuple[list[str], list[Entry]]
) -> None:
    ids, entries = logged
    middle = sorted(e.recorded_at for e in entries)[len(entries) // 2]
    cases = {
        LogFilter(): lambda e: True,
        LogFilter(pathway_id=ids[2]): lambda e: e.pathway_id == ids[2],
        LogFilter(actor_id=COORD["id"]): lambda e: e.actor_id == COORD["id"],
        LogFilter(trigger="begin_evaluation"): lambda e: e.trigger == "begin_evaluation",
        LogFilter(kind="transition", since=middle): lambda e: e.kind.value == "transition" and e.recorded_at >= middle,
        LogFilter(until=middle): lambda e: e.recorded_at <= middle,
    }
    order = {pathway_id: position for position, pathway_id in enumerate(service.pathway_ids())}  # creation order
    with service.engine.connect() as connection, connection.begin():
        store = Store(connection)
        for where, wanted in cases.items():
            expected = sorted(
                (e for e in entries if wanted(e)), key=lambda e: (e.recorded_at, order[e.pathway_id], e.sequence)
            )
            got = list(store.log(where))
            assert got == expected, where
            assert got or where.pathway_id is None, "a filter on a pathway must find its entries"
