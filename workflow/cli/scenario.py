"""`hsct scenario run | validate | schema`: scenario scripts from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.cli._common import DB_ENV, EXIT_FAILED, EXIT_INVALID, EXIT_OK, library_errors, masked, stderr, stdout

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

    results = _run_all(loaded, db)
    from workflow.scenario.report import junit_xml, results_json, summary_line

    if junit is not None:
        junit.write_text(junit_xml(results), encoding="utf-8")
        stderr().print(f"JUnit XML written to {junit}")
    if as_json:
        typer.echo(results_json(results))
    else:
        console = stdout()
        for result in results:
            _print_result(console, result)
        typer.echo(summary_line(results))
    raise typer.Exit(EXIT_OK if all(r.passed for r in results) else EXIT_FAILED)


def _run_all(loaded: list[tuple[Path, Scenario]], db: str | None) -> list[ScenarioResult]:
    """Run each scenario, with a progress bar on stderr when there are several."""
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
            results.append(run_scenario(scenario, db_url=db, source=str(path)))
            progress.advance(task)
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
        console.print(
            f"[bold red]FAILED[/] {escape(result.title)}: "
            f"{len(result.failures)} of {len(result.rows)} expectations did not hold"
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
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors)."""
    from workflow.scenario.models import scenario_json_schema

    typer.echo(json.dumps(scenario_json_schema(), indent=2))
