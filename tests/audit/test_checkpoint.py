"""Signed checkpoints: the key stays in a file, the root is the documented hash, edits are refused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from states.vocabulary import Phase
from tests.audit.conftest import Key, privileged
from tests.cli.conftest import invoke
from tests.walks import PHYS, WALKS, run_walk
from workflow.audit import (
    CheckpointInvalid,
    Head,
    create_checkpoint,
    generate_key,
    load_checkpoint,
    root_of,
    verify_log,
)
from workflow.audit.checkpoint import LogNotVerified, load_private_key
from workflow.clock import ManualClock
from workflow.service import PathwayService


def _two_pathways(service: PathwayService, clock: ManualClock) -> list[str]:
    return [
        run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION),
        run_walk(service, clock, WALKS["cord_blood"]().for_patient("PT-2"), until=Phase.DONOR_SEARCH),
    ]


def test_the_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    public = generate_key(path)
    assert len(bytes.fromhex(public)) == 32
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o644)
        with pytest.raises(CheckpointInvalid, match="readable by others"):
            load_private_key(path)
        path.chmod(0o600)
    load_private_key(path)
    with pytest.raises(FileExistsError):
        generate_key(path)


def test_a_checkpoint_lists_every_head_and_signs_them_at_the_service_clock(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    ids = _two_pathways(service, clock)
    clock.set(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))
    checkpoint = create_checkpoint(service, key.path)
    path = checkpoint.write(tmp_path / "cp.json")

    data = json.loads(path.read_text(encoding="utf-8"))
    logs = {pid: service.history(pid) for pid in ids}
    assert data["heads"] == {pid: {"entries": len(log), "hash": log[-1].hash} for pid, log in logs.items()}
    assert data["created_at"] == "2026-03-01T12:00:00.123456Z"
    assert (data["pathways"], data["entries"]) == (2, sum(len(log) for log in logs.values()))
    assert data["public_key"] == key.public
    # The root, computed as docs/audit.md says: sha256 of the canonical JSON of the heads.
    canonical = json.dumps(data["heads"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert data["root"] == hashlib.sha256(canonical).hexdigest() == root_of(checkpoint.heads)
    loaded = load_checkpoint(path, public_key=key.public)
    assert loaded.heads == checkpoint.heads
    assert loaded.created_at == checkpoint.created_at


def test_the_log_may_grow_after_a_checkpoint(service: PathwayService, clock: ManualClock, key: Key) -> None:
    first, _ = _two_pathways(service, clock)
    checkpoint = create_checkpoint(service, key.path)
    service.fire(first, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS, at=clock.now())
    third = run_walk(service, clock, WALKS["autologous"]().for_patient("PT-3"), until=Phase.EVALUATION)
    verification = verify_log(service, checkpoint=checkpoint)
    assert verification.ok
    assert third in verification.heads


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["heads"].popitem(), "root"),
        (lambda d: d.update(root=root_of({"x": Head(1, "0" * 64)})), "root"),
        (lambda d: d.update(created_at="2026-03-02T12:00:00.000000Z"), "signature"),
        (lambda d: d.update(entries=d["entries"] + 1), "totals"),
        (lambda d: d.update(signature="00" * 64), "signature"),
        (lambda d: d.update(format="hsct-checkpoint/0"), "format"),
        (lambda d: d.update(extra=1), "members"),
    ],
    ids=["head removed", "root replaced", "time changed", "totals changed", "signature replaced", "format",
         "extra member"],
)
def test_an_edited_checkpoint_is_refused(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path, edit: object, message: str
) -> None:
    _two_pathways(service, clock)
    data = json.loads(create_checkpoint(service, key.path).to_json())
    edit(data)  # type: ignore[operator]
    with pytest.raises(CheckpointInvalid, match=message):
        load_checkpoint(json.dumps(data).encode())


def test_a_checkpoint_re_signed_by_a_forger_fails_the_pinned_key(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    _two_pathways(service, clock)
    other = tmp_path / "forger.pem"
    generate_key(other)
    forged = create_checkpoint(service, other).to_json().encode()
    assert load_checkpoint(forged)  # valid on its own word
    with pytest.raises(CheckpointInvalid, match="another key"):
        load_checkpoint(forged, public_key=key.public)


def test_no_checkpoint_of_a_broken_log(db_url: str, clock: ManualClock, key: Key) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        first, _ = _two_pathways(service, clock)
        with privileged(service.engine) as sql:
            sql("UPDATE entries SET actor_id = 'x' WHERE pathway_id = ? AND sequence = 2", first)
        with pytest.raises(LogNotVerified) as info:
            create_checkpoint(service, key.path)
        assert info.value.verification.first is not None
        assert info.value.verification.first.pathway_id == first
        result = invoke("audit", "checkpoint", "--db", db_url, "--key", key.path)
        assert result.exit_code == 1
        assert "no checkpoint written" in result.output
    finally:
        service.engine.dispose()


def test_cli_keygen_checkpoint_and_verify_against_it(
    service: PathwayService, clock: ManualClock, db_url: str, tmp_path: Path
) -> None:
    first, _ = _two_pathways(service, clock)
    key_path, checkpoint_path = tmp_path / "k.pem", tmp_path / "cp.json"
    made = invoke("audit", "keygen", "--out", key_path)
    assert made.exit_code == 0, made.output
    public = made.stdout.strip()
    assert invoke("audit", "keygen", "--out", key_path).exit_code == 2  # never overwritten
    signed = invoke("audit", "checkpoint", "--db", db_url, "--key", key_path, "--out", checkpoint_path)
    assert signed.exit_code == 0, signed.output
    service.fire(first, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS, at=clock.now())

    ok = invoke("audit", "verify", "--db", db_url, "--checkpoint", checkpoint_path, "--public-key", public)
    assert ok.exit_code == 0, ok.output
    assert "reaches its checkpointed head" in ok.stdout
    (tmp_path / "pub.hex").write_text(public + "\n", encoding="utf-8")
    assert invoke("audit", "verify", "--db", db_url, "--checkpoint", checkpoint_path, "--public-key",
                  tmp_path / "pub.hex").exit_code == 0
    wrong = invoke("audit", "verify", "--db", db_url, "--checkpoint", checkpoint_path, "--public-key", "ab" * 32)
    assert wrong.exit_code == 1
    assert "checkpoint rejected" in wrong.output


def test_cli_verify_against_a_checkpoint_catches_truncation(
    db_url: str, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        first, _ = _two_pathways(service, clock)
        with privileged(service.engine) as sql:
            [(facts_before,)] = sql("SELECT facts FROM pathways WHERE id = ?", first)
        service.fire(first, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS, at=clock.now())
        log = service.history(first)  # ends on an event: cutting it leaves the phase as it is
        create_checkpoint(service, key.path).write(tmp_path / "cp.json")
        with privileged(service.engine) as sql:  # the row rewound in full, facts included
            sql("DELETE FROM entries WHERE pathway_id = ? AND sequence = ?", first, len(log))
            sql("UPDATE pathways SET version = ?, head_hash = ?, facts = ? WHERE id = ?",
                len(log) - 1, log[-2].hash, facts_before, first)
        assert invoke("audit", "verify", "--db", db_url).exit_code == 0  # the chain alone cannot tell
        caught = invoke("audit", "verify", "--db", db_url, "--checkpoint", tmp_path / "cp.json")
        assert caught.exit_code == 1
        assert f"first bad pathway {first} at sequence {len(log)}" in caught.stdout
        assert "[checkpoint]" in caught.stdout
    finally:
        service.engine.dispose()
