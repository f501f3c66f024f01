"""The graft at a glance (docs/products.md): what `hsct pathway show` prints and scenario checks
assert about products, bags and a per-patient cryopreservation decision."""

from __future__ import annotations

from typing import Any, Literal

from states.facts import Bag, PathwayFacts

BagStatus = Literal["stored", "quarantined", "infused", "discarded", "carried"]
BAG_STATUSES: tuple[BagStatus, ...] = ("stored", "quarantined", "infused", "discarded", "carried")


def bag_status(bag: Bag) -> BagStatus:
    """One word for where a bag stands; an infused or carried bag's past quarantine is history."""
    if bag.infused:
        return "infused"
    if bag.discarded:
        return "discarded"
    if bag.carried_to is not None:
        return "carried"
    return "quarantined" if bag.quarantine is not None else "stored"


def bag_counts(facts: PathwayFacts) -> dict[BagStatus, int]:
    """Named bags of this pathway's products by status (every status, 0 included)."""
    counts = dict.fromkeys(BAG_STATUSES, 0)
    for product in facts.products.values():
        for bag in product.bags:
            counts[bag_status(bag)] += 1
    return counts


def product_summary(facts: PathwayFacts) -> dict[str, Any]:
    """The decision to freeze, the bags, what a tandem carried in, and the donor's G-CSF courses."""
    decision = facts.cryopreservation_decision
    return {
        "cryopreservation_reason": decision.reason if decision else None,
        "bags": bag_counts(facts),
        "quarantined_bags": sorted(
            b.bag_id for p in facts.products.values() for b in p.bags if bag_status(b) == "quarantined"
        ),
        "carried_in": sorted(p.product_id for p in facts.products.values() if p.origin_pathway is not None),
        "donor_mobilizations": len(facts.donor_mobilizations),
    }
