"""Product disposition on both backends: every product neither infused nor disposed of needs a
disposition once the pathway ends (death, withdrawal, transfer) or is surplus after Day +100;
the `product_disposition` milestone stays open until each has one; a disposed product is
neither infused nor disposed of again (docs/long-term-follow-up.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from states.vocabulary import Phase
from tests.helpers_core import fire, problems, reach, refused, rejected
from tests.walks import PATIENT, PHYS, PRO, RN, VERIFIERS, WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService

DISCARD = {"product_id": "DIN-B", "disposition": "discard"}


def _open(service: PathwayService, pid: str, day: object) -> dict[str, str]:
    return {m.name: m.status for m in service.milestones(pid, at=t(day))}  # type: ignore[arg-type]


def test_a_deceased_patients_stored_product_needs_a_disposition(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()  # DIN-A infused on Day 0, DIN-B stored
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    died = walk.day0 + timedelta(days=40)
    fire(service, clock, pid, t(died), PHYS, "record_death", {"primary_cause": "infection"})
    assert _open(service, pid, died) == {"product_disposition": "due"}
    assert "DIN-B" in service.milestones(pid, at=t(died))[0].detail
    # Overdue once `product_disposition_overdue_after_days` (30) have passed [S].
    assert _open(service, pid, died + timedelta(days=31)) == {"product_disposition": "overdue"}
    assert pid in service.all_milestones(at=t(died + timedelta(days=31)))
    fire(service, clock, pid, t(died + timedelta(days=5)), PRO, "record_product_disposition", DISCARD)
    assert _open(service, pid, died + timedelta(days=31)) == {}
    product = service.snapshot(pid).facts.products["DIN-B"]
    assert (product.disposition, product.disposed_on) == ("discard", died + timedelta(days=5))


@pytest.mark.parametrize("final", [Phase.WITHDRAWN, Phase.TRANSFERRED])
def test_withdrawn_and_transferred_pathways_keep_the_milestone(
    service: PathwayService, clock: ManualClock, final: Phase
) -> None:
    pid = reach(service, clock, "autologous", Phase.COLLECTION)
    fire(service, clock, pid, clock.now(), PRO, "record_collection", {"product_id": "DIN-X", "cd34_x10e6_per_kg": 1.0})
    ending = "withdraw" if final is Phase.WITHDRAWN else "transfer"
    payload = {"reason": "patient decision"} | ({"destination_centre": "CENTRE-B"} if ending == "transfer" else {})
    assert fire(service, clock, pid, clock.now(), PHYS, ending, payload).phase is final
    assert _open(service, pid, clock.now().date()) == {"product_disposition": "due"}
    sent = {"product_id": "DIN-X", "disposition": "transfer", "centre": "CENTRE-B"}
    fire(service, clock, pid, clock.now(), PHYS, "record_product_disposition", sent)
    assert _open(service, pid, clock.now().date()) == {}
    assert service.snapshot(pid).facts.products["DIN-X"].disposition_centre == "CENTRE-B"


def test_surplus_after_day100_is_disposed_of_for_research(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    sent = {"product_id": "DIN-B", "disposition": "research", "research_consent_version": "research-v2"}
    fire(service, clock, pid, t(walk.day0 + timedelta(days=400)), PHYS, "record_product_disposition", sent)
    facts = service.snapshot(pid).facts
    assert facts.phase is Phase.DAY100_COMPLETE
    assert facts.products["DIN-B"].disposition == "research"
    assert facts.stored_products() == []


def test_a_disposition_is_recorded_once(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(walk.day0 + timedelta(days=200))
    fire(service, clock, pid, at, PRO, "record_product_disposition", DISCARD)
    assert refused(service, clock, pid, at, PRO, "record_product_disposition", DISCARD) == ("product_already_disposed",)


def test_an_infused_or_unknown_product_has_no_disposition(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(walk.day0 + timedelta(days=200))
    infused = {"product_id": "DIN-A", "disposition": "discard"}
    assert refused(service, clock, pid, at, PRO, "record_product_disposition", infused) == ("product_already_infused",)
    unknown = {"product_id": "DIN-Q", "disposition": "discard"}
    assert refused(service, clock, pid, at, PRO, "record_product_disposition", unknown) == ("product_unknown",)


def test_a_disposition_waits_for_the_pathway_to_close(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
    at = t(walk.day0 + timedelta(days=40))
    assert refused(service, clock, pid, at, PRO, "record_product_disposition", DISCARD) == (
        "event_not_allowed_in_phase",
    )


def test_only_a_physician_or_the_processing_facility_records_it(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(walk.day0 + timedelta(days=200))
    assert refused(service, clock, pid, at, RN, "record_product_disposition", DISCARD) == ("role_not_permitted",)


def test_a_disposed_product_is_not_infused(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(walk.day0 + timedelta(days=200))
    fire(service, clock, pid, at, PRO, "record_product_disposition", DISCARD)
    boost = {"kind": "boost", "products": ["DIN-B"], "label_recipient_ref": PATIENT, "verifiers": VERIFIERS}
    assert refused(service, clock, pid, at, RN, "record_infusion", boost) == ("product_already_disposed",)


def test_a_product_carried_to_a_linked_pathway_is_disposed_of_there_only(
    service: PathwayService, clock: ManualClock
) -> None:
    # A reinstated patient's frozen cells go with the patient: the withdrawn pathway may not
    # discard what the linked pathway will infuse.
    old = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    withdrawn = clock.now() + timedelta(hours=1)
    fire(service, clock, old, withdrawn, PHYS, "withdraw", {"reason": "patient withdrew consent"})
    result = fire(service, clock, old, withdrawn + timedelta(days=10), PHYS, "reinstate", {"reason": "goes ahead"})
    carried = result.entry.payload["carried_products"]
    assert carried
    at = withdrawn + timedelta(days=11)
    for product_id in carried:
        discard = {"product_id": product_id, "disposition": "discard"}
        assert refused(service, clock, old, at, PRO, "record_product_disposition", discard) == (
            "product_carried_to_linked_pathway",
        )
    new = service.snapshot(result.entry.payload["new_pathway_id"]).facts
    assert {p.product_id for p in new.stored_products()} == set(carried)


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"product_id": "DIN-B", "disposition": "transfer"}, "payload.centre"),
        ({"product_id": "DIN-B", "disposition": "discard", "centre": "CENTRE-B"}, "payload.centre"),
        ({"product_id": "DIN-B", "disposition": "research"}, "payload.research_consent_version"),
        ({"product_id": "DIN-B", "disposition": "sold"}, "payload.disposition"),
    ],
)
def test_an_incomplete_disposition_is_bad_input(
    service: PathwayService, clock: ManualClock, sent: dict[str, str], field: str
) -> None:
    walk = WALKS["autologous"]()
    pid = run_walk(service, clock, walk)
    at = t(walk.day0 + timedelta(days=200))
    clock.set(at)
    error = rejected(service, pid, lambda: service.fire(pid, "record_product_disposition", sent, actor=PRO, at=at))
    assert {path for path, _ in problems(error)} == {field}
