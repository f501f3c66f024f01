"""Whether a correction may stand: the one rule the service judges with and `audit rejudge`
re-runs, so a re-judged correction meets exactly the rule that first judged it."""

from __future__ import annotations

from collections.abc import Sequence

from states.chart import CHART
from states.entry import Entry
from states.fold import FACTS_REDERIVED, Opening
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
    return ("identity_not_correctable",) if model.identity_fields & set(body.changes) else ()
