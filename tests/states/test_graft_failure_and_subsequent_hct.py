"""Declaring a graft failure and the subsequent HCT it allows, judged on the guards alone
(docs/engraftment-rules.md).

- Primary graft failure is declared while awaiting engraftment, secondary after it [F:ASTCT],
  [F:CIBMTR-SUBSEQ]; secondary needs an engraftment to fail. A patient whose ANC never fell
  below 0.5 was engrafted from the start of the count [F:CIBMTR-ANC], so a later fall on 3
  values is a secondary graft failure.
- A declaration is judged on the labs drawn by its effective time, not on labs recorded later.
- A new malignancy found at an assessment is a reason for a subsequent HCT; a planned (tandem)
  HCT follows engraftment, a "never below" one included, however ANC moved afterwards
  [F:CIBMTR-SUBSEQ].
- The Day +100 assessment needs an engraftment: a "never below" one stands after a later dip
  [F:CIBMTR-CONTACT], [F:CIBMTR-ANC].
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from states.facts import Assessment, Infusion, LabValue
from states.guards import day100_ready, graft_failure_criteria, subsequent_transplant_allowed
from states.payloads import CompleteDay100, DeclareGraftFailure, StartSubsequentTransplant
from states.vocabulary import GraftSource, Route
from tests.states.guard_attempt import POLICY, attempt, snapshot

DAY0 = date(2026, 2, 4)
ANC = POLICY.anc_recovery_x10e9_per_l
FOLLOWED_TO = POLICY.anc_never_below_observed_to_day
FAILURE_DAYS = POLICY.secondary_graft_failure_days
PRIMARY_DAY = POLICY.primary_graft_failure_day[GraftSource.PBSC]
MISMATCH = "graft_failure_kind_phase_mismatch"


def at(n: int, hour: int = 9) -> datetime:
    """Day +n at `hour` UTC."""
    return datetime(DAY0.year, DAY0.month, DAY0.day, hour, tzinfo=UTC) + timedelta(days=n)


def anc(values: list[tuple[int, float]]) -> list[LabValue]:
    """ANC values drawn at 07:00 on the given Days."""
    return [LabValue(at=at(n, 7), anc_x10e9_per_l=v) for n, v in values]


# Non-myeloablative: ANC at or above 0.5 followed to Day +28, then below it on 3 values.
NEVER_BELOW = anc([(n, ANC + 0.3) for n in range(1, FOLLOWED_TO, 3)] + [(FOLLOWED_TO, ANC + 0.5)])
FALL_DAYS = [FOLLOWED_TO + 7 + 3 * i for i in range(FAILURE_DAYS)]
THEN_FELL = [*NEVER_BELOW, *anc([(n, ANC - 0.2) for n in FALL_DAYS])]
# Myeloablative, no recovery: aplastic to Day +30.
APLASTIC = anc([(3, 0.4), (7, 0.05), (14, 0.02), (21, 0.1), (PRIMARY_DAY - 3, 0.1), (PRIMARY_DAY, 0.2)])


def _pathway(phase: str, labs: list[LabValue], **fields: Any) -> dict[str, Any]:
    day0 = Infusion(at=at(0, 11), kind="day0", products=("DIN-A",))
    return {"phase": phase, "day0": DAY0, "infusions": [day0], "labs": labs, **fields}


def _declare(kind: str, day: int, phase: str, labs: list[LabValue], **fields: Any) -> tuple[str, ...]:
    facts = snapshot(**_pathway(phase, labs, **fields))
    return graft_failure_criteria(attempt(facts, DeclareGraftFailure.model_validate({"kind": kind}), at(day))).reasons


def test_a_fall_after_never_below_is_a_secondary_graft_failure() -> None:
    """Engraftment confirmed with no recovery date (ANC never below 0.5), then the fall."""
    assert _declare("secondary", FALL_DAYS[-1], "follow_up", THEN_FELL) == ()
    assert _declare("secondary", FALL_DAYS[-2], "follow_up", THEN_FELL[:-1]) == ("secondary_graft_failure_not_met",)


@pytest.mark.parametrize(("kind", "phase"), [("secondary", "awaiting_engraftment"), ("primary", "follow_up")])
def test_each_kind_of_graft_failure_has_its_phase(kind: str, phase: str) -> None:
    """The counts meet either definition: only the phase tells the kinds apart."""
    assert _declare(kind, FALL_DAYS[-1], phase, THEN_FELL) == (MISMATCH,)


def test_a_secondary_graft_failure_needs_an_engraftment_first() -> None:
    assert _declare("secondary", PRIMARY_DAY, "awaiting_engraftment", APLASTIC) == (
        MISMATCH,
        "secondary_graft_failure_not_met",
    )


def test_a_declaration_is_judged_on_the_labs_drawn_by_its_time() -> None:
    """Primary graft failure declared on Day +30, entered after the Day +31..+33 counts that
    show a recovery: the declaration stands on the counts of Day +30."""
    later = anc([(PRIMARY_DAY + n, ANC + 0.5) for n in (1, 2, 3)])
    assert _declare("primary", PRIMARY_DAY, "awaiting_engraftment", [*APLASTIC, *later]) == ()
    assert _declare("primary", PRIMARY_DAY + 3, "awaiting_engraftment", [*APLASTIC, *later]) == (
        "neutrophil_recovery_reached",
        "anc_recovery_in_progress",
    )


def _start(reason: str, phase: str, labs: list[LabValue], **fields: Any) -> tuple[str, ...]:
    facts = snapshot(**_pathway(phase, labs, **fields))
    payload = StartSubsequentTransplant(reason=reason, route=Route.AUTOLOGOUS, graft_source=GraftSource.PBSC)
    return subsequent_transplant_allowed(attempt(facts, payload, at(FOLLOWED_TO + 60))).reasons


@pytest.mark.parametrize(
    ("status", "reasons"), [("new_malignancy", ()), ("persistent_disease", ("new_malignancy_not_assessed",))]
)
def test_a_new_malignancy_is_found_at_an_assessment(status: str, reasons: tuple[str, ...]) -> None:
    finding = Assessment(at=at(FOLLOWED_TO + 50), kind="other", disease_status=status)
    assert _start("new_malignancy", "follow_up", NEVER_BELOW, assessments=[finding]) == reasons


def test_a_planned_hct_follows_a_never_below_engraftment_even_after_a_dip() -> None:
    """One count below 0.5 weeks after engraftment does not undo it, as it would not undo a
    recovery date."""
    dip = anc([(FOLLOWED_TO + 20, ANC - 0.1), (FOLLOWED_TO + 23, ANC + 0.6)])
    assert _start("planned", "follow_up", [*NEVER_BELOW, *dip]) == ()
    assert _start("planned", "graft_failure", [*NEVER_BELOW, *dip]) == ("planned_transplant_not_engrafted",)


@pytest.mark.parametrize(
    ("labs", "reasons"),
    [
        (NEVER_BELOW, ()),
        (THEN_FELL[: len(NEVER_BELOW) + 1], ()),  # one later value below 0.5 does not undo it
        (APLASTIC, ("engraftment_not_recorded",)),
    ],
    ids=["never below", "never below, then one dip", "aplastic"],
)
def test_day100_after_an_engraftment_with_anc_never_below(labs: list[LabValue], reasons: tuple[str, ...]) -> None:
    facts = snapshot(**_pathway("follow_up", labs, route="autologous", donor_type=None))
    visit = at(POLICY.day100_window[0] + 15)
    assert day100_ready(attempt(facts, CompleteDay100(), visit)).reasons == reasons
