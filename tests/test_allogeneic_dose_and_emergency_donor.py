"""Two rules the mutation check of the guards found untested (docs/testing.md, "Mutation check").

- The allogeneic graft frozen before conditioning must reach the target dose before collection
  ends: CD34+ >= 2.0 x10^6/kg for peripheral blood, TNC >= 2.0 x10^8/kg for marrow, each
  product judged by its own source (docs/clinical-rules.md).
- An emergency donor is chosen only after the planned donor was reported unavailable.

Pure judgements of hand-built snapshots, the thresholds read from the policy.
"""

from __future__ import annotations

from typing import Any

import pytest

from states.policy import Policy
from tests.test_guards import _judge
from tests.walks import FULL_HLA

POLICY = Policy()
FROZEN_FIRST = Policy(cryopreserve_before_conditioning=True)
CD34_MIN = POLICY.min_cd34_allogeneic_x10e6_per_kg
TNC_MIN_X10E8 = POLICY.min_tnc_marrow_x10e8_per_kg


def _in_collection(graft_source: str, **dose: float) -> dict[str, Any]:
    """An allogeneic pathway in collection, donor cleared, one frozen product of DONOR-A."""
    product = {
        "product_id": "DIN-D1",
        "graft_source": graft_source,
        "collected_at": "2026-03-20T09:00:00Z",
        "donor_ref": "DONOR-A",
        "cryopreserved": True,
        **dose,
    }
    return {
        "phase": "collection",
        "graft_source": graft_source,
        "selected_donors": ["DONOR-A"],
        "cleared_donors": ["DONOR-A"],
        "products": {"DIN-D1": product},
    }


@pytest.mark.parametrize(
    ("graft_source", "dose", "reasons"),
    [
        ("pbsc", {"cd34_x10e6_per_kg": CD34_MIN}, ()),
        ("pbsc", {"cd34_x10e6_per_kg": CD34_MIN - 0.1}, ("allogeneic_dose_below_target",)),
        ("pbsc", {}, ("allogeneic_dose_below_target",)),
        # peripheral blood is judged on CD34+, whatever its nucleated cell count
        ("pbsc", {"cd34_x10e6_per_kg": CD34_MIN, "tnc_x10e7_per_kg": 1.0}, ()),
        ("pbsc", {"cd34_x10e6_per_kg": CD34_MIN - 0.1, "tnc_x10e7_per_kg": 99.0}, ("allogeneic_dose_below_target",)),
        # marrow with a nucleated cell count is judged on it (x10^7 recorded, x10^8 the rule)
        ("bone_marrow", {"tnc_x10e7_per_kg": TNC_MIN_X10E8 * 10, "cd34_x10e6_per_kg": 0.5}, ()),
        (
            "bone_marrow",
            {"tnc_x10e7_per_kg": TNC_MIN_X10E8 * 10 - 1, "cd34_x10e6_per_kg": 9.0},
            ("allogeneic_dose_below_target",),
        ),
    ],
)
def test_an_allogeneic_collection_ends_only_at_the_target_dose(
    graft_source: str, dose: dict[str, float], reasons: tuple[str, ...]
) -> None:
    assert _judge("complete_collection", _in_collection(graft_source, **dose), {}, FROZEN_FIRST) == reasons


UNRELATED_B = {"donor_ref": "DONOR-B", "donor_type": "matched_unrelated", "hla": FULL_HLA}
IN_CONDITIONING = {"phase": "conditioning", "candidates": {"DONOR-B": UNRELATED_B}}


@pytest.mark.parametrize(
    ("reported", "reasons"),
    [(False, ("donor_unavailable_not_reported",)), (True, ())],
)
def test_an_emergency_donor_needs_the_planned_donor_reported_unavailable(
    reported: bool, reasons: tuple[str, ...]
) -> None:
    facts = {**IN_CONDITIONING, "donor_unavailable": reported}
    assert _judge("select_emergency_donor", facts, {"donor_ref": "DONOR-B"}) == reasons


def test_an_unknown_emergency_donor_is_refused_with_both_reasons() -> None:
    assert _judge("select_emergency_donor", IN_CONDITIONING, {"donor_ref": "DONOR-Z"}) == (
        "donor_unavailable_not_reported",
        "donor_candidate_unknown",
    )
