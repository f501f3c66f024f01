"""Time bounds (outside tester, findings 4 and 7; docs/decisions.md "Time bounds"), both backends.

Every command's effective time lies at or after the referral's and at most
`future_tolerance_minutes` after the clock; a referral lies within `earliest_referral_days`
before the clock. A time with no UTC value on a plausible day is malformed input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from states.errors import Refused
from states.policy import Policy
from states.vocabulary import Phase
from tests.helpers_core import COORD, PHYS, Written, problems, reach, refused, rejected
from workflow.clock import ManualClock
from workflow.service import PathwayService

REFER = {"patient_ref": "PT-TIME0001", "route": "autologous", "graft_source": "pbsc"}
TOLERANCE = timedelta(minutes=Policy().future_tolerance_minutes)
EARLIEST = timedelta(days=Policy().earliest_referral_days)


def test_a_command_dated_before_the_referral_is_refused(service: PathwayService, clock: ManualClock) -> None:
    """The tester's case: `begin_evaluation` 400 days before the referral."""
    pathway_id = reach(service, clock, "autologous", Phase.REFERRED)
    referred_at = service.history(pathway_id)[0].effective_at
    reasons = refused(service, clock, pathway_id, referred_at - timedelta(days=400), COORD, "begin_evaluation",
                      now=clock.now())
    assert reasons == ("effective_time_before_referral",)
    at_referral = service.fire(pathway_id, "begin_evaluation", {}, actor=COORD, at=referred_at)
    assert at_referral.phase is Phase.EVALUATION


def test_a_command_beyond_the_tolerance_is_refused(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.REFERRED)
    late = clock.now() + TOLERANCE + timedelta(seconds=1)
    assert refused(service, clock, pathway_id, late, COORD, "begin_evaluation", now=clock.now()) == (
        "effective_time_in_future",
    )


@pytest.mark.parametrize(
    ("offset", "reasons"),
    [
        (TOLERANCE + timedelta(seconds=1), ("effective_time_in_future",)),
        (-EARLIEST - timedelta(days=1), ("referral_too_early",)),
    ],
)
def test_a_referral_outside_its_window_is_refused_and_writes_nothing(
    service: PathwayService, clock: ManualClock, offset: timedelta, reasons: tuple[str, ...]
) -> None:
    with pytest.raises(Refused) as info:
        service.refer(REFER, actor=PHYS, at=clock.now() + offset)
    assert info.value.reasons == reasons
    assert service.pathway_ids() == []


@pytest.mark.parametrize("offset", [TOLERANCE, -EARLIEST + timedelta(hours=1)])
def test_a_referral_at_the_edges_of_its_window_is_accepted(
    service: PathwayService, clock: ManualClock, offset: timedelta
) -> None:
    assert service.refer(REFER, actor=PHYS, at=clock.now() + offset).phase is Phase.REFERRED


def test_a_programme_narrows_how_far_back_a_referral_goes(db_url: str, clock: ManualClock) -> None:
    service = PathwayService(db_url, policy=Policy(earliest_referral_days=30), clock=clock, auto_upgrade=True)
    try:
        with pytest.raises(Refused) as info:
            service.refer(REFER, actor=PHYS, at=clock.now() - timedelta(days=31))
        assert info.value.reasons == ("referral_too_early",)
        assert service.refer(REFER, actor=PHYS, at=clock.now() - timedelta(days=29)).phase is Phase.REFERRED
    finally:
        service.engine.dispose()


EXTREME = [
    datetime(1, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=14))),  # no UTC value at all
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 1, 1, tzinfo=UTC),
    datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
]


@pytest.mark.parametrize("at", EXTREME, ids=lambda at: at.isoformat())
def test_extreme_times_are_invalid_and_name_the_field(
    service: PathwayService, clock: ManualClock, at: datetime
) -> None:
    error = rejected(service, None, lambda: service.refer(REFER, actor=PHYS, at=at))
    assert problems(error) == {("at", "datetime_out_of_range")}
    pathway_id = reach(service, clock, "autologous", Phase.REFERRED)
    before = Written.of(service, pathway_id)
    error = rejected(service, pathway_id, lambda: service.fire(pathway_id, "begin_evaluation", {}, actor=COORD, at=at))
    assert problems(error) == {("at", "datetime_out_of_range")}
    assert Written.of(service, pathway_id) == before
