"""One line per pathway for `hsct pathway list`, from one query over the pathway rows.

A listing needs the row's columns and the Day label, and the Day label needs only the Day 0
anchors and the timezone from the stored facts. So each snapshot is read with `json.loads`
for those three keys instead of being validated into a full PathwayFacts: at 10,000 pathways
that is the difference between a fraction of a second and several seconds. The rows are still
checked against their head entries (Store.records), as every load is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from persistence.store import PathwayRecord
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


def listed(records: Iterable[PathwayRecord], at: datetime, *, open_first: bool = False) -> list[Listed]:
    """The records as listing rows labelled for `at`, in the order given; `open_first` puts the
    open pathway (not closed, no successor) before the others, as `PathwayService.find` does."""
    rows = [(_is_open(record), _listed(record, at)) for record in records]
    if open_first:
        rows.sort(key=lambda pair: not pair[0])  # stable: creation order within each group
    return [row for _, row in rows]


def _is_open(record: PathwayRecord) -> bool:
    return record.phase not in CLOSED_PHASES and record.successor is None


def _listed(record: PathwayRecord, at: datetime) -> Listed:
    facts = json.loads(record.facts)
    anchor = facts.get("day0") or facts.get("planned_day0")
    label = label_at(at, facts.get("timezone", "UTC"), None if anchor is None else date.fromisoformat(anchor))
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
