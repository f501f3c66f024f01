"""A pathway as a FHIR R4B Bundle (type `collection`), built with fhir.resources' validated models.

- one EpisodeOfCare: the pathway (identifier = pathway id), its current status, the patient
  as a Reference by identifier (the host's pseudonymous patient reference, under a system the
  host names), and a `statusHistory` item per phase the pathway went through, each carrying
  the library's phase code in an extension (FHIR's status set is coarser than the phases);
- one Provenance per transition: target = the EpisodeOfCare, occurred = effective time,
  recorded = recorded time, activity = the trigger (text "from -> to"), agent = the actor (by
  identifier) in their role, policy = the policy version, and the log position and hash;
- one AuditEvent per refusal (outcome 4, the reason codes) and per correction (outcome 0, the
  corrected sequence number, the names of the changed fields and the reason given).

Only what the log says is exported. Payload values (labs, doses, the infusion label) are not
copied into the Bundle; the patient reference appears once, where FHIR needs it. Every
resource is built through its model's validation (never `model_construct`), so the Bundle
that comes back is valid R4B as far as fhir.resources can tell. Resource ids and fullUrls are
name-based UUIDs of the pathway and entry, so the same log always gives the same Bundle.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from states.errors import HsctError
from states.vocabulary import CLOSED_PHASES, EntryKind, Phase

if TYPE_CHECKING:
    from states.entry import Entry
    from workflow.service import PathwayService

__all__ = ["EPISODE_STATUS", "PATIENT_SYSTEM", "fhir_bundle"]

BASE: Final = "urn:hsct-pathway"
PATIENT_SYSTEM: Final = f"{BASE}:patient-ref"
PATHWAY_SYSTEM: Final = f"{BASE}:pathway"
ACTOR_SYSTEM: Final = f"{BASE}:actor"
ROLE_SYSTEM: Final = f"{BASE}:role"
TRIGGER_SYSTEM: Final = f"{BASE}:trigger"
PHASE_SYSTEM: Final = f"{BASE}:phase"
ROUTE_SYSTEM: Final = f"{BASE}:route"
AUDIT_TYPE_SYSTEM: Final = f"{BASE}:audit-event-type"
PHASE_EXTENSION: Final = f"{BASE}:fhir:extension:phase"
SEQUENCE_EXTENSION: Final = f"{BASE}:fhir:extension:entry-sequence"
HASH_EXTENSION: Final = f"{BASE}:fhir:extension:entry-hash"
POLICY_URN: Final = f"{BASE}:policy:"
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/hsct-pathway")

# EpisodeOfCare.status per phase (R4B: planned | waitlist | active | onhold | finished |
# cancelled | entered-in-error). The exact phase travels in the phase extension.
EPISODE_STATUS: Final[dict[Phase, str]] = {
    Phase.REFERRED: "planned",
    Phase.EVALUATION: "active",
    Phase.DONOR_SEARCH: "active",
    Phase.DONOR_WORKUP: "active",
    Phase.COLLECTION: "active",
    Phase.READY_FOR_CONDITIONING: "active",
    Phase.ON_HOLD: "onhold",
    Phase.CONDITIONING: "active",
    Phase.AWAITING_ENGRAFTMENT: "active",
    Phase.FOLLOW_UP: "active",
    Phase.GRAFT_FAILURE: "active",
    Phase.DAY100_COMPLETE: "finished",
    Phase.WITHDRAWN: "cancelled",
    Phase.DECEASED: "finished",
    Phase.TRANSFERRED: "finished",
}


def _models() -> Any:
    try:
        from fhir.resources.R4B import auditevent, bundle, episodeofcare, provenance
    except ImportError:  # pragma: no cover - the fhir extra is installed in dev
        raise HsctError("the FHIR export needs fhir.resources: pip install 'hsct-pathway[fhir]'") from None
    return auditevent, bundle, episodeofcare, provenance


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    return coding if display is None else {**coding, "display": display}


def _concept(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [_coding(system, code)]}
    return concept if text is None else {**concept, "text": text}


def _actor(entry: Entry) -> dict[str, Any]:
    return {"identifier": {"system": ACTOR_SYSTEM, "value": entry.actor_id}}


def _position(entry: Entry) -> list[dict[str, Any]]:
    return [
        {"url": SEQUENCE_EXTENSION, "valueInteger": entry.sequence},
        {"url": HASH_EXTENSION, "valueString": entry.hash},
    ]


def _status_history(transitions: list[Entry]) -> list[dict[str, Any]]:
    """One item per phase entered; a period ends where the next transition takes effect
    (left open when late documentation put that earlier than its start)."""
    items = []
    for index, entry in enumerate(transitions):
        assert entry.to_phase is not None
        period: dict[str, datetime] = {"start": entry.effective_at}
        following = transitions[index + 1] if index + 1 < len(transitions) else None
        if following is not None and following.effective_at >= entry.effective_at:
            period["end"] = following.effective_at
        items.append(
            {
                "extension": [{"url": PHASE_EXTENSION, "valueCode": entry.to_phase.value}],
                "status": EPISODE_STATUS[entry.to_phase],
                "period": period,
            }
        )
    return items


def _provenance(model: Any, episode: str, entry: Entry) -> Any:
    source = entry.from_phase.value if entry.from_phase is not None else "-"
    destination = entry.to_phase.value if entry.to_phase is not None else "-"
    return model.model_validate(
        {
            "id": _id(entry.pathway_id, str(entry.sequence), "provenance"),
            "extension": _position(entry),
            "target": [{"reference": episode}],
            "occurredDateTime": entry.effective_at,
            "recorded": entry.recorded_at,
            "policy": [POLICY_URN + quote(entry.policy_version, safe="")],
            "activity": _concept(TRIGGER_SYSTEM, entry.trigger, f"{source} -> {destination}"),
            "agent": [
                {
                    "type": _concept(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author"
                    ),
                    "role": [_concept(ROLE_SYSTEM, entry.actor_role.value)],
                    "who": _actor(entry),
                }
            ],
        }
    )


def _audit_event(model: Any, episode: str, entry: Entry) -> Any:
    refusal = entry.kind is EntryKind.REFUSAL
    detail = [{"type": "sequence", "valueString": str(entry.sequence)}, {"type": "hash", "valueString": entry.hash}]
    if not refusal:
        detail.append({"type": "corrects", "valueString": str(entry.corrects)})
        changes = entry.payload.get("changes")
        if isinstance(changes, dict):  # field names only: the values are in the log
            detail.append({"type": "changed_fields", "valueString": ", ".join(sorted(changes))})
        if entry.reason:
            detail.append({"type": "reason", "valueString": entry.reason})
    return model.model_validate(
        {
            "id": _id(entry.pathway_id, str(entry.sequence), "audit"),
            "type": _coding(AUDIT_TYPE_SYSTEM, entry.kind.value, "refused command" if refusal else "correction"),
            "subtype": [_coding(TRIGGER_SYSTEM, entry.trigger)],
            "action": "E" if refusal else "U",
            "period": {"start": entry.effective_at, "end": entry.effective_at},
            "recorded": entry.recorded_at,
            "outcome": "4" if refusal else "0",
            **({"outcomeDesc": ", ".join(entry.reasons)} if refusal else {}),
            "agent": [{"role": [_concept(ROLE_SYSTEM, entry.actor_role.value)], "who": _actor(entry),
                       "requestor": True}],
            "source": {
                "observer": {"display": "hsct-pathway"},
                "type": [_coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4",
                                 "Application Server")],
            },
            "entity": [
                {
                    "what": {"reference": episode},
                    "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
                    "detail": detail,
                }
            ],
        }
    )


def fhir_bundle(
    service: PathwayService,
    pathway_id: str,
    *,
    patient_system: str = PATIENT_SYSTEM,
    timestamp: datetime | None = None,
) -> Any:
    """The pathway's FHIR R4B Bundle (a `fhir.resources.R4B.bundle.Bundle`).

    `patient_system` is the identifier system of the host's patient references; `timestamp`
    defaults to the service clock. Raises UnknownPathway for an unknown id.
    """
    auditevent, bundle, episodeofcare, provenance = _models()
    history = service.history(pathway_id)
    facts = service.snapshot(pathway_id).facts
    transitions = [e for e in history if e.kind is EntryKind.TRANSITION and e.to_phase is not None]
    episode_url = _urn(pathway_id, "episode")
    route = facts.route.value + (f" {facts.donor_type.value}" if facts.donor_type else "")
    period: dict[str, datetime] = {"start": history[0].effective_at}
    if facts.phase in CLOSED_PHASES and transitions and transitions[-1].effective_at >= period["start"]:
        period["end"] = transitions[-1].effective_at
    episode = episodeofcare.EpisodeOfCare.model_validate(
        {
            "id": _id(pathway_id, "episode"),
            "identifier": [{"system": PATHWAY_SYSTEM, "value": pathway_id}],
            "status": EPISODE_STATUS[facts.phase],
            "statusHistory": _status_history(transitions),
            "type": [
                {
                    "coding": [
                        _coding(ROUTE_SYSTEM, facts.route.value),
                        *([_coding(f"{BASE}:donor-type", facts.donor_type.value)] if facts.donor_type else []),
                        _coding(f"{BASE}:graft-source", facts.graft_source.value),
                    ],
                    "text": f"HSCT {facts.hct_number}: {route}, {facts.graft_source.value}",
                }
            ],
            "patient": {"identifier": {"system": patient_system, "value": facts.patient_ref}},
            "period": period,
        }
    )
    entries: list[dict[str, Any]] = [{"fullUrl": episode_url, "resource": episode}]
    for entry in history:
        if entry.kind is EntryKind.TRANSITION:
            resource = _provenance(provenance.Provenance, episode_url, entry)
            entries.append({"fullUrl": _urn(pathway_id, str(entry.sequence), "provenance"), "resource": resource})
        elif entry.kind in (EntryKind.REFUSAL, EntryKind.CORRECTION):
            resource = _audit_event(auditevent.AuditEvent, episode_url, entry)
            entries.append({"fullUrl": _urn(pathway_id, str(entry.sequence), "audit"), "resource": resource})
    return bundle.Bundle.model_validate(
        {
            "id": _id(pathway_id, "bundle", history[-1].hash),
            "identifier": {"system": PATHWAY_SYSTEM, "value": f"{pathway_id}@{len(history)}"},
            "type": "collection",
            "timestamp": timestamp or service.clock.now(),
            "entry": entries,
        }
    )
