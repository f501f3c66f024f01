"""Fast seeding of large, realistic logs for verification at scale (T14, benchmarks/verify.py).

Templates are real pathways: each walk of tests/walks.py played through the service up to
its last step, a long follow-up of lab results, then Day +100 complete, so every entry was
judged and folded by the library. Clones repeat a template's log entry for entry under a new
id through `Store.insert_pathway` and `Store.append`, which seal every entry themselves
(canonical JSON, sha256, chained on the new head): the rows are exactly what the service
writes, only judging is skipped. The pathway row carries the template's facts, which the
cloned log replays to, so invariants I1-I5 hold on the seeded database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from persistence.chain import BODY_FIELDS
from persistence.series import split_facts
from persistence.store import PathwayRecord, Store
from states.entry import Draft, Entry
from states.facts import PathwayFacts
from states.milestones import schedule
from states.policy import Policy
from tests.walks import LAB, PHYS, WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService

Template = tuple[list[Entry], PathwayRecord]


def make_templates(service: PathwayService, clock: ManualClock, entries_per_pathway: int) -> list[Template]:
    """One template per walk, each with about `entries_per_pathway` entries."""
    templates = []
    for name in WALKS:
        walk = WALKS[name]()
        *steps, last = walk.steps
        assert last[2] == "complete_day100"
        pathway_id = run_walk(service, clock, walk.__class__(walk.name, walk.refer, tuple(steps), walk.day0))
        extra = max(0, entries_per_pathway - len(walk.steps) - 1)  # + refer, - none: the last step is kept
        start = walk.day0 + timedelta(days=30)
        for n in range(extra):
            at = clock.now().replace(year=start.year, month=start.month, day=start.day) + timedelta(minutes=30 * n)
            clock.set(at)
            payload = {"anc_x10e9_per_l": round(1.5 + (n % 40) / 10, 1), "platelets_x10e9_per_l": 60 + n % 90}
            service.fire(pathway_id, "record_lab", payload, actor=LAB, at=at)
        at, actor, command, payload = last
        clock.set(max(at, clock.now()))
        service.fire(pathway_id, command, payload, actor=actor if actor else PHYS, at=at)
        with Session(service.engine) as session:
            record = Store(session).load(pathway_id)
        assert record is not None
        templates.append((service.history(pathway_id), record))
    return templates


def clone(
    store: Store, log: Sequence[Entry], record: PathwayRecord, *, patient_ref: str | None = None, inline: bool = False
) -> str:
    """A new pathway whose log repeats `log` under a new id, sealed by the store; for another
    patient when `patient_ref` is given (a patient has one open pathway at a time), which then
    replaces the template's patient reference wherever it appears (payloads, facts). The row
    gets the facts' milestone schedule under the default policy (the templates'), unless
    `inline`, which stores the facts as releases before migration 0007 did: series values
    inside the text, and no schedule."""
    new_id = str(uuid.uuid4())
    old = json.dumps(record.patient_ref)
    new = old if patient_ref is None else json.dumps(patient_ref)

    def draft(entry: Entry) -> Draft:
        # model_construct: these values come from a validated Entry of the same fields.
        payload = entry.payload if new == old else json.loads(json.dumps(entry.payload).replace(old, new))
        return Draft.model_construct(
            **{**{name: getattr(entry, name) for name in BODY_FIELDS}, "pathway_id": new_id, "payload": payload}
        )

    first = log[0]
    facts = PathwayFacts.model_validate_json(store.facts_text(record).replace(old, new))
    stored = facts.model_dump_json() if inline else split_facts(facts, None, None)
    head = store.insert_pathway(
        pathway_id=new_id,
        patient_ref=patient_ref or record.patient_ref,
        route=record.route,
        donor_type=record.donor_type,
        graft_source=record.graft_source,
        hct_number=record.hct_number,
        previous_pathway=None,
        phase=first.to_phase or record.phase,
        facts_json=stored,
        first=draft(first),
        now=first.recorded_at,
        schedule=None if inline else schedule(facts, Policy()).dumps(),
    )
    phase = first.to_phase or record.phase
    for entry in log[1:]:
        if entry.kind.value == "transition" and entry.to_phase is not None:
            phase = entry.to_phase
        head = store.append(
            new_id,
            draft(entry),
            expected_version=head.sequence,
            head_hash=head.hash,
            phase=phase,
            facts_json=None,
            now=entry.recorded_at,
        )
    return new_id


def seed(service: PathwayService, templates: Sequence[Template], pathways: int, *, batch: int = 200) -> list[str]:
    """`pathways` clones, rotating over the templates, `batch` pathways per transaction."""
    ids: list[str] = []
    for offset in range(0, pathways, batch):
        with Session(service.engine) as session, session.begin():
            store = Store(session)
            for n in range(offset, min(pathways, offset + batch)):
                log, record = templates[n % len(templates)]
                ids.append(clone(store, log, record))
    return ids
