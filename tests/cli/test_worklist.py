"""`hsct worklist`: open milestones across pathways, with the roles that meet them.

Three pathways from the autologous walk (Day 0, or planned Day 0, 2026-02-04; conditioning from
2026-02-02; melphalan planned for Day -2; no registry form sent): one in follow-up, one just
referred, one that started conditioning and recorded no dose. Judged on 2026-03-06 (Day +30)
with docs/milestones.md: the Pre-TED form window opens 14 days before conditioning and closes
on Day 0 [F:CIBMTR-2400]; the Day +30 assessment window is Days +28..+35; a planned dose whose
day has passed is overdue. Roles come from the policy's role table (states/policy.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from states.policy import Policy
from states.vocabulary import Phase, Role
from tests.cli.conftest import invoke
from tests.walks import WALKS, Walk, run_walk
from workflow.cli.worklist import KEYS, MET_BY, roles_for
from workflow.clock import ManualClock
from workflow.service import PathwayService

ON = "2026-03-06"
DOCS = Path(__file__).resolve().parents[2] / "docs"
REGISTRY_ROLES = "transplant_coordinator quality_manager system"


@pytest.fixture
def three(service: PathwayService, clock: ManualClock, db_url: str) -> dict[str, str]:
    def walk(patient: str) -> Walk:  # one open pathway per patient
        auto = WALKS["autologous"]()
        return replace(auto, refer={**auto.refer, "patient_ref": patient})

    ids = {
        "follow_up": run_walk(service, clock, WALKS["autologous"](), until=Phase.FOLLOW_UP),
        "referred": run_walk(service, clock, walk("PT-2"), until=Phase.REFERRED),
        "conditioning": run_walk(service, clock, walk("PT-3"), until=Phase.CONDITIONING),
    }
    return {**ids, "db": db_url}


def _json(*args: str) -> list[dict[str, Any]]:
    result = invoke("worklist", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_worklist_lists_open_milestones_with_window_and_roles(three: dict[str, str]) -> None:
    rows = _json("--db", three["db"], "--on", ON)
    assert all(list(row) == list(KEYS) for row in rows)
    got = {(r["pathway"], r["milestone"], r["status"], r["opens"], r["closes"], r["roles"]) for r in rows}
    follow, cond = three["follow_up"], three["conditioning"]
    assert got == {
        (follow, "pre_transplant_form", "overdue", "2026-01-19", "2026-02-04", REGISTRY_ROLES),
        (follow, "day30_assessment", "due", "2026-03-04", "2026-03-11", "transplant_physician"),
        (cond, "pre_transplant_form", "overdue", "2026-01-19", "2026-02-04", REGISTRY_ROLES),
        (cond, "conditioning_dose", "overdue", "2026-02-02", "2026-02-02", "transplant_physician infusion_nurse"),
    }
    assert three["referred"] not in {r["pathway"] for r in rows}
    assert {r["day"] for r in rows} == {"D+30"}
    assert {(r["pathway"], r["phase"]) for r in rows} == {(follow, "follow_up"), (cond, "conditioning")}
    # overdue first, then by the day each fell due
    assert [r["status"] for r in rows] == ["overdue", "overdue", "overdue", "due"]
    assert rows[0]["milestone"] == "conditioning_dose"


def test_worklist_filters_by_role_and_overdue(three: dict[str, str]) -> None:
    base = ("--db", three["db"], "--on", ON)
    nurse = _json(*base, "--role", "infusion_nurse")
    assert [(r["pathway"], r["milestone"]) for r in nurse] == [(three["conditioning"], "conditioning_dose")]
    physician = {r["milestone"] for r in _json(*base, "--role", "transplant_physician")}
    assert physician == {"conditioning_dose", "day30_assessment"}
    overdue = _json(*base, "--overdue")
    assert {r["status"] for r in overdue} == {"overdue"}
    assert len(overdue) == 3
    assert _json(*base, "--overdue", "--role", "laboratory") == []
    # a week later the Day +30 window (Days +28..+35) has closed
    later = _json("--db", three["db"], "--on", "2026-03-13", "--role", "transplant_physician")
    assert ("day30_assessment", "overdue", "D+37") in {(r["milestone"], r["status"], r["day"]) for r in later}
    assert invoke("worklist", *base, "--role", "janitor").exit_code == 2
    assert invoke("worklist", "--db", three["db"], "--on", "06/03/2026").exit_code == 2


def _selects(service: PathwayService, read: Callable[[], object]) -> int:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(service.engine, "before_cursor_execute", count)
    try:
        read()
    finally:
        sa.event.remove(service.engine, "before_cursor_execute", count)
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


def test_worklist_reads_every_pathway_in_three_queries(
    service: PathwayService, clock: ManualClock, three: dict[str, str]
) -> None:
    """The stored schedules, then the snapshots and their series rows, however many pathways."""
    work = service.open_work(on=clock.now().date())
    assert {pathway_id for pathway_id, _, _ in work} >= {three["follow_up"], three["conditioning"]}
    assert _selects(service, lambda: service.open_work(on=clock.now().date())) == 3


def test_all_milestones_reads_only_the_stored_schedules(
    service: PathwayService, clock: ManualClock, three: dict[str, str]
) -> None:
    """One query, the `schedule` column: no snapshot is read or parsed."""
    assert set(service.all_milestones(at=clock.now())) >= {three["follow_up"], three["conditioning"]}
    assert _selects(service, lambda: service.all_milestones(at=clock.now())) == 1


def test_roles_follow_the_policy_role_table() -> None:
    assert roles_for("day30_assessment", Policy()) == (Role.TRANSPLANT_PHYSICIAN,)
    program = Policy(roles={"record_assessment": frozenset({Role.TRANSPLANT_COORDINATOR, Role.TRANSPLANT_PHYSICIAN})})
    assert roles_for("day30_assessment", program) == (Role.TRANSPLANT_PHYSICIAN, Role.TRANSPLANT_COORDINATOR)


def test_every_documented_milestone_has_its_command_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", (DOCS / "milestones.md").read_text(), re.M))
    assert documented == set(MET_BY)
    mapping = dict(re.findall(r"^\| `([a-z0-9_]+)` \| `([a-z0-9_]+)` \|", (DOCS / "worklist.md").read_text(), re.M))
    assert mapping == MET_BY
