"""`hsct db upgrade | current`: the database schema, migrated with the scripts the library ships,
and the pathways' facts re-derived from their logs when a release changes a derivation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from workflow.cli._common import (
    DEFAULT_DB_URL,
    Db,
    is_terminal,
    library_errors,
    masked,
    missing_sqlite_file,
    stderr,
    stdout,
)

app = typer.Typer(name="db", help="Create or upgrade the database schema, and show its revision.",
                  no_args_is_help=True)


@app.command()
def upgrade(db: Db = DEFAULT_DB_URL) -> None:
    """Migrate the database to the revision this library needs (creating a SQLite file if
    needed), then re-derive every pathway's facts from its log (docs/versioning.md)."""
    from persistence.engine import create_engine
    from persistence.schema import current_revision, head_revision
    from persistence.store import translate_errors
    from workflow.upgrade import upgrade_database

    with library_errors(db):
        engine = create_engine(db)
        try:
            with translate_errors():
                before = current_revision(engine)
                with _progress() as progress:
                    rederived = upgrade_database(engine, progress=progress)
                after = current_revision(engine)
        finally:
            engine.dispose()
    head = head_revision()
    if before == after:
        stdout().print(f"{masked(db)}: already at revision {after} (head {head})")
    else:
        stdout().print(f"{masked(db)}: upgraded from {before or 'an empty database'} to revision {after} (head {head})")
    stdout().print(
        f"facts re-derived from the log: {rederived.facts_changed} of {rederived.pathways} pathways changed "
        f"({rederived.milestones_changed} with changed open milestones)"
    )


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (a terminal only) for the re-derivation, pathway by pathway."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("re-deriving facts"), BarColumn(), MofNCompleteColumn(),
        console=stderr(), transient=True, disable=not is_terminal(),
    ) as bar:
        task = bar.add_task("re-deriving facts", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@app.command()
def current(db: Db = DEFAULT_DB_URL) -> None:
    """Show the database's schema revision and whether it is the one this library needs."""
    from persistence.engine import create_engine
    from persistence.schema import current_revision, head_revision
    from persistence.store import translate_errors

    head = head_revision()
    with library_errors(db):
        path = missing_sqlite_file(db)
        if path is not None:
            stdout().print(f"{masked(db)}: no database file (head {head}); run `hsct db upgrade`")
            return
        engine = create_engine(db)
        try:
            with translate_errors():
                revision = current_revision(engine)
        finally:
            engine.dispose()
    if revision is None:
        state = "no hsct schema; run `hsct db upgrade`"
    elif revision == head:
        state = "at head"
    else:
        state = "not at head; run `hsct db upgrade`"
    stdout().print(f"{masked(db)}: revision {revision or 'none'} (head {head}): {state}")
