"""The public vocabulary of the chart (docs/diagram.md, docs/commands.md).

Every value here is public API: scenario files, the audit log and integrators speak these
names, so a rename needs a migration note in CHANGELOG.md.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a pathway stands. Final phases have no edge out; closed phases end the episode."""

    REFERRED = "referred"
    EVALUATION = "evaluation"
    DONOR_SEARCH = "donor_search"
    DONOR_WORKUP = "donor_workup"
    COLLECTION = "collection"
    READY_FOR_CONDITIONING = "ready_for_conditioning"
    ON_HOLD = "on_hold"
    CONDITIONING = "conditioning"
    AWAITING_ENGRAFTMENT = "awaiting_engraftment"
    FOLLOW_UP = "follow_up"
    DAY100_COMPLETE = "day100_complete"
    GRAFT_FAILURE = "graft_failure"
    WITHDRAWN = "withdrawn"
    DECEASED = "deceased"
    TRANSFERRED = "transferred"


# No edge out: the pathway's story ends here (events such as a product disposition may follow).
FINAL_PHASES: frozenset[Phase] = frozenset({Phase.WITHDRAWN, Phase.DECEASED, Phase.TRANSFERRED})

# Closed for the one-open-pathway rule: a new referral of the patient may start. Day +100
# complete is closed but not final: long-term follow-up, death and transfer still leave it
# (docs/decisions.md).
CLOSED_PHASES: frozenset[Phase] = FINAL_PHASES | {Phase.DAY100_COMPLETE}

# Phases before the point of no return (conditioning), in chart order.
PRE_CONDITIONING_PHASES: tuple[Phase, ...] = (
    Phase.REFERRED,
    Phase.EVALUATION,
    Phase.DONOR_SEARCH,
    Phase.DONOR_WORKUP,
    Phase.COLLECTION,
    Phase.READY_FOR_CONDITIONING,
)


class Route(StrEnum):
    AUTOLOGOUS = "autologous"
    ALLOGENEIC = "allogeneic"


class DonorType(StrEnum):
    MATCHED_SIBLING = "matched_sibling"
    MATCHED_UNRELATED = "matched_unrelated"
    MISMATCHED_UNRELATED = "mismatched_unrelated"
    HAPLOIDENTICAL = "haploidentical"
    CORD_BLOOD = "cord_blood"


class GraftSource(StrEnum):
    PBSC = "pbsc"
    BONE_MARROW = "bone_marrow"
    CORD_BLOOD = "cord_blood"


class Role(StrEnum):
    TRANSPLANT_PHYSICIAN = "transplant_physician"
    TRANSPLANT_COORDINATOR = "transplant_coordinator"
    DONOR_REGISTRY = "donor_registry"
    COLLECTION_FACILITY = "collection_facility"
    PROCESSING_FACILITY = "processing_facility"
    INFUSION_NURSE = "infusion_nurse"
    LABORATORY = "laboratory"
    QUALITY_MANAGER = "quality_manager"
    SYSTEM = "system"


class EntryKind(StrEnum):
    """The four kinds of log entry."""

    TRANSITION = "transition"
    EVENT = "event"
    REFUSAL = "refusal"
    CORRECTION = "correction"


class Locus(StrEnum):
    """HLA loci; A, B, C and DRB1 make the x/8 grade, DQB1 adds the x/10."""

    A = "A"
    B = "B"
    C = "C"
    DRB1 = "DRB1"
    DQB1 = "DQB1"
    DPB1 = "DPB1"
