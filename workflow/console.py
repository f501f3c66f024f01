"""The console script `hsct`: the command line, or an install line when an extra is missing.

Only the standard library and `persistence.extras` are imported before the command line itself,
so that a missing typer (the `cli` extra) is reported as `pip install 'hsct-pathway[cli]'`
rather than as a traceback; optional packages a command loads later (psycopg, PyYAML, FHIR,
matplotlib, ...) are reported the same way.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from persistence.extras import install_hint

__all__ = ["main"]

EXIT_INVALID = 2


def main() -> None:
    """Run `hsct`; exit 2 with the install line when an optional package is missing."""
    try:
        from workflow.cli import app

        app()
    except ModuleNotFoundError as exc:
        _exit_with_hint(exc)


def _exit_with_hint(exc: ModuleNotFoundError) -> NoReturn:
    hint = install_hint(exc.name)
    if hint is None:
        raise exc
    sys.stderr.write(f"error: {hint}\n")
    raise SystemExit(EXIT_INVALID)
