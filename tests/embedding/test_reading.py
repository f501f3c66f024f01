"""Reading a pathway before it began, and naming it by a prefix of its id (CLI)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from states.errors import AmbiguousId, BeforeFirstEntry, UnknownPathway
from tests.cli.conftest import invoke
from tests.walks import COORD, PHYS
from workflow.clock import ManualClock
from workflow.service import MIN_ID_PREFIX, PathwayService

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def refer(service: PathwayService, patient: str) -> str:
    referral = {"patient_ref": patient, "route": "autologous", "graft_source": "pbsc"}
    return service.refer(referral, actor=PHYS, at=AT).pathway_id


def test_state_at_before_the_first_entry_says_so(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = refer(service, "PT-READ01")
    recorded = clock.now()
    with pytest.raises(BeforeFirstEntry) as before:
        service.state_at(pathway_id, recorded - timedelta(seconds=1))
    assert not isinstance(before.value, UnknownPathway)
    assert f"its first entry is of recorded at {recorded.isoformat()}" in str(before.value)
    assert service.state_at(pathway_id, recorded).version == 1
    with pytest.raises(UnknownPathway):  # an id that names nothing is still UnknownPathway
        service.state_at("0" * 36, recorded)


def test_state_on_before_the_first_entry_took_effect_says_so(service: PathwayService) -> None:
    pathway_id = refer(service, "PT-READ02")
    with pytest.raises(BeforeFirstEntry, match="effective at 2026-01-05T09:00:00"):
        service.state_on(pathway_id, AT.date() - timedelta(days=1))


def test_resolve_id_expands_a_unique_prefix_and_counts_an_ambiguous_one(
    service: PathwayService, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = iter(uuid.UUID(f"abcdef{n:02d}-0000-4000-8000-000000000000") for n in range(3))
    monkeypatch.setattr("workflow.service.uuid.uuid4", lambda: next(made))
    ids = [refer(service, f"PT-READ1{n}") for n in range(3)]
    for pathway_id in ids:
        assert service.resolve_id(pathway_id) == pathway_id
        assert service.resolve_id(pathway_id[:8]) == pathway_id
    with pytest.raises(AmbiguousId, match="matches 3 pathways") as ambiguous:
        service.resolve_id("abcdef")
    assert ambiguous.value.matches == 3
    with pytest.raises(UnknownPathway):
        service.resolve_id("abcde")  # shorter than MIN_ID_PREFIX: taken as a whole id only
    with pytest.raises(UnknownPathway):
        service.resolve_id("%" * MIN_ID_PREFIX)  # LIKE's wildcards are escaped
    with pytest.raises(UnknownPathway):
        service.resolve_id("abcdef_0")  # so is `_`


def test_the_cli_accepts_a_unique_prefix_and_names_the_count_of_an_ambiguous_one(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/cli.sqlite"
    made = iter(uuid.UUID(f"abcdef{n:02d}-0000-4000-8000-000000000000") for n in range(2))
    monkeypatch.setattr("workflow.service.uuid.uuid4", lambda: next(made))
    with freeze_time("2026-01-05 10:00:00"):
        service = PathwayService(url, clock=ManualClock(AT + timedelta(hours=1)), auto_upgrade=True)
        pathway_id, _ = refer(service, "PT-READ20"), refer(service, "PT-READ21")
        service.fire(pathway_id, "begin_evaluation", actor=COORD, at=AT + timedelta(hours=1))
        service.engine.dispose()
        shown = invoke("pathway", "show", pathway_id[:8], "--db", url, "--format", "json")
        logged = invoke("audit", "log", "--pathway", pathway_id[:8], "--db", url, "--format", "jsonl")
        ambiguous = invoke("pathway", "show", "abcdef", "--db", url)
        before = invoke("pathway", "show", pathway_id[:8], "--db", url, "--at", "2026-01-01")
    assert shown.exit_code == 0, shown.output
    assert f'"id": "{pathway_id}"' in shown.output
    assert '"phase": "evaluation"' in shown.output
    assert logged.exit_code == 0, logged.output
    assert len(logged.output.splitlines()) == 2  # that pathway's two entries, not the other's
    assert ambiguous.exit_code == 2
    assert "id prefix 'abcdef' matches 2 pathways: give more characters" in ambiguous.output
    assert before.exit_code == 2
    assert "had no entries recorded by 2026-01-01" in before.output
