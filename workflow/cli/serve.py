"""`hsct serve`: the embedding API over HTTP (docs/http.md), on uvicorn.

FastAPI and uvicorn are imported inside the command: `hsct --help` stays fast, and without the
`http` extra the command says how to install it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from workflow.cli._common import DEFAULT_DB_URL, Db, fail, library_errors, open_service

INSTALL_HINT = "the HTTP server needs the http extra: pip install 'hsct-pathway[http]'"


def serve(
    db: Db = DEFAULT_DB_URL,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    tokens: Annotated[
        Path | None, typer.Option(help="Development bearer tokens (JSON of sha256 digests, ids and roles).")
    ] = None,
    verifier: Annotated[
        str | None, typer.Option(help="MODULE:ATTR of the host's token verifier (instead of --tokens).")
    ] = None,
    roles: Annotated[str | None, typer.Option(help="MODULE:ATTR of the host's role directory.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST every committed entry here.")] = None,
    webhook_secret_file: Annotated[
        Path | None, typer.Option(help="File holding the secret that signs webhook bodies.")
    ] = None,
) -> None:
    """Serve the pathway API over HTTP (every endpoint needs a bearer token)."""
    try:
        import uvicorn

        from workflow.http import main
    except ImportError:
        fail(INSTALL_HINT)
    settings = {
        main.DB: db,
        main.TOKENS: str(tokens or ""),
        main.VERIFIER: verifier or "",
        main.ROLES: roles or "",
        main.WEBHOOK_URL: webhook_url or "",
        main.WEBHOOK_SECRET_FILE: str(webhook_secret_file or ""),
    }
    try:
        main.identity(settings)  # fail here, once, rather than in every worker
        main.webhook(settings)
    except (OSError, ValueError, KeyError) as exc:
        fail(f"cannot configure the server: {exc}")
    with library_errors(db):
        open_service(db).engine.dispose()  # the schema is current before any worker starts
    os.environ.update(settings)
    uvicorn.run("workflow.http.main:app_from_env", factory=True, host=host, port=port, workers=workers)
