"""One open pathway per patient (outside tester, finding 5; docs/decisions.md), both backends.

A pathway is open while it is in no terminal phase and has no successor. A referral of a
patient with an open pathway is refused and writes nothing, also when it loses a race to the
database's unique index; a subsequent transplant closes the old pathway as it opens the new one.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from persistence.store import Store
from states.errors import InvalidCommand, Refused
from states.vocabulary import Phase
from tests.cli.conftest import invoke
from tests.helpers_core import COMMANDS, PATIENT, PHYS, Written, fire, reach
from tests.walks import WALKS
from workflow.clock import ManualClock
from workflow.service import PathwayService

REFER = WALKS["autologous"]().refer


def _refused_referral(service: PathwayService, clock: ManualClock) -> None:
    before = Written.of(service, None)
    with pytest.raises(Refused) as info:
        service.refer(REFER, actor=PHYS, at=clock.now())
    refusal = info.value
    assert (refusal.pathway_id, refusal.reasons, refusal.sequence) == ("-", ("patient_has_open_pathway",), None)
    assert Written.of(service, None) == before


@pytest.mark.parametrize("phase", [Phase.REFERRED, Phase.CONDITIONING, Phase.ON_HOLD])
def test_a_patient_with_an_open_pathway_is_not_referred_again(
    service: PathwayService, clock: ManualClock, phase: Phase
) -> None:
    pathway_id = reach(service, clock, "autologous", phase)
    _refused_referral(service, clock)
    assert service.find(PATIENT) == [pathway_id]


def test_a_race_to_the_index_is_answered_the_same(
    service: PathwayService, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's look finds nothing (as if the other referral committed just after it);
    the unique index refuses the insert and the caller sees the same refusal."""
    reach(service, clock, "autologous", Phase.REFERRED)
    monkeypatch.setattr(Store, "open_pathways_of", lambda self, patient_ref: [])
    _refused_referral(service, clock)


def test_a_closed_pathway_leaves_room_for_a_new_referral(service: PathwayService, clock: ManualClock) -> None:
    withdrawn = reach(service, clock, "autologous", Phase.WITHDRAWN)
    clock.set(clock.now() + timedelta(days=1))
    fresh = service.refer(REFER, actor=PHYS, at=clock.now()).pathway_id
    assert service.find(PATIENT) == [fresh, withdrawn]
    assert service.find("PT-NOBODY01") == []


def test_a_subsequent_transplant_closes_the_old_pathway_in_its_transaction(
    service: PathwayService, clock: ManualClock
) -> None:
    old = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    fire(service, clock, old, clock.now(), PHYS, "report_relapse", {"method": "pet_ct"})
    result = fire(service, clock, old, clock.now(), PHYS, "start_subsequent_transplant",
                  COMMANDS["start_subsequent_transplant"][1])
    new = result.entry.payload["new_pathway_id"]
    assert service.find(PATIENT) == [new, old]
    _refused_referral(service, clock)


def test_a_subsequent_transplant_is_refused_while_another_pathway_is_open(
    service: PathwayService, clock: ManualClock
) -> None:
    """The old pathway completed Day +100 (terminal); the patient was referred anew since."""
    old = reach(service, clock, "autologous", Phase.DAY100_COMPLETE)
    fire(service, clock, old, clock.now(), PHYS, "report_relapse", {"method": "pet_ct"})
    service.refer(REFER, actor=PHYS, at=clock.now())
    with pytest.raises(Refused) as info:
        fire(service, clock, old, clock.now(), PHYS, "start_subsequent_transplant",
             COMMANDS["start_subsequent_transplant"][1])
    assert info.value.reasons == ("patient_has_open_pathway",)
    assert len(service.find(PATIENT)) == 2


@pytest.mark.parametrize("ref", ["John Smith", "", "P" * 65, 12345])
def test_find_takes_only_a_well_formed_reference(service: PathwayService, ref: object) -> None:
    with pytest.raises(InvalidCommand) as info:
        service.find(ref)  # type: ignore[arg-type]
    assert {p.path for p in info.value.problems} == {"patient_ref"}


def test_pathway_list_by_patient(service: PathwayService, clock: ManualClock, db_url: str) -> None:
    withdrawn = reach(service, clock, "autologous", Phase.WITHDRAWN)
    clock.set(clock.now() + timedelta(days=1))
    fresh = service.refer(REFER, actor=PHYS, at=clock.now()).pathway_id
    result = invoke("pathway", "list", "--db", db_url, "--patient", PATIENT, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.stdout)] == [fresh, withdrawn]
    assert PATIENT not in result.stdout
