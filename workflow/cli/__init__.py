"""The `hsct` command line: the composition root, one Typer app per command group.

Start-up stays fast because only typer and the standard library are imported here and in
the command modules' top level; SQLAlchemy, the service, the runner and rich are imported
inside the commands that use them.

Output habits: tables and results on stdout, diagnostics on stderr; exit 0 when all went
well (every expectation held), 1 when a scenario expectation failed, 2 for an invalid file,
bad usage or a database/library error. Tracebacks never show local variables (they may hold
patient data).
"""

from __future__ import annotations

import typer

from workflow import __version__
from workflow.cli import audit, db, pathway, policy, scenario
from workflow.cli.commands import commands, explain
from workflow.cli.diagram import diagram
from workflow.cli.serve import serve
from workflow.cli.worklist import worklist

__all__ = ["app", "main"]

app = typer.Typer(
    name="hsct",
    help="HSCT pathway: run scenario scripts, inspect pathways and the audit log, manage the database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # `hsct --help` in click's plain layout: rich's help panels cost more than the rest of
    # start-up together (about 90 ms of CPU). The command groups keep theirs.
    rich_markup_mode=None,
)
app.add_typer(scenario.app, name="scenario")
app.add_typer(pathway.app, name="pathway")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
app.add_typer(policy.app, name="policy")
app.command("diagram")(diagram)
app.command("commands")(commands)
app.command("explain")(explain)
app.command("serve")(serve)
app.command("worklist")(worklist)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hsct-pathway {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version,
                                 is_eager=True),
) -> None:
    """HSCT pathway: run scenario scripts, inspect pathways and the audit log, manage the database."""


def main() -> None:
    """The command line, with the install line for a missing extra (the console script
    `hsct` is `workflow.console.main`, which also reports a missing typer)."""
    from workflow.console import main as console_main

    console_main()
