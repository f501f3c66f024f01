"""Re-judging the log: every verdict again, under the policy the entry names, from the log alone.

A hash chain proves entries were not changed after they were written; it cannot prove that a
verdict followed from the rules. Re-judging does: each pathway is replayed entry by entry,
and every judged entry's attempt is put to the judge again with the facts as they stood before
it, its actor, its times and the policy registered under its `policy_version`. An entry whose
stored reasons differ from the recomputed ones is reported (docs/versioning.md).

Not recomputed: `role_not_held` and `verifier_role_not_held` (they come from the host's role
directory at the time, which the log does not hold) are left out on both sides; entries that
no policy judged (a subsequent transplant's opening, written by the event on the earlier
pathway, and `facts_rederived`) are skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import Engine

from persistence.policies import PolicyBook
from persistence.store import Store, translate_errors
from states.chart import CHART, INITIAL_COMMAND
from states.entry import Entry
from states.facts import PathwayFacts
from states.fold import FACTS_REDERIVED, apply_entry, replay
from states.judge import judge
from states.payloads import CorrectEntry
from states.policy import Policy
from states.vocabulary import EntryKind
from workflow import __version__
from workflow.corrections import correction_problems

HOST_REASONS = frozenset({"role_not_held", "verifier_role_not_held"})
"""Reasons from the host's role directory: not recomputable from the log, left out of the comparison."""

PolicyLookup = Callable[[str], Policy | None]


@dataclass(frozen=True)
class Difference:
    """An entry whose stored verdict is not what its policy gives. `recomputed` is None when
    the entry could not be judged again (`note` says why); reason codes only, no patient data."""

    pathway_id: str
    sequence: int
    trigger: str
    policy_version: str
    release: str | None
    stored: tuple[str, ...]
    recomputed: tuple[str, ...] | None
    note: str = ""


@dataclass(frozen=True)
class Rejudgement:
    """What a re-judging run found; `entries_by_release` counts the entries each release wrote
    (None: written before entries recorded their release)."""

    pathways: int = 0
    judged: int = 0
    skipped: int = 0
    differences: tuple[Difference, ...] = ()
    entries_by_release: dict[str | None, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def _stored(entry: Entry) -> tuple[str, ...]:
    return tuple(r for r in entry.reasons if r not in HOST_REASONS)


def _recompute(entry: Entry, facts: PathwayFacts, log: Sequence[Entry], policy: Policy) -> tuple[tuple[str, ...], str]:
    """The reasons the judge gives now for `entry`'s attempt, and a note on the destination."""
    spec = CHART.commands[entry.trigger]
    body = spec.payload.model_validate(entry.payload)
    judgement = judge(
        spec,
        facts,
        body,
        actor_id=entry.actor_id,
        actor_role=entry.actor_role,
        at=entry.effective_at,
        now=entry.recorded_at,
        policy=policy,
    )
    reasons = judgement.verdict.reasons
    if not reasons and isinstance(body, CorrectEntry):
        reasons = correction_problems(log, body)
    moved = entry.kind is EntryKind.TRANSITION and not reasons and judgement.destination is not entry.to_phase
    return reasons, "the chart leads elsewhere" if moved else ""


def rejudge_pathway(entries: Sequence[Entry], policy_of: PolicyLookup) -> tuple[int, int, list[Difference]]:
    """Re-judge one pathway's log (in sequence order): (judged, skipped, differences)."""
    judged, skipped, found = 0, 0, []
    facts: PathwayFacts | None = None
    for position, entry in enumerate(entries):
        policy = policy_of(entry.policy_version)
        if entry.trigger == FACTS_REDERIVED or (facts is None and entry.trigger != INITIAL_COMMAND):
            skipped += 1
        elif policy is None:
            found.append(_difference(entry, None, f"policy {entry.policy_version} is not registered"))
        elif facts is None:  # a referral: only the role table judges it (decisions.md)
            judged += 1
            referral: tuple[str, ...] = () if policy.may(entry.actor_role, INITIAL_COMMAND) else ("role_not_permitted",)
            if referral != _stored(entry):
                found.append(_difference(entry, referral))
        else:
            judged += 1
            try:
                recomputed, note = _recompute(entry, facts, entries[:position], policy)
            except (KeyError, ValidationError):
                found.append(_difference(entry, None, "the command or its payload is unknown to this release"))
            else:
                if recomputed != _stored(entry) or note:
                    found.append(_difference(entry, recomputed, note))
        if entry.kind is EntryKind.CORRECTION:
            facts = replay(entries[: position + 1])
        else:
            facts = apply_entry(facts, entry, entry.sequence)
    return judged, skipped, found


def _difference(entry: Entry, recomputed: tuple[str, ...] | None, note: str = "") -> Difference:
    if entry.release != __version__ and not note:  # the guards themselves may have changed since
        note = f"written by release {entry.release or 'unrecorded'}, re-judged by {__version__}"
    return Difference(
        pathway_id=entry.pathway_id,
        sequence=entry.sequence,
        trigger=entry.trigger,
        policy_version=entry.policy_version,
        release=entry.release,
        stored=tuple(entry.reasons),
        recomputed=recomputed,
        note=note,
    )


def rejudge_log(
    engine: Engine, *, pathway_ids: Iterable[str] | None = None, progress: Callable[[int], None] | None = None
) -> Rejudgement:
    """Re-judge every pathway (or those named) with the policies in the database's registry."""
    book = PolicyBook()
    pathways = judged = skipped = 0
    differences: list[Difference] = []
    by_release: Counter[str | None] = Counter()
    with translate_errors(), engine.connect() as connection:
        store = Store(connection)
        wanted = list(pathway_ids) if pathway_ids is not None else store.pathway_ids()
        for pathway_id in wanted:
            entries = store.entries(pathway_id)
            counts = rejudge_pathway(entries, lambda version: book.get(connection, version))
            pathways += 1
            judged += counts[0]
            skipped += counts[1]
            differences.extend(counts[2])
            by_release.update(e.release for e in entries)
            if progress is not None:
                progress(pathways)
    return Rejudgement(pathways, judged, skipped, tuple(differences), dict(by_release))
