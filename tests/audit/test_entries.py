"""T18: every entry says who, in which role, when (effective and recorded, UTC), what, from
which phase to which, with which outcome and under which policy; corrections, holds,
withdrawals and the other reasoned commands carry their reason.

Checked over every entry of the whole scenario library run into one database, plus a
correction and a withdrawal made here, as the service returns them and as the columns are
stored (read raw, so a NULL the model would paper over is seen).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from persistence.audit_queries import ENTRY_COLUMNS, audit_snapshot
from states.chart import CHART
from states.entry import Entry
from states.vocabulary import EntryKind, Phase, Role
from tests.audit.test_fhir import SCENARIOS
from tests.helpers_core import QM, reach
from tests.walks import PHYS
from workflow.clock import ManualClock
from workflow.scenario import run_scenario
from workflow.service import PathwayService

CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Commands whose payload carries a reason that must reach the entry's `reason`.
REASONED = {"hold", "withdraw", "correct_entry", "release_donor", "report_donor_unavailable",
            "start_subsequent_transplant"}
OPENINGS = {"refer", "start_subsequent_transplant"}


def _check(entry: Entry) -> None:
    where = f"{entry.pathway_id}#{entry.sequence}"
    assert entry.actor_id, where
    assert isinstance(entry.actor_role, Role), where
    for moment in (entry.effective_at, entry.recorded_at):
        assert moment.tzinfo is not None, where
        assert moment.utcoffset() == timedelta(0), where
    assert entry.kind in EntryKind, where
    assert entry.trigger in CHART.commands or entry.trigger in OPENINGS, where
    assert entry.policy_version, where
    opening = entry.sequence == 1
    assert opening == (entry.from_phase is None), where  # only an opening comes from nowhere
    assert entry.to_phase is not None, where
    if entry.kind is EntryKind.TRANSITION and not opening:
        assert CHART.commands[entry.trigger].changes_phase, where
    if entry.kind in (EntryKind.EVENT, EntryKind.REFUSAL, EntryKind.CORRECTION):
        assert entry.from_phase is entry.to_phase, where
    # The outcome: refusals list their reason codes, nothing else has any.
    assert (entry.kind is EntryKind.REFUSAL) == bool(entry.reasons), where
    assert all(CODE.match(code) for code in entry.reasons), where
    if entry.kind is EntryKind.CORRECTION:
        assert entry.corrects is not None, where
        assert 1 <= entry.corrects < entry.sequence, where
        assert entry.reason, where
    else:
        assert entry.corrects is None, where
    if entry.trigger in REASONED and entry.kind is not EntryKind.REFUSAL and not opening:
        assert entry.reason, where
        assert entry.reason == entry.payload["reason"], where


def test_t18_every_entry_is_complete(service: PathwayService, clock: ManualClock, db_url: str) -> None:
    for path in SCENARIOS:
        assert run_scenario(path, db_url=db_url).passed, path.name
    corrected = reach(service, clock, "autologous", Phase.EVALUATION)
    service.fire(corrected, "correct_entry", {"sequence": 1, "changes": {"diagnosis": "dlbcl"},
                                              "reason": "referral typo"}, actor=QM, at=clock.now())
    service.fire(corrected, "withdraw", {"reason": "patient decision"}, actor=PHYS, at=clock.now())

    seen: dict[str, int] = {}
    for pathway_id in service.pathway_ids():
        for entry in service.history(pathway_id):
            _check(entry)
            seen[entry.kind.value] = seen.get(entry.kind.value, 0) + 1
            seen[entry.trigger] = seen.get(entry.trigger, 0) + 1
    for needed in ("transition", "event", "refusal", "correction", "hold", "withdraw", "release_donor",
                   "start_subsequent_transplant"):
        assert seen.get(needed), f"the library's scenarios and this test never produce a {needed} entry"

    required = [name for name in ENTRY_COLUMNS if name not in ("from_phase", "reason", "idempotency_key",
                                                                  "corrects")]
    with audit_snapshot(service.engine) as reader:
        for batch in reader.entry_batches():
            for row in batch:
                values = dict(zip(ENTRY_COLUMNS, row, strict=True))
                missing = [name for name in required if values[name] in (None, "")]
                assert not missing, (values["pathway_id"], values["sequence"], missing)


@pytest.mark.parametrize("command", sorted(REASONED - {"start_subsequent_transplant", "correct_entry"}))
def test_a_reasoned_command_cannot_be_sent_without_a_reason(command: str) -> None:
    """The reason is required by the payload model, so no such entry can be written without one."""
    model = CHART.commands[command].payload
    assert model.model_fields["reason"].is_required()
