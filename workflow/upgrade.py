"""Upgrading a database to this release: the schema, then every pathway's facts from its log.

A release may change a derivation (what the fold computes from the same entries). The stored
snapshot is then stale, and it cannot simply be rewritten: each entry commits to the snapshot
after it (canonical form 2, `facts_digest`), so a silent UPDATE would break the commitment on
the next load. Instead the upgrade appends, to each pathway whose snapshot differs from the
replay of its log, one system event `facts_rederived` (actor role `system`, the release and
how many fields changed) that commits the new snapshot. The fold ignores that event, so the
snapshot stays a pure function of the log. docs/versioning.md.

Each pathway's milestone schedule (pathways.schedule, derived and outside the chain) is
stored on the way, with the re-derived facts or, when they are unchanged, on a row whose
schedule differs (none: written before migration 0008; or planned by an earlier release's
rules, `states.milestones.RULES`): the backfill that lets the worklist skip the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from persistence.policies import PolicyBook
from persistence.schema import upgrade as upgrade_schema
from persistence.series import split_facts
from persistence.store import Store, translate_errors
from states.days import clinical_date
from states.entry import Draft
from states.errors import IntegrityError
from states.facts import PathwayFacts
from states.fold import FACTS_REDERIVED, replay
from states.milestones import milestones, schedule
from states.policy import Policy
from states.vocabulary import EntryKind, Role
from workflow import __version__
from workflow.clock import Clock, SystemClock

UPGRADE_ACTOR = "hsct-upgrade"


@dataclass(frozen=True)
class Rederivation:
    """How many pathways were read, how many had their facts re-derived (one entry each), and
    among those how many now show different open milestones."""

    pathways: int = 0
    facts_changed: int = 0
    milestones_changed: int = 0


def _changed_fields(old: PathwayFacts, new: PathwayFacts) -> int:
    return sum(1 for name in PathwayFacts.model_fields if getattr(old, name) != getattr(new, name))


def rederive_pathway(store: Store, pathway_id: str, *, book: PolicyBook, now: Clock) -> tuple[bool, bool]:
    """Re-derive one pathway's facts in the caller's transaction: (facts changed, milestones
    changed); its milestone schedule is stored either way. IntegrityError if its stored facts
    are not what its head entry commits to."""
    record = store.load(pathway_id, for_update=True, checked=False)
    if record is None:
        return False, False
    if record.consistent is False:  # a form-2 head whose digest disagrees: not ours to repair
        raise IntegrityError(pathway_id)
    entries = store.entries(pathway_id)
    stored = store.facts(record)
    fresh = replay(entries)
    version = fresh.policy_version or entries[-1].policy_version
    policy = book.get(store.connection, version) or Policy()
    planned = schedule(fresh, policy).dumps()
    if fresh == stored:  # the schedule only, when missing or planned by other rules (outside the chain)
        store.replan(pathway_id, record.version, planned)
        return False, False
    if fresh.phase is not stored.phase:  # I4 ties the phase to the transitions: a log problem
        raise IntegrityError(pathway_id)
    at = now.now()
    today = clinical_date(at, fresh.timezone)
    draft = Draft(
        pathway_id=pathway_id,
        kind=EntryKind.EVENT,
        trigger=FACTS_REDERIVED,
        from_phase=record.phase,
        to_phase=record.phase,
        effective_at=at,
        recorded_at=at,
        actor_id=UPGRADE_ACTOR,
        actor_role=Role.SYSTEM,
        payload={"release": __version__, "changed_fields": _changed_fields(stored, fresh)},
        policy_version=version,
        origin="live",
        release=__version__,
    )
    store.append(
        pathway_id,
        draft,
        expected_version=record.version,
        head_hash=record.head_hash,
        phase=fresh.phase,
        facts_json=split_facts(fresh, stored, record.facts),
        now=at,
        schedule=planned,
    )
    return True, milestones(stored, policy, today) != milestones(fresh, policy, today)


def rederive_facts(
    engine: Engine, *, clock: Clock | None = None, progress: Callable[[int, int], None] | None = None
) -> Rederivation:
    """Re-derive every pathway's facts, one transaction per pathway; `progress(done, total)`."""
    clock = clock or SystemClock()
    book = PolicyBook()
    facts_changed = milestones_changed = 0
    with translate_errors():
        with engine.connect() as connection:
            ids = Store(connection).pathway_ids()
        for done, pathway_id in enumerate(ids, start=1):
            with engine.begin() as connection:
                changed, moved = rederive_pathway(Store(connection), pathway_id, book=book, now=clock)
            facts_changed += changed
            milestones_changed += moved
            if progress is not None:
                progress(done, len(ids))
    return Rederivation(len(ids), facts_changed, milestones_changed)


def upgrade_database(
    engine: Engine, *, clock: Clock | None = None, progress: Callable[[int, int], None] | None = None
) -> Rederivation:
    """What `hsct db upgrade` does: migrate the schema to head, then re-derive the facts."""
    upgrade_schema(engine)
    return rederive_facts(engine, clock=clock, progress=progress)
