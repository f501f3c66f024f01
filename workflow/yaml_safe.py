"""YAML through a safe loader that keeps `no`, `yes`, `on`, `off` as strings (YAML 1.2 booleans).

PyYAML's SafeLoader follows YAML 1.1, where `no` is False: a scenario saying `do: no` or a
country code `NO` must not turn into a boolean. Only `true`/`false` are booleans here.

The loader is also bounded (`workflow.input_limits`): nesting depth is counted while
composing, the tree with aliases expanded is sized before any value is built, an impossible
date (`2026-02-30`) stays text for the schema to reject where it stands, and an integer over
Python's digit limit is a YAML error with its line instead of a ValueError.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from persistence.extras import missing_extra
from workflow.input_limits import MAX_NESTING_DEPTH, MAX_YAML_NODES, LimitExceeded

_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


@functools.cache
def _loader() -> Any:
    try:
        import yaml
    except ModuleNotFoundError as exc:  # without the yaml extra: say how to install it
        raise missing_extra(exc) from None

    class Yaml12SafeLoader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 booleans only."""

    resolvers = {
        key: [(tag, regexp) for tag, regexp in values if tag != "tag:yaml.org,2002:bool"]
        for key, values in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12SafeLoader.yaml_implicit_resolvers = resolvers
    Yaml12SafeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_12, list("tTfF"))

    class BoundedLoader(Yaml12SafeLoader):
        """Counts nesting while composing; keeps impossible dates as text; words huge integers."""

        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_NESTING_DEPTH:
                    line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                    raise LimitExceeded("too_deep", f"values are nested more than {MAX_NESTING_DEPTH} deep", line)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_yaml_timestamp(self, node: Any) -> Any:
            try:
                return super().construct_yaml_timestamp(node)
            except (ValueError, AttributeError):  # 2026-02-30, an offset of 25 hours or with seconds
                return self.construct_scalar(node)

        def construct_yaml_int(self, node: Any) -> Any:
            try:
                return super().construct_yaml_int(node)
            except ValueError:
                raise yaml.constructor.ConstructorError(
                    None, None, "an integer with too many digits", node.start_mark
                ) from None

    BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_yaml_timestamp)
    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
    return BoundedLoader


try:
    from yaml import YAMLError as _YAMLError
except ImportError:  # pragma: no cover - depends on the extra
    _YAMLError = ValueError  # type: ignore[assignment,misc]

YAML_ERROR: type[Exception] = _YAMLError
"""What a malformed YAML text raises (PyYAML's error, when the extra is installed)."""


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; `no`/`yes`/`on`/`off` stay strings."""
    return load_yaml_tree(text)[0]


def load_yaml_tree(text: str) -> tuple[Any, Any]:
    """(value, node tree) of one YAML document, within the input limits.

    The tree (PyYAML's composed nodes) knows every key's line. Raises YAML_ERROR for bad
    YAML and `LimitExceeded` for a document too deep or expanding to too many values.
    """
    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_expansion(node)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _check_expansion(root: Any) -> None:
    """Refuse a tree whose aliases expand past MAX_YAML_NODES values or MAX_NESTING_DEPTH levels.

    Each node's expanded size is computed once (aliases share nodes), so a billion-laughs
    file is sized in linear time without being expanded; an alias to an enclosing node
    (a cycle) expands forever and is refused too.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if depth > MAX_NESTING_DEPTH:
            raise LimitExceeded("too_deep", f"values are nested more than {MAX_NESTING_DEPTH} deep "
                                "once aliases are expanded", node.start_mark.line + 1)
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise LimitExceeded("too_many_nodes", "an alias refers to a value that contains it",
                                node.start_mark.line + 1)
        open_nodes.add(key)
        children = [part for pair in node.value for part in pair] if node.id == "mapping" else (
            node.value if node.id == "sequence" else [])
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_YAML_NODES:
            raise LimitExceeded("too_many_nodes", f"the document expands to more than {MAX_YAML_NODES:,} "
                                "values (aliases counted in full)", node.start_mark.line + 1)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 1)
