"""The fold: a pathway's snapshot is a pure function of its log.

`replay` rebuilds the snapshot from entries; corrections substitute their values into the
entry they correct (that entry stays as written in the log). Refusals change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, ClassVar

from pydantic import Field

from states.chart import CHART
from states.days import clinical_date
from states.entry import Draft, Entry
from states.facts import PathwayFacts, Product, RelapseReport
from states.payloads import Ctx, Refer
from states.vocabulary import EntryKind, Phase

FACTS_REDERIVED: str = "facts_rederived"  # a trigger name, not a reason code
"""The system event `hsct db upgrade` appends to commit re-derived facts: it changes nothing in
the fold (the new facts are the fold of the entries before it), docs/versioning.md."""


class Opening(Refer):
    """The first entry's payload: the referral plus what the library adds (timezone, HCT link)."""

    timezone: str = "UTC"
    hct_number: int = Field(1, ge=1)
    previous_pathway: str | None = None
    # A subsequent HCT that begins in donor search carries the patient's typing and eligibility
    # from the previous pathway and the new consent given at the link.
    consent_version: str | None = None
    eligibility_documented: bool = False
    hla_samples: tuple[str, ...] = ()
    abo_samples: tuple[str, ...] = ()
    # A reinstated withdrawal carries the relapse found before infusion (docs/decisions.md).
    relapse_before_infusion: RelapseReport | None = None
    # A planned tandem's stored products, carried from the previous pathway (docs/products.md).
    carried_products: tuple[Product, ...] = ()

    identity_fields: ClassVar[frozenset[str]] = Refer.identity_fields | {"timezone", "hct_number", "previous_pathway"}
    # What a tandem carried in is the library's record of the link: never corrected.
    derived_fields: ClassVar[frozenset[str]] = Refer.derived_fields | {"carried_products"}


def opening_facts(opening: Opening, phase: Phase, on: date) -> PathwayFacts:
    return PathwayFacts(
        consent_on=on if opening.consent_version else None,
        eligibility_documented=opening.eligibility_documented,
        hla_samples=opening.hla_samples,
        abo_samples=opening.abo_samples,
        relapse_before_infusion=opening.relapse_before_infusion,
        products={
            p.product_id: p.model_copy(update={"origin_pathway": opening.previous_pathway})
            for p in opening.carried_products
        },
        phase=phase,
        route=opening.route,
        donor_type=opening.donor_type,
        graft_source=opening.graft_source,
        patient_ref=opening.patient_ref,
        timezone=opening.timezone,
        hct_number=opening.hct_number,
        previous_pathway=opening.previous_pathway,
    )


def apply_entry(
    facts: PathwayFacts | None, entry: Draft, sequence: int, payload: Mapping[str, Any] | None = None
) -> PathwayFacts:
    """One step of the fold; `payload` overrides the entry's own (a corrected value)."""
    values = entry.payload if payload is None else payload
    if facts is None:
        assert entry.to_phase is not None
        opening = Opening.model_validate(values)
        on = clinical_date(entry.effective_at, opening.timezone)
        return opening_facts(opening, entry.to_phase, on).model_copy(
            update={
                "last_effective_at": entry.effective_at,
                "referred_at": entry.effective_at,
                "policy_version": entry.policy_version,
            }
        )
    if entry.kind in (EntryKind.REFUSAL, EntryKind.CORRECTION) or entry.trigger == FACTS_REDERIVED:
        return facts
    command = CHART.commands[entry.trigger]
    model = command.payload.model_validate(values)
    ctx = Ctx(at=entry.effective_at, on=clinical_date(entry.effective_at, facts.timezone), sequence=sequence)
    updated = model.apply(facts, ctx)
    changes: dict[str, Any] = {}
    if entry.kind is EntryKind.TRANSITION and entry.to_phase is not None:
        changes["phase"] = entry.to_phase
    last = facts.last_effective_at
    if last is None or entry.effective_at > last:
        changes["last_effective_at"] = entry.effective_at
    return updated.model_copy(update=changes) if changes else updated


def corrected_payloads(entries: Iterable[Entry]) -> dict[int, dict[str, Any]]:
    """Sequence -> payload with every correction (in log order) merged in."""
    originals: dict[int, dict[str, Any]] = {}
    merged: dict[int, dict[str, Any]] = {}
    for entry in entries:
        originals[entry.sequence] = entry.payload
        if entry.kind is EntryKind.CORRECTION:
            target = int(entry.payload["sequence"])
            base = merged.get(target, originals.get(target, {}))
            merged[target] = {**base, **entry.payload["changes"]}
    return merged


def replay(entries: Iterable[Entry], *, corrections_from: Iterable[Entry] | None = None) -> PathwayFacts:
    """The snapshot after `entries` (in sequence order), their corrections applied; with
    `corrections_from` (a longer log), corrections recorded later apply too ("as known now")."""
    ordered = sorted(entries, key=lambda e: e.sequence)
    corrections = corrected_payloads(ordered if corrections_from is None else corrections_from)
    facts: PathwayFacts | None = None
    for entry in ordered:
        facts = apply_entry(facts, entry, entry.sequence, corrections.get(entry.sequence))
    if facts is None:
        raise ValueError("a pathway's log has at least its opening entry")
    return facts
