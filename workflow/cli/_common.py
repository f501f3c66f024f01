"""What every command shares: the `--db` option, consoles, time parsing and error exits.

Only typer and the standard library are imported here: `hsct --help` must not pay for
SQLAlchemy, pydantic models or the service. Everything heavier is imported inside the
function that needs it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from workflow.service import PathwayService

DEFAULT_DB_URL = "sqlite:///hsct.sqlite"
"""`persistence.engine.default_sqlite_url()`, spelled out so that --help needs no SQLAlchemy."""

DB_ENV = "HSCT_DB"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

Db = Annotated[
    str,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        metavar="URL",
        help=f"Database URL (sqlite:///FILE or postgresql+psycopg://...). Default: {DEFAULT_DB_URL} "
        "(the file hsct.sqlite in the current directory).",
        show_default=False,
    ),
]


def stdout() -> Console:
    """Tables and results."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    """Diagnostics, progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Say what went wrong on stderr and exit with `code` (2: invalid input or usage)."""
    from rich.markup import escape

    stderr().print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def masked(url: str) -> str:
    """`url` with its password hidden, or a placeholder when it does not even parse."""
    from sqlalchemy.exc import ArgumentError

    from persistence.engine import masked_url

    try:
        return masked_url(url)
    except (ArgumentError, ValueError):
        return "<unparsable database URL>"


@contextmanager
def library_errors(url: str | None = None) -> Iterator[None]:
    """Turn the library's and the database driver's errors into a message and exit code 2."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from persistence.store import StorageError
    from states.errors import HsctError

    try:
        yield
    except StorageError as exc:
        fail(f"{exc} (database {masked(url or '')})")
    except HsctError as exc:
        fail(str(exc))
    except ArgumentError:
        fail(f"cannot use the database URL {masked(url or '')}")
    except SQLAlchemyError as exc:
        origin = getattr(exc, "orig", None) or exc
        first_line = str(origin).splitlines()[0] if str(origin) else type(origin).__name__
        fail(f"database error on {masked(url or '')}: {first_line}")
    except ValueError as exc:
        # create_engine's "unsupported database" and the like: messages without the URL.
        fail(str(exc))


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite file URL whose file does not exist (reading must not create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory" or database.startswith("file:"):
        return None
    return None if os.path.exists(database) else database


def open_service(url: str) -> PathwayService:
    """The service on an existing, current database (a reading command never migrates)."""
    from workflow.service import PathwayService

    with library_errors(url):
        path = missing_sqlite_file(url)
        if path is not None:
            fail(f"no database file at {path}: run `hsct db upgrade --db {masked(url)}` or `hsct scenario run --db`")
        return PathwayService(url, auto_upgrade=False)


def parse_time(text: str, *, zone: str = "UTC", end_of_day: bool = False, option: str = "--at") -> datetime:
    """An ISO date or date-time from the command line, timezone-aware.

    A date alone is the start of that day in `zone` (or its end, for an upper bound); a
    date-time without an offset is read in `zone`.
    """
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(0, 0), tzinfo=tz)
            return start + timedelta(days=1, microseconds=-1) if end_of_day else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "must be an ISO 8601 date (2026-02-17) or date-time (2026-02-17T08:00)", param_hint=option
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def parse_date(text: str | None, *, option: str = "--on") -> date | None:
    """An ISO clinical date from the command line (None when the option was not given)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter("must be an ISO 8601 date (2026-02-17)", param_hint=option) from None


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def is_terminal() -> bool:
    return sys.stderr.isatty()
