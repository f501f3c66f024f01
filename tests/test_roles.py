"""T20: every role x every trigger and event is allowed or denied exactly as the policy's role
table says (0 false allows, 0 false denies), and every denial is a refusal entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from states.chart import CHART
from states.errors import Refused
from states.policy import DEFAULT_ROLES, Policy
from states.vocabulary import EntryKind, Phase, Role
from tests.helpers_core import COMMANDS, reach
from tests.walks import WALKS, run_walk, t
from workflow.clock import ManualClock
from workflow.service import PathwayService

P = Role.TRANSPLANT_PHYSICIAN


def test_role_table_keeps_the_rules_of_pathway_md() -> None:
    """PATHWAY.md Roles, read independently of the table's own values."""
    roles = Policy().roles
    for physician_only in ("start_conditioning", "declare_graft_failure", "confirm_engraftment"):
        assert roles[physician_only] == frozenset({P})
    assert roles["infuse"] == frozenset({P, Role.INFUSION_NURSE})
    assert roles["record_lab"] == frozenset({Role.LABORATORY, Role.SYSTEM})
    movers = [c.name for c in CHART.triggers] + ["refer"]
    assert not any(Role.QUALITY_MANAGER in roles[name] for name in movers), "QM never moves a patient"
    assert Role.QUALITY_MANAGER in roles["correct_entry"]
    assert set(DEFAULT_ROLES) == set(CHART.commands) | {"refer"}


def test_role_matrix_has_no_false_allow_and_no_false_deny(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    policy = service.policy
    at = clock.now() + timedelta(hours=1)
    clock.set(at)
    false_allows, false_denies, denials, pairs = [], [], 0, 0
    for command in CHART.commands:
        _, payload = COMMANDS[command]
        for role in Role:
            pairs += 1
            actor = {"id": f"{role.value}-1", "role": role.value}
            before = len(service.history(pathway_id))
            try:
                service.fire(pathway_id, command, payload, actor=actor, at=at)
                denied, entry_kind = False, service.history(pathway_id)[-1].kind
            except Refused as refusal:
                denied = "role_not_permitted" in refusal.reasons
                entry_kind = service.history(pathway_id)[-1].kind
            permitted = policy.may(role, command)
            if denied and permitted:
                false_denies.append((role.value, command))
            if not denied and not permitted:
                false_allows.append((role.value, command))
            if denied:
                denials += 1
                assert entry_kind is EntryKind.REFUSAL, (role.value, command)
                assert len(service.history(pathway_id)) == before + 1
            pathway_id = _fresh_if_moved(service, clock, pathway_id)
    assert pairs == len(CHART.commands) * len(Role)
    assert (false_allows, false_denies) == ([], [])
    assert denials == sum(1 for c in CHART.commands for r in Role if not policy.may(r, c))


def _fresh_if_moved(service: PathwayService, clock: ManualClock, pathway_id: str) -> str:
    """A permitted command may move the pathway on; start again from evaluation if so, for
    another patient (the moved pathway may still be open, and a patient has one at a time)."""
    if service.snapshot(pathway_id).phase is Phase.EVALUATION:
        return pathway_id
    walk = WALKS["autologous"]().for_patient(f"PT-ROLES{len(service.pathway_ids()):04d}")
    return run_walk(service, clock, walk, until=Phase.EVALUATION)


def test_a_program_can_narrow_the_table(db_url: str, clock: ManualClock) -> None:
    narrow = Policy(roles={"record_consent": frozenset({P})})
    service = PathwayService(db_url, policy=narrow, clock=clock, auto_upgrade=True)
    try:
        pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
        coordinator = {"id": "co-ames", "role": "transplant_coordinator"}
        with pytest.raises(Refused) as refused:
            service.fire(pathway_id, "record_consent", {"consent_version": "v4"}, actor=coordinator, at=clock.now())
        assert refused.value.reasons == ("role_not_permitted",)
        assert service.history(pathway_id)[-1].policy_version == narrow.version_id
    finally:
        service.engine.dispose()


def test_referral_by_a_role_that_may_not_refer_writes_nothing(service: PathwayService) -> None:
    lab = {"id": "lab-feed", "role": "laboratory"}
    with pytest.raises(Refused) as refused:
        service.refer(
            {"patient_ref": "PT-0A1B2C", "route": "autologous", "graft_source": "pbsc"},
            actor=lab,
            at=t(service.clock.now().date()),
        )
    assert refused.value.reasons == ("role_not_permitted",)
    assert service.pathway_ids() == []


# --- the host's role directory is asked everywhere (outside tester, finding 3) ----------------


@pytest.fixture
def directory(db_url: str, clock: ManualClock) -> Iterator[tuple[PathwayService, set[str]]]:
    """A service whose role directory holds the actors in `held` (each in the role it names)."""
    held = {PHYSICIAN["id"], "co-ames"}

    def roles(connection: Connection, actor_id: str) -> set[Role]:
        assert connection is not None  # asked on the transaction's own connection
        return {P, Role.TRANSPLANT_COORDINATOR} if actor_id in held else set()

    service = PathwayService(db_url, clock=clock, auto_upgrade=True, roles=roles)
    try:
        yield service, held
    finally:
        service.engine.dispose()


PHYSICIAN = {"id": "dr-ross", "role": "transplant_physician"}
UNKNOWN = {"id": "dr-gone", "role": "transplant_physician"}


def test_refer_asks_the_role_directory(directory: tuple[PathwayService, set[str]]) -> None:
    service, held = directory
    refer = {"patient_ref": "PT-0A1B2C", "route": "autologous", "graft_source": "pbsc"}
    at = t(service.clock.now().date())
    with pytest.raises(Refused) as refused:
        service.refer(refer, actor=UNKNOWN, at=at)
    assert refused.value.reasons == ("role_not_held",)
    assert service.pathway_ids() == []
    held.discard(PHYSICIAN["id"])  # revoked
    with pytest.raises(Refused):
        service.refer(refer, actor=PHYSICIAN, at=at)
    held.add(PHYSICIAN["id"])
    assert service.refer(refer, actor=PHYSICIAN, at=at).phase is Phase.REFERRED


def test_can_fire_and_available_ask_the_role_directory(
    directory: tuple[PathwayService, set[str]], clock: ManualClock
) -> None:
    service, held = directory
    pathway_id = reach(service, clock, "autologous", Phase.REFERRED)
    assert service.can_fire(pathway_id, "begin_evaluation", actor=PHYSICIAN).passed
    answer = service.can_fire(pathway_id, "begin_evaluation", actor=UNKNOWN)
    assert (answer.passed, answer.reasons) == (False, ("role_not_held",))
    answers = service.available(pathway_id, actor=UNKNOWN)
    assert answers
    assert all(not a.passed and "role_not_held" in a.reasons for a in answers)
    held.discard(PHYSICIAN["id"])
    assert not any(a.passed for a in service.available(pathway_id, actor=PHYSICIAN))
