"""A correction that would leave the history unreadable is refused (found by the T27 model,
tests/model): a corrected product id that the entry itself or a later entry no longer finds.

Before the fix, correcting `cryopreserve_product` to a product never collected escaped as a bare
KeyError from the fold. Now it is refused (`correction_breaks_history`), the refusal logged, and
the snapshot and every earlier state still read.
"""

from __future__ import annotations

from states.vocabulary import Phase
from tests.helpers_core import QM, reach, refused
from workflow.clock import ManualClock
from workflow.service import PathwayService


def _sequence_of(service: PathwayService, pathway_id: str, command: str, product_id: str) -> int:
    return next(
        e.sequence
        for e in service.history(pathway_id)
        if e.trigger == command and e.payload.get("product_id") == product_id
    )


def test_a_product_id_corrected_to_one_never_collected_is_refused(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    frozen = _sequence_of(service, pathway_id, "cryopreserve_product", "DIN-A")
    correction = {"sequence": frozen, "changes": {"product_id": "DIN-Z"}, "reason": "wrong label"}
    reasons = refused(service, clock, pathway_id, clock.now(), QM, "correct_entry", correction)
    assert reasons == ("correction_breaks_history",)
    assert set(service.snapshot(pathway_id).facts.products) == {"DIN-A", "DIN-B"}


def test_a_collection_renamed_under_its_later_freezing_is_refused(service: PathwayService, clock: ManualClock) -> None:
    """The collection itself would fold; the later `cryopreserve_product DIN-A` would not."""
    pathway_id = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    collected = _sequence_of(service, pathway_id, "record_collection", "DIN-A")
    correction = {"sequence": collected, "changes": {"product_id": "DIN-Y"}, "reason": "wrong label"}
    assert refused(service, clock, pathway_id, clock.now(), QM, "correct_entry", correction) == (
        "correction_breaks_history",
    )


def test_a_correction_that_keeps_the_history_whole_still_passes(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.READY_FOR_CONDITIONING)
    frozen = _sequence_of(service, pathway_id, "cryopreserve_product", "DIN-A")
    correction = {"sequence": frozen, "changes": {"bags": 4}, "reason": "one bag was not counted"}
    result = service.fire(pathway_id, "correct_entry", correction, actor=QM, at=clock.now())
    assert (result.phase, result.entry.kind.value) == (Phase.READY_FOR_CONDITIONING, "correction")
    assert service.history(pathway_id)[frozen - 1].payload["bags"] == 3  # the original is kept
