"""The app `hsct serve` runs in each uvicorn worker, configured from the environment.

uvicorn starts workers by importing an app factory, so the command line hands its options
over in environment variables (set by `hsct serve`; a host may set them itself).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from fastapi import FastAPI

from workflow.http.app import create_app
from workflow.http.auth import TokenFile, Verifier
from workflow.http.webhooks import WebhookTarget
from workflow.service import PathwayService, RoleDirectory

DB = "HSCT_DB"
TOKENS = "HSCT_HTTP_TOKENS"
VERIFIER = "HSCT_HTTP_VERIFIER"
ROLES = "HSCT_HTTP_ROLES"
WEBHOOK_URL = "HSCT_WEBHOOK_URL"
WEBHOOK_SECRET_FILE = "HSCT_WEBHOOK_SECRET_FILE"  # noqa: S105 - a variable name


def imported(spec: str) -> Any:
    """`package.module:attribute`, imported."""
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"expected MODULE:ATTRIBUTE, got {spec!r}")
    return getattr(importlib.import_module(module), attribute)


def identity(env: os._Environ[str] | dict[str, str]) -> tuple[Verifier, RoleDirectory | None]:
    """The verifier and role directory: a development token file, or the host's callbacks."""
    if env.get(TOKENS):
        tokens = TokenFile.load(env[TOKENS])
        return tokens.verify, tokens.roles
    if env.get(VERIFIER):
        return imported(env[VERIFIER]), imported(env[ROLES]) if env.get(ROLES) else None
    raise ValueError(f"no authentication configured: set {TOKENS} or {VERIFIER}")


def webhook(env: os._Environ[str] | dict[str, str]) -> WebhookTarget | None:
    if not env.get(WEBHOOK_URL):
        return None
    if not env.get(WEBHOOK_SECRET_FILE):
        raise ValueError(f"{WEBHOOK_URL} needs {WEBHOOK_SECRET_FILE}: every delivery is signed")
    with open(env[WEBHOOK_SECRET_FILE], "rb") as handle:
        secret = handle.read().strip()
    return WebhookTarget(url=env[WEBHOOK_URL], secret=secret)


def app_from_env() -> FastAPI:
    url = os.environ[DB]
    verifier, roles = identity(os.environ)
    return create_app(
        lambda: PathwayService(url, roles=roles, auto_upgrade=False), verifier, webhook=webhook(os.environ)
    )
