"""Shared helpers of the core suite: firing on the clock, reaching any phase, checking refusals.

`refused` and `rejected` hold the two promises every negative test relies on: a refusal writes
exactly one refusal entry and changes nothing else; an invalid command writes nothing at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from persistence.store import PathwayRecord, Store
from states.errors import InvalidCommand, Refused
from states.policy import Policy
from states.vocabulary import CLOSED_PHASES, EntryKind, Phase
from tests.walks import (
    COL,
    COORD,
    LAB,
    PATIENT,
    PHYS,
    PRO,
    REG,
    RN,
    VERIFIERS,
    WALKS,
    Step,
    Walk,
    d,
    run_walk,
    t,
)
from workflow.clock import ManualClock
from workflow.service import PathwayService, Result

QM = {"id": "qm-okafor", "role": "quality_manager"}

# Primary graft failure may be declared from this Day on [F:ASTCT]: PBSC and marrow 30, cord 42.
PRIMARY_GRAFT_FAILURE_DAY = {"pbsc": 30, "bone_marrow": 30, "cord_blood": 42}

# A valid payload and a permitted actor for every command of the chart (PATHWAY.md tables).
COMMANDS: dict[str, tuple[Mapping[str, str], dict[str, Any]]] = {
    "begin_evaluation": (COORD, {}),
    "complete_evaluation": (PHYS, {}),
    "select_donor": (PHYS, {"donor_refs": ["DONOR-A"]}),
    "release_donor": (PHYS, {"reason": "donor_withdrew"}),
    "clear_donor": (PHYS, {}),
    "complete_collection": (COORD, {}),
    "hold": (PHYS, {"reason": "pneumonia"}),
    "resume": (PHYS, {}),
    "start_conditioning": (
        PHYS,
        {
            "regimen": {
                "name": "Mel200",
                "intensity": "MAC",
                "plan": [{"day": -2, "drug": "melphalan", "dose": "200 mg/m2"}],
            },
            "planned_day0": "2026-12-31",
        },
    ),
    "infuse": (RN, {"products": ["DIN-A"], "label_recipient_ref": PATIENT, "verifiers": VERIFIERS}),
    "confirm_engraftment": (PHYS, {}),
    "declare_graft_failure": (PHYS, {"kind": "primary"}),
    "rescue_infusion": (RN, {"products": ["DIN-B"], "label_recipient_ref": PATIENT, "verifiers": VERIFIERS}),
    "complete_day100": (PHYS, {}),
    "withdraw": (PHYS, {"reason": "patient decision"}),
    "record_death": (PHYS, {"primary_cause": "infection", "cause": "sepsis"}),
    "transfer": (COORD, {"destination_centre": "CENTRE-B", "reason": "family moved"}),
    "record_chronic_gvhd": (PHYS, {"skin": 1, "mouth": 1}),
    "record_product_disposition": (PRO, {"product_id": "DIN-B", "disposition": "discard"}),
    "record_consent": (COORD, {"consent_version": "v3"}),
    "record_eligibility": (PHYS, {"evidence": "performance status 1"}),
    "record_hla_typing": (LAB, {"sample_id": "HLA-9"}),
    "record_abo_typing": (LAB, {"sample_id": "ABO-9", "abo": "O", "rh": "negative"}),
    "record_donor_candidate": (
        REG,
        {
            "donor_ref": "DONOR-Z",
            "donor_type": "matched_unrelated",
            "hla": {"A": "match", "B": "match", "C": "match", "DRB1": "match"},
        },
    ),
    "record_donor_idm": (LAB, {"donor_ref": "DONOR-A", "drawn_on": "2026-01-02", "result": "negative"}),
    "start_mobilization": (COL, {"episode_id": "EP-9", "agents": ["g_csf"]}),
    "report_mobilization_failure": (COL, {"episode_id": "EP-1"}),
    "record_collection": (COL, {"product_id": "DIN-Z", "cd34_x10e6_per_kg": 3.0}),
    "cryopreserve_product": (PRO, {"product_id": "DIN-Z", "bags": 2, "location": "tank-1"}),
    "record_donor_mobilization": (COL, {"episode_id": "DEP-1", "gcsf_days": 5, "cd34_per_ul": 40.0}),
    "decide_cryopreservation": (PHYS, {"reason": "patient_not_ready"}),
    "quarantine_bag": (PRO, {"bag_id": "DIN-A-1", "reason": "sterility_positive"}),
    "release_bag": (QM, {"bag_id": "DIN-A-1", "note": "repeat culture negative"}),
    "discard_bag": (QM, {"bag_id": "DIN-A-1", "reason": "bag broken in transport"}),
    "record_thaw": (PRO, {"bag_id": "DIN-A-1", "viability_pct": 85.0}),
    "record_conditioning_dose": (RN, {"drug": "melphalan", "dose": "200 mg/m2", "plan_day": -2}),
    "report_donor_unavailable": (PHYS, {"reason": "donor illness"}),
    "select_emergency_donor": (PHYS, {"donor_ref": "CBU-X"}),
    "record_lab": (LAB, {"anc_x10e9_per_l": 0.3, "platelets_x10e9_per_l": 15}),
    "record_transfusion": (RN, {"product": "platelets"}),
    "confirm_platelet_engraftment": (PHYS, {}),
    "record_chimerism": (LAB, {"sample": "peripheral_blood", "lineage": "myeloid", "donor_pct": 97}),
    "record_gvhd_assessment": (PHYS, {"skin_bsa_pct": 10}),
    "record_vod_assessment": (PHYS, {"criteria": "baltimore", "bilirubin_mg_per_dl": 1.0}),
    "report_relapse": (PHYS, {"method": "bone_marrow_biopsy"}),
    "suspect_graft_failure": (PHYS, {"anc_x10e9_per_l": 0.1}),
    "clear_graft_failure_suspicion": (PHYS, {"reason": "counts recovered"}),
    "reinstate": (PHYS, {"reason": "patient asks to proceed after all"}),
    "record_infusion": (PHYS, {"kind": "dli", "products": ["DIN-B"]}),
    "record_adverse_event": (RN, {"type": "mucositis", "grade": 2}),
    "discharge": (COORD, {}),
    "readmit": (COORD, {}),
    "admit": (COORD, {}),
    "start_growth_factor": (RN, {"agent": "filgrastim", "dose": "5 ug/kg"}),
    "record_infection": (PHYS, {"organism": "Staphylococcus epidermidis", "site": "central_line"}),
    "record_mucositis": (RN, {"who_grade": 2}),
    "plan_gvhd_prophylaxis": (
        PHYS,
        {"agents": [{"agent": "tacrolimus", "from_day": -1}, {"agent": "methotrexate", "days": [1, 3, 6, 11]}]},
    ),
    "record_prophylaxis_dose": (RN, {"agent": "tacrolimus", "dose": "0.03 mg/kg"}),
    "record_assessment": (PHYS, {"kind": "day30"}),
    "start_subsequent_transplant": (PHYS, {"reason": "relapse", "route": "autologous", "graft_source": "pbsc"}),
    "record_registry_form": (COORD, {"form": "pre_transplant"}),
    "correct_entry": (QM, {"sequence": 1, "changes": {"diagnosis": "dlbcl"}, "reason": "referral typo"}),
    "change_route": (
        PHYS,
        {"route": "allogeneic", "donor_type": "matched_sibling", "graft_source": "pbsc", "reason": "sibling found"},
    ),
    # The service's own (default) policy: registered, and already the pathway's.
    "adopt_policy": (QM, {"version": Policy().version_id, "reason": "programme policy review"}),
}

# The command recording one value of each series (persistence.series.SERIES_FIELDS), and the
# phase a matched-sibling walk stops in to record it.
SERIES_RECORDING: dict[str, tuple[str, Phase]] = {
    "labs": ("record_lab", Phase.AWAITING_ENGRAFTMENT),
    "transfusions": ("record_transfusion", Phase.AWAITING_ENGRAFTMENT),
    "chimerism": ("record_chimerism", Phase.AWAITING_ENGRAFTMENT),
    "gvhd": ("record_gvhd_assessment", Phase.AWAITING_ENGRAFTMENT),
    "vod": ("record_vod_assessment", Phase.AWAITING_ENGRAFTMENT),
    "infections": ("record_infection", Phase.AWAITING_ENGRAFTMENT),
    "chronic_gvhd": ("record_chronic_gvhd", Phase.DAY100_COMPLETE),
}


def fire(
    service: PathwayService,
    clock: ManualClock,
    pathway_id: str,
    at: datetime,
    actor: Mapping[str, str],
    command: str,
    payload: Any = None,
    *,
    now: datetime | None = None,
) -> Result:
    """Fire with the clock at `now`, by default the effective time (documented as it happens)."""
    clock.set(now or at)
    return service.fire(pathway_id, command, {} if payload is None else payload, actor=actor, at=at)


def play(service: PathwayService, clock: ManualClock, pathway_id: str, steps: Iterable[Step]) -> Result | None:
    """Fire every step in order; the last result."""
    result = None
    for at, actor, command, payload in steps:
        result = fire(service, clock, pathway_id, at, actor, command, payload)
    return result


def open_walk(service: PathwayService, clock: ManualClock, walk: Walk) -> str:
    """Refer the walk's patient (2026-01-05) and play nothing else."""
    return run_walk(service, clock, walk, until=Phase.REFERRED)


def steps_before(walk: Walk, command: str, nth: int = 1) -> list[Step]:
    """The walk's steps before its `nth` occurrence of `command`."""
    seen = 0
    for index, step in enumerate(walk.steps):
        if step[2] == command:
            seen += 1
            if seen == nth:
                return list(walk.steps[:index])
    raise AssertionError(f"{walk.name} has no {command} #{nth}")


def steps_of(walk: Walk, command: str) -> list[Step]:
    return [step for step in walk.steps if step[2] == command]


def on(day0: date, n: int, hour: int = 9) -> datetime:
    """The time `hour`:00 UTC of Day `n` counted from `day0`."""
    return t(day0 + timedelta(days=n), hour)


@dataclass(frozen=True)
class Written:
    """How much a database holds for one pathway: entries, version, and pathways overall."""

    entries: int
    version: int
    pathways: int

    @classmethod
    def of(cls, service: PathwayService, pathway_id: str | None) -> Written:
        if pathway_id is None:
            return cls(0, 0, len(service.pathway_ids()))
        return cls(
            len(service.history(pathway_id)),
            service.snapshot(pathway_id).version,
            len(service.pathway_ids()),
        )


def refused(
    service: PathwayService,
    clock: ManualClock,
    pathway_id: str,
    at: datetime,
    actor: Mapping[str, str],
    command: str,
    payload: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> tuple[str, ...]:
    """Fire expecting `Refused`; check one refusal entry and nothing else changed; the reasons."""
    before = service.snapshot(pathway_id)
    entries, pathways = len(service.history(pathway_id)), len(service.pathway_ids())
    with pytest.raises(Refused) as info:
        fire(service, clock, pathway_id, at, actor, command, payload, now=now)
    after = service.snapshot(pathway_id)
    history = service.history(pathway_id)
    last = history[-1]
    assert len(history) == entries + 1
    assert len(service.pathway_ids()) == pathways
    assert (last.kind, last.trigger, last.sequence) == (EntryKind.REFUSAL, command, info.value.sequence)
    assert last.reasons == info.value.reasons
    assert info.value.reasons
    assert last.from_phase is last.to_phase is before.phase
    assert after.version == before.version + 1
    assert after.facts == before.facts
    return info.value.reasons


def rejected(service: PathwayService, pathway_id: str | None, call: Callable[[], object]) -> InvalidCommand:
    """Run `call` expecting `InvalidCommand`; check nothing was written; the error."""
    before = Written.of(service, pathway_id)
    with pytest.raises(InvalidCommand) as info:
        call()
    assert Written.of(service, pathway_id) == before
    assert info.value.problems
    return info.value


def problems(error: InvalidCommand) -> set[tuple[str, str]]:
    """(field path, rule) of every problem."""
    return {(p.path, p.rule) for p in error.problems}


# --- reaching phases -----------------------------------------------------------------------


def reach(service: PathwayService, clock: ManualClock, walk_name: str, phase: Phase) -> str:
    """A new pathway of `walk_name` in `phase`: along the walk, or by hold / withdraw /
    record_death / transfer / declare_graft_failure for the phases no walk passes through. The walk's
    patient when free, else a patient of its own: a patient has one open pathway at a time."""
    walk = WALKS[walk_name]()
    if any(service.snapshot(p).phase not in CLOSED_PHASES for p in service.find(walk.refer["patient_ref"])):
        walk = walk.for_patient(f"PT-{uuid.uuid4().hex[:12].upper()}")
    if phase in walk.phases():
        return run_walk(service, clock, walk, until=phase)
    if phase is Phase.ON_HOLD:
        pathway_id = run_walk(service, clock, walk, until=Phase.READY_FOR_CONDITIONING)
        fire(service, clock, pathway_id, clock.now() + timedelta(hours=1), PHYS, "hold", {"reason": "pneumonia"})
    elif phase is Phase.WITHDRAWN:
        pathway_id = run_walk(service, clock, walk, until=Phase.EVALUATION)
        fire(
            service,
            clock,
            pathway_id,
            clock.now() + timedelta(hours=1),
            PHYS,
            "withdraw",
            {"reason": "patient decision"},
        )
    elif phase is Phase.DECEASED:
        pathway_id = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
        fire(service, clock, pathway_id, clock.now() + timedelta(hours=1), PHYS, "record_death", {"cause": "sepsis"})
    elif phase is Phase.TRANSFERRED:
        pathway_id = run_walk(service, clock, walk, until=Phase.FOLLOW_UP)
        actor, payload = COMMANDS["transfer"]
        fire(service, clock, pathway_id, clock.now() + timedelta(hours=1), actor, "transfer", payload)
    elif phase is Phase.GRAFT_FAILURE:
        pathway_id = run_walk(service, clock, walk, until=Phase.AWAITING_ENGRAFTMENT)
        day = PRIMARY_GRAFT_FAILURE_DAY[walk.refer["graft_source"]]
        for before in (3, 1):  # the pancytopenia the declaration rests on [F:ASTCT]
            fire(service, clock, pathway_id, on(walk.day0, day - before), LAB, "record_lab", {"anc_x10e9_per_l": 0.05})
        fire(service, clock, pathway_id, on(walk.day0, day), PHYS, "declare_graft_failure", {"kind": "primary"})
    else:
        raise AssertionError(f"{walk_name} cannot reach {phase}")
    assert service.snapshot(pathway_id).phase is phase
    return pathway_id


def walk_phases(walk_name: str) -> list[Phase]:
    """Every phase `reach` can put a pathway of this walk in."""
    extra = [Phase.ON_HOLD, Phase.GRAFT_FAILURE, Phase.WITHDRAWN, Phase.DECEASED, Phase.TRANSFERRED]
    return [*WALKS[walk_name]().phases(), *extra]


__all__ = [
    "COL",
    "COMMANDS",
    "COORD",
    "LAB",
    "PATIENT",
    "PHYS",
    "PRO",
    "QM",
    "REG",
    "RN",
    "VERIFIERS",
    "WALKS",
    "Written",
    "d",
    "fire",
    "on",
    "open_walk",
    "play",
    "problems",
    "reach",
    "refused",
    "rejected",
    "steps_before",
    "steps_of",
    "t",
    "walk_phases",
]


def stored_record(service: PathwayService, pathway_id: str) -> PathwayRecord:
    """The pathway row as a load in a transaction of its own reads it (checked against its head)."""
    with service.engine.connect() as connection, connection.begin():
        record = Store(connection).load(pathway_id)
    assert record is not None
    return record
