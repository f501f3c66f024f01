"""One line per pathway for `hsct pathway list`, from one query over the pathway rows.

A listing needs the row's columns and the Day label, and the Day label needs only the Day 0
anchors and the timezone from the stored facts. So those three keys are read, never a full
PathwayFacts (at 10,000 pathways that is the difference between a fraction of a second and
several seconds): on SQLite by the database's JSON functions in the listing's query, elsewhere
(or for a snapshot SQLite finds not to be JSON) with `json.loads` of the snapshot, about a tenth
of a second at 10,000. The rows are still checked against their head entries (Store.records),
as every load is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from persistence.store import DAY_ANCHORS, PathwayRecord
from states.days import label_at
from states.vocabulary import CLOSED_PHASES, DonorType, GraftSource, Phase, Route

__all__ = ["Listed", "listed"]


@dataclass(frozen=True, slots=True)
class Listed:
    """A pathway as a listing shows it (no patient reference)."""

    id: str
    phase: Phase
    route: Route
    donor_type: DonorType | None
    graft_source: GraftSource
    hct_number: int
    entries: int
    day_label: str | None


def listed(
    records: Iterable[tuple[PathwayRecord, str | None]], at: datetime, *, open_first: bool = False
) -> list[Listed]:
    """The records (each with its anchors, as `Store.records` gives them) as listing rows
    labelled for `at`, in the order given; `open_first` puts the open pathway (not closed, no
    successor) before the others, as `PathwayService.find` does."""
    rows = [(_is_open(record), _listed(record, anchors, at)) for record, anchors in records]
    if open_first:
        rows.sort(key=lambda pair: not pair[0])  # stable: creation order within each group
    return [row for _, row in rows]


def _is_open(record: PathwayRecord) -> bool:
    return record.phase not in CLOSED_PHASES and record.successor is None


def _listed(record: PathwayRecord, anchors: str | None, at: datetime) -> Listed:
    if anchors is not None:
        zone, day0, planned = json.loads(anchors)
    else:
        facts = json.loads(record.facts)
        zone, day0, planned = (facts.get(name) for name in DAY_ANCHORS)
    anchor = day0 or planned
    label = label_at(at, zone or "UTC", None if anchor is None else date.fromisoformat(anchor))
    return Listed(
        id=record.id,
        phase=record.phase,
        route=record.route,
        donor_type=record.donor_type,
        graft_source=record.graft_source,
        hct_number=record.hct_number,
        entries=record.version,
        day_label=label,
    )
