"""Whether a correction may stand: the one rule the service judges with and `audit rejudge`
re-runs, so a re-judged correction meets exactly the rule that first judged it."""

from __future__ import annotations

from collections.abc import Sequence

from states.chart import CHART
from states.entry import Entry
from states.facts import PathwayFacts
from states.fold import FACTS_REDERIVED, Opening, apply_entry, corrected_payloads
from states.payloads import CorrectEntry, Payload
from states.vocabulary import EntryKind
from workflow.validation import checked_changes

__all__ = ["correction_problems"]


def correction_problems(log: Sequence[Entry], body: CorrectEntry) -> tuple[str, ...]:
    """A correction names an earlier correctable entry and leaves who the patient is, and which
    route and transplant this is, alone; malformed changes raise InvalidCommand."""
    target = next((e for e in log if e.sequence == body.sequence), None)
    if target is None:
        return ("corrected_entry_unknown",)
    # A policy adoption is undone by adopting again; re-derived facts are the library's own.
    if target.kind in (EntryKind.REFUSAL, EntryKind.CORRECTION) or target.trigger in ("adopt_policy", FACTS_REDERIVED):
        return ("entry_not_correctable",)
    model: type[Payload] = Opening if target.sequence == 1 else CHART.commands[target.trigger].payload
    checked_changes(model, target.payload, body.changes, command="correct_entry")
    if model.identity_fields & set(body.changes):
        return ("identity_not_correctable",)
    return () if _history_folds(log, body) else ("correction_breaks_history",)


def _history_folds(log: Sequence[Entry], body: CorrectEntry) -> bool:
    """The log still folds with the correction applied. A changed reference (a product id) that
    the entry itself or a later entry no longer finds would make every later read of the pathway
    fail; the fold then raises LookupError or ValueError, so the correction is refused instead."""
    corrections = corrected_payloads(log)
    target = next(e for e in log if e.sequence == body.sequence)
    corrections[body.sequence] = {**corrections.get(body.sequence, target.payload), **body.changes}
    facts: PathwayFacts | None = None
    try:
        for entry in sorted(log, key=lambda e: e.sequence):
            facts = apply_entry(facts, entry, entry.sequence, corrections.get(entry.sequence))
    except (LookupError, ValueError):
        return False
    return True
