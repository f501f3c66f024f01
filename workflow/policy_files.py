"""Reading a program's policy file (TOML, or YAML with the `yaml` extra)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from states.errors import PolicyError
from states.policy import Policy, policy_from_mapping
from workflow.yaml_safe import YAML_ERROR, load_yaml


def load_policy(path: str | Path) -> Policy:
    """Read a policy file (.toml, .yaml or .yml); unknown keys and bad values are errors."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {source}: {exc.strerror}") from exc
    if source.suffix not in {".toml", ".yaml", ".yml"}:
        raise PolicyError(f"policy file {source} must end in .toml, .yaml or .yml")
    try:
        data: Any = tomllib.loads(text) if source.suffix == ".toml" else load_yaml(text)
    except (tomllib.TOMLDecodeError, YAML_ERROR) as exc:
        raise PolicyError(f"{source}: not valid {source.suffix[1:].upper()}: {type(exc).__name__}") from None
    return policy_from_mapping(data or {}, origin=str(source))
