"""`hsct policy list | show | diff | add | adopt [--dry-run]` and `hsct audit rejudge`.

The changed policy narrows `record_consent` to physicians; PATHWAY.md Roles lets coordinators
record consent by default, so that is the verdict a dry run must show changing.
"""

from __future__ import annotations

import json
from pathlib import Path

from persistence.store import Store
from states.entry import Draft
from states.vocabulary import EntryKind, Phase, Role
from tests.cli.conftest import invoke
from tests.walks import PATIENT, PHYS
from workflow.service import PathwayService

NARROW_TOML = 'version = "narrow-2026.2"\n\n[roles]\nrecord_consent = ["transplant_physician"]\n'


def _database(tmp_path: Path) -> tuple[str, str, str]:
    """(url, a referred pathway, the default policy's version)."""
    url = f"sqlite:///{tmp_path}/hsct.sqlite"
    service = PathwayService(url, auto_upgrade=True)
    try:
        referral = {"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc"}
        pathway_id = service.refer(referral, actor=PHYS, at=service.clock.now()).pathway_id
        return url, pathway_id, service.policy.version_id
    finally:
        service.engine.dispose()


def test_policy_add_list_show_and_diff(tmp_path: Path) -> None:
    url, _, default = _database(tmp_path)
    (tmp_path / "narrow.toml").write_text(NARROW_TOML, encoding="utf-8")
    added = invoke("policy", "add", tmp_path / "narrow.toml", "--db", url)
    assert added.exit_code == 0, added.output
    assert "narrow-2026.2: registered" in added.output
    assert "already registered" in invoke("policy", "add", tmp_path / "narrow.toml", "--db", url).output

    listed = json.loads(invoke("policy", "list", "--db", url, "--format", "json").output)
    assert [(row["version"], row["entries"]) for row in listed] == [(default, 1), ("narrow-2026.2", 0)]

    shown = invoke("policy", "show", "narrow-2026.2", "--db", url)
    assert shown.exit_code == 0
    assert json.loads(shown.output)["roles"]["record_consent"] == ["transplant_physician"]

    compared = invoke("policy", "diff", default, "narrow-2026.2", "--db", url, "--format", "json")
    assert compared.exit_code == 1
    rows = {row["field"]: row for row in json.loads(compared.output)}
    assert set(rows) == {"version", "roles.record_consent"}
    assert rows["roles.record_consent"]["b"] == '["transplant_physician"]'
    assert invoke("policy", "show", "nope", "--db", url).exit_code == 2


def test_adopt_dry_run_shows_the_verdicts_that_change_then_adopts(tmp_path: Path) -> None:
    url, pathway_id, default = _database(tmp_path)
    (tmp_path / "narrow.toml").write_text(NARROW_TOML, encoding="utf-8")
    invoke("policy", "add", tmp_path / "narrow.toml", "--db", url)

    dry = invoke("policy", "adopt", pathway_id, "--version", "narrow-2026.2", "--dry-run", "--db", url)
    assert dry.exit_code == 0, dry.output
    assert f"policy {default} -> narrow-2026.2 (dry run)" in dry.output
    assert "open milestones: unchanged" in dry.output
    assert "record_consent as transplant_coordinator: passes -> role_not_permitted" in dry.output
    assert "record_consent as transplant_physician" not in dry.output

    adopt = ["policy", "adopt", pathway_id, "--version", "narrow-2026.2", "--db", url]
    assert invoke(*adopt).exit_code == 2  # no reason, no actor
    done = invoke(*adopt, "--reason", "programme policy 2026.2", "--actor-id", "qm-okafor", "--role",
                  "quality_manager")
    assert done.exit_code == 0, done.output
    assert "now judged under policy narrow-2026.2 (entry 2)" in done.output
    assert invoke("audit", "rejudge", "--db", url).exit_code == 0


def test_audit_rejudge_names_the_entry_whose_verdict_does_not_follow(tmp_path: Path) -> None:
    url, pathway_id, default = _database(tmp_path)
    service = PathwayService(url)
    try:
        now = service.clock.now()
        with service.engine.begin() as connection:
            store = Store(connection)
            record = store.load(pathway_id)
            assert record is not None
            forged = Draft(
                pathway_id=pathway_id, kind=EntryKind.REFUSAL, trigger="begin_evaluation",
                from_phase=Phase.REFERRED, to_phase=Phase.REFERRED, effective_at=now, recorded_at=now,
                actor_id="co-ames", actor_role=Role.TRANSPLANT_COORDINATOR, reasons=("role_not_permitted",),
                policy_version=default, origin="live", release="0.1.0",
            )
            store.append(pathway_id, forged, expected_version=1, head_hash=record.head_hash, phase=Phase.REFERRED,
                         facts_json=None, now=now, unchanged_digest=record.facts_digest)
    finally:
        service.engine.dispose()
    result = invoke("audit", "rejudge", "--db", url, "--format", "json")
    assert result.exit_code == 1
    [row] = json.loads(result.stdout)
    assert (row["pathway_id"], row["sequence"], row["stored"], row["recomputed"]) == (
        pathway_id, 2, "role_not_permitted", "passes")
    assert "role_not_held" in result.stderr
