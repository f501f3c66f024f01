"""YAML through a safe loader that keeps `no`, `yes`, `on`, `off` as strings (YAML 1.2 booleans).

PyYAML's SafeLoader follows YAML 1.1, where `no` is False: a scenario saying `do: no` or a
country code `NO` must not turn into a boolean. Only `true`/`false` are booleans here.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from states.errors import HsctError

_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


@functools.cache
def _loader() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise HsctError("reading YAML needs PyYAML: pip install 'hsct-pathway[yaml]'") from exc

    class Yaml12SafeLoader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 booleans only."""

    resolvers = {
        key: [(tag, regexp) for tag, regexp in values if tag != "tag:yaml.org,2002:bool"]
        for key, values in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12SafeLoader.yaml_implicit_resolvers = resolvers
    Yaml12SafeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_12, list("tTfF"))
    return Yaml12SafeLoader


try:
    from yaml import YAMLError as _YAMLError
except ImportError:  # pragma: no cover - depends on the extra
    _YAMLError = ValueError  # type: ignore[assignment,misc]

YAML_ERROR: type[Exception] = _YAMLError
"""What a malformed YAML text raises (PyYAML's error, when the extra is installed)."""


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; `no`/`yes`/`on`/`off` stay strings."""
    import yaml

    return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
