"""Policy versions (issue 12): the registry, a policy change under running pathways, and
re-judging the log, on both backends.

Expectations come from the published rules: the default role table lets a coordinator record
consent (PATHWAY.md Roles); the changed policy below narrows it to physicians; `adopt_policy`
is the physician's or quality manager's (docs/decisions.md).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from persistence.policies import all_policies, registered
from persistence.store import Store
from states.entry import Draft
from states.errors import InvalidCommand, PolicyError, Refused
from states.fold import apply_entry
from states.policy import Policy
from states.vocabulary import EntryKind, GraftSource, Phase, Role, Route
from tests.helpers_core import COORD, PATIENT, PHYS, QM
from workflow.audit.rejudge import rejudge_log, rejudge_pathway
from workflow.clock import ManualClock
from workflow.service import PathwayService

NARROW = Policy(version="narrow-2026.2", roles={"record_consent": frozenset({Role.TRANSPLANT_PHYSICIAN})})
CONSENT = {"consent_version": "v4"}


def _refer(service: PathwayService, patient: str = PATIENT) -> str:
    at = service.clock.now()
    referral = {"patient_ref": patient, "route": "autologous", "graft_source": "pbsc"}
    return service.refer(referral, actor=PHYS, at=at).pathway_id


def _later(clock: ManualClock, hours: int = 1) -> None:
    clock.set(clock.now() + timedelta(hours=hours))


def test_a_service_registers_its_policy_with_its_first_entry(service: PathwayService) -> None:
    with service.engine.connect() as connection:
        assert all_policies(connection) == []  # starting writes nothing
    _refer(service)
    with service.engine.connect() as connection:
        row = registered(connection, service.policy.version_id)
        assert row is not None
        assert row.policy == service.policy
        assert row.content == service.policy.canonical_json()
    _refer(PathwayService(service.engine, clock=service.clock), "PT-9F8E7D")  # nothing new to store
    with service.engine.connect() as connection:
        assert [p.version for p in all_policies(connection)] == [service.policy.version_id]


def test_a_declared_version_names_one_set_of_rules_forever(service: PathwayService) -> None:
    _refer(PathwayService(service.engine, clock=service.clock, policy=Policy(version="v9", idm_window_days=20)))
    PathwayService(service.engine, clock=service.clock, policy=Policy(version="v9", idm_window_days=20))
    with pytest.raises(PolicyError, match="v9"):
        PathwayService(service.engine, clock=service.clock, policy=Policy(version="v9", idm_window_days=25))


def test_the_registry_is_append_only(service: PathwayService) -> None:
    _refer(service)
    for statement in ("UPDATE policies SET content = '{}'", "DELETE FROM policies"):
        with pytest.raises(Exception, match="append-only"), service.engine.begin() as connection:
            connection.execute(text(statement))
    with service.engine.connect() as connection:
        assert registered(connection, service.policy.version_id) is not None


def test_a_running_pathway_keeps_its_policy_until_it_adopts_the_new_one(
    service: PathwayService, clock: ManualClock
) -> None:
    default = service.policy.version_id
    running = _refer(service)
    _later(clock)
    narrow = PathwayService(service.engine, clock=clock, policy=NARROW)

    # Under its own (default) policy a coordinator may still record consent.
    assert narrow.fire(running, "record_consent", CONSENT, actor=COORD, at=clock.now()).entry.policy_version == default
    # A new pathway starts under the service's policy, which narrows the role table.
    fresh = _refer(narrow, "PT-9F8E7D")
    with pytest.raises(Refused) as refused:
        narrow.fire(fresh, "record_consent", CONSENT, actor=COORD, at=clock.now())
    assert refused.value.reasons == ("role_not_permitted",)
    assert {e.policy_version for e in narrow.history(fresh)} == {NARROW.version}

    adopt = {"version": NARROW.version, "reason": "programme policy 2026.2"}
    with pytest.raises(Refused) as refused:  # coordinators are not in the table for adopt_policy
        narrow.fire(running, "adopt_policy", adopt, actor=COORD, at=clock.now())
    assert refused.value.reasons == ("role_not_permitted",)
    with pytest.raises(InvalidCommand) as invalid:
        narrow.fire(running, "adopt_policy", {**adopt, "version": "never-registered"}, actor=QM, at=clock.now())
    assert [(p.path, p.rule) for p in invalid.value.problems] == [("payload.version", "policy_version_unknown")]
    adopted = narrow.fire(running, "adopt_policy", adopt, actor=QM, at=clock.now())
    assert adopted.entry.policy_version == default  # judged under the policy it moves away from
    assert narrow.snapshot(running).facts.policy_version == NARROW.version
    with pytest.raises(Refused) as refused:
        narrow.fire(running, "adopt_policy", adopt, actor=QM, at=clock.now())
    assert refused.value.reasons == ("policy_already_adopted",)
    with pytest.raises(Refused) as refused:
        narrow.fire(running, "record_consent", CONSENT, actor=COORD, at=clock.now())
    assert refused.value.reasons == ("role_not_permitted",)
    # The default service now judges that pathway under the adopted policy too.
    with pytest.raises(Refused):
        service.fire(running, "record_consent", CONSENT, actor=COORD, at=clock.now())

    versions = [e.policy_version for e in service.history(running)]
    assert versions == [default, default, default, default, NARROW.version, NARROW.version, NARROW.version]
    result = rejudge_log(service.engine)
    assert result.ok, result.differences
    assert (result.pathways, result.judged, result.skipped) == (2, 9, 0)


def test_rejudge_finds_a_refusal_whose_reasons_do_not_follow_from_the_policy(
    service: PathwayService, clock: ManualClock
) -> None:
    """A well-sealed entry (the chain verifies) that refuses a physician a command the role
    table gives physicians: only re-judging can tell."""
    pathway_id = _refer(service)
    _later(clock)
    service.fire(pathway_id, "record_consent", CONSENT, actor=COORD, at=clock.now())
    now = clock.now()
    with service.engine.begin() as connection:
        store = Store(connection)
        record = store.load(pathway_id)
        assert record is not None
        forged = Draft(
            pathway_id=pathway_id,
            kind=EntryKind.REFUSAL,
            trigger="begin_evaluation",
            from_phase=Phase.REFERRED,
            to_phase=Phase.REFERRED,
            effective_at=now,
            recorded_at=now,
            actor_id="dr-ross",
            actor_role=Role.TRANSPLANT_PHYSICIAN,
            reasons=("role_not_permitted",),
            policy_version=service.policy.version_id,
            origin="live",
            release="0.1.0",
        )
        store.append(pathway_id, forged, expected_version=record.version, head_hash=record.head_hash,
                     phase=Phase.REFERRED, facts_json=None, now=now, unchanged_digest=record.facts_digest)
    result = rejudge_log(service.engine, pathway_ids=[pathway_id])
    [difference] = result.differences
    assert (difference.pathway_id, difference.sequence, difference.trigger) == (pathway_id, 3, "begin_evaluation")
    assert (difference.stored, difference.recomputed, difference.release) == (("role_not_permitted",), (), "0.1.0")


def test_rejudge_leaves_host_directory_reasons_out_and_names_unregistered_policies(
    service: PathwayService, clock: ManualClock
) -> None:
    pathway_id = _refer(service)
    entries = service.history(pathway_id)
    host = entries[0].model_copy(update={"reasons": ("role_not_held",)})
    assert rejudge_pathway([host], lambda version: service.policy)[2] == []
    [unknown] = rejudge_pathway(entries, lambda version: None)[2]
    assert unknown.recomputed is None
    assert service.policy.version_id in unknown.note


def test_a_pathway_under_an_unregistered_policy_is_judged_under_the_services(
    service: PathwayService, clock: ManualClock
) -> None:
    """A pathway opened under a version the registry lacks (written before the registry)
    falls back to the service's policy, as before the registry; its entries say so."""
    now = clock.now()
    opening = Draft(
        pathway_id="legacy-1",
        kind=EntryKind.TRANSITION,
        trigger="refer",
        from_phase=None,
        to_phase=Phase.REFERRED,
        effective_at=now,
        recorded_at=now,
        actor_id="dr-ross",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        payload={"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc"},
        policy_version="from-before-the-registry",
        origin="live",
        release="0.1.0",
    )
    facts = apply_entry(None, opening, 1)
    with service.engine.begin() as connection:
        Store(connection).insert_pathway(
            pathway_id="legacy-1", patient_ref=PATIENT, route=Route.AUTOLOGOUS, donor_type=None,
            graft_source=GraftSource.PBSC, hct_number=1, previous_pathway=None, phase=Phase.REFERRED,
            facts_json=facts.model_dump_json(), first=opening, now=now,
        )
    _later(clock)
    entry = service.fire("legacy-1", "record_consent", CONSENT, actor=COORD, at=clock.now()).entry
    assert entry.policy_version == service.policy.version_id
    [unknown] = rejudge_log(service.engine).differences
    assert (unknown.sequence, unknown.recomputed) == (1, None)
