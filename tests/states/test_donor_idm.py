"""The donor's infectious-disease markers (IDM) at clearance and at collection, judged on the
guards alone.

- The specimen is drawn at the time of collection or up to `idm_window_days` (30) before it
  [F:CFR-1271.80], [F:FACT-B6]: a specimen drawn on the collection day counts, and only this
  donor's specimens count.
- A positive result is refused under an "eligible" determination; a donor who tested positive
  is used only under the related-donor or urgent-need exception [F:CFR-1271.65].
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pytest

from states.guards import collection_donor_current, donor_idm_current
from states.payloads import ClearDonor, Ctx, RecordCollection
from states.vocabulary import Phase
from tests.states.guard_attempt import POLICY, attempt, snapshot

COLLECTION = date(2026, 4, 7)
CLEARANCE = datetime(2026, 3, 20, 9, tzinfo=UTC)
WINDOW = POLICY.idm_window_days
Result = Literal["negative", "positive"]


def _idm(donor_ref: str, drawn_on: date, result: Result = "negative") -> dict[str, object]:
    return {"donor_ref": donor_ref, "drawn_on": drawn_on, "result": result}


def _clear(
    *idm: dict[str, object], eligibility: str = "eligible", collection: date | None = COLLECTION
) -> tuple[str, ...]:
    """`clear_donor` of DONOR-A for a collection on `collection`."""
    facts = snapshot(selected_donors=["DONOR-A"], idm=list(idm))
    payload = ClearDonor.model_validate({"eligibility": eligibility, "planned_collection_on": collection})
    return donor_idm_current(attempt(facts, payload, CLEARANCE)).reasons


def test_the_idm_window_needs_the_planned_collection_date() -> None:
    """The window is counted back from the collection, so clearance names its date."""
    assert _clear(_idm("DONOR-A", COLLECTION), collection=None) == ("planned_collection_date_missing",)


@pytest.mark.parametrize(
    ("days_before", "reasons"),
    [
        (0, ()),  # drawn on the collection day: "at the time of recovery"
        (WINDOW, ()),
        (WINDOW + 1, ("donor_idm_stale",)),
    ],
)
def test_idm_is_drawn_on_the_collection_day_or_up_to_the_window_before(
    days_before: int, reasons: tuple[str, ...]
) -> None:
    assert _clear(_idm("DONOR-A", COLLECTION - timedelta(days=days_before))) == reasons


def test_another_donors_idm_does_not_clear_this_donor() -> None:
    """A released donor's current specimen is not the selected donor's."""
    assert _clear(_idm("DONOR-B", COLLECTION - timedelta(days=3))) == ("donor_idm_missing",)


@pytest.mark.parametrize(
    ("eligibility", "reasons"),
    [
        ("eligible", ("donor_idm_positive",)),
        ("ineligible_related_exception", ()),
        ("ineligible_urgent_need", ()),
    ],
)
def test_a_positive_idm_is_cleared_only_under_an_exception(eligibility: str, reasons: tuple[str, ...]) -> None:
    assert _clear(_idm("DONOR-A", COLLECTION - timedelta(days=3), "positive"), eligibility=eligibility) == reasons


@pytest.mark.parametrize(("result", "reasons"), [("negative", ()), ("positive", ("donor_idm_positive",))])
def test_a_positive_idm_after_an_eligible_clearance_stops_the_collection(
    result: Result, reasons: tuple[str, ...]
) -> None:
    """A repeat specimen drawn after clearance comes back positive: the "eligible" determination
    no longer holds, so the product is not recorded as this donor's collection."""
    facts = snapshot(
        phase="collection",
        selected_donors=["DONOR-A"],
        cleared_donors=["DONOR-A"],
        idm=[_idm("DONOR-A", COLLECTION - timedelta(days=20)), _idm("DONOR-A", COLLECTION - timedelta(days=2), result)],
    )
    payload = RecordCollection(product_id="DIN-A1", donor_ref="DONOR-A", cd34_x10e6_per_kg=5.0)
    at = datetime(COLLECTION.year, COLLECTION.month, COLLECTION.day, 9, tzinfo=UTC)
    assert collection_donor_current(attempt(facts, payload, at)).reasons == reasons


@pytest.mark.parametrize(
    ("eligibility", "reasons"),
    [
        ("eligible", ("donor_idm_positive",)),
        ("ineligible_related_exception", ()),
        ("ineligible_urgent_need", ()),
    ],
)
def test_a_donor_cleared_under_an_exception_is_collected_despite_the_positive_idm(
    eligibility: str, reasons: tuple[str, ...]
) -> None:
    """The collection re-checks IDM against the determination the donor was cleared under: a
    donor known positive and cleared under 21 CFR 1271.65(b) is not refused at collection."""
    cleared = snapshot(selected_donors=["DONOR-A"], idm=[_idm("DONOR-A", COLLECTION - timedelta(days=3), "positive")])
    payload = ClearDonor.model_validate({"eligibility": eligibility, "planned_collection_on": COLLECTION})
    facts = payload.apply(cleared, Ctx(CLEARANCE, CLEARANCE.date(), 9)).model_copy(update={"phase": Phase.COLLECTION})
    collect = RecordCollection(product_id="DIN-A1", donor_ref="DONOR-A", cd34_x10e6_per_kg=5.0)
    at = datetime(COLLECTION.year, COLLECTION.month, COLLECTION.day, 9, tzinfo=UTC)
    assert collection_donor_current(attempt(facts, collect, at)).reasons == reasons
