"""Reading scenario files: YAML through the safe loader, then the whole file validated at once.

Values go through `workflow.yaml_safe.load_yaml_tree` (YAML 1.2 booleans: `no` stays a
string), within the input limits of `workflow.input_limits`: the byte size is checked before
the file is read, nesting and alias expansion while it is parsed. The composed node tree
knows where every key sits: that gives problems their line numbers and catches duplicate
keys, which a plain load would silently collapse to the last one. Messages never quote the
file's text (it may hold a patient reference), only paths, rules and line numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workflow.input_limits import MAX_SCENARIO_BYTES, LimitExceeded, check_text_size, read_bounded
from workflow.scenario.models import (
    COMMAND_NAMES,
    Scenario,
    ScenarioInvalid,
    ScenarioProblem,
    check_references,
    problem_at,
    problems_from_validation,
    raw_loc,
)
from workflow.yaml_safe import YAML_ERROR, load_yaml_tree

__all__ = ["SUFFIXES", "expand_paths", "load_paths", "load_scenario", "parse_scenario"]

SUFFIXES = (".yaml", ".yml")


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; folders replaced by their *.yaml / *.yml files (recursively, sorted).

    A path that does not exist raises `ScenarioInvalid` naming it.
    """
    found: list[Path] = []
    missing: list[ScenarioProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                (p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()),
                key=lambda p: p.relative_to(path).parts,
            )
        elif path.is_file():
            found.append(path)
        else:
            missing.append(ScenarioProblem("", "not_found", "no such file or folder", file=str(path)))
    if missing:
        raise ScenarioInvalid(missing)
    return found


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate one scenario file; raise `ScenarioInvalid` with every problem found."""
    name = os.fspath(path)
    try:
        text = read_bounded(path, MAX_SCENARIO_BYTES).decode("utf-8")
    except LimitExceeded as exc:
        raise ScenarioInvalid([ScenarioProblem("", exc.rule, str(exc), file=name)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        problem = ScenarioProblem("", "unreadable", f"cannot read the file: {reason}", file=name)
        raise ScenarioInvalid([problem]) from None
    return parse_scenario(text, file=name)


def load_paths(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Scenario]]:
    """Every scenario under `paths`, all validated before any runs.

    Raises one `ScenarioInvalid` holding the problems of every invalid file.
    """
    loaded: list[tuple[Path, Scenario]] = []
    problems: list[ScenarioProblem] = []
    for path in expand_paths(paths):
        try:
            loaded.append((path, load_scenario(path)))
        except ScenarioInvalid as exc:
            problems += exc.problems
    if problems:
        raise ScenarioInvalid(problems)
    return loaded


def parse_scenario(text: str, *, file: str | None = None) -> Scenario:
    """Validate scenario `text`; `file` names it in problems."""
    try:
        check_text_size(text, MAX_SCENARIO_BYTES)
        data, tree = load_yaml_tree(text)
    except LimitExceeded as exc:
        raise ScenarioInvalid([ScenarioProblem("", exc.rule, str(exc), file=file, line=exc.line)]) from None
    except YAML_ERROR as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        line = mark.line + 1 if mark is not None else None
        raise ScenarioInvalid([ScenarioProblem("", "yaml_syntax", str(problem), file=file, line=line)]) from None
    if not isinstance(data, dict):
        what = "empty" if data is None else "not a mapping of keys"
        raise ScenarioInvalid([ScenarioProblem("", "not_a_scenario", f"the file is {what}", file=file, line=1)])
    problems = list(_duplicate_keys(tree, [], file))
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, file=file)
    if scenario is not None:
        problems += check_references(scenario, file=file)
    if problems:
        located = [_with_do(_with_line(p, tree), data) for p in problems]
        raise ScenarioInvalid(sorted(located, key=lambda p: p.line or 0))
    assert scenario is not None
    return scenario


def _with_line(problem: ScenarioProblem, tree: Any) -> ScenarioProblem:
    if problem.line is not None or tree is None:
        return problem
    return replace(problem, line=_line_of(tree, raw_loc(problem)))


def _with_do(problem: ScenarioProblem, data: dict[Any, Any]) -> ScenarioProblem:
    """The problem with its step's `do` (or "check"), when that is a name the chart knows."""
    steps = data.get("steps")
    if problem.step is None or not isinstance(steps, list) or not 0 < problem.step <= len(steps):
        return problem
    step = steps[problem.step - 1]
    if not isinstance(step, dict):
        return problem
    do = "check" if "check" in step else step.get("do")
    return replace(problem, do=do) if isinstance(do, str) and do in {*COMMAND_NAMES, "check"} else problem


def _line_of(node: Any, loc: list[Any]) -> int:
    """The line (from 1) of the deepest node of `loc` that exists in the composed tree."""
    import yaml

    line: int = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                return line
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicate_keys(
    node: Any, loc: list[Any], file: str | None, _seen: set[int] | None = None
) -> Iterator[ScenarioProblem]:
    """Keys given twice in one mapping (a plain YAML load keeps only the last)."""
    import yaml

    _seen = set() if _seen is None else _seen
    if id(node) in _seen:
        return
    _seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen and name != "<<":
                problem = problem_at([*loc, name], "duplicate_key", "is given twice", file=file)
                yield replace(problem, line=key.start_mark.line + 1)
            seen.add(name)
            yield from _duplicate_keys(value, [*loc, name], file, _seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, [*loc, index], file, _seen)
