"""Identity cannot be corrected away (outside tester, finding 2), and a route changes only by
`change_route` (docs/decisions.md "Identity and route"). Both backends.

The rules under test, restated from the decisions: a correction never changes the referral's
patient, route, donor type, graft source, timezone, HCT number or previous pathway, nor an
infusion's label recipient or verifiers (`identity_not_correctable`); changes the corrected
entry's own payload would not accept are InvalidCommand naming `payload.changes.<field>`;
`change_route` is the physician's, while no graft is committed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from states.chart import CHART
from states.errors import Refused
from states.vocabulary import Phase
from tests.helpers_core import QM, fire, problems, reach, refused, rejected
from tests.walks import COL, COORD, LAB, PHYS, RN, VERIFIERS, WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService

OTHER = "PT-OTHER0042"


def _correct(sequence: int, changes: dict[str, Any]) -> dict[str, Any]:
    return {"sequence": sequence, "changes": changes, "reason": "transcription"}


IDENTITY_CHANGES = [
    ("autologous", {"patient_ref": OTHER}),
    ("autologous", {"route": "allogeneic", "donor_type": "matched_sibling"}),
    ("autologous", {"timezone": "Europe/Berlin"}),
    ("autologous", {"hct_number": 2}),
    ("autologous", {"previous_pathway": str(uuid.uuid4())}),
    ("matched_unrelated", {"donor_type": "matched_sibling"}),
    ("autologous", {"graft_source": "bone_marrow"}),
]


@pytest.mark.parametrize("actor", [LAB, QM, PHYS], ids=lambda a: a["role"])
@pytest.mark.parametrize(("walk", "changes"), IDENTITY_CHANGES, ids=lambda v: str(v))
def test_the_referrals_identity_is_not_correctable(
    service: PathwayService, clock: ManualClock, actor: dict[str, str], walk: str, changes: dict[str, Any]
) -> None:
    pathway_id = reach(service, clock, walk, Phase.EVALUATION)
    before = service.snapshot(pathway_id).facts
    reasons = refused(
        service, clock, pathway_id, clock.now(), actor, "correct_entry", _correct(1, changes)
    )
    assert reasons == ("identity_not_correctable",)
    assert service.snapshot(pathway_id).facts.patient_ref == before.patient_ref


def test_a_wrong_patient_cannot_be_corrected_into_the_day0_label_check(
    service: PathwayService, clock: ManualClock
) -> None:
    """The tester's attack: the laboratory re-labels the referral, then another patient's bag
    is infused. The correction is refused and the label check still compares with the
    patient the pathway was opened for."""
    pathway_id = reach(service, clock, "autologous", Phase.CONDITIONING)
    with pytest.raises(Refused) as info:
        fire(service, clock, pathway_id, clock.now(), LAB, "correct_entry", _correct(1, {"patient_ref": OTHER}))
    assert info.value.reasons == ("identity_not_correctable",)
    day0 = clock.now() + timedelta(days=2)
    infusion = {"products": ["DIN-A"], "label_recipient_ref": OTHER, "verifiers": VERIFIERS}
    with pytest.raises(Refused) as info:
        fire(service, clock, pathway_id, day0, RN, "infuse", infusion)
    assert "recipient_label_mismatch" in info.value.reasons
    assert service.snapshot(pathway_id).phase is Phase.CONDITIONING


@pytest.mark.parametrize("changes", [{"label_recipient_ref": OTHER}, {"verifiers": VERIFIERS[::-1]}])
def test_the_bedside_identity_check_is_not_correctable(
    service: PathwayService, clock: ManualClock, changes: dict[str, Any]
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)
    infusion = next(e for e in service.history(pathway_id) if e.trigger == "infuse")
    reasons = refused(
        service, clock, pathway_id, clock.now(), QM, "correct_entry", _correct(infusion.sequence, changes)
    )
    assert reasons == ("identity_not_correctable",)


def test_a_non_identity_field_of_the_referral_is_still_correctable(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    fire(service, clock, pathway_id, clock.now(), QM, "correct_entry", _correct(1, {"diagnosis": "dlbcl"}))
    assert service.history(pathway_id)[-1].kind.value == "correction"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"surname": "Doe"}, {("payload.changes.surname", "extra_forbidden")}),
        ({"diagnosis": 5}, {("payload.changes.diagnosis", "string_type")}),
        ({"diagnosis": "d" * 65}, {("payload.changes.diagnosis", "string_pattern_mismatch")}),
        ({"hct_number": 0}, {("payload.changes.hct_number", "greater_than_equal")}),
    ],
)
def test_changes_say_only_what_the_corrected_command_could(
    service: PathwayService, clock: ManualClock, changes: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    error = rejected(
        service,
        pathway_id,
        lambda: service.fire(pathway_id, "correct_entry", _correct(1, changes), actor=QM, at=clock.now()),
    )
    assert problems(error) == expected


def test_a_derived_field_is_not_corrected(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    engraftment = next(e for e in service.history(pathway_id) if e.trigger == "confirm_engraftment")
    changes = {"recovery_on": "2026-02-10"}
    error = rejected(
        service,
        pathway_id,
        lambda: service.fire(
            pathway_id, "correct_entry", _correct(engraftment.sequence, changes), actor=QM, at=clock.now()
        ),
    )
    assert problems(error) == {("payload.changes.recovery_on", "derived_field")}


# --- change_route -----------------------------------------------------------------------------

TO_SIBLING = {"route": "allogeneic", "donor_type": "matched_sibling", "graft_source": "pbsc", "reason": "sibling"}
TO_AUTOLOGOUS = {"route": "autologous", "graft_source": "pbsc", "reason": "no donor in time"}


def test_change_route_edges_are_the_documented_window() -> None:
    edges = {(e.source, e.dest, e.when) for e in CHART.commands["change_route"].edges}
    assert edges == {
        (Phase.REFERRED, Phase.REFERRED, None),
        (Phase.EVALUATION, Phase.EVALUATION, None),
        (Phase.DONOR_SEARCH, Phase.EVALUATION, "allogeneic"),
        (Phase.COLLECTION, Phase.EVALUATION, "autologous"),
    }
    assert service_roles() == {"transplant_physician"}


def service_roles() -> set[str]:
    from states.policy import Policy

    return {r.value for r in Policy().roles["change_route"]}


@pytest.mark.parametrize("phase", [Phase.REFERRED, Phase.EVALUATION, Phase.COLLECTION])
def test_an_autologous_route_changes_before_collection_starts(
    service: PathwayService, clock: ManualClock, phase: Phase
) -> None:
    pathway_id = reach(service, clock, "autologous", phase)
    result = fire(service, clock, pathway_id, clock.now(), PHYS, "change_route", TO_SIBLING)
    facts = service.snapshot(pathway_id).facts
    assert result.phase is (Phase.REFERRED if phase is Phase.REFERRED else Phase.EVALUATION)
    assert (facts.route.value, facts.donor_type and facts.donor_type.value) == ("allogeneic", "matched_sibling")
    assert result.entry.reason == "sibling"


def test_an_allogeneic_route_changes_until_donor_search_ends(service: PathwayService, clock: ManualClock) -> None:
    searching = reach(service, clock, "matched_unrelated", Phase.DONOR_SEARCH)
    result = fire(service, clock, searching, clock.now(), PHYS, "change_route", TO_AUTOLOGOUS)
    assert result.phase is Phase.EVALUATION
    assert service.snapshot(searching).facts.donor_type is None
    walk = WALKS["matched_unrelated"]().for_patient("PT-WORKUP01")
    workup = run_walk(service, clock, walk, until=Phase.DONOR_WORKUP)
    reasons = refused(service, clock, workup, clock.now(), PHYS, "change_route", TO_AUTOLOGOUS)
    assert reasons == ("trigger_not_allowed_in_phase",)


def test_a_started_collection_closes_the_autologous_window(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.COLLECTION)
    mobilization = {"episode_id": "EP-1", "agents": ["g_csf"]}
    fire(service, clock, pathway_id, clock.now(), COL, "start_mobilization", mobilization)
    reasons = refused(service, clock, pathway_id, clock.now(), PHYS, "change_route", TO_SIBLING)
    assert reasons == ("collection_started",)


def test_a_route_change_is_the_physicians_and_must_change_something(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    assert refused(service, clock, pathway_id, clock.now(), COORD, "change_route", TO_SIBLING) == (
        "role_not_permitted",
    )
    same = {"route": "autologous", "graft_source": "pbsc", "reason": "recheck"}
    assert refused(service, clock, pathway_id, clock.now(), PHYS, "change_route", same) == ("route_unchanged",)


def test_a_route_change_is_not_corrected_either(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    change = fire(service, clock, pathway_id, clock.now(), PHYS, "change_route", TO_SIBLING)
    reasons = refused(
        service,
        clock,
        pathway_id,
        clock.now(),
        QM,
        "correct_entry",
        _correct(change.entry.sequence, {"donor_type": "haploidentical"}),
    )
    assert reasons == ("identity_not_correctable",)
