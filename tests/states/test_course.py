"""The course guards and facts without a database: a suspicion's evidence, the reinstatement
window's edges, and where a relapse report lands in the snapshot (docs/disease-course.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from states.course_guards import graft_failure_suspected, graft_failure_suspicion_fits, reinstatement_in_window
from states.course_payloads import ClearGraftFailureSuspicion, Reinstate, SuspectGraftFailure
from states.facts import GraftFailureSuspicion, PathwayFacts
from states.payloads import Ctx, Payload, ReportRelapse
from states.policy import Policy
from states.verdict import Attempt
from states.vocabulary import DonorType, GraftSource, Phase, Role, Route

POLICY = Policy()
WITHDRAWN_ON = date(2026, 7, 24)


def _facts(route: Route = Route.ALLOGENEIC, **changes: object) -> PathwayFacts:
    allogeneic = route is Route.ALLOGENEIC
    base = PathwayFacts(
        phase=Phase.AWAITING_ENGRAFTMENT,
        route=route,
        donor_type=DonorType.MATCHED_UNRELATED if allogeneic else None,
        graft_source=GraftSource.PBSC,
        patient_ref="PT-0000AA",
    )
    return base.model_copy(update=changes)


def _attempt(facts: PathwayFacts, payload: Payload, on: date) -> Attempt:
    return Attempt(
        command="test",
        facts=facts,
        payload=payload,
        at=datetime(on.year, on.month, on.day, 9, tzinfo=UTC),
        on=on,
        actor_id="dr-test",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        policy=POLICY,
    )


def test_donor_evidence_only_after_an_allogeneic_graft() -> None:
    today = date(2026, 3, 18)
    chimerism = SuspectGraftFailure(donor_chimerism_pct=3.0)
    counts = SuspectGraftFailure(anc_x10e9_per_l=0.04)
    assert graft_failure_suspicion_fits(_attempt(_facts(), chimerism, today)).passed
    assert graft_failure_suspicion_fits(_attempt(_facts(Route.AUTOLOGOUS), counts, today)).passed
    refused = graft_failure_suspicion_fits(_attempt(_facts(Route.AUTOLOGOUS), chimerism, today))
    assert refused.reasons == ("suspicion_needs_donor_graft",)


def test_one_suspicion_at_a_time_and_only_a_standing_one_is_cleared() -> None:
    today = date(2026, 3, 18)
    standing = _facts(graft_failure_suspicion=GraftFailureSuspicion(on=today, kind="graft_failure"))
    again = graft_failure_suspicion_fits(_attempt(standing, SuspectGraftFailure(anc_x10e9_per_l=0.1), today))
    assert again.reasons == ("graft_failure_already_suspected",)
    clear = ClearGraftFailureSuspicion(reason="counts recovered")
    assert graft_failure_suspected(_attempt(standing, clear, today)).passed
    assert graft_failure_suspected(_attempt(_facts(), clear, today)).reasons == ("graft_failure_not_suspected",)


@pytest.mark.parametrize(
    ("days_after", "passes"),
    [(0, True), (POLICY.reinstatement_window_days, True), (POLICY.reinstatement_window_days + 1, False)],
)
def test_reinstatement_window_edges(days_after: int, passes: bool) -> None:
    facts = _facts(phase=Phase.WITHDRAWN, ended_on=WITHDRAWN_ON)
    asked_on = WITHDRAWN_ON + timedelta(days=days_after)
    verdict = reinstatement_in_window(_attempt(facts, Reinstate(reason="asks to go ahead"), asked_on))
    assert verdict.passed is passes
    assert passes or verdict.reasons == ("reinstatement_window_passed",)


def test_a_relapse_before_day0_is_the_status_at_transplant_after_day0_a_relapse() -> None:
    found = date(2026, 6, 10)
    ctx = Ctx(at=datetime(2026, 6, 10, 9, tzinfo=UTC), on=found, sequence=5)
    before = ReportRelapse(method="pet_ct", kind="progression").apply(_facts(phase=Phase.COLLECTION), ctx)
    assert before.relapse_before_infusion is not None
    assert (before.relapse_before_infusion.on, before.relapse_before_infusion.kind) == (found, "progression")
    assert before.relapse_on is None
    after = ReportRelapse(method="pet_ct").apply(_facts(day0=date(2026, 5, 1)), ctx)
    assert (after.relapse_on, after.relapse_kind, after.relapse_before_infusion) == (found, "relapse", None)
    assert "relapse" in after.flags
