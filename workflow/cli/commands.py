"""`hsct commands [NAME...]`: the command reference, read off the chart.

Plain markdown on stdout (it pipes and diffs); `--output docs/commands.md` writes the
generated guide that a test holds in step with the chart. A misspelt name gets the closest
names back, with exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflow.cli._common import fail


def commands(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Commands to show (default: every command)."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", metavar="FILE", exists=True, dir_okay=False,
                     help="Show the roles of this policy file (TOML or YAML) instead of the default policy."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write the whole reference as markdown to FILE (docs/commands.md)."),
    ] = None,
    python: Annotated[
        bool,
        typer.Option("--python", help="Instead: the typed command names and payload classes as a Python "
                     "module (--output states/command_names.py)."),
    ] = False,
) -> None:
    """Phases, roles, guards and payload fields (units, limits) of every trigger and event."""
    from difflib import get_close_matches

    from states.errors import PolicyError
    from workflow import reference
    from workflow.policy_files import load_policy

    if python:
        from workflow.command_module import python_module

        if output is None:
            typer.echo(python_module(), nl=False)
        else:
            output.write_text(python_module(), encoding="utf-8")
            typer.echo(f"typed command names written to {output}", err=True)
        return
    if output is not None:
        output.write_text(reference.markdown(), encoding="utf-8")
        typer.echo(f"command reference written to {output}", err=True)
        return
    known = reference.command_names()
    for name in names or ():
        if name not in known:
            close = get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `hsct commands` lists them all"
            fail(f"{name[:64]!r} is not a command{hint}")
    try:
        rules = load_policy(policy) if policy is not None else None
    except PolicyError as exc:
        fail(str(exc))
    typer.echo(reference.reference(names or None, rules), nl=False)


def explain(
    codes: Annotated[
        list[str] | None,
        typer.Argument(metavar="[CODE]...", help="Reason codes to explain (default: every code)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write every code as markdown to FILE (docs/reason-codes.md)."),
    ] = None,
) -> None:
    """What a reason code means: the rule behind a refusal, and its source."""
    from difflib import get_close_matches

    from states.reasons import REASONS
    from workflow import reference

    if output is not None:
        output.write_text(reference.reason_codes_markdown(), encoding="utf-8")
        typer.echo(f"reason codes written to {output}", err=True)
        return
    for code in codes or ():
        if code not in REASONS:
            close = get_close_matches(code, list(REASONS), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `hsct explain` lists them all"
            fail(f"{code[:64]!r} is not a reason code{hint}")
    for code in codes or list(REASONS):
        reason = REASONS[code]
        typer.echo(f"{reason.code}: {reason.rule} [{reason.source}]")
