"""`hsct audit log --format table|json|jsonl|csv` (the listing formats of workflow/cli/output.py,
piped output plain and unwrapped at COLUMNS=60), and `hsct audit checkpoint` writing a file by
default. The database is the autologous walk up to follow-up, kept by a scenario run."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.cli.conftest import walk_scenario
from workflow.cli import app
from workflow.cli.audit import FIELDS, PAYLOAD_FIELDS, TABLE_FIELDS
from workflow.service import PathwayService

BOXES = re.compile("[│┃━─┏┗┡╇]")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str | Path) -> Result:
    env = {"COLUMNS": "60", "NO_COLOR": None, "FORCE_COLOR": None}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("audit-formats")
    url = f"sqlite:///{folder / 'kept.sqlite'}"
    scenario = folder / "walk.yaml"
    scenario.write_text(yaml.safe_dump(walk_scenario("autologous", upto="complete_day100"), sort_keys=False))
    result = run("scenario", "run", "--db", url, scenario)
    assert result.exit_code == 0, result.output
    return url


def _entries(url: str) -> int:
    service = PathwayService(url)
    try:
        return sum(len(service.history(p)) for p in service.pathway_ids())
    finally:
        service.engine.dispose()


def _json(url: str, *args: str) -> list[dict[str, Any]]:
    result = run("audit", "log", "--db", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, list)
    return document


def test_piped_table_is_plain_and_unwrapped_at_60_columns(kept: str) -> None:
    result = run("audit", "log", "--db", kept)
    assert result.exit_code == 0, result.output
    assert not BOXES.search(result.stdout)
    assert not COLOUR.search(result.stdout)
    header, *rows, count = result.stdout.splitlines()
    assert header.split() == list(TABLE_FIELDS)
    assert len(header) > 60  # wider than the terminal, and not folded
    assert len(rows) == _entries(kept)
    assert all(len(row.split()) >= len(TABLE_FIELDS) for row in rows)  # empty cells are "-", never missing
    assert count == f"{len(rows)} entries"


def test_json_is_one_list_with_every_field_in_order(kept: str) -> None:
    rows = _json(kept)
    assert len(rows) == _entries(kept)
    assert all(list(row) == list(FIELDS) for row in rows)
    assert rows[0]["trigger"] == "refer"
    assert isinstance(rows[0]["reasons"], list)
    recorded = [row["recorded_at"] for row in rows]
    assert recorded == sorted(recorded)


def test_jsonl_has_the_json_rows_one_per_line(kept: str) -> None:
    result = run("audit", "log", "--db", kept, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == _json(kept)


def test_csv_has_a_header_and_the_json_rows(kept: str) -> None:
    result = run("audit", "log", "--db", kept, "--format", "csv")
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    rows = list(reader)
    assert reader.fieldnames == list(FIELDS)
    expected = _json(kept)
    assert [(r["sequence"], r["trigger"], r["hash"]) for r in rows] == [
        (str(e["sequence"]), e["trigger"], e["hash"]) for e in expected
    ]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_payloads_only_with_the_payload_option(kept: str, fmt: str) -> None:
    plain = run("audit", "log", "--db", kept, "--format", fmt)
    full = run("audit", "log", "--db", kept, "--format", fmt, "--payload")
    assert plain.exit_code == full.exit_code == 0
    assert "cd34_x10e6_per_kg" not in plain.stdout
    assert "cd34_x10e6_per_kg" in full.stdout
    header = full.stdout.splitlines()[0] if fmt == "csv" else ",".join(json.loads(full.stdout)[0])
    assert header.split(",")[-len(PAYLOAD_FIELDS) :] == list(PAYLOAD_FIELDS)


def test_filters_apply_to_every_format(kept: str) -> None:
    rows = _json(kept, "--trigger", "record_lab")
    assert rows
    assert {row["trigger"] for row in rows} == {"record_lab"}
    table = run("audit", "log", "--db", kept, "--trigger", "record_lab")
    assert table.stdout.splitlines()[-1] == f"{len(rows)} entries"


# --- checkpoint ---------------------------------------------------------------------------------


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "audit.pem"
    path.parent.mkdir()
    made = run("audit", "keygen", "--out", path)
    assert made.exit_code == 0, made.output
    return path


def test_checkpoint_writes_a_named_file_by_default(
    kept: str, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run("audit", "checkpoint", "--db", kept, "--key", key)
    assert result.exit_code == 0, result.output
    (written,) = work.iterdir()
    assert re.fullmatch(r"hsct-checkpoint-\d{8}T\d{6}Z\.json", written.name)
    assert f"checkpoint written to {written.resolve()}" in result.output.replace("\n", "")
    assert result.stdout == ""
    document = json.loads(written.read_text(encoding="utf-8"))
    assert document["entries"] == _entries(kept)
    verified = run("audit", "verify", "--db", kept, "--checkpoint", written)
    assert verified.exit_code == 0, verified.output


def test_checkpoint_to_stdout_with_a_dash(
    kept: str, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("audit", "checkpoint", "--db", kept, "--key", key, "--out", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == _entries(kept)
    assert not list(tmp_path.glob("hsct-checkpoint-*.json"))


def test_checkpoint_never_overwrites(kept: str, key: Path, tmp_path: Path) -> None:
    target = tmp_path / "cp.json"
    target.write_text("mine", encoding="utf-8")
    result = run("audit", "checkpoint", "--db", kept, "--key", key, "--out", target)
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "mine"
