"""`hsct pathway`, `hsct audit log` and `hsct db` on databases a scenario run kept."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from persistence.schema import head_revision
from tests.cli.conftest import invoke, walk_scenario
from tests.walks import COORD, PATIENT, WALKS
from workflow.service import PathwayService

Write = Callable[..., Path]

AUTO_DAY0 = "2026-02-04"


def _ids(url: str) -> list[str]:
    service = PathwayService(url)
    try:
        return service.pathway_ids()
    finally:
        service.engine.dispose()


@pytest.fixture
def kept(write: Write, sqlite_url: str) -> str:
    """An autologous pathway walked to follow-up (engraftment confirmed on Day +14), plus a refusal."""
    data = walk_scenario("autologous", upto="complete_day100")
    data["actors"]["rn-lee"] = {"role": "infusion_nurse"}
    data["steps"].append({"on": "2026-02-20", "by": "rn-lee", "do": "complete_day100",
                          "expect": {"refused": ["role_not_permitted"]}})
    result = invoke("scenario", "run", "--db", sqlite_url, write(data))
    assert result.exit_code == 0, result.output
    return sqlite_url


def _jsonl(url: str, *args: str) -> list[dict[str, Any]]:
    result = invoke("audit", "log", "--db", url, "--format", "jsonl", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- pathway ---------------------------------------------------------------------------------


def test_pathway_list_shows_each_pathway_and_filters_by_phase(kept: str) -> None:
    (pathway_id,) = _ids(kept)
    result = invoke("pathway", "list", "--db", kept)
    assert result.exit_code == 0, result.output
    assert pathway_id in result.stdout
    assert "follow_up" in result.stdout
    assert "autologous" in result.stdout
    assert "1 pathway(s)" in result.stdout
    assert PATIENT not in result.stdout
    empty = invoke("pathway", "list", "--db", kept, "--phase", "conditioning")
    assert "0 pathway(s)" in empty.stdout
    assert invoke("pathway", "list", "--db", kept, "--phase", "nowhere").exit_code == 2


def test_pathway_show_gives_phase_days_and_the_timeline(kept: str) -> None:
    (pathway_id,) = _ids(kept)
    walk = WALKS["autologous"]()
    with freeze_time("2026-05-10 12:00:00+00:00"):  # Day +95 of the autologous walk
        result = invoke("pathway", "show", pathway_id, "--db", kept)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "phase: follow_up" in out
    assert f"Day 0: {AUTO_DAY0}" in out
    assert "neutrophil recovery: 2026-02-15 (D+11)" in out
    # Day +95 lies in the Day +100 window (85..115) [F:CIBMTR-CONTACT]; the walk sent no Pre-TED,
    # due by Day 0 [F:CIBMTR-2400].
    assert "due: day100_assessment" in out
    assert "overdue: pre_transplant_form" in out
    # piped, the timeline is a plain table: a header line, then every entry of the walk, the
    # referral and the refusal, each on a line with its Day label
    timeline = out[out.index("\nsequence "):]
    rows = timeline.splitlines()[2:]
    upto = next(i for i, step in enumerate(walk.steps) if step[2] == "complete_day100")
    assert len(rows) == 1 + upto + 1
    infuse = next(line for line in rows if " infuse " in line)
    assert " D0 " in infuse
    assert "conditioning -> awaiting_engraftment" in infuse
    conditioning = next(line for line in rows if "start_conditioning" in line)
    assert " D-2 " in conditioning  # 2026-02-02, two days before Day 0
    refusal = rows[-1]
    assert "refusal" in refusal
    assert "role_not_permitted" in refusal
    assert "D+16" in refusal
    assert PATIENT not in out


def test_pathway_show_at_replays_what_was_recorded_by_then(kept: str) -> None:
    (pathway_id,) = _ids(kept)
    result = invoke("pathway", "show", pathway_id, "--db", kept, "--at", "2026-01-13")
    assert result.exit_code == 0, result.output
    assert "phase: collection" in result.stdout  # complete_evaluation on 2026-01-12 (autologous)
    assert "start_mobilization" not in result.stdout  # 2026-01-14
    assert "complete_evaluation" in result.stdout
    before = invoke("pathway", "show", pathway_id, "--db", kept, "--at", "2026-01-01")
    assert before.exit_code == 2
    bad = invoke("pathway", "show", pathway_id, "--db", kept, "--at", "yesterday")
    assert bad.exit_code == 2


def test_pathway_show_unknown_id_and_missing_database(kept: str, tmp_path: Path) -> None:
    unknown = invoke("pathway", "show", "no-such-id", "--db", kept)
    assert unknown.exit_code == 2
    assert "no pathway with id" in unknown.stderr
    missing = tmp_path / "absent.sqlite"
    result = invoke("pathway", "list", "--db", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert "no database file" in result.stderr
    assert not missing.exists()


# --- audit -----------------------------------------------------------------------------------


def test_audit_log_jsonl_lists_every_entry_without_payloads(kept: str) -> None:
    walk = WALKS["autologous"]()
    upto = next(i for i, step in enumerate(walk.steps) if step[2] == "complete_day100")
    rows = _jsonl(kept)
    assert len(rows) == 1 + upto + 1
    assert [r["sequence"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["trigger"] == "refer"
    assert rows[0]["kind"] == "transition"
    assert "payload" not in rows[0]
    assert PATIENT not in json.dumps(rows)
    with_payload = _jsonl(kept, "--payload")
    assert with_payload[0]["payload"]["patient_ref"] == PATIENT


def test_audit_log_filters(kept: str) -> None:
    (pathway_id,) = _ids(kept)
    assert {r["actor_id"] for r in _jsonl(kept, "--actor", COORD["id"])} == {COORD["id"]}
    assert [r["trigger"] for r in _jsonl(kept, "--trigger", "infuse")] == ["infuse"]
    refusals = _jsonl(kept, "--kind", "refusal")
    # Day +16 is outside the Day 100 window (85..115) as well [F:CIBMTR-CONTACT]
    assert [(r["trigger"], set(r["reasons"])) for r in refusals] == [
        ("complete_day100", {"role_not_permitted", "outside_day100_window"})
    ]
    assert len(_jsonl(kept, "--pathway", pathway_id)) == len(_jsonl(kept))
    window = _jsonl(kept, "--since", "2026-01-18", "--until", "2026-01-19")
    assert [(r["trigger"], r["recorded_at"][:10]) for r in window] == [
        ("record_collection", "2026-01-18"),
        ("record_collection", "2026-01-19"),
        ("cryopreserve_product", "2026-01-19"),
        ("cryopreserve_product", "2026-01-19"),
    ]
    assert invoke("audit", "log", "--db", kept, "--pathway", "other").exit_code == 2
    assert invoke("audit", "log", "--db", kept, "--kind", "sideways").exit_code == 2
    assert invoke("audit", "log", "--db", kept, "--since", "last week").exit_code == 2


def test_audit_log_csv_and_table(kept: str) -> None:
    result = invoke("audit", "log", "--db", kept, "--format", "csv", "--trigger", "complete_day100")
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["kind"], row["actor_role"]) == ("refusal", "infusion_nurse")
    assert set(row["reasons"].split()) == {"role_not_permitted", "outside_day100_window"}
    assert "payload" not in row
    table = invoke("audit", "log", "--db", kept, "--kind", "refusal")
    assert table.exit_code == 0, table.output
    assert "complete_day100" in table.stdout
    assert "role_not_permitted" in table.stdout
    assert "1 entry" in table.stdout


# --- db --------------------------------------------------------------------------------------


def test_db_upgrade_and_current_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    head = head_revision()
    before = invoke("db", "current", "--db", url)
    assert before.exit_code == 0, before.output
    assert "no database file" in before.stdout
    assert not (tmp_path / "fresh.sqlite").exists()
    up = invoke("db", "upgrade", "--db", url)
    assert up.exit_code == 0, up.output
    assert f"to revision {head}" in up.stdout
    now = invoke("db", "current", "--db", url)
    assert f"revision {head} (head {head}): at head" in now.stdout
    again = invoke("db", "upgrade", "--db", url)
    assert f"already at revision {head}" in again.stdout


def test_db_current_on_an_empty_file_says_there_is_no_schema(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite").write_bytes(b"")
    result = invoke("db", "current", "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert result.exit_code == 0, result.output
    assert "revision none" in result.stdout
    assert "run `hsct db upgrade`" in result.stdout


def test_db_errors_never_print_the_password() -> None:
    url = "postgresql+psycopg://auditor:s3cret-pw@127.0.0.1:1/hsct"
    result = invoke("db", "current", "--db", url)
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.output
    assert "auditor:***@127.0.0.1:1/hsct" in result.stderr


def test_an_unsupported_or_unparsable_url_is_a_usage_error() -> None:
    assert invoke("db", "current", "--db", "mysql://u:p@h/db").exit_code == 2
    garbled = invoke("pathway", "list", "--db", "::not a url s3cret::")
    assert garbled.exit_code == 2
    assert "s3cret" not in garbled.output


def test_scenario_run_on_each_backend(write: Write, db_url: str) -> None:
    """The same commands on SQLite and (when configured) PostgreSQL: upgrade, run, read."""
    assert invoke("db", "upgrade", "--db", db_url).exit_code == 0
    data = walk_scenario("matched_sibling", upto="clear_donor")
    result = invoke("scenario", "run", "--db", db_url, write(data))
    assert result.exit_code == 0, result.output
    listed = invoke("pathway", "list", "--db", db_url)
    assert "donor_workup" in listed.stdout
    assert "matched_sibling" in listed.stdout
    rows = _jsonl(db_url, "--kind", "transition")
    assert [r["to_phase"] for r in rows] == ["referred", "evaluation", "donor_search", "donor_workup"]
