"""Facts this process just wrote, reused on the next load of the same pathway.

Parsing a stored snapshot back into PathwayFacts is one of the larger costs of a command, and
the next command on a pathway usually reads the very snapshot the previous one wrote. The
cache is keyed by pathway and checked against the loaded row's `facts_digest` (the SHA-256 of
the stored text, which every load computes anyway): a hit means the stored text is exactly the
JSON that was dumped from the cached object, so parsing it would give an equal object
(invariant I1 relies on that round trip). A rolled-back write, another process's write or a
tampered row changes the digest, and the text is parsed as before. The digest covers the series
rows too (through the heads in the text, persistence/series.py), but a hit does not re-read
them: a row changed under this process is found by the next process to read it, and by
`audit verify`, while this process keeps judging by the values it wrote. PathwayFacts is frozen, so
sharing the object is safe. Bounded: the oldest pathway is dropped first.

With the facts go the milestone schedule this process planned from them, so that a command
which changes nothing the schedule reads stores the same plan without making it again
(`schedule_of`), and the members their snapshot text was made of, so that the next snapshot
serialises only the fields a command changed (`members_of`, persistence/series.py). Only what
this process made is reused, never the stored columns.

And with them the pathway row as that write left it (`held`): on SQLite, where the service's
transaction holds the write lock from its start, a command judges that record instead of
loading the row once one probe has found it still the stored row with its head entry, as the
load would check them (`Store.holds`). A record that is not (another writer, a rolled-back
commit, an edited row) is not judged: the command loads the row, and its write replaces it.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from persistence.series import Members
from persistence.store import PathwayRecord, Store
from states.facts import PathwayFacts

__all__ = ["FactsCache"]


class _Item(NamedTuple):
    digest: str
    facts: PathwayFacts
    schedule: str | None
    members: Members | None
    record: PathwayRecord | None  # the row as the write left it, None when not kept


class FactsCache:
    """At most `size` pathways' last written facts, by the digest of their stored JSON."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: dict[str, _Item] = {}
        self._lock = threading.Lock()

    def parsed(self, record: PathwayRecord, store: Store) -> PathwayFacts:
        """The record's facts: the cached object when its digest matches, else read from the
        store (the snapshot text with its series rows)."""
        hit = self._items.get(record.id)
        if hit is not None and hit.digest == record.facts_digest:
            return hit.facts
        return store.facts(record)

    def held(self, pathway_id: str) -> PathwayRecord | None:
        """The pathway row as this process's last write left it, when that write kept it."""
        hit = self._items.get(pathway_id)
        return None if hit is None else hit.record

    def schedule_of(self, pathway_id: str, facts: PathwayFacts) -> str | None:
        """The schedule stored with `facts` when they are the cached object itself, else None."""
        hit = self._items.get(pathway_id)
        return hit.schedule if hit is not None and hit.facts is facts else None

    def members_of(self, pathway_id: str, facts: PathwayFacts) -> Members | None:
        """The snapshot members of `facts` when they are the cached object itself, else None."""
        hit = self._items.get(pathway_id)
        return hit.members if hit is not None and hit.facts is facts else None

    def wrote(
        self,
        pathway_id: str,
        digest: str | None,
        facts: PathwayFacts,
        schedule: str | None = None,
        members: Members | None = None,
        record: PathwayRecord | None = None,
    ) -> None:
        """`facts` were stored for the pathway as JSON with SHA-256 `digest` (None: unknown),
        with the milestone schedule `schedule` planned from them, made of `members`, leaving
        the row as `record` (None: not kept, the next command loads it)."""
        if digest is None or self._size <= 0:
            return
        with self._lock:
            self._items.pop(pathway_id, None)
            self._items[pathway_id] = _Item(digest, facts, schedule, members, record)
            if len(self._items) > self._size:
                del self._items[next(iter(self._items))]

    def moved(self, record: PathwayRecord) -> None:
        """An entry that left the facts as they were (a refusal) moved the row on to `record`."""
        with self._lock:
            hit = self._items.get(record.id)
            if hit is not None and hit.digest == record.facts_digest:
                self._items[record.id] = hit._replace(record=record)
