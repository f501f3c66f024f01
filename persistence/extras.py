"""Optional packages and the extra that installs each: a missing one is named with its install line.

The library's core needs pydantic, SQLAlchemy, alembic and transitions; everything else comes
with an extra (`pip install 'hsct-pathway[postgres]'`). Python's own "No module named 'psycopg'"
says what is missing but not how to get it, so the places that load an optional package turn
that error into `MissingExtra`, whose message is the install line. It lives in `persistence`,
the lowest layer that loads one (psycopg), so that `workflow` can use it too.
"""

from __future__ import annotations

__all__ = ["EXTRAS", "MissingExtra", "install_hint", "missing_extra"]

EXTRAS: dict[str, str] = {
    "typer": "cli",
    "rich": "cli",
    "yaml": "yaml",
    "psycopg": "postgres",
    "fhir": "fhir",
    "matplotlib": "timeline",
    "cryptography": "audit",
    "fastapi": "http",
    "uvicorn": "http",
    "graphviz": "docs",
}
"""Top-level module name -> the extra of pyproject.toml that installs it."""


class MissingExtra(ModuleNotFoundError):
    """An optional package is not installed; the message says which extra installs it."""


def install_hint(module: str | None) -> str | None:
    """The install line for a missing module of an extra, or None for any other module."""
    top = (module or "").partition(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"the optional package {top!r} is not installed: pip install 'hsct-pathway[{extra}]'"


def missing_extra(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """`exc` as a `MissingExtra` with its install line, or `exc` itself when no extra installs it."""
    hint = install_hint(exc.name)
    return exc if hint is None or isinstance(exc, MissingExtra) else MissingExtra(hint, name=exc.name)
