"""Source of `states/command_names.py`: the chart's command names as a `Literal`, so that an
editor completes them and mypy rejects a misspelt one, beside the payload class of each.

The module is generated because the chart is the one source of the commands: regenerate it
with `hsct commands --python --output states/command_names.py` after changing the chart
(a test fails while it is out of step).
"""

from __future__ import annotations

from states.chart import CHART
from states.payloads import Payload, Refer

HEADER = '''"""The chart's command names and the payload class of each, for type checkers and editors.

Generated from states/chart.py by `hsct commands --python --output states/command_names.py`;
do not edit (a test fails while it is out of step with the chart).
"""
'''


def python_module() -> str:
    """The text of states/command_names.py for the chart as it stands."""
    specs = sorted(CHART.commands.values(), key=lambda spec: spec.name)
    classes = {spec.payload for spec in specs} | {Refer}
    by_module: dict[str, set[str]] = {Payload.__module__: {Payload.__name__}}
    for cls in classes:
        by_module.setdefault(cls.__module__, set()).add(cls.__name__)
    imports = []
    for module, imported in sorted(by_module.items()):
        imports += [f"from {module} import (", *(f"    {name}," for name in sorted(imported)), ")"]
    exported = ["COMMAND_NAMES", "PAYLOADS", *sorted([*(cls.__name__ for cls in classes), "CommandName"])]
    lines = [
        HEADER,
        "from __future__ import annotations",
        "",
        "from typing import Final, Literal",
        "",
        *imports,
        "",
        "CommandName = Literal[",
        *(f'    "{spec.name}",' for spec in specs),
        "]",
        '"""Every trigger and event of the chart (`refer` opens a pathway and is not one)."""',
        "",
        "COMMAND_NAMES: Final[tuple[CommandName, ...]] = (",
        *(f'    "{spec.name}",' for spec in specs),
        ")",
        "",
        "PAYLOADS: Final[dict[CommandName, type[Payload]]] = {",
        *(f'    "{spec.name}": {spec.payload.__name__},' for spec in specs),
        "}",
        '"""The payload class of each command (instances of it, or mappings, go to `fire`)."""',
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in exported),
        "]",
        "",
    ]
    return "\n".join(lines)
