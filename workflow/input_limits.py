"""Limits on the files the library reads: size, nesting depth, alias expansion (one place).

Scenario files, policy files and checkpoints come from people and from other systems. Each
limit is checked before or while parsing, so a broken or hostile file is refused with the
library's own error before it can build huge objects, exhaust the stack or take minutes:
the byte size before reading; the nesting depth while composing (YAML, `workflow.yaml_safe`)
or by the parser's own recursion guard and a walk of the result (JSON, TOML); the size of
the YAML tree with every alias expanded (billion laughs) before any value is constructed.
docs/decisions.md ("Input limits") gives the figures.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Final

from states.errors import HsctError

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_KEY_FILE_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_POLICY_BYTES",
    "MAX_SCENARIO_BYTES",
    "MAX_YAML_NODES",
    "LimitExceeded",
    "check_depth",
    "check_text_size",
    "parse_json",
    "parse_toml",
    "read_bounded",
]

MAX_SCENARIO_BYTES: Final = 512 * 1024
"""A scenario file (the library's largest is 13 KB; one of 500 KB and 9,000 steps validates in 5 s)."""

MAX_POLICY_BYTES: Final = 256 * 1024
"""A policy file (the defaults written out are under 10 KB)."""

MAX_CHECKPOINT_BYTES: Final = 256 * 1024 * 1024
"""A checkpoint file: about 130 bytes per pathway, so some two million pathways."""

MAX_KEY_FILE_BYTES: Final = 4096
"""A file holding a public key as hex (64 characters)."""

MAX_NESTING_DEPTH: Final = 32
"""Values on the way from the top of a document to the deepest one, both counted (a scenario
needs 7: steps, a step, `with`, `regimen`, `agents`, an agent, its dose)."""

MAX_YAML_NODES: Final = 200_000
"""Values in a YAML document with every alias expanded: refuses "billion laughs" files."""


class LimitExceeded(HsctError):
    """A file is larger, deeper or expands further than the limits allow.

    `rule` names the limit (`too_large`, `too_deep`, `too_many_nodes`); `line` is where the
    parser was, when known. Readers turn it into their own error (ScenarioInvalid, PolicyError,
    CheckpointInvalid), which names the file.
    """

    def __init__(self, rule: str, message: str, line: int | None = None) -> None:
        self.rule = rule
        self.line = line
        super().__init__(message)


def _too_large(size: int, limit: int) -> LimitExceeded:
    return LimitExceeded("too_large", f"the file is {size:,} bytes; the limit is {limit:,}")


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of `path`, refused before reading when it is larger than `limit`.

    Reads at most `limit` + 1 bytes, so a file that grows (or a pipe) cannot exceed it either.
    OSError passes through: the callers word it.
    """
    source = Path(path)
    size = source.stat().st_size
    if size > limit:
        raise _too_large(size, limit)
    with source.open("rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(len(data), limit)
    return data


def check_text_size(text: str, limit: int) -> None:
    """Refuse text handed in directly (not read from a file) that is over `limit` bytes as UTF-8."""
    if len(text) > limit:
        raise _too_large(len(text), limit)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise _too_large(size, limit)


def _too_deep(line: int | None = None) -> LimitExceeded:
    return LimitExceeded("too_deep", f"values are nested more than {MAX_NESTING_DEPTH} deep", line)


def check_depth(value: Any) -> None:
    """Refuse parsed data nested deeper than MAX_NESTING_DEPTH (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth + 1 > MAX_NESTING_DEPTH:
            raise _too_deep()
        pending += [(child, depth + 1) for child in children]


def parse_json(raw: bytes) -> Any:
    """json.loads, bounded: deeper than the interpreter's stack or MAX_NESTING_DEPTH is `too_deep`.

    The C decoder guards its own recursion and unwinds cleanly, and the size limit has already
    bounded the work, so its RecursionError is the early stop; ValueError (not JSON, a number
    over Python's digit limit) passes through for the caller to word.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    check_depth(value)
    return value


def parse_toml(text: str) -> dict[str, Any]:
    """tomllib.loads, bounded like `parse_json`; TOMLDecodeError passes through."""
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise _too_deep() from None
    check_depth(value)
    return value
