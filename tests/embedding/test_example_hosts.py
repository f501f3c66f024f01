"""The two example hosts under examples/, on both backends: their own tables and Alembic
history beside the library's, refusals that outlive the host's rollback, after-commit news."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from mypy import api

from examples.fastapi_host.app import create_app
from examples.fastapi_host.app import migrate as migrate_fastapi_host
from persistence.schema import VERSION_TABLE, head_revision
from tests.invariants import assert_invariants

ROOT = Path(__file__).resolve().parents[2]
PHYSICIAN = {"X-User-Id": "dr-ross", "X-User-Role": "transplant_physician"}
COORDINATOR = {"X-User-Id": "co-ames", "X-User-Role": "transplant_coordinator"}


def revisions(url: str) -> tuple[str, str]:
    """(the host's revision, the library's revision)."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        host = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        library = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
    engine.dispose()
    return host, library


def test_the_sqlalchemy_host(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.sqlalchemy_host.app", db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    # Heard after commit: the referral and the two committed commands, never the rolled-back one.
    assert [line for line in lines if line.startswith("committed:")] == [
        "committed: refer (seq 1, now referred)",
        "committed: begin_evaluation (seq 3, now evaluation)",
        "committed: record_consent (seq 4, now evaluation)",
    ]
    # complete_evaluation from `referred`: not allowed there, and no consent or eligibility yet.
    assert "refused: trigger_not_allowed_in_phase, consent_missing, eligibility_missing" in lines
    assert "care tasks: 1" in lines  # the rolled-back transactions took their tasks with them
    assert "log: transition, refusal, transition, event" in lines
    assert revisions(db_url) == ("h001", head_revision())
    engine = sa.create_engine(db_url)
    assert_invariants(engine)
    engine.dispose()


def test_the_fastapi_host(db_url: str) -> None:
    heard: list[str] = []
    app = create_app(db_url, notify=heard)
    service = app.state.service
    try:
        with TestClient(app) as client:
            referral = {"patient_ref": "PT-0FA571", "route": "autologous", "graft_source": "pbsc"}
            created = client.post("/referrals", json=referral, headers=PHYSICIAN)
            assert created.status_code == 201, created.text
            pathway = created.json()["pathway_id"]

            refused = client.post(f"/pathways/{pathway}/complete_evaluation", json={}, headers=PHYSICIAN)
            assert refused.status_code == 409
            assert refused.json()["detail"]["reasons"][0] == "trigger_not_allowed_in_phase"
            assert client.get(f"/pathways/{pathway}").json() == {"phase": "referred", "log": ["transition", "refusal"]}

            passed = client.post(f"/pathways/{pathway}/begin_evaluation", json={}, headers=COORDINATOR)
            assert passed.status_code == 200, passed.text
            assert passed.json()["sequence"] == 3

            misspelt = client.post(f"/pathways/{pathway}/begin_evalution", json={}, headers=COORDINATOR)
            assert misspelt.status_code == 422
            assert "did you mean begin_evaluation" in misspelt.text
        with service.engine.connect() as connection:
            logged = connection.execute(sa.text("SELECT command FROM command_log")).scalars().all()
            requests = connection.execute(sa.text("SELECT count(*) FROM referral_requests")).scalar_one()
        assert logged == ["begin_evaluation"]  # the host's rows of the refused and the invalid one went
        assert requests == 1
        assert heard == ["refer:referred", "begin_evaluation:evaluation"]
        assert revisions(db_url) == ("f001", head_revision())
        migrate_fastapi_host(db_url)  # both histories at head: a second upgrade changes nothing
        assert revisions(db_url) == ("f001", head_revision())
        assert_invariants(service.engine)
    finally:
        service.engine.dispose()


def test_the_example_hosts_type_check(tmp_path: Path) -> None:
    out, err, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "-p",
            "examples.sqlalchemy_host",
            "-p",
            "examples.fastapi_host",
        ]
    )
    assert status == 0, out + err
