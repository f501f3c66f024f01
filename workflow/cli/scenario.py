"""`hsct scenario run | validate | new | schema`: scenario scripts from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from states.vocabulary import DonorType, GraftSource, Route
from workflow.cli._common import (
    DB_ENV,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    fail,
    library_errors,
    masked,
    parse_date,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from rich.console import Console

    from workflow.scenario.models import Scenario, ScenarioInvalid
    from workflow.scenario.runner import ScenarioResult

app = typer.Typer(
    name="scenario",
    help="Run, validate and describe scenario scripts (docs/scenarios.md).",
    no_args_is_help=True,
)

Paths = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH",
        help="Scenario files, or folders whose *.yaml / *.yml files are taken (sorted).",
        exists=True,
        readable=True,
        resolve_path=False,
    ),
]


@app.command()
def run(
    paths: Paths,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help=f"Keep the pathways and their audit log in this database, which must hold no live entries "
            f"(only earlier scenario runs). Default: a fresh temporary SQLite database per scenario, deleted "
            f"afterwards. {DB_ENV} is ignored: scenario runs never write to the live database.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of tables.")] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write the results as JUnit XML to FILE.", dir_okay=False),
    ] = None,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="Stop at the first expectation that does not hold: no later step or file "
                     "runs (exit 1; the last line counts the files not run)."),
    ] = False,
) -> None:
    """Run scenario files; exit 0 when every expectation held, 1 when any failed, 2 when a file
    is invalid or the database holds live entries (then nothing runs). The last line is
    `N passed, N failed`. Every entry written is marked with the origin scenario:<file name>."""
    from workflow.scenario.loader import load_paths
    from workflow.scenario.models import ScenarioInvalid

    try:
        loaded = load_paths(paths)
    except ScenarioInvalid as exc:
        _report_invalid(exc, "nothing was run")
        raise typer.Exit(EXIT_INVALID) from None
    if not loaded:
        stderr().print("no scenario files found (*.yaml, *.yml)")
        raise typer.Exit(EXIT_INVALID)

    results = _run_all(loaded, db, fail_fast)
    not_run = len(loaded) - len(results)
    from workflow.scenario.report import junit_xml, results_json, summary_line

    if junit is not None:
        junit.write_text(junit_xml(results), encoding="utf-8")
        stderr().print(f"JUnit XML written to {junit}")
    if as_json:
        typer.echo(results_json(results, not_run))
    else:
        console = stdout()
        for result in results:
            _print_result(console, result)
        typer.echo(summary_line(results, not_run))
    raise typer.Exit(EXIT_OK if all(r.passed for r in results) else EXIT_FAILED)


def _run_all(loaded: list[tuple[Path, Scenario]], db: str | None, fail_fast: bool) -> list[ScenarioResult]:
    """Run each scenario, with a progress bar on stderr when there are several; with
    `fail_fast`, none after the first that stopped at a failure."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workflow.scenario.runner import run_scenario

    results = []
    with (
        library_errors(db),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr(),
            transient=True,
            disable=len(loaded) < 2,
        ) as progress,
    ):
        task = progress.add_task("scenarios", total=len(loaded))
        for path, scenario in loaded:
            progress.update(task, description=path.name)
            results.append(run_scenario(scenario, db_url=db, source=str(path), fail_fast=fail_fast))
            progress.advance(task)
            if results[-1].stopped:
                break
    if db is not None:
        stderr().print(f"pathways kept in {masked(db)}")
    return results


def _print_result(console: Console, result: ScenarioResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    several = len({row.pathway for row in result.rows}) > 1
    table = Table(title=escape(result.title), title_justify="left", caption=escape(result.file or ""),
                  caption_justify="left")
    for column in ("#", "date", "Day", "actor", *(["pathway"] if several else []), "trigger", "outcome",
                   "reasons", "held"):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        cells = [
            str(row.number) if row.number is not None else "",
            row.on.isoformat() if row.on else "",
            row.day_label or "",
            row.actor or "",
            *([row.pathway] if several else []),
            row.trigger,
            row.outcome,
            " ".join(row.reasons),
        ]
        table.add_row(*map(escape, cells), "[green]yes[/]" if row.held else "[bold red]NO[/]")
    console.print(table)
    if result.passed:
        console.print(f"[green]PASSED[/] {escape(result.title)}")
    else:
        stopped = " (stopped there: --fail-fast)" if result.stopped else ""
        console.print(
            f"[bold red]FAILED[/] {escape(result.title)}: "
            f"{len(result.failures)} of {len(result.rows)} expectations did not hold{stopped}"
        )
        for row in result.failures:
            console.print(f"  {escape(row.name)}: {escape(row.message)}")
    console.print()


def _report_invalid(exc: ScenarioInvalid, consequence: str = "") -> None:
    from rich.markup import escape

    console = stderr()
    files = {p.file for p in exc.problems}
    for problem in exc.problems:
        console.print(escape(str(problem)))
    tail = f": {consequence}" if consequence else ""
    console.print(f"[bold red]{len(files)} invalid file(s)[/]{tail}")


@app.command()
def validate(paths: Paths) -> None:
    """Check scenario files without running them; exit 2 when any is invalid."""
    from rich.markup import escape

    from workflow.scenario.loader import expand_paths, load_scenario
    from workflow.scenario.models import ScenarioInvalid

    invalid = 0
    console = stdout()
    for path in expand_paths(paths):
        try:
            scenario = load_scenario(path)
        except ScenarioInvalid as exc:
            invalid += 1
            _report_invalid(exc)
            continue
        console.print(f"valid: {escape(str(path))} ({len(scenario.steps)} steps)")
    raise typer.Exit(EXIT_INVALID if invalid else EXIT_OK)


@app.command()
def new(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The file to write (never overwritten).",
                                         dir_okay=False)],
    route: Annotated[Route, typer.Option("--route", help="autologous or allogeneic.")],
    donor_type: Annotated[
        DonorType | None, typer.Option("--donor-type", help="Required for an allogeneic route.")
    ] = None,
    graft_source: Annotated[
        GraftSource | None,
        typer.Option("--graft-source", help="Default: cord_blood for a cord blood donor, else pbsc."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", metavar="DATE", help="Date of the referral (default: today, UTC).")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="The title (default: from the route).")] = None,
) -> None:
    """Write a starting scenario file that runs as it is: one pathway referred and taken into
    evaluation, a check, and the commands that may follow. Exit 2 when the file exists or the
    route, donor type and graft source do not agree (nothing is written)."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from workflow.scenario.template import starting_scenario

    if path.exists():
        fail(f"{path} exists: choose another file name (scenario new never overwrites)")
    day = parse_date(start, option="--start") or datetime.now(UTC).date()
    try:
        text = starting_scenario(route, start=day, donor_type=donor_type, graft_source=graft_source, title=title)
    except ValidationError as exc:
        rules = "; ".join(f"{err['msg']} [{err['type']}]" for err in exc.errors(include_input=False, include_url=False))
        fail(f"--route, --donor-type and --graft-source do not agree: {rules}")
    path.write_text(text, encoding="utf-8")
    typer.echo(f"scenario written to {path}; run it with `hsct scenario run {path}`", err=True)


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write the schema to FILE (docs/scenario.schema.json) instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the scenario format, each step's `with:` typed by its `do:` (for
    editors; `hsct scenario validate` also checks what a schema cannot say)."""
    from workflow.scenario.schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"scenario schema written to {output}", err=True)
