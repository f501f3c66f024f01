"""T17 time travel and T26 time handling.

T17: for random histories (a walk to awaiting_engraftment, then random labs, adverse events,
late documentation, refusals and corrections, each recorded a random while after the last),
`state_at(t)` for every past recorded time equals the snapshot taken at that time, and a
correction never hides the entry it corrects.

T26: naive datetimes are refused everywhere a time enters; times survive both backends exactly
(UTC, microseconds, from any offset); the log is ordered by sequence numbers, and a clock that
jumps backwards is survived (the chain, `state_at` and verification stay right).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from persistence.store import Store
from states.entry import Draft, Entry
from states.errors import InvalidCommand, Refused
from states.vocabulary import EntryKind, Phase, Role
from tests.helpers_core import QM
from tests.walks import COORD, LAB, PHYS, WALKS, run_walk
from workflow.audit import verify_log
from workflow.audit.export import ExportFilters
from workflow.clock import ManualClock
from workflow.service import PathwayService, Snapshot

Step = tuple[str, int, float]  # what, seconds after the previous record, a value

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["lab", "adverse", "late_lab", "refused", "correct_lab"]),
        st.integers(min_value=1, max_value=3 * 24 * 3600),
        st.floats(min_value=0.0, max_value=5.0, allow_nan=False).map(lambda v: round(v, 2)),
    ),
    min_size=1,
    max_size=10,
)


def _walk(service: PathwayService, clock: ManualClock, name: str, known: dict[datetime, Snapshot]) -> str:
    """tests.walks.run_walk to awaiting_engraftment, snapshotting after every command."""
    walk = WALKS[name]().for_patient(f"PT-{uuid.uuid4().hex[:12]}")  # examples share the database
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    clock.set(start)
    pathway_id = service.refer(walk.refer, actor=PHYS, at=start).pathway_id
    known[clock.now()] = service.snapshot(pathway_id, at=clock.now())
    for at, actor, command, payload in walk.steps:
        clock.set(at)
        phase = service.fire(pathway_id, command, payload, actor=actor, at=at).phase
        known[clock.now()] = service.snapshot(pathway_id, at=clock.now())  # the last one at a time wins
        if phase is Phase.AWAITING_ENGRAFTMENT:
            return pathway_id
    raise AssertionError(f"{name} never reached awaiting_engraftment")


def _play(service: PathwayService, clock: ManualClock, pathway_id: str, step: Step, written: dict[int, Entry]) -> None:
    what, gap, value = step
    clock.set(clock.now() + timedelta(seconds=gap))
    now = clock.now()
    if what in ("lab", "late_lab"):
        at = now if what == "lab" else now - timedelta(hours=6)  # late documentation
        result = service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": value}, actor=LAB, at=at)
    elif what == "adverse":
        result = service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS,
                              at=now)
    elif what == "refused":
        with pytest.raises(Refused):
            service.fire(pathway_id, "complete_day100", {}, actor=COORD, at=now)
        return
    else:
        labs = [e for e in written.values() if e.trigger == "record_lab"]
        if not labs:
            return
        changes = {"anc_x10e9_per_l": round(value + 0.01, 2)}
        result = service.fire(pathway_id, "correct_entry", {"sequence": labs[-1].sequence, "changes": changes,
                                                             "reason": "transcription error"}, actor=QM, at=now)
    written[result.entry.sequence] = result.entry


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(walk=st.sampled_from(["autologous", "matched_unrelated", "cord_blood"]), steps=STEPS)
def test_t17_state_at_every_past_time_is_the_snapshot_taken_then(
    service: PathwayService, clock: ManualClock, walk: str, steps: list[Step]
) -> None:
    known: dict[datetime, Snapshot] = {}
    pathway_id = _walk(service, clock, walk, known)
    written = {e.sequence: e for e in service.history(pathway_id)}
    for step in steps:
        _play(service, clock, pathway_id, step, written)
        known[clock.now()] = service.snapshot(pathway_id, at=clock.now())

    times = sorted(known)
    for index, moment in enumerate(times):
        assert service.state_at(pathway_id, moment) == known[moment], moment
        following = times[index + 1] if index + 1 < len(times) else moment + timedelta(days=1)
        between = moment + (following - moment) / 2
        if between != moment:
            then = service.state_at(pathway_id, between)
            assert (then.version, then.facts) == (known[moment].version, known[moment].facts)

    history = service.history(pathway_id)
    assert {e.sequence: e for e in history if e.sequence in written} == written  # nothing rewritten
    values: dict[int, float] = {}  # the value of each lab as known so far, in log order
    for entry in history:
        if entry.trigger == "record_lab":
            values[entry.sequence] = entry.payload["anc_x10e9_per_l"]
        if entry.kind is not EntryKind.CORRECTION:
            continue
        assert entry.reason == "transcription error"
        assert entry.corrects is not None
        corrected = history[entry.corrects - 1]
        assert corrected == written[corrected.sequence]  # still there, unchanged
        before = service.state_at(pathway_id, entry.recorded_at - timedelta(microseconds=1))
        lab = next(v for v in before.facts.labs if v.sequence == corrected.sequence)
        assert lab.anc_x10e9_per_l == values[corrected.sequence]  # as known then
        values[corrected.sequence] = entry.payload["changes"]["anc_x10e9_per_l"]
    assert verify_log(service, pathway_id=pathway_id).ok


def test_a_correction_leaves_the_corrected_entry_and_shows_both_versions(
    service: PathwayService, clock: ManualClock
) -> None:
    known: dict[datetime, Snapshot] = {}
    pathway_id = _walk(service, clock, "autologous", known)
    clock.set(clock.now() + timedelta(hours=1))
    lab = service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 0.4}, actor=LAB, at=clock.now()).entry
    written_at = clock.now()
    clock.set(clock.now() + timedelta(hours=1))
    service.fire(pathway_id, "correct_entry", {"sequence": lab.sequence, "changes": {"anc_x10e9_per_l": 0.04},
                                               "reason": "unit error"}, actor=QM, at=clock.now())
    history = service.history(pathway_id)
    assert history[lab.sequence - 1] == lab
    assert history[-1].corrects == lab.sequence
    assert history[-1].reason == "unit error"

    def anc(snapshot: Snapshot) -> float | None:
        return next(v.anc_x10e9_per_l for v in snapshot.facts.labs if v.sequence == lab.sequence)

    assert anc(service.state_at(pathway_id, written_at)) == 0.4
    assert anc(service.state_at(pathway_id, clock.now())) == 0.04
    assert anc(service.snapshot(pathway_id)) == 0.04


# --- T26 -------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused_everywhere(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.EVALUATION)
    naive = datetime(2026, 1, 6, 9, 0)  # naive on purpose
    entries = len(service.history(pathway_id))
    with pytest.raises(InvalidCommand) as info:
        service.fire(pathway_id, "record_consent", {"consent_version": "v3"}, actor=COORD, at=naive)
    assert info.value.rules == ("timezone_aware",)
    with pytest.raises(InvalidCommand):
        service.refer(WALKS["autologous"]().refer, actor=PHYS, at=naive)
    with pytest.raises(InvalidCommand):
        service.state_at(pathway_id, naive)
    assert len(service.history(pathway_id)) == entries
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(naive)
    with pytest.raises(ValueError, match="naive"):
        ExportFilters(since=naive).as_json()
    with Session(service.engine) as session:
        record = Store(session).load(pathway_id)
        assert record is not None
        draft = Draft(pathway_id=pathway_id, kind=EntryKind.EVENT, trigger="record_lab", from_phase=record.phase,
                      to_phase=record.phase, effective_at=clock.now(), recorded_at=clock.now(), actor_id="lab-1",
                      actor_role=Role.LABORATORY, policy_version="p")
        with pytest.raises(ValueError, match="timezone-aware"):
            Store(session).append(pathway_id, draft, expected_version=record.version, head_hash=record.head_hash,
                                  phase=record.phase, facts_json=None, now=naive)
        with pytest.raises(ValueError, match="timezone"):
            Draft.model_validate({**draft.model_dump(), "effective_at": naive})


ZONES = [UTC, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/Sao_Paulo"), timezone(timedelta(hours=-9, minutes=-30))]


def test_times_round_trip_exactly_in_utc(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    base = clock.now() + timedelta(hours=1)
    sent = []
    for n, zone in enumerate(ZONES):
        at = (base + timedelta(minutes=n, microseconds=123457 + n)).astimezone(zone)
        clock.set(base + timedelta(minutes=n, seconds=30, microseconds=999999 - n))
        entry = service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 0.5}, actor=LAB, at=at).entry
        sent.append((at, clock.now(), entry.sequence))
    stored = {e.sequence: e for e in service.history(pathway_id)}
    for at, recorded, sequence in sent:
        entry = stored[sequence]
        assert entry.effective_at == at
        assert entry.effective_at.utcoffset() == timedelta(0)
        assert entry.effective_at.tzinfo is UTC
        assert entry.effective_at.microsecond == at.astimezone(UTC).microsecond
        assert entry.recorded_at == recorded
        assert entry.recorded_at.tzinfo is UTC
    assert verify_log(service).ok  # the stored times spell the bodies' times exactly


def test_order_follows_sequence_numbers_and_a_clock_going_back_is_survived(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    start = clock.now()
    recorded = {}
    for label, offset in (("e2", 2), ("e3_skewed", 1), ("e4", 3)):  # the clock jumps back one hour for e3
        clock.set(start + timedelta(hours=offset))
        entry = service.fire(pathway_id, "record_adverse_event", {"type": "nausea", "grade": 1}, actor=PHYS,
                             at=clock.now()).entry
        recorded[label] = entry
    history = service.history(pathway_id)
    assert [e.sequence for e in history] == list(range(1, len(history) + 1))
    assert [history[-3], history[-2], history[-1]] == [recorded["e2"], recorded["e3_skewed"], recorded["e4"]]
    assert recorded["e3_skewed"].recorded_at < recorded["e2"].recorded_at
    before = len(history) - 3
    # "As known at t": the longest prefix of the chain recorded by t, never a reordering by clock.
    assert service.state_at(pathway_id, start + timedelta(hours=1, minutes=30)).version == before
    assert service.state_at(pathway_id, start + timedelta(hours=2, minutes=30)).version == before + 2
    assert service.state_at(pathway_id, start + timedelta(hours=3)).version == before + 3
    assert verify_log(service).ok
    clock.set(start + timedelta(hours=4))
    assert service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 0.7}, actor=LAB, at=clock.now())
