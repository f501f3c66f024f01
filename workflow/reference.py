"""The command reference, read off the chart: phases, roles, guards and payload fields.

`hsct commands` prints it and docs/commands.md is generated from it (a test regenerates the
file and fails on drift), so the vocabulary a caller needs is never a second list kept by hand:
edges and allowed phases come from `states.chart.CHART`, roles from the policy, guard texts
from the guards' docstrings, fields and their limits from the payload models' JSON Schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from states.chart import CHART, INITIAL_COMMAND, Command
from states.guards import GUARDS
from states.payloads import Refer
from states.policy import Policy

# Units spelt out from the suffixes field names carry (the payloads put units in names).
_UNITS: tuple[tuple[str, str], ...] = (
    ("_x10e9_per_l", "x10^9/L"),
    ("_x10e8_per_kg", "x10^8/kg"),
    ("_x10e7_per_kg", "x10^7/kg"),
    ("_x10e6_per_kg", "x10^6/kg"),
    ("_x10e5_per_kg", "x10^5/kg"),
    ("_ml_per_kg", "mL/kg"),
    ("_ml", "mL"),
    ("_pct", "%"),
    ("_percent", "%"),
    ("_days", "days"),
    ("_hours", "hours"),
    ("_mg_dl", "mg/dL"),
    ("_kg", "kg"),
)

_LIMITS: tuple[tuple[str, str], ...] = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("pattern", "matches `{}`"),
    ("format", "{}"),
)


def unit_of(field: str) -> str | None:
    """The unit a field name declares by its suffix, if any."""
    return next((unit for suffix, unit in _UNITS if field.endswith(suffix)), None)


def guard_text(name: str) -> str:
    """The first sentence of a guard's docstring (its rule), or its name spelt out."""
    doc = (GUARDS[name].__doc__ or "").strip()
    return re.sub(r"\s+", " ", doc.split("\n\n")[0]) if doc else name.replace("_", " ")


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else schema


def _type_of(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    schema = _resolve(schema, defs)
    if "enum" in schema:
        return " | ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            kinds = [_type_of(option, defs) for option in schema[union] if option.get("type") != "null"]
            return " | ".join(dict.fromkeys(kinds))
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}), defs)}"
    if kind == "object" and "title" in schema and "properties" in schema:
        return f"{schema['title']} {{{', '.join(schema['properties'])}}}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"map of {_type_of(schema['additionalProperties'], defs)}"
    return str(kind)


def _limits_of(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> list[str]:
    schema = _resolve(schema, defs)
    found = [template.format(schema[key]) for key, template in _LIMITS if key in schema]
    for union in ("anyOf", "oneOf"):
        for option in schema.get(union, ()):
            if option.get("type") != "null":
                found += _limits_of(option, defs)
    return found


def payload_fields(command: Command) -> list[dict[str, str]]:
    """One row per payload field a caller may send: name, type, required, unit, limits.

    Derived fields (the library fills them in) are left out: sending one is an error.
    """
    schema = command.payload.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if name in command.payload.derived_fields:
            continue
        rows.append(
            {
                "field": name,
                "type": _type_of(prop, defs),
                "required": "yes" if name in required else "no",
                "unit": unit_of(name) or "",
                "limits": "; ".join(dict.fromkeys(_limits_of(prop, defs))),
            }
        )
    return rows


def _phases(command: Command) -> list[str]:
    if command.changes_phase:
        return [
            f"`{edge.source}` -> `{edge.dest}`" + (f" (when {edge.when})" if edge.when else "")
            for edge in command.edges
        ]
    return [", ".join(f"`{phase}`" for phase in sorted(command.allowed_in))]


def _roles(name: str, policy: Policy) -> str:
    return ", ".join(f"`{role}`" for role in sorted(policy.roles.get(name, ())))


def _section(name: str, kind: str, doc: str | None, phases: list[str], roles: str,
             guards: Iterable[str], fields: list[dict[str, str]]) -> list[str]:
    lines = [f"## `{name}`", "", f"*{kind}*" + (f": {doc}" if doc else ""), ""]
    lines += ["Phases:", *(f"- {p}" for p in phases), "", f"Roles: {roles or 'none'}", ""]
    guard_rows = [f"- `{g}`: {guard_text(g)}" for g in guards]
    lines += (["Guards:", *guard_rows] if guard_rows else ["Guards: none"]) + [""]
    if fields:
        lines += ["| field | type | required | unit | limits |", "|---|---|---|---|---|"]
        lines += [
            "| `{field}` | {type} | {required} | {unit} | {limits} |".format(
                **{k: v.replace("|", "\\|") for k, v in row.items()}
            )
            for row in fields
        ]
    else:
        lines.append("Payload: none")
    return [*lines, ""]


def _doc(model: type[Any]) -> str | None:
    doc = (model.__doc__ or "").strip()
    if not doc or doc.startswith(("A base", "Base of")):
        return None
    return re.sub(r"\s+", " ", doc.split("\n\n")[0])


def command_names() -> list[str]:
    """Every name a caller can send: `refer`, then the chart's triggers and events."""
    return [INITIAL_COMMAND, *CHART.commands]


def reference(names: Iterable[str] | None = None, policy: Policy | None = None) -> str:
    """The reference as markdown, for the named commands (default: every command)."""
    policy = policy or Policy()
    wanted = list(names) if names is not None else command_names()
    out: list[str] = []
    for name in wanted:
        if name == INITIAL_COMMAND:
            refer_fields = payload_fields(Command(name=name, payload=Refer))
            out += _section(name, "opens a pathway", _doc(Refer), ["(none) -> `referred`"],
                            _roles(name, policy), (), refer_fields)
            continue
        command = CHART.commands[name]
        kind = "trigger (changes the phase)" if command.changes_phase else "event (records a fact)"
        out += _section(name, kind, _doc(command.payload), _phases(command), _roles(name, policy),
                        command.guards, payload_fields(command))
    return "\n".join(out).rstrip() + "\n"


def markdown() -> str:
    """docs/commands.md: a preface, an index and every command."""
    names = command_names()
    index = ", ".join(f"[`{n}`](#{n})" for n in names)
    return (
        "# Command reference\n\n"
        "Generated from the chart, the default policy's role table and the payload models by "
        "`hsct commands --output docs/commands.md`; do not edit by hand (a test regenerates it and "
        "fails on drift). A program's own policy may grant other roles: `hsct commands --policy FILE` "
        "prints the reference under it. Every refusal code a guard can give is in "
        "docs/reason-codes.md.\n\n"
        f"{index}\n\n" + reference(names)
    )


def reason_codes_markdown() -> str:
    """docs/reason-codes.md, from `states.reasons`: the preface, then a table per section."""
    from states.reasons import PREFACE, SECTIONS

    out = ["# Reason codes", "", PREFACE.rstrip(), ""]
    for section in SECTIONS:
        out += [f"## {section.title}", ""]
        if section.reasons:
            out += ["| code | rule | source |", "|---|---|---|"]
            out += [f"| `{r.code}` | {r.rule} | {r.source} |" for r in section.reasons]
            out.append("")
        if section.note:
            out += [section.note, ""]
    return "\n".join(out)
