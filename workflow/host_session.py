"""What the service does around a Session the host owns: work that waits for its end.

A command fired inside the host's transaction is not in the log until the host commits. Two
things therefore wait for the host's transaction to end: after-commit listeners (they must
never hear of an entry that is then rolled back) and the re-recording of a refusal the host's
rollback took with it (docs/embedding.md, "Refusals and the host's rollback").

Each piece of work is remembered with the host's transaction that was innermost when it was
done: rolling that transaction (or one around it) back undoes it, committing the outermost
one delivers it. The work runs after SQLAlchemy has committed or rolled back (and released the
connection's locks); an error in it is logged, never raised into the host's commit or rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_PENDING = "hsct_pending"
"""Key in `Session.info`: the work waiting for the end of the session's transaction."""


@dataclass
class _Pending:
    transaction: SessionTransaction
    on_commit: Callable[[], None] | None
    on_rollback: Callable[[], None] | None
    undone: bool = False


def when_ended(
    session: Session,
    *,
    on_commit: Callable[[], None] | None = None,
    on_rollback: Callable[[], None] | None = None,
) -> None:
    """Run `on_commit` once the session's outermost transaction has committed, or
    `on_rollback` once the work done now has been rolled back with it (or with a SAVEPOINT
    around it) and the outermost transaction has ended."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:  # pragma: no cover - the service has just worked in it
        raise RuntimeError("the session has no transaction")
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        event.listen(session, "after_soft_rollback", _rolled_back)
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_transaction_end", _ended)
    session.info[_PENDING].append(_Pending(transaction, on_commit, on_rollback))


def _within(transaction: SessionTransaction, outer: SessionTransaction) -> bool:
    found: SessionTransaction | None = transaction
    while found is not None:
        if found is outer:
            return True
        found = found.parent
    return False


def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    for item in session.info.get(_PENDING, []):
        if _within(item.transaction, previous_transaction):
            item.undone = True


def _committed(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT was released: nothing is committed yet
        return
    pending = session.info.get(_PENDING, [])
    session.info[_PENDING] = [item for item in pending if item.undone]
    _run([item.on_commit for item in pending if not item.undone], "after-commit listener")


def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.get(_PENDING, [])
    session.info[_PENDING] = []
    # Whatever is left was rolled back: with a SAVEPOINT before a commit, or with everything.
    _run([item.on_rollback for item in pending], "work after the host's rollback")


def _run(actions: list[Callable[[], None] | None], what: str) -> None:
    for action in actions:
        if action is None:
            continue
        try:
            action()
        except Exception:  # the host's commit or rollback has happened: it must not fail now
            logger.exception("%s failed", what)
