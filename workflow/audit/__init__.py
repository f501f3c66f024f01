"""The auditor's side: verify the log, sign checkpoints, export it, and render FHIR R4B.

- `verify_log` recomputes every pathway's chain from the stored columns, checks the pathway
  rows against their logs, and (given a checkpoint) catches truncation and rewrites.
- `create_checkpoint` / `load_checkpoint` / `generate_key`: signed checkpoints (Ed25519,
  through the optional `cryptography` package; the private key stays in a file).
- `export_log`: JSON Lines or CSV of entries plus a checkpoint covering the file, which
  tools/verify_export.py checks with nothing but the standard library.
- `fhir_bundle`: one FHIR R4B Bundle per pathway (optional `fhir.resources`).

Optional packages are imported where they are used, with an install hint when missing.
docs/audit.md is the guide.
"""

from __future__ import annotations

from workflow.audit.checkpoint import (
    Checkpoint,
    CheckpointInvalid,
    LogNotVerified,
    create_checkpoint,
    generate_key,
    load_checkpoint,
    root_of,
)
from workflow.audit.export import ExportFilters, ExportFormat, ExportResult, export_log
from workflow.audit.fhir import fhir_bundle
from workflow.audit.verify import Head, Problem, Verification, verify_log

__all__ = [
    "Checkpoint",
    "CheckpointInvalid",
    "ExportFilters",
    "ExportFormat",
    "ExportResult",
    "Head",
    "LogNotVerified",
    "Problem",
    "Verification",
    "create_checkpoint",
    "export_log",
    "fhir_bundle",
    "generate_key",
    "load_checkpoint",
    "root_of",
    "verify_log",
]
