"""`hsct policy list | show | diff | add | adopt`: the policy registry and policy changes.

The registry holds each policy version's full content (docs/versioning.md). `add` stores a
policy file before it is rolled out; `adopt` moves one running pathway to a registered
version (an `adopt_policy` entry, with a reason, by a role the pathway's policy names for
it), and with `--dry-run` shows which open milestones and verdicts would change instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workflow.cli._common import (
    DEFAULT_DB_URL,
    EXIT_FAILED,
    Db,
    fail,
    library_errors,
    open_service,
    parse_time,
    stdout,
)
from workflow.cli.output import Format, FormatOption, Row, emit

if TYPE_CHECKING:
    from persistence.policies import RegisteredPolicy
    from workflow.policy_change import PolicyChangePreview
    from workflow.service import PathwayService

app = typer.Typer(name="policy", help="The policy registry: list, show, compare, register and adopt policies.",
                  no_args_is_help=True)

LIST_KEYS = ("version", "registered_at", "release", "content_sha256", "entries")
DIFF_KEYS = ("field", "a", "b")

Version = Annotated[str, typer.Argument(metavar="VERSION", help="A registered policy version.")]


def _registered(service: PathwayService, version: str) -> RegisteredPolicy:
    from persistence.policies import registered

    with service.engine.connect() as connection:
        found = registered(connection, version)
    if found is None:
        fail(f"policy version {version!r} is not in the registry (`hsct policy list`)")
    return found


@app.command("list")
def list_(db: Db = DEFAULT_DB_URL, fmt: FormatOption = Format.TABLE) -> None:
    """Every registered policy version, oldest first, with how many entries were judged under it."""
    from sqlalchemy import func, select

    from persistence.models import entries_table
    from persistence.policies import all_policies

    service = open_service(db)
    with library_errors(db), service.engine.connect() as connection:
        rows = all_policies(connection)
        per_version = select(entries_table.c.policy_version, func.count()).group_by(entries_table.c.policy_version)
        counts: dict[str, int] = dict(connection.execute(per_version).all())
    emit(
        [
            {
                "version": row.version,
                "registered_at": row.registered_at.isoformat(),
                "release": row.release,
                "content_sha256": row.content_sha256[:16],
                "entries": counts.get(row.version, 0),
            }
            for row in rows
        ],
        LIST_KEYS,
        fmt,
    )


@app.command()
def show(version: Version, db: Db = DEFAULT_DB_URL) -> None:
    """The full content of a registered policy (its canonical JSON, indented)."""
    service = open_service(db)
    with library_errors(db):
        found = _registered(service, version)
    typer.echo(json.dumps(json.loads(found.content), indent=2, sort_keys=True, ensure_ascii=False))


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A policy's canonical JSON as dotted field names (roles.infuse, primary_graft_failure_day.pbsc)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def _cell(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


@app.command()
def diff(a: Version, b: Version, db: Db = DEFAULT_DB_URL, fmt: FormatOption = Format.TABLE) -> None:
    """Every field whose value differs between two registered versions (exit 1 when any)."""
    service = open_service(db)
    with library_errors(db):
        left = _flat(json.loads(_registered(service, a).content))
        right = _flat(json.loads(_registered(service, b).content))
    rows: list[Row] = [
        {"field": name, "a": _cell(left.get(name)), "b": _cell(right.get(name))}
        for name in sorted(set(left) | set(right))
        if left.get(name) != right.get(name)
    ]
    emit(rows, DIFF_KEYS, fmt, title=f"a = {a}, b = {b}")
    if rows:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def add(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A policy file (.toml, .yaml or .yml).",
                                         exists=True, dir_okay=False)],
    db: Db = DEFAULT_DB_URL,
) -> None:
    """Register a policy file's content under its version (before rolling it out, or for a
    policy that judged entries before the registry existed)."""
    from persistence.policies import register
    from workflow import __version__
    from workflow.policy_files import load_policy

    service = open_service(db)
    with library_errors(db):
        policy = load_policy(file)
        with service.engine.begin() as connection:
            known = register(connection, policy, now=service.clock.now(), release=__version__)
    stdout().print(f"policy {policy.version_id}: {'already registered' if known else 'registered'}")


@app.command()
def adopt(
    pathway_id: Annotated[
        str, typer.Argument(metavar="PATHWAY", help="The running pathway to move (its id or a unique prefix).")
    ],
    version: Annotated[str, typer.Option("--version", metavar="VERSION", help="The registered policy to adopt.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required unless --dry-run).")] = None,
    actor_id: Annotated[str, typer.Option("--actor-id", help="Who decides.")] = "",
    role: Annotated[str, typer.Option("--role", help="In which role (the policy names who may).")] = "",
    at: Annotated[str | None, typer.Option("--at", metavar="TIME", help="Effective time (default: now).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    db: Db = DEFAULT_DB_URL,
) -> None:
    """Move a running pathway to another registered policy version (an `adopt_policy` entry)."""
    from workflow.policy_change import preview_policy_change

    service = open_service(db)
    when = parse_time(at) if at else None
    with library_errors(db):
        pathway_id = service.resolve_id(pathway_id)
        if dry_run:
            _print_preview(preview_policy_change(service, pathway_id, version, at=when))
            return
        if not (reason and actor_id and role):
            fail("adopting needs --reason, --actor-id and --role (or --dry-run)")
        result = service.fire(
            pathway_id,
            "adopt_policy",
            {"version": version, "reason": reason},
            actor={"id": actor_id, "role": role},
            at=when or service.clock.now(),
        )
    stdout().print(f"pathway {pathway_id} now judged under policy {version} (entry {result.entry.sequence})")


def _print_preview(preview: PolicyChangePreview) -> None:
    out = stdout()
    out.print(f"pathway {preview.pathway_id}: policy {preview.current} -> {preview.target} (dry run)", markup=False)
    before = {(m.name, m.status, m.due_on) for m in preview.milestones_before}
    after = {(m.name, m.status, m.due_on) for m in preview.milestones_after}
    if before == after:
        out.print("open milestones: unchanged")
    for sign, items in (("-", before - after), ("+", after - before)):
        for name, status, due_on in sorted(items, key=str):
            out.print(f"  {sign} {name} {status}, due {due_on}", markup=False)
    if not preview.verdicts:
        out.print("verdicts: unchanged")
    for change in preview.verdicts:
        old = ",".join(change.before) or "passes"
        new = ",".join(change.after) or "passes"
        out.print(f"  {change.command} as {change.role.value}: {old} -> {new}", markup=False)
