"""Payloads for a course that leaves the planned path: a graft suspected of failing, and a
withdrawn patient taken back (docs/disease-course.md, docs/decisions.md).

Kept apart from `states.payloads` (one model per command, already long); the chart names them
like any other payload. A relapse or progression is `states.payloads.ReportRelapse`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from states.facts import GraftFailureSuspicion, PathwayFacts
from states.payloads import (
    Anc,
    Ctx,
    Payload,
    Pct,
    Ref,
    Text,
    WithReason,
    carried_away,
    carried_over,
    require_any,
)
from states.vocabulary import Phase

SuspicionKind = Literal["graft_failure", "autologous_reconstitution"]


class SuspectGraftFailure(Payload):
    """Evidence that the graft may be failing, or that the recipient's own marrow is coming back
    (autologous reconstitution, allogeneic only). Allowed at any Day after infusion [F:ASTCT];
    a physician then confirms it (`declare_graft_failure`) or clears it."""

    kind: SuspicionKind = "graft_failure"
    donor_chimerism_pct: Pct | None = None
    anc_x10e9_per_l: Anc | None = None
    evidence: Text | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _some_evidence(self) -> SuspectGraftFailure:
        require_any(self, "suspicion_evidence_missing", "donor_chimerism_pct", "anc_x10e9_per_l")
        return self

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        evidence = self.model_dump(include={"kind", "donor_chimerism_pct", "anc_x10e9_per_l"})
        suspicion = GraftFailureSuspicion(on=ctx.on, **evidence)
        return facts.model_copy(update={"graft_failure_suspicion": suspicion})


class ClearGraftFailureSuspicion(WithReason):
    """The physician finds the graft working after all (counts recovered, chimerism rising)."""

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        return facts.model_copy(update={"graft_failure_suspicion": None})


class Reinstate(WithReason):
    """Takes a withdrawn patient back: a linked new pathway of the same transplant begins in
    `evaluation`, carrying what is still valid; the withdrawn pathway stays as it was
    (docs/decisions.md "Reinstating a withdrawn patient")."""

    new_pathway_id: str | None = Field(None, description="Set by the library: the linked pathway's id.")
    carried_products: tuple[Ref, ...] | None = Field(
        None, description="Set by the library: the stored products carried to the linked pathway."
    )

    derived_fields: ClassVar[frozenset[str]] = frozenset({"new_pathway_id", "carried_products"})

    @property
    def begin_phase(self) -> Phase:
        return Phase.EVALUATION

    def linked_opening(self, facts: PathwayFacts) -> dict[str, Any]:
        """The same transplant (same route and hct_number) with the patient's own typing, disease
        history and stored products; consent, eligibility and donors are not carried."""
        return {
            "carried_products": carried_over(facts, self.carried_products or ()),
            "route": facts.route,
            "donor_type": facts.donor_type,
            "graft_source": facts.graft_source,
            "hct_number": facts.hct_number,
            "hla_samples": facts.hla_samples,
            "abo_samples": facts.abo_samples,
            "relapse_before_infusion": facts.relapse_before_infusion,
        }

    def apply(self, facts: PathwayFacts, ctx: Ctx) -> PathwayFacts:
        products = carried_away(facts, self.carried_products or (), self.new_pathway_id)
        return facts.model_copy(update={"next_pathway": self.new_pathway_id, "products": products})
