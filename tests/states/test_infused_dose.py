"""The dose infused at the bedside, judged on `infused_dose_sufficient` alone.

The infused cells reach the route's minimum: CD34+ for peripheral blood, autologous
[F:RUSSELL-2013] or allogeneic (the program target), whatever nucleated cell count is recorded;
TNC x10^8/kg for marrow [F:BM-HARVEST]. The minimum itself is enough, products of one source
add up, and a product with no recorded dose of that kind adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from states.guards import TNC_X10E7_PER_X10E8, infused_dose_sufficient
from states.payloads import BedsideCheck
from states.policy import Policy
from tests.states.guard_attempt import POLICY, attempt, snapshot

CD34_MIN = POLICY.min_cd34_allogeneic_x10e6_per_kg
TNC_MIN_X10E7 = POLICY.min_tnc_marrow_x10e8_per_kg * TNC_X10E7_PER_X10E8
SHORT = ("infused_dose_below_minimum",)
DAY0 = datetime(2026, 4, 8, 11, tzinfo=UTC)
Dose = dict[str, float]


def _infuse(graft_source: str, *doses: Dose, route: str = "allogeneic", policy: Policy = POLICY) -> tuple[str, ...]:
    """Day 0: one product per dose, all of `graft_source`, infused whole."""
    products = {
        f"DIN-{n}": {"product_id": f"DIN-{n}", "graft_source": graft_source, "collected_at": DAY0, **dose}
        for n, dose in enumerate(doses)
    }
    donor_type = None if route == "autologous" else "matched_unrelated"
    facts = snapshot(
        phase="conditioning", route=route, donor_type=donor_type, graft_source=graft_source, products=products
    )
    payload = BedsideCheck(products=tuple(products))
    return infused_dose_sufficient(attempt(facts, payload, DAY0, policy)).reasons


@pytest.mark.parametrize(
    ("graft_source", "doses", "reasons"),
    [
        ("pbsc", [{"cd34_x10e6_per_kg": CD34_MIN}], ()),
        # peripheral blood is judged on CD34+, however many nucleated cells it carries
        ("pbsc", [{"cd34_x10e6_per_kg": CD34_MIN - 0.1, "tnc_x10e7_per_kg": 10 * TNC_MIN_X10E7}], SHORT),
        # a product with no CD34+ count adds nothing
        ("pbsc", [{"cd34_x10e6_per_kg": CD34_MIN - 0.5}, {}], SHORT),
        ("pbsc", [{"cd34_x10e6_per_kg": CD34_MIN / 2}, {"cd34_x10e6_per_kg": CD34_MIN / 2}], ()),
        ("bone_marrow", [{"tnc_x10e7_per_kg": TNC_MIN_X10E7}], ()),
        # marrow with a TNC count is judged on TNC: a product without one adds nothing to it
        ("bone_marrow", [{"tnc_x10e7_per_kg": TNC_MIN_X10E7 - 1}, {"cd34_x10e6_per_kg": 9.0}], SHORT),
    ],
)
def test_the_infused_dose_reaches_the_minimum_of_its_graft_source(
    graft_source: str, doses: list[Dose], reasons: tuple[str, ...]
) -> None:
    assert _infuse(graft_source, *doses) == reasons


@pytest.mark.parametrize(("route", "reasons"), [("autologous", ()), ("allogeneic", SHORT)])
def test_the_cd34_minimum_is_the_routes(route: str, reasons: tuple[str, ...]) -> None:
    """A program whose allogeneic target is above the autologous minimum."""
    policy = Policy(min_cd34_allogeneic_x10e6_per_kg=POLICY.min_cd34_autologous_x10e6_per_kg + 1)
    dose = {"cd34_x10e6_per_kg": policy.min_cd34_autologous_x10e6_per_kg}
    assert _infuse("pbsc", dose, route=route, policy=policy) == reasons
