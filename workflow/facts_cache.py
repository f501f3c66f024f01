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
"""

from __future__ import annotations

import threading

from persistence.series import Members
from persistence.store import PathwayRecord, Store
from states.facts import PathwayFacts

__all__ = ["FactsCache"]


class FactsCache:
    """At most `size` pathways' last written facts, by the digest of their stored JSON."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: dict[str, tuple[str, PathwayFacts, str | None, Members | None]] = {}
        self._lock = threading.Lock()

    def parsed(self, record: PathwayRecord, store: Store) -> PathwayFacts:
        """The record's facts: the cached object when its digest matches, else read from the
        store (the snapshot text with its series rows)."""
        hit = self._items.get(record.id)
        if hit is not None and hit[0] == record.facts_digest:
            return hit[1]
        return store.facts(record)

    def schedule_of(self, pathway_id: str, facts: PathwayFacts) -> str | None:
        """The schedule stored with `facts` when they are the cached object itself, else None."""
        hit = self._items.get(pathway_id)
        return hit[2] if hit is not None and hit[1] is facts else None

    def members_of(self, pathway_id: str, facts: PathwayFacts) -> Members | None:
        """The snapshot members of `facts` when they are the cached object itself, else None."""
        hit = self._items.get(pathway_id)
        return hit[3] if hit is not None and hit[1] is facts else None

    def wrote(
        self,
        pathway_id: str,
        digest: str | None,
        facts: PathwayFacts,
        schedule: str | None = None,
        members: Members | None = None,
    ) -> None:
        """`facts` were stored for the pathway as JSON with SHA-256 `digest` (None: unknown),
        with the milestone schedule `schedule` planned from them, made of `members`."""
        if digest is None or self._size <= 0:
            return
        with self._lock:
            self._items.pop(pathway_id, None)
            self._items[pathway_id] = (digest, facts, schedule, members)
            if len(self._items) > self._size:
                del self._items[next(iter(self._items))]
