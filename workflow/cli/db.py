"""`hsct db upgrade | current`: the database schema, migrated with the scripts the library ships."""

from __future__ import annotations

import typer

from workflow.cli._common import DEFAULT_DB_URL, Db, library_errors, masked, missing_sqlite_file, stdout

app = typer.Typer(name="db", help="Create or upgrade the database schema, and show its revision.",
                  no_args_is_help=True)


@app.command()
def upgrade(db: Db = DEFAULT_DB_URL) -> None:
    """Migrate the database to the revision this library needs (creating a SQLite file if needed)."""
    from persistence.engine import create_engine
    from persistence.schema import current_revision, head_revision
    from persistence.schema import upgrade as run_upgrade
    from persistence.store import translate_errors

    with library_errors(db):
        engine = create_engine(db)
        try:
            with translate_errors():
                before = current_revision(engine)
                run_upgrade(engine)
                after = current_revision(engine)
        finally:
            engine.dispose()
    head = head_revision()
    if before == after:
        stdout().print(f"{masked(db)}: already at revision {after} (head {head})")
    else:
        stdout().print(f"{masked(db)}: upgraded from {before or 'an empty database'} to revision {after} (head {head})")


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
