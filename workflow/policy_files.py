"""Reading a program's policy file (TOML, or YAML with the `yaml` extra), within the input limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from states.errors import PolicyError
from states.policy import Policy, policy_from_mapping
from workflow.input_limits import MAX_POLICY_BYTES, LimitExceeded, parse_toml, read_bounded
from workflow.yaml_safe import YAML_ERROR, load_yaml


def load_policy(path: str | Path) -> Policy:
    """Read a policy file (.toml, .yaml or .yml); unknown keys and bad values are errors.

    Every problem with the file (unreadable, too large, too deep, not TOML/YAML, wrong keys
    or values) is a PolicyError naming the file.
    """
    source = Path(path)
    if source.suffix not in {".toml", ".yaml", ".yml"}:
        raise PolicyError(f"policy file {source} must end in .toml, .yaml or .yml")
    try:
        text = read_bounded(source, MAX_POLICY_BYTES).decode("utf-8")
        data: Any = parse_toml(text) if source.suffix == ".toml" else load_yaml(text)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {source}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise PolicyError(f"cannot read policy file {source}: not UTF-8 text") from None
    except LimitExceeded as exc:
        raise PolicyError(f"{source}: {exc} [{exc.rule}]") from None
    except (ValueError, YAML_ERROR):  # TOMLDecodeError, or a number over Python's digit limit
        raise PolicyError(f"{source}: not valid {source.suffix[1:].upper()}") from None
    if data is not None and not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy file is a mapping of keys")
    return policy_from_mapping(data or {}, origin=str(source))
