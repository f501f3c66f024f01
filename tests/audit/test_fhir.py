"""FHIR R4B export: every scenario of the library, run into one database, exported and round-tripped.

Each pathway's Bundle is dumped to JSON, parsed back through fhir.resources' R4B models, and
compared; its content is checked against the log it came from (one statusHistory item per
phase entered, one Provenance per transition, one AuditEvent per refusal and correction)
and the patient reference appears once, where FHIR needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from states.vocabulary import EntryKind
from tests.cli.conftest import invoke
from tests.helpers_core import QM
from workflow.audit import fhir_bundle
from workflow.audit.fhir import EPISODE_STATUS, PHASE_EXTENSION
from workflow.clock import ManualClock
from workflow.scenario import run_scenario
from workflow.service import PathwayService

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))

R4B = pytest.importorskip("fhir.resources.R4B.bundle")


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_every_scenario_exports_as_valid_r4b(service: PathwayService, clock: ManualClock, db_url: str) -> None:
    for path in SCENARIOS:
        result = run_scenario(path, db_url=db_url)
        assert result.passed, f"{path.name}: {result.failures}"
    ids = service.pathway_ids()
    assert len(ids) >= len(SCENARIOS)
    corrected = ids[0]
    service.fire(corrected, "correct_entry", {"sequence": 1, "changes": {"diagnosis": "dlbcl"},
                                              "reason": "referral typo"}, actor=QM, at=clock.now())

    kinds_seen: set[EntryKind] = set()
    for pathway_id in ids:
        log = service.history(pathway_id)
        kinds_seen |= {e.kind for e in log}
        bundle = fhir_bundle(service, pathway_id)
        text = bundle.model_dump_json()
        again = R4B.Bundle.model_validate_json(text)  # validated, R4B
        assert again.model_dump() == bundle.model_dump()
        data = json.loads(text)
        assert data["type"] == "collection"

        (episode,) = _resources(data, "EpisodeOfCare")
        transitions = [e for e in log if e.kind is EntryKind.TRANSITION]
        assert [h["extension"][0]["valueCode"] for h in episode["statusHistory"]] == [
            e.to_phase.value for e in transitions if e.to_phase is not None
        ]
        assert [h["extension"][0]["url"] for h in episode["statusHistory"]] == [PHASE_EXTENSION] * len(transitions)
        phase = service.snapshot(pathway_id).phase
        assert episode["status"] == EPISODE_STATUS[phase]
        assert episode["identifier"] == [{"system": "urn:hsct-pathway:pathway", "value": pathway_id}]

        provenances = _resources(data, "Provenance")
        assert [p["activity"]["coding"][0]["code"] for p in provenances] == [e.trigger for e in transitions]
        assert [p["agent"][0]["who"]["identifier"]["value"] for p in provenances] == [e.actor_id for e in transitions]
        assert [p["target"] for p in provenances] == [[{"reference": data["entry"][0]["fullUrl"]}]] * len(transitions)

        audited = [e for e in log if e.kind in (EntryKind.REFUSAL, EntryKind.CORRECTION)]
        events = _resources(data, "AuditEvent")
        assert [(a["type"]["code"], a["outcome"]) for a in events] == [
            (e.kind.value, "4" if e.kind is EntryKind.REFUSAL else "0") for e in audited
        ]
        for event, entry in zip(events, audited, strict=True):
            if entry.kind is EntryKind.REFUSAL:
                assert event["outcomeDesc"] == ", ".join(entry.reasons)
            else:
                details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
                assert details["corrects"] == "1"
                assert details["reason"] == "referral typo"
                assert details["changed_fields"] == "diagnosis"

        patient_ref = service.snapshot(pathway_id).facts.patient_ref
        assert text.count(patient_ref) == 1
        assert episode["patient"]["identifier"]["value"] == patient_ref
    assert {EntryKind.TRANSITION, EntryKind.EVENT, EntryKind.REFUSAL, EntryKind.CORRECTION} <= kinds_seen


def test_the_same_log_gives_the_same_bundle(service: PathwayService, db_url: str) -> None:
    run_scenario(SCENARIOS[0], db_url=db_url)
    (pathway_id, *_) = service.pathway_ids()
    assert fhir_bundle(service, pathway_id).model_dump_json() == fhir_bundle(service, pathway_id).model_dump_json()


def test_cli_fhir_writes_one_bundle_per_pathway(service: PathwayService, db_url: str, tmp_path: Path) -> None:
    for path in SCENARIOS[:2]:
        assert run_scenario(path, db_url=db_url).passed
    out = tmp_path / "fhir"
    result = invoke("audit", "fhir", "--db", db_url, "--out", out)
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.json"))
    assert sorted(f.stem for f in files) == sorted(service.pathway_ids())
    for file in files:
        R4B.Bundle.model_validate_json(file.read_text(encoding="utf-8"))
    one = invoke("audit", "fhir", "--db", db_url, "--pathway", files[0].stem)
    assert one.exit_code == 0
    assert R4B.Bundle.model_validate_json(one.stdout).entry[0].resource.get_resource_type() == "EpisodeOfCare"
