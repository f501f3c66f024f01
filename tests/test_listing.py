"""`PathwayService.listing` (one query) says what a snapshot of each pathway says."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import text

from states.errors import IntegrityError
from states.policy import Policy
from states.vocabulary import Phase
from tests.helpers_core import reach
from tests.walks import WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService


def test_each_row_matches_the_pathways_snapshot(service: PathwayService, clock: ManualClock) -> None:
    ids = [
        reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT),
        reach(service, clock, "matched_sibling", Phase.DONOR_SEARCH),
        reach(service, clock, "cord_blood", Phase.CONDITIONING),
    ]
    at = clock.now() + timedelta(days=3)
    rows = service.listing(at=at)
    assert [row.id for row in rows] == service.pathway_ids()
    assert {row.id for row in rows} == set(ids)
    labels = set()
    for row in rows:
        snap = service.snapshot(row.id, at=at)
        assert (row.phase, row.route, row.donor_type, row.graft_source, row.hct_number) == (
            snap.facts.phase,
            snap.facts.route,
            snap.facts.donor_type,
            snap.facts.graft_source,
            snap.facts.hct_number,
        )
        assert (row.entries, row.day_label) == (snap.version, snap.day_label)
        labels.add(row.day_label)
    assert None in labels, "a pathway without Day 0 must be among them"
    assert len(labels) > 1, "and one with a Day label"
    assert [row.id for row in service.listing(phase=Phase.DONOR_SEARCH)] == [ids[1]]


def test_the_day_label_is_counted_in_the_pathways_zone(service: PathwayService, clock: ManualClock) -> None:
    """The listing reads the zone with the Day 0 anchors (SQLite: in the query): at 02:00 UTC on
    Day +2 it is still Day +1 in New York, and the row says what the snapshot says."""
    zoned = PathwayService(service.engine, clock=clock, policy=Policy(timezone="America/New_York"))
    walk = WALKS["autologous"]().for_patient("PT-ZONE-LIST1")
    pathway_id = run_walk(zoned, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
    at = datetime.combine(walk.day0 + timedelta(days=2), time(2), tzinfo=UTC)
    (row,) = (row for row in service.listing(at=at) if row.id == pathway_id)
    assert row.day_label == zoned.snapshot(pathway_id, at=at).day_label == "D+1"


def test_a_row_whose_facts_do_not_match_its_head_is_refused(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    with service.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE pathways SET facts = replace(facts, '\"hct_number\":1', '\"hct_number\":2')")
    with pytest.raises(IntegrityError, match=pathway_id):
        service.listing()
    with service.engine.begin() as connection:  # put it back for the invariant check after the test
        connection.exec_driver_sql("UPDATE pathways SET facts = replace(facts, '\"hct_number\":2', '\"hct_number\":1')")


def test_a_snapshot_that_is_not_json_is_refused_by_its_pathway(service: PathwayService, clock: ManualClock) -> None:
    """SQLite reads the Day label's inputs in the listing's query: a snapshot that is not JSON
    still comes back as its own row and is refused by name, instead of failing the query."""
    reach(service, clock, "autologous", Phase.EVALUATION)
    broken = reach(service, clock, "matched_sibling", Phase.EVALUATION)
    read, write = (
        text("SELECT facts FROM pathways WHERE id = :id"),
        text("UPDATE pathways SET facts = :facts WHERE id = :id"),
    )
    with service.engine.begin() as connection:
        facts = connection.execute(read, {"id": broken}).scalar_one()
        connection.execute(write, {"facts": "not JSON", "id": broken})
    with pytest.raises(IntegrityError, match=broken):
        service.listing()
    with service.engine.begin() as connection:  # put it back for the invariant check after the test
        connection.execute(write, {"facts": facts, "id": broken})
