"""T19: an export plus its checkpoint, verified by tools/verify_export.py in an isolated interpreter.

The verifier runs as `python -I -S` (no environment, no site-packages: only the standard
library), so it cannot import this library; a test proves that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from persistence.chain import entry_body
from states.errors import Refused
from states.vocabulary import Phase
from tests.audit.conftest import ISOLATED, VERIFIER, Key, privileged, run_verifier
from tests.cli.conftest import invoke
from tests.walks import COORD, PHYS, WALKS, run_walk
from workflow.audit import ExportFilters, export_log, generate_key
from workflow.audit.checkpoint import LogNotVerified, create_checkpoint
from workflow.audit.export import checkpoint_path_for
from workflow.clock import ManualClock
from workflow.service import PathwayService

HOSTILE_EVIDENCE = 'ECOG 1; "quoted", \\back\\, new\nline, tab\t, ü, \U0001f9ec, \u2028, =SUM(A1:A9), \x1b[31m'


def _pathways(service: PathwayService, clock: ManualClock) -> list[str]:
    """An autologous walk, a cord blood pathway with hostile free text, and a refusal."""
    first = run_walk(service, clock, WALKS["autologous"](), until=Phase.COLLECTION)
    second = run_walk(service, clock, WALKS["cord_blood"]().for_patient("PT-2"), until=Phase.EVALUATION)
    service.fire(second, "record_consent", {"consent_version": "v3"}, actor=COORD, at=clock.now())
    service.fire(second, "record_eligibility", {"evidence": HOSTILE_EVIDENCE}, actor=PHYS, at=clock.now())
    with pytest.raises(Refused):
        service.fire(second, "complete_day100", {}, actor=COORD, at=clock.now())
    return [first, second]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_and_its_checkpoint_verify_independently(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path, fmt: str
) -> None:
    ids = _pathways(service, clock)
    result = export_log(service, tmp_path / f"log.{fmt}", key=key.path, fmt=fmt)
    total = sum(len(service.history(pid)) for pid in ids)
    assert result.entries == total
    assert result.checkpoint_path == checkpoint_path_for(result.path)

    checked = run_verifier(result.path, "--public-key", key.public)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"verified: {total} entries in 2 pathways" in checked.stdout


def test_the_jsonl_lines_are_the_sealed_bodies_with_their_form_and_hash(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    ids = _pathways(service, clock)
    result = export_log(service, tmp_path / "log.jsonl", key=key.path)
    exported = [json.loads(line) for line in _lines(result.path)]
    expected = [
        {**json.loads(entry_body(e, e.sequence, e.prev_hash)), "form": 2, "hash": e.hash}
        for pid in sorted(ids)
        for e in service.history(pid)
    ]
    assert exported == expected
    assert any(record["payload"].get("evidence") == HOSTILE_EVIDENCE for record in exported)


def test_a_filtered_export_verifies_what_it_holds(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    _pathways(service, clock)
    result = export_log(service, tmp_path / "refusals.csv", key=key.path, fmt="csv",
                        filters=ExportFilters(kind="refusal"))
    assert result.entries == 1
    assert result.checkpoint.export is not None
    assert result.checkpoint.export["filters"] == {"kind": "refusal"}
    checked = run_verifier(result.path, "--public-key", key.public)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _edit_line(path: Path, index: int, old: bytes, new: bytes) -> None:
    lines = _lines(path)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("edit", "with_checkpoint", "without_checkpoint"),
    [
        ("changed byte", "SHA-256 differs", "sequence 3: the hash does not match"),
        ("line removed", "SHA-256 differs", "sequence 3: missing from an unfiltered export"),
        ("last line removed", "SHA-256 differs", None),  # a cut tail: only the checkpoint sees it
        ("lines swapped", "SHA-256 differs", None),  # order is not evidence; the file digest is
    ],
)
def test_an_edited_export_is_caught(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path, edit: str, with_checkpoint: str,
    without_checkpoint: str | None,
) -> None:
    ids = _pathways(service, clock)
    path = export_log(service, tmp_path / "log.jsonl", key=key.path).path
    first = sorted(ids)[0]
    lines = _lines(path)
    if edit == "changed byte":
        _edit_line(path, 2, b'"actor_id":"', b'"actor_id":"X')
    elif edit == "line removed":
        path.write_bytes(b"".join(lines[:2] + lines[3:]))
    elif edit == "last line removed":
        path.write_bytes(b"".join(lines[:-1]))
    else:
        path.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))

    caught = run_verifier(path, "--public-key", key.public)
    assert caught.returncode == 1
    assert with_checkpoint in caught.stdout
    alone = run_verifier(path, "--no-checkpoint")
    if without_checkpoint is None:
        assert alone.returncode == 0, alone.stdout
    else:
        assert alone.returncode == 1
        assert f"FAILED: pathway {first} {without_checkpoint}" in alone.stdout


def test_an_export_re_signed_by_a_forger_fails_the_pinned_key(
    service: PathwayService, clock: ManualClock, key: Key, tmp_path: Path
) -> None:
    _pathways(service, clock)
    result = export_log(service, tmp_path / "log.jsonl", key=key.path)
    forger = tmp_path / "forger.pem"
    generate_key(forger)
    # The forger cuts the last entry and signs a checkpoint naming the cut file as "filtered".
    result.path.write_bytes(b"".join(_lines(result.path)[:-1]))
    data = json.loads(result.checkpoint_path.read_text(encoding="utf-8"))
    export = dict(data["export"], sha256=hashlib.sha256(result.path.read_bytes()).hexdigest(),
                  entries=data["export"]["entries"] - 1, filters={"kind": "event"})
    result.checkpoint_path.write_text(create_checkpoint(service, forger, export=export).to_json(), encoding="utf-8")
    assert run_verifier(result.path).returncode == 0  # on its own word only
    pinned = run_verifier(result.path, "--public-key", key.public)
    assert pinned.returncode == 1
    assert "another key" in pinned.stdout


def test_a_broken_log_is_not_exported(db_url: str, clock: ManualClock, key: Key, tmp_path: Path) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    try:
        first, _ = _pathways(service, clock)
        with privileged(service.engine) as sql:
            sql("UPDATE entries SET reason = 'x' WHERE pathway_id = ? AND sequence = 2", first)
        with pytest.raises(LogNotVerified):
            export_log(service, tmp_path / "log.jsonl", key=key.path)
        assert list(tmp_path.glob("log.jsonl*")) == []
        result = invoke("audit", "export", "--db", db_url, "--key", key.path, "--out", tmp_path / "log.jsonl")
        assert result.exit_code == 1
        assert f"first bad pathway {first} at sequence 2" in result.output
        assert list(tmp_path.glob("log.jsonl*")) == []
    finally:
        service.engine.dispose()


def test_cli_export_then_verify(service: PathwayService, clock: ManualClock, db_url: str, key: Key,
                                tmp_path: Path) -> None:
    ids = _pathways(service, clock)
    out = tmp_path / "log.csv"
    result = invoke("audit", "export", "--db", db_url, "--key", key.path, "--out", out, "--format", "csv",
                    "--pathway", ids[1], "--since", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert run_verifier(out, "--public-key", key.public).returncode == 0
    assert invoke("audit", "export", "--db", db_url, "--key", key.path, "--out", out).exit_code == 2  # exists


def test_the_verifier_cannot_import_the_library() -> None:
    probe = subprocess.run([*ISOLATED, "-c", "import workflow"], capture_output=True, text=True, check=False)
    assert probe.returncode == 1
    assert "No module named 'workflow'" in probe.stderr


# --- the verifier's own Ed25519 (RFC 8032 verification, standard library only) ---------------


def _verifier_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", VERIFIER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
RFC_VECTORS = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        b"",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        b"\x72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("public", "message", "signature"), RFC_VECTORS)
def test_ed25519_matches_rfc_8032(public: str, message: bytes, signature: str) -> None:
    verify = _verifier_module().ed25519_verify
    assert verify(bytes.fromhex(public), message, bytes.fromhex(signature))
    bad = bytearray.fromhex(signature)
    bad[5] ^= 1
    assert not verify(bytes.fromhex(public), message, bytes(bad))
    assert not verify(bytes.fromhex(public), message + b"x", bytes.fromhex(signature))


def test_ed25519_agrees_with_cryptography() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    verify = _verifier_module().ed25519_verify
    for n in range(8):
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        message = json.dumps({"n": n, "ü": "\U0001f9ec" * n}).encode()
        signature = private.sign(message)
        assert verify(public, message, signature)
        assert not verify(public, message[:-1], signature)
        order = 2**252 + 27742317777372353535851937790883648493
        s = int.from_bytes(signature[32:], "little") + order  # the malleable twin RFC 8032 rejects
        if s < 2**256:
            assert not verify(public, message, signature[:32] + s.to_bytes(32, "little"))
