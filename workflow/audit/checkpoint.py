"""Signed checkpoints: every pathway's head at one moment, a root over them, an Ed25519 signature.

The chain proves each log is internally consistent; it cannot prove the log is still as
long as it was, or that nobody with database access recomputed it from the first entry.
A checkpoint kept outside the database (with the auditor, in WORM storage, in a ticket) can:
`verify_log(checkpoint=...)` fails when a listed pathway lost entries or its entry at the
listed position no longer has the listed hash.

The signing key lives in a file (`generate_key`), never in the database: someone able to
rewrite the database must not also be able to sign. The checkpoint carries the public key;
an auditor pins the key they trust (`load_checkpoint(..., public_key=...)`), otherwise a
forger could sign a rewritten log with a key of their own.

Wire format (docs/audit.md): a JSON object with `format`, `created_at` (the service clock),
`pathways`, `entries`, `heads` ({pathway_id: {"entries": n, "hash": h}}), `root`
(sha256 hex of the canonical JSON of `heads`), `export` (null, or what an export file holds),
`public_key` (32 bytes, hex) and `signature` (64 bytes, hex): Ed25519 over the canonical JSON
of every other member. Canonical JSON is docs/canonical-form.md's.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from persistence.chain import canonical_json, format_datetime
from states.errors import HsctError
from workflow.audit.verify import Head, Verification, verify_log
from workflow.input_limits import MAX_CHECKPOINT_BYTES, LimitExceeded, parse_json, read_bounded

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from workflow.service import PathwayService

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointInvalid",
    "CheckpointMalformed",
    "LogNotVerified",
    "create_checkpoint",
    "generate_key",
    "load_checkpoint",
    "load_private_key",
    "root_of",
]

FORMAT: Final = "hsct-checkpoint/1"
_MEMBERS: Final = frozenset(
    {"format", "created_at", "pathways", "entries", "heads", "root", "export", "public_key", "signature"}
)
_HEX = frozenset("0123456789abcdef")


class CheckpointInvalid(HsctError):
    """The checkpoint file is malformed, its root or signature is wrong, or its key is not the trusted one."""


class CheckpointMalformed(CheckpointInvalid):
    """The file is not a checkpoint at all (too large, too deep, not JSON, wrong members or types):
    bad input (`hsct` exits 2), where a wrong root or signature is a failed check (exit 1)."""


class LogNotVerified(HsctError):
    """Refused to sign: the log failed verification (signing it would bless the damage)."""

    def __init__(self, verification: Verification) -> None:
        self.verification = verification
        first = verification.first
        super().__init__(f"the log does not verify ({len(verification.problems)} problem(s), first: {first})")


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - the audit extra is installed in dev
        raise HsctError(
            "signed checkpoints need the `cryptography` package: pip install 'hsct-pathway[audit]'"
        ) from None
    return ed25519


def root_of(heads: Mapping[str, Head]) -> str:
    """sha256 (hex) of the canonical JSON of {pathway_id: {"entries": n, "hash": h}}: keys sorted."""
    return hashlib.sha256(canonical_json(_heads_json(heads))).hexdigest()


def _heads_json(heads: Mapping[str, Head]) -> dict[str, dict[str, Any]]:
    return {pid: {"entries": head.entries, "hash": head.hash} for pid, head in heads.items()}


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of every pathway's head; see the module docstring for the form."""

    created_at: datetime
    heads: Mapping[str, Head] = field(repr=False)
    root: str
    public_key: str
    signature: str
    export: Mapping[str, Any] | None = None

    @property
    def entries(self) -> int:
        return sum(head.entries for head in self.heads.values())

    @property
    def pathways(self) -> int:
        return len(self.heads)

    def signed_members(self) -> dict[str, Any]:
        """Every member but the signature: what the signature covers (as canonical JSON)."""
        return {
            "format": FORMAT,
            "created_at": format_datetime(self.created_at),
            "pathways": self.pathways,
            "entries": self.entries,
            "heads": _heads_json(self.heads),
            "root": self.root,
            "export": None if self.export is None else dict(self.export),
            "public_key": self.public_key,
        }

    def message(self) -> bytes:
        return canonical_json(self.signed_members())

    def to_json(self) -> str:
        """Indented for people; the signature does not depend on the layout."""
        return json.dumps({**self.signed_members(), "signature": self.signature}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_text(self.to_json(), encoding="utf-8")
        return target


# --- keys ----------------------------------------------------------------------------------


def generate_key(path: str | os.PathLike[str]) -> str:
    """Write a new Ed25519 private key (PEM, PKCS#8) readable by its owner only; return the public key (hex).

    Refuses to overwrite an existing file: losing the old key would orphan its checkpoints.
    """
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return _public_hex(key)


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The signing key from its file; refused when others may read it (as ssh refuses)."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    target = Path(path)
    if os.name == "posix" and stat.S_IMODE(target.stat().st_mode) & 0o077:
        raise CheckpointInvalid(f"the key file {target} is readable by others: chmod 600 it")
    try:
        key = serialization.load_pem_private_key(target.read_bytes(), password=None)
    except ValueError:
        raise CheckpointInvalid(f"{target} is not an unencrypted PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise CheckpointInvalid(f"{target} is not an Ed25519 key")
    return cast("Ed25519PrivateKey", key)


def _public_hex(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


# --- making and reading checkpoints ----------------------------------------------------------


def create_checkpoint(
    service: PathwayService,
    key: str | os.PathLike[str] | Ed25519PrivateKey,
    *,
    verification: Verification | None = None,
    export: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Verify the log (unless `verification` of it is given) and sign its heads at the service clock's now.

    Raises LogNotVerified when the log has problems: a checkpoint vouches for what it lists.
    """
    if verification is None:
        verification = verify_log(service)
    if not verification.ok:
        raise LogNotVerified(verification)
    private = key if not isinstance(key, str | os.PathLike) else load_private_key(key)
    unsigned = Checkpoint(
        created_at=service.clock.now(),
        heads=dict(sorted(verification.heads.items())),
        root=root_of(verification.heads),
        public_key=_public_hex(private),
        signature="",
        export=export,
    )
    signature = private.sign(unsigned.message()).hex()
    return Checkpoint(
        unsigned.created_at, unsigned.heads, unsigned.root, unsigned.public_key, signature, unsigned.export
    )


def load_checkpoint(source: str | os.PathLike[str] | bytes, *, public_key: str | None = None) -> Checkpoint:
    """Read a checkpoint file (a path, or its bytes) and check its form, root and signature.

    `public_key` (hex) is the key the auditor trusts; without it the key the checkpoint
    names is taken at its word, which proves only that the file was not edited after signing.
    """
    try:
        raw = source if isinstance(source, bytes) else read_bounded(source, MAX_CHECKPOINT_BYTES)
        if len(raw) > MAX_CHECKPOINT_BYTES:
            raise LimitExceeded("too_large", f"the checkpoint is over {MAX_CHECKPOINT_BYTES:,} bytes")
        data = parse_json(raw)
    except LimitExceeded as exc:
        raise CheckpointMalformed(f"the checkpoint is refused: {exc}") from None
    except ValueError:  # not JSON, not UTF-8, or a number over Python's digit limit
        raise CheckpointMalformed("the checkpoint is not JSON") from None
    checkpoint = _parse(data)
    try:
        checkpoint.message()
    except (TypeError, ValueError):  # a lone surrogate, a float out of range in `export`
        raise CheckpointMalformed("the checkpoint holds a value with no canonical JSON form") from None
    if root_of(checkpoint.heads) != checkpoint.root:
        raise CheckpointInvalid("the checkpoint's root is not the hash of its heads")
    if data.get("pathways") != checkpoint.pathways or data.get("entries") != checkpoint.entries:
        raise CheckpointInvalid("the checkpoint's totals do not add up")
    if public_key is not None and public_key.strip().lower() != checkpoint.public_key:
        raise CheckpointInvalid("the checkpoint was signed by another key than the trusted one")
    ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key)).verify(
            bytes.fromhex(checkpoint.signature), checkpoint.message()
        )
    except (InvalidSignature, ValueError):
        raise CheckpointInvalid("the checkpoint's signature does not verify") from None
    return checkpoint


def _hex(value: Any, length: int, what: str) -> str:
    if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX:
        raise CheckpointMalformed(f"the checkpoint's {what} is not {length} lower-case hex digits")
    return value


def _parse(data: Any) -> Checkpoint:
    if not isinstance(data, dict) or set(data) != _MEMBERS:
        raise CheckpointMalformed(f"a checkpoint is a JSON object with exactly the members {sorted(_MEMBERS)}")
    if data["format"] != FORMAT:
        raise CheckpointMalformed(f"unknown checkpoint format (expected {FORMAT!r})")
    heads_json = data["heads"]
    if not isinstance(heads_json, dict):
        raise CheckpointMalformed("the checkpoint's heads are not an object")
    heads: dict[str, Head] = {}
    for pid, head in heads_json.items():
        if (
            not isinstance(head, dict)
            or set(head) != {"entries", "hash"}
            or type(head["entries"]) is not int
            or head["entries"] < 1
        ):
            raise CheckpointMalformed("each head is {\"entries\": n >= 1, \"hash\": h}")
        heads[pid] = Head(head["entries"], _hex(head["hash"], 64, "head hash"))
    created = data["created_at"]
    try:
        created_at = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        created_at = None
    if created_at is None or created_at.tzinfo is None or format_datetime(created_at) != created:
        raise CheckpointMalformed("the checkpoint's created_at is not a canonical UTC time")
    export = data["export"]
    if export is not None and not isinstance(export, dict):
        raise CheckpointMalformed("the checkpoint's export member is neither null nor an object")
    return Checkpoint(
        created_at=created_at,
        heads=heads,
        root=_hex(data["root"], 64, "root"),
        public_key=_hex(data["public_key"], 64, "public key"),
        signature=_hex(data["signature"], 128, "signature"),
        export=export,
    )
