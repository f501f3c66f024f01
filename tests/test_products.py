"""Issue 11 items 1, 3, 5 and 10 through the service, on both backends: a donor mobilised while the
patient is in conditioning, one patient's graft frozen by a reasoned decision, bags quarantined,
thawed and infused one by one, and a planned tandem carrying the stored bags to the next HCT.

Expectations come from the rules in docs/products.md: a fresh allogeneic PBSC graft is collected
while the recipient is conditioned (a frozen one before conditioning), a frozen graft is judged
by its thaw (post-thaw viability >= 70 %) instead of the 48 h fresh limit, a bag under
investigation is never infused, and bags share their product's dose equally.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from states.fold import replay
from states.vocabulary import Phase
from tests.helpers_core import QM, fire, open_walk, play, problems, refused, rejected, steps_before
from tests.walks import COL, COORD, PATIENT, PHYS, PRO, RN, VERIFIERS, WALKS, Step, Walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService

BEDSIDE = {"label_recipient_ref": PATIENT, "verifiers": VERIFIERS}
A_BAGS = ["DIN-A-1", "DIN-A-2", "DIN-A-3"]


def _edited(walk: Walk, command: str, changes: Mapping[str, Any], product_id: str | None = None) -> list[Step]:
    """The walk's steps with `changes` merged into the payloads of `command` (for one product)."""
    return [
        (at, actor, name, {**payload, **changes})
        if name == command and product_id in (None, payload.get("product_id"))
        else (at, actor, name, payload)
        for at, actor, name, payload in walk.steps
    ]


def _until(steps: list[Step], command: str) -> tuple[list[Step], Step]:
    """The steps before the first `command`, and that step."""
    index = next(i for i, step in enumerate(steps) if step[2] == command)
    return steps[:index], steps[index]


def _walk_to(
    service: PathwayService, clock: ManualClock, walk: Walk, steps: list[Step], command: str
) -> tuple[str, Step]:
    pid = open_walk(service, clock, walk)
    before, step = _until(steps, command)
    play(service, clock, pid, before)
    return pid, step


# --- item 1: the donor mobilised while the patient is in conditioning ----------------------------


def test_donor_mobilised_during_conditioning_for_a_fresh_graft(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["matched_unrelated"]()
    pid, (collected_at, _, _, collection) = _walk_to(service, clock, walk, list(walk.steps), "record_collection")
    assert service.snapshot(pid).phase is Phase.CONDITIONING
    course = {"episode_id": "DEP-1", "gcsf_days": 5, "cd34_per_ul": 48.0}
    fire(service, clock, pid, collected_at - timedelta(hours=5), COL, "record_donor_mobilization", course)
    facts = service.snapshot(pid).facts
    assert [(m.donor_ref, m.gcsf_days, m.cd34_per_ul) for m in facts.donor_mobilizations] == [("DONOR-A", 5, 48.0)]
    assert facts.episodes == ()  # the patient's own mobilisation is another fact
    fire(service, clock, pid, collected_at, COL, "record_collection", collection)
    infused = play(service, clock, pid, steps_before(walk, "record_lab")[len(steps_before(walk, "infuse")) :])
    assert infused is not None
    assert infused.phase is Phase.AWAITING_ENGRAFTMENT


def test_donor_mobilisation_refused_for_an_autologous_patient(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid, (at, _, _, _) = _walk_to(service, clock, walk, list(walk.steps), "start_mobilization")
    course = {"episode_id": "DEP-1", "gcsf_days": 5}
    assert refused(service, clock, pid, at, COL, "record_donor_mobilization", course) == (
        "donor_mobilization_autologous",
    )


def test_a_marrow_donor_is_harvested_not_mobilised(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["haploidentical"]()
    pid, (at, _, _, _) = _walk_to(service, clock, walk, list(walk.steps), "record_collection")
    course = {"episode_id": "DEP-1", "gcsf_days": 5}
    assert refused(service, clock, pid, at, COL, "record_donor_mobilization", course) == (
        "donor_mobilization_not_pbsc",
    )


def test_donor_mobilisation_in_conditioning_refused_for_a_frozen_graft(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_unrelated"]()
    pid, (at, _, _, _) = _walk_to(service, clock, walk, list(walk.steps), "record_collection")
    fire(service, clock, pid, at - timedelta(hours=8), PHYS, "decide_cryopreservation", {"reason": "patient_not_ready"})
    course = {"episode_id": "DEP-1", "gcsf_days": 5}
    assert refused(service, clock, pid, at - timedelta(hours=6), COL, "record_donor_mobilization", course) == (
        "donor_mobilization_graft_cryopreserved",
    )


# --- item 3: one patient's graft frozen by decision ------------------------------------------------


def test_planned_cryopreservation_routes_through_collection_and_is_judged_by_its_thaw(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_unrelated"]()
    pid, (cleared_at, _, _, _) = _walk_to(service, clock, walk, list(walk.steps), "clear_donor")
    decided = fire(
        service, clock, pid, cleared_at - timedelta(hours=1), PHYS, "decide_cryopreservation", {"reason": "planned"}
    )
    assert decided.phase is Phase.DONOR_WORKUP
    assert refused(service, clock, pid, cleared_at, PHYS, "decide_cryopreservation", {"reason": "logistics"}) == (
        "cryopreservation_already_planned",
    )
    assert fire(service, clock, pid, cleared_at, PHYS, "clear_donor", {}).phase is Phase.COLLECTION
    day = cleared_at + timedelta(days=2)
    course = {"episode_id": "DEP-1", "gcsf_days": 5, "cd34_per_ul": 60.0}
    fire(service, clock, pid, day, COL, "record_donor_mobilization", course)
    fire(service, clock, pid, day, COL, "record_collection", {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2})
    frozen = {"product_id": "DIN-D1", "bags": 2, "location": "tank-1", "bag_ids": ["D1-1", "D1-2"]}
    fire(service, clock, pid, day + timedelta(hours=4), PRO, "cryopreserve_product", frozen)
    assert fire(service, clock, pid, day + timedelta(days=1), COORD, "complete_collection", {}).phase is (
        Phase.READY_FOR_CONDITIONING
    )
    facts = service.snapshot(pid).facts
    assert facts.cryopreservation_decision is not None
    assert facts.cryopreservation_decision.reason == "planned"
    # Conditioning and the infusion three weeks after collection: the 48 h fresh limit is not
    # the rule for a frozen product, its thaw is.
    conditioning = steps_before(walk, "record_collection")[len(steps_before(walk, "start_conditioning")) :]
    play(service, clock, pid, conditioning)
    at, _, _, _ = _until(list(walk.steps), "infuse")[1]
    infuse = {"products": ["DIN-D1"], "bag_ids": ["D1-1", "D1-2"], **BEDSIDE}
    assert set(refused(service, clock, pid, at, RN, "infuse", infuse)) == {"post_thaw_viability_missing"}
    for bag in ("D1-1", "D1-2"):
        fire(
            service, clock, pid, at - timedelta(minutes=30), PRO, "record_thaw", {"bag_id": bag, "viability_pct": 88.0}
        )
    assert fire(service, clock, pid, at, RN, "infuse", infuse).phase is Phase.AWAITING_ENGRAFTMENT


def test_cryopreservation_decided_in_conditioning_when_the_patient_cannot_receive_it_fresh(
    service: PathwayService, clock: ManualClock
) -> None:
    walk = WALKS["matched_unrelated"]()
    pid, (at, _, _, collection) = _walk_to(service, clock, walk, list(walk.steps), "record_collection")
    fire(service, clock, pid, at, COL, "record_collection", collection)
    frozen = {"product_id": "DIN-D1", "bags": 1, "location": "tank-1", "bag_ids": ["D1-1"]}
    later = at + timedelta(hours=6)
    assert refused(service, clock, pid, later, PRO, "cryopreserve_product", frozen) == ("cryopreservation_not_decided",)
    reason = {"reason": "patient_not_ready", "note": "febrile on Day -1"}
    assert fire(service, clock, pid, later, PHYS, "decide_cryopreservation", reason).phase is Phase.CONDITIONING
    fire(service, clock, pid, later, PRO, "cryopreserve_product", frozen)
    infused_at = at + timedelta(days=4)  # well past 48 h: fine for a frozen, thawed bag
    fire(
        service,
        clock,
        pid,
        infused_at - timedelta(hours=1),
        PRO,
        "record_thaw",
        {"bag_id": "D1-1", "viability_pct": 81.0},
    )
    infuse = {"products": ["DIN-D1"], "bag_ids": ["D1-1"], **BEDSIDE}
    assert fire(service, clock, pid, infused_at, RN, "infuse", infuse).phase is Phase.AWAITING_ENGRAFTMENT


def test_cryopreservation_decision_refused_where_there_is_nothing_to_decide(
    service: PathwayService, clock: ManualClock
) -> None:
    cord = WALKS["cord_blood"]()
    pid, (at, _, _, _) = _walk_to(service, clock, cord, list(cord.steps), "clear_donor")
    assert refused(service, clock, pid, at, PHYS, "decide_cryopreservation", {"reason": "planned"}) == (
        "cryopreservation_not_for_cord_blood",
    )


def test_an_autologous_graft_is_frozen_anyway(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid, (at, _, _, _) = _walk_to(service, clock, walk, list(walk.steps), "start_conditioning")
    assert service.snapshot(pid).phase is Phase.READY_FOR_CONDITIONING
    assert refused(service, clock, pid, at, PHYS, "decide_cryopreservation", {"reason": "planned"}) == (
        "route_not_allogeneic",
    )


# --- item 10: bags, quarantine, thaw and the chain of identity -------------------------------------


def _autologous_with_bags(service: PathwayService, clock: ManualClock) -> tuple[str, datetime, Walk]:
    walk = WALKS["autologous"]()
    steps = _edited(walk, "cryopreserve_product", {"bag_ids": A_BAGS}, "DIN-A")
    pid, (at, _, _, _) = _walk_to(service, clock, walk, steps, "infuse")
    return pid, at, walk


def test_a_quarantined_bag_is_not_infused_until_released(service: PathwayService, clock: ManualClock) -> None:
    pid, at, _ = _autologous_with_bags(service, clock)
    early = at - timedelta(hours=3)
    fire(service, clock, pid, early, PRO, "quarantine_bag", {"bag_id": "DIN-A-1", "reason": "sterility_positive"})
    assert refused(service, clock, pid, early, PRO, "quarantine_bag", {"bag_id": "DIN-A-1", "reason": "other"}) == (
        "bag_already_quarantined",
    )
    assert refused(service, clock, pid, early, QM, "release_bag", {"bag_id": "DIN-A-2", "note": "n/a"}) == (
        "bag_not_quarantined",
    )
    for bag in A_BAGS:
        fire(service, clock, pid, early, PRO, "record_thaw", {"bag_id": bag, "viability_pct": 85.0})
    infuse = {"products": ["DIN-A"], "bag_ids": A_BAGS, **BEDSIDE}
    assert refused(service, clock, pid, at, RN, "infuse", infuse) == ("bag_quarantined",)
    fire(
        service,
        clock,
        pid,
        at - timedelta(hours=1),
        QM,
        "release_bag",
        {"bag_id": "DIN-A-1", "note": "culture negative"},
    )
    assert fire(service, clock, pid, at, RN, "infuse", infuse).phase is Phase.AWAITING_ENGRAFTMENT
    facts = service.snapshot(pid).facts
    assert all(b.infused for b in facts.products["DIN-A"].bags)
    assert facts.products["DIN-A"].infused
    assert facts.infusions[-1].bags == tuple(A_BAGS)


def test_each_bag_is_named_checked_and_thawed_well_enough(service: PathwayService, clock: ManualClock) -> None:
    pid, at, _ = _autologous_with_bags(service, clock)
    early = at - timedelta(hours=2)
    fire(service, clock, pid, early, PRO, "record_thaw", {"bag_id": "DIN-A-1", "viability_pct": 62.0})
    fire(service, clock, pid, early, PRO, "record_thaw", {"bag_id": "DIN-A-2", "viability_pct": 90.0})
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"products": ["DIN-A"]}, {"product_bags_not_named"}),
        ({"products": ["DIN-A"], "bag_ids": ["DIN-A-1", "DIN-A-2"]}, {"post_thaw_viability_below_minimum"}),
        ({"products": ["DIN-A"], "bag_ids": ["DIN-A-2", "DIN-A-3"]}, {"post_thaw_viability_missing"}),
        ({"products": ["DIN-B"], "bag_ids": ["DIN-A-2"]}, {"bag_not_of_named_product"}),
        ({"products": ["DIN-A"], "bag_ids": ["DIN-A-9"]}, {"bag_unknown", "product_bags_not_named"}),
        # One of three bags holds a third of DIN-A's 3.4 x10^6 CD34+/kg: below 2.0.
        ({"products": ["DIN-A"], "bag_ids": ["DIN-A-2"]}, {"infused_dose_below_minimum"}),
    ]
    for payload, reasons in cases:
        assert set(refused(service, clock, pid, at, RN, "infuse", {**payload, **BEDSIDE})) == reasons, payload
    fire(service, clock, pid, early, QM, "discard_bag", {"bag_id": "DIN-A-1", "reason": "viability too low"})
    assert refused(service, clock, pid, early, PRO, "record_thaw", {"bag_id": "DIN-A-1", "viability_pct": 70.0}) == (
        "bag_not_available",
    )
    fire(service, clock, pid, early, PRO, "record_thaw", {"bag_id": "DIN-A-3", "viability_pct": 77.0})
    # Two of three bags: 2.27 x10^6/kg.
    two = {"products": ["DIN-A"], "bag_ids": ["DIN-A-2", "DIN-A-3"], **BEDSIDE}
    assert fire(service, clock, pid, at, RN, "infuse", two).phase is Phase.AWAITING_ENGRAFTMENT
    product = service.snapshot(pid).facts.products["DIN-A"]
    assert [(b.bag_id, b.infused, b.discarded) for b in product.bags] == [
        ("DIN-A-1", False, True),
        ("DIN-A-2", True, False),
        ("DIN-A-3", True, False),
    ]
    assert not product.infused


def test_bag_ids_are_one_per_bag(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid, (at, _, _, payload) = _walk_to(service, clock, walk, list(walk.steps), "cryopreserve_product")
    bad = {**payload, "bag_ids": ["X-1", "X-1", "X-2"]}
    error = rejected(service, pid, lambda: service.fire(pid, "cryopreserve_product", bad, actor=PRO, at=at))
    assert problems(error) == {("payload.bag_ids", "bag_ids_count")}


def test_entries_written_before_bag_ids_replay_to_the_same_facts(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = open_walk(service, clock, walk)
    play(service, clock, pid, steps_before(walk, "record_lab"))
    log = service.history(pid)
    # The same entries as an earlier release wrote them: no `bag_ids`.
    old = [e.model_copy(update={"payload": {k: v for k, v in e.payload.items() if k != "bag_ids"}}) for e in log]
    assert any("bag_ids" in e.payload for e in log)
    assert not any("bag_ids" in e.payload for e in old)
    assert replay(old) == replay(log) == service.snapshot(pid).facts
    assert service.snapshot(pid).facts.products["DIN-A"].infused


# --- item 5: a planned tandem carries the stored bags --------------------------------------------


def test_planned_tandem_carries_the_stored_bags_to_the_next_hct(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    steps = _edited(walk, "cryopreserve_product", {"bag_ids": ["DIN-B-1", "DIN-B-2"]}, "DIN-B")
    pid = open_walk(service, clock, walk)
    play(service, clock, pid, _until(steps, "complete_day100")[0])
    assert service.snapshot(pid).phase is Phase.FOLLOW_UP
    at = t(walk.day0 + timedelta(days=60))
    body = {"reason": "planned", "route": "autologous", "graft_source": "pbsc"}
    fire(service, clock, pid, at, PHYS, "start_subsequent_transplant", body)
    first = service.snapshot(pid).facts
    second_id = first.next_pathway
    assert second_id is not None
    assert first.products["DIN-B"].carried_to == second_id
    assert all(b.carried_to == second_id for b in first.products["DIN-B"].bags)
    assert first.products["DIN-A"].carried_to is None  # infused at HCT#1: not carried
    assert first.stored_products() == []
    assert first.undisposed_products() == []
    second = service.snapshot(second_id).facts
    assert set(second.products) == {"DIN-B"}
    carried = second.products["DIN-B"]
    assert (carried.origin_pathway, carried.cryopreserved, carried.cd34_x10e6_per_kg) == (pid, True, 2.9)
    assert [b.bag_id for b in carried.bags] == ["DIN-B-1", "DIN-B-2"]
    assert service.history(pid)[-1].payload["carried_products"] == ["DIN-B"]
    # What was carried is the library's record of the link: a correction may not change it.
    change = {"sequence": 1, "changes": {"carried_products": []}, "reason": "typo"}
    error = rejected(service, second_id, lambda: service.fire(second_id, "correct_entry", change, actor=QM, at=at))
    assert problems(error) == {("payload.changes.carried_products", "derived_field")}


def test_a_tandem_for_another_reason_carries_nothing(service: PathwayService, clock: ManualClock) -> None:
    walk = WALKS["autologous"]()
    pid = open_walk(service, clock, walk)
    play(service, clock, pid, steps_before(walk, "complete_day100"))
    at = t(walk.day0 + timedelta(days=60))
    fire(service, clock, pid, at, PHYS, "report_relapse", {"method": "bone_marrow_biopsy"})
    body = {"reason": "relapse", "route": "autologous", "graft_source": "pbsc"}
    fire(service, clock, pid, at + timedelta(hours=1), PHYS, "start_subsequent_transplant", body)
    first = service.snapshot(pid).facts
    assert first.next_pathway is not None
    assert first.products["DIN-B"].carried_to is None
    assert service.snapshot(first.next_pathway).facts.products == {}


def test_a_tandem_carries_the_bags_left_of_a_partly_infused_product(
    service: PathwayService, clock: ManualClock
) -> None:
    pid, at, walk = _autologous_with_bags(service, clock)
    for bag in A_BAGS[:2]:
        fire(service, clock, pid, at - timedelta(hours=1), PRO, "record_thaw", {"bag_id": bag, "viability_pct": 90.0})
    fire(service, clock, pid, at, RN, "infuse", {"products": ["DIN-A"], "bag_ids": A_BAGS[:2], **BEDSIDE})
    play(service, clock, pid, steps_before(walk, "complete_day100")[len(steps_before(walk, "record_lab")) :])
    body = {"reason": "planned", "route": "autologous", "graft_source": "pbsc"}
    fire(service, clock, pid, t(walk.day0 + timedelta(days=60)), PHYS, "start_subsequent_transplant", body)
    first = service.snapshot(pid).facts
    assert first.next_pathway is not None
    second = service.snapshot(first.next_pathway).facts
    assert set(second.products) == {"DIN-A", "DIN-B"}  # DIN-B was frozen without named bags: carried whole
    left = second.products["DIN-A"]
    assert [b.bag_id for b in left.bags] == ["DIN-A-3"]
    assert left.cd34_x10e6_per_kg is not None
    assert abs(left.cd34_x10e6_per_kg - 3.4 / 3) < 1e-9
    assert second.products["DIN-B"].cd34_x10e6_per_kg == 2.9
    assert [b.carried_to for b in first.products["DIN-A"].bags] == [None, None, first.next_pathway]
