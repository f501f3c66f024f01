"""T21: separation of duties. Two different people verify an infusion; a role revoked after
the pathway was loaded is denied inside the committing transaction; every denial is logged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
import sqlalchemy as sa

from states.errors import Refused
from states.vocabulary import EntryKind, Phase, Role
from tests.helpers_core import COMMANDS, reach
from tests.walks import PATIENT, RN
from workflow.clock import ManualClock
from workflow.service import PathwayService

STAFF = sa.table("staff_roles", sa.column("actor_id"), sa.column("role"))


@pytest.fixture
def directory_service(db_url: str, clock: ManualClock) -> Iterator[PathwayService]:
    """A service whose role directory is a host table read on the committing connection."""

    def roles(connection: sa.Connection, actor_id: str) -> Iterable[Role]:
        rows = connection.execute(sa.select(STAFF.c.role).where(STAFF.c.actor_id == actor_id))
        return {Role(r) for (r,) in rows}

    service = PathwayService(db_url, clock=clock, auto_upgrade=True, roles=roles)
    with service.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE staff_roles (actor_id VARCHAR(64), role VARCHAR(32))"))
        conn.execute(STAFF.insert(), [{"actor_id": a, "role": r} for a, r in STAFF_ROWS])
    try:
        yield service
    finally:
        service.engine.dispose()


STAFF_ROWS = [
    ("dr-ross", "transplant_physician"),
    ("co-ames", "transplant_coordinator"),
    ("lab-feed", "laboratory"),
    ("apheresis-1", "collection_facility"),
    ("cell-lab-1", "processing_facility"),
    ("rn-lee", "infusion_nurse"),
    ("rn-kim", "infusion_nurse"),
]


def test_a_role_revoked_after_load_is_denied_in_the_committing_transaction(
    directory_service: PathwayService, clock: ManualClock
) -> None:
    service = directory_service
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    actor, payload = COMMANDS["record_consent"]
    revoked: list[bool] = []
    original = service.roles
    assert original is not None

    def revoking(connection: sa.Connection, actor_id: str) -> Iterable[Role]:
        # The pathway is already loaded (and locked) in this transaction: the revocation lands
        # now, committed by someone else (on SQLite, the writer holds the lock: it is done in
        # this transaction's connection, which is what the directory reads anyway).
        assert connection.in_transaction()
        if not revoked:
            if connection.dialect.name == "postgresql":
                # The committing transaction has loaded and locked the pathway already ...
                with service.engine.connect() as other, other.begin(), pytest.raises(sa.exc.OperationalError):
                    other.execute(
                        sa.text("SELECT 1 FROM pathways WHERE id = :id FOR UPDATE NOWAIT"), {"id": pathway_id}
                    )
                with service.engine.connect() as other, other.begin():
                    # ... and the revocation commits before its role check reads the directory.
                    other.execute(STAFF.delete().where(STAFF.c.actor_id == actor_id))
            else:
                connection.execute(STAFF.delete().where(STAFF.c.actor_id == actor_id))
            revoked.append(True)
        return original(connection, actor_id)

    service.roles = revoking
    before = len(service.history(pathway_id))
    with pytest.raises(Refused) as denied:
        service.fire(pathway_id, "record_consent", payload, actor=actor, at=clock.now())
    assert denied.value.reasons == ("role_not_held",)
    last = service.history(pathway_id)[-1]
    assert (last.kind, last.sequence) == (EntryKind.REFUSAL, before + 1)


def test_a_held_role_passes_and_a_verifier_must_hold_theirs(
    directory_service: PathwayService, clock: ManualClock
) -> None:
    service = directory_service
    pathway_id = reach(service, clock, "autologous", Phase.CONDITIONING)
    with service.engine.begin() as conn:
        conn.execute(STAFF.delete().where(STAFF.c.actor_id == "rn-kim"))
    infuse = {
        "products": ["DIN-A"],
        "label_recipient_ref": PATIENT,
        "verifiers": [{"id": "rn-lee", "role": "infusion_nurse"}, {"id": "rn-kim", "role": "infusion_nurse"}],
    }
    with pytest.raises(Refused) as denied:
        service.fire(pathway_id, "infuse", infuse, actor=RN, at=clock.now())
    assert "verifier_role_not_held" in denied.value.reasons
    assert "role_not_held" not in denied.value.reasons  # the nurse firing it holds her role


def test_the_two_verifiers_must_be_two_people(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.CONDITIONING)
    same_person = {
        "products": ["DIN-A"],
        "label_recipient_ref": PATIENT,
        "verifiers": [{"id": "rn-lee", "role": "infusion_nurse"}, {"id": "rn-lee", "role": "infusion_nurse"}],
    }
    with pytest.raises(Refused) as denied:
        service.fire(pathway_id, "infuse", same_person, actor=RN, at=clock.now())
    assert "identity_verification_incomplete" in denied.value.reasons
