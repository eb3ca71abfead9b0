"""Serialising writers of one named thing (an item set, say) across processes.

Take the lock first thing in the transaction that checks and then writes the
thing: a second process waits for the first to commit, then sees its result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from workbench.errors import StoreLockedError

PG_LOCK_TIMEOUT_S = 120


def lock_names(session: Session, kind: str, names: Iterable[str]) -> None:
    """Hold, until the transaction ends, the lock on each of `names` of this `kind`.

    PostgreSQL: a transaction-scoped advisory lock per name (waits up to
    PG_LOCK_TIMEOUT_S). SQLite: the store's write lock, taken now rather
    than at the first write (waits up to the busy timeout).
    """
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        session.execute(text("DELETE FROM store_meta WHERE 0"))  # takes the write lock, changes nothing
        return
    for name in sorted(set(names)):
        key = int.from_bytes(hashlib.sha256(f"workbench.{kind}:{name}".encode()).digest()[:8], "big", signed=True)
        session.execute(text(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT_S}s'"))
        try:
            with session.begin_nested():
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        except OperationalError:
            raise StoreLockedError(
                f"{kind.replace('_', ' ')} {name} is being written by another process; run the command again when it is done."
            ) from None
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
