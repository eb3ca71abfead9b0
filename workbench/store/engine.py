"""Engines and the store's change counter.

Nothing here runs at import time: callers make one engine per command and
one Session per unit of work (`with Session(engine) as s, s.begin(): ...`).
Imports go one way: engine -> migrate -> meta, urls (URLs are in `urls`, the
store's identity and change counter in `meta`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from workbench.errors import WorkbenchError
from workbench.store.meta import bump_generation, generation, store_id, store_version
from workbench.store.urls import DEFAULT_DB_NAME, redact_url, resolve_url

__all__ = [
    "DEFAULT_DB_NAME",
    "bump_generation",
    "connect",
    "generation",
    "make_engine",
    "redact_url",
    "resolve_url",
    "server_version",
    "store_id",
    "store_version",
]


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError:
        raise WorkbenchError(
            f"Cannot read the database URL {redact_url(url)!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB."
        ) from None
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            parent = Path(u.database).parent
            if not parent.exists():
                raise WorkbenchError(
                    f"The folder {parent} for the SQLite store does not exist: create it or pass --db."
                )
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise WorkbenchError(
        f"Unsupported database {u.get_backend_name()!r}: workbench stores data in SQLite or PostgreSQL."
    )


def connect(url: str, *, upgrade: bool = False) -> Engine:
    """An engine on a store at the schema this workbench expects.

    A new, empty database is migrated to the current schema. An older store
    is upgraded when `upgrade` is true, otherwise a StoreVersionError says how
    to upgrade it. A store from a newer workbench, or a database that is not a
    workbench store, is refused.
    """
    from workbench.store import migrate

    engine = make_engine(url)
    try:
        migrate.ensure_current(engine, allow_upgrade=upgrade)
    except DatabaseError as exc:
        engine.dispose()
        # OperationalError: no server, no such database; a plain DatabaseError: SQLite's "file is not a
        # database". Others (a failing migration, say) are not about opening the store: let them through.
        if not (isinstance(exc, OperationalError) or type(exc) is DatabaseError):
            raise
        raise WorkbenchError(
            f"Cannot open the store at {redact_url(url)}: {str(exc.orig).strip()}. Check the URL and that the server is running."
        ) from None
    except Exception:
        engine.dispose()
        raise
    return engine


def server_version(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return "SQLite " + conn.execute(text("select sqlite_version()")).scalar_one()
        return conn.execute(text("select version()")).scalar_one().split(",")[0]
