"""Migration 0005 on both backends: `transferred` joins the closed phases of the one-open-pathway
index; a downgrade is refused, with the pathway ids and nothing changed, while any pathway is
transferred (the older release knows no such phase)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, text

from persistence.schema import alembic_config, current_revision, head_revision
from states.vocabulary import Phase
from tests.helpers_core import COMMANDS, fire, reach
from tests.persistence.conftest import Backend
from tests.persistence.helpers import step_adds_and_drops
from workflow.clock import ManualClock
from workflow.service import PathwayService

INDEX = "uq_pathways_open_patient"


def _index_definition(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = :name"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name AND schemaname = current_schema()"
        return str(connection.execute(text(query), {"name": INDEX}).scalar_one())


def test_the_index_leaves_transferred_pathways_out_from_0005_on(backend: Backend) -> None:
    step_adds_and_drops(backend.engine(), "0005", "0004", lambda engine: "transferred" in _index_definition(engine))


def test_a_downgrade_with_a_transferred_pathway_is_refused(service: PathwayService, clock: ManualClock) -> None:
    pid = reach(service, clock, "autologous", Phase.EVALUATION)
    actor, payload = COMMANDS["transfer"]
    fire(service, clock, pid, clock.now() + timedelta(hours=1), actor, "transfer", payload)
    refusal = f"knows no phase 'transferred'.*{pid}.*Nothing was changed"
    with pytest.raises(RuntimeError, match=refusal), service.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")
    assert current_revision(service.engine) == head_revision()
    assert "transferred" in _index_definition(service.engine)
