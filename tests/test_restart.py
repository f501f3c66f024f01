"""Nothing lives only in memory: a restarted service continues where the last one stopped, and
`state_at(t)` answers what a snapshot taken at t said (RELIABILITY.md I1, T17).

The walk is S01's (autologous, Day 0 2026-02-04, neutrophil recovery D+11 = 2026-02-15).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from states.errors import BeforeFirstEntry
from states.vocabulary import EntryKind, Phase
from tests.helpers_core import LAB, PHYS, QM, WALKS, fire, on, open_walk, steps_of
from tests.walks import Step, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService, Result, Snapshot

S01_DAY0 = date(2026, 2, 4)
S01_NEUTROPHILS = date(2026, 2, 15)


def _fire_all(service: PathwayService, clock: ManualClock, pathway_id: str, steps: list[Step]) -> list[Result]:
    return [fire(service, clock, pathway_id, *step) for step in steps]


def test_a_new_service_continues_the_pathway_as_if_uninterrupted(
    service: PathwayService, clock: ManualClock, db_url: str
) -> None:
    walk = WALKS["autologous"]()
    steps = list(walk.steps)
    # Stop after the infusion and the first two post-transplant labs.
    split = steps.index(steps_of(walk, "infuse")[0]) + 3
    assert [s[2] for s in steps[split - 3 : split]] == ["infuse", "record_lab", "record_lab"]

    reference = open_walk(service, clock, walk)
    uninterrupted = _fire_all(service, clock, reference, steps)

    moved = open_walk(service, clock, walk)
    before = _fire_all(service, clock, moved, steps[:split])
    assert service.snapshot(moved).phase is Phase.AWAITING_ENGRAFTMENT
    restarted = PathwayService(db_url, clock=clock)
    try:
        assert restarted.snapshot(moved).facts == service.snapshot(moved).facts
        after = _fire_all(restarted, clock, moved, steps[split:])
        continued = before + after
        assert [(r.phase, r.day_label) for r in continued] == [(r.phase, r.day_label) for r in uninterrupted]
        assert (continued[split - 3].day_label, continued[-1].day_label) == ("D0", "D+100")
        final, expected = restarted.snapshot(moved), service.snapshot(reference)
        assert final.phase is Phase.DAY100_COMPLETE
        assert final.facts == expected.facts
        assert (final.version, final.day0, final.facts.neutrophil_recovery_on) == (
            expected.version,
            S01_DAY0,
            S01_NEUTROPHILS,
        )
        keep = ("kind", "trigger", "from_phase", "to_phase", "effective_at", "payload", "policy_version")
        assert [e.model_dump(include=set(keep)) for e in restarted.history(moved)] == [
            e.model_dump(include=set(keep)) for e in service.history(reference)
        ]
    finally:
        restarted.engine.dispose()


def test_state_at_equals_the_snapshot_taken_then_across_a_correction(
    service: PathwayService, clock: ManualClock
) -> None:
    """Snapshots at every step time of the walk, one step being a lab correction (T17)."""
    walk = WALKS["autologous"]()
    steps = list(walk.steps)
    lab_d12 = next(s for s in steps if s[2] == "record_lab" and s[0] == on(S01_DAY0, 12, 7))
    assert lab_d12[3]["anc_x10e9_per_l"] == pytest.approx(1.6)
    pathway_id = open_walk(service, clock, walk)
    snapshots: dict[datetime, Snapshot] = {}
    corrected: tuple[int, datetime] | None = None
    original = None
    for index, step in enumerate(steps):
        result = fire(service, clock, pathway_id, *step)
        following = steps[index + 1][0] if index + 1 < len(steps) else None
        if step is lab_d12 or following is None or following > clock.now():
            snapshots[clock.now()] = service.snapshot(pathway_id)
        if step is lab_d12:
            # The laboratory reported 1.4, not 1.6: corrected the same afternoon.
            at = on(S01_DAY0, 12, 15)
            correction = fire(
                service,
                clock,
                pathway_id,
                at,
                QM,
                "correct_entry",
                {
                    "sequence": result.entry.sequence,
                    "changes": {"anc_x10e9_per_l": 1.4},
                    "reason": "transcription error",
                },
            )
            assert correction.entry.kind is EntryKind.CORRECTION
            corrected, original = (result.entry.sequence, at), result.entry
            snapshots[at] = service.snapshot(pathway_id)
    assert corrected is not None
    assert len(snapshots) >= 15
    for when, snapshot in snapshots.items():
        assert service.state_at(pathway_id, when) == snapshot, when

    sequence, at = corrected
    assert next(e for e in service.history(pathway_id) if e.sequence == sequence) == original
    assert original.payload["anc_x10e9_per_l"] == pytest.approx(1.6)

    def d12_anc(snapshot: Snapshot) -> float | None:
        return next(lab.anc_x10e9_per_l for lab in snapshot.facts.labs if lab.sequence == sequence)

    assert d12_anc(service.snapshot(pathway_id)) == pytest.approx(1.4)
    assert d12_anc(service.state_at(pathway_id, at)) == pytest.approx(1.4)
    assert d12_anc(service.state_at(pathway_id, at - timedelta(minutes=1))) == pytest.approx(1.6)
    assert service.snapshot(pathway_id).facts.neutrophil_recovery_on == S01_NEUTROPHILS
    with pytest.raises(BeforeFirstEntry, match="its first entry is of"):
        service.state_at(pathway_id, datetime.fromisoformat("2026-01-04T00:00:00+00:00"))


def test_a_corrected_lab_value_moves_the_derived_engraftment_date(service: PathwayService, clock: ManualClock) -> None:
    """S01 labs; D+11's 0.6 was really 0.4, so recovery is the first of D+12..D+14 [F:CIBMTR-ANC]."""
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    labs = [(1, 1.2), (2, 0.8), (3, 0.6), (5, 0.02), (11, 0.6), (12, 0.9), (13, 1.6)]
    results = [
        fire(service, clock, pathway_id, on(S01_DAY0, n, 7), LAB, "record_lab", {"anc_x10e9_per_l": v}) for n, v in labs
    ]
    before = on(S01_DAY0, 13, 10)
    clock.set(before)
    assert service.snapshot(pathway_id).neutrophil_recovery_on == S01_NEUTROPHILS
    at = on(S01_DAY0, 13, 11)
    fire(
        service,
        clock,
        pathway_id,
        at,
        QM,
        "correct_entry",
        {"sequence": results[4].entry.sequence, "changes": {"anc_x10e9_per_l": 0.4}, "reason": "wrong sample"},
    )
    assert service.snapshot(pathway_id).neutrophil_recovery_on is None
    assert service.state_at(pathway_id, before).neutrophil_recovery_on == S01_NEUTROPHILS
    # The same moment "as known now": the later correction applies to what was recorded then.
    assert service.state_at(pathway_id, before, as_known_now=True).neutrophil_recovery_on is None
    assert (
        service.state_at(pathway_id, before, as_known_now=True).version == service.state_at(pathway_id, before).version
    )
    fire(service, clock, pathway_id, on(S01_DAY0, 14, 7), LAB, "record_lab", {"anc_x10e9_per_l": 1.8})
    result = fire(service, clock, pathway_id, on(S01_DAY0, 15), PHYS, "confirm_engraftment")
    assert result.entry.payload["recovery_on"] == "2026-02-16"
    assert service.snapshot(pathway_id).facts.neutrophil_recovery_on == date(2026, 2, 16)
