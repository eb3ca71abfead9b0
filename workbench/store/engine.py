"""Engines and the store's change counter.

Nothing here runs at import time: callers make one engine per command and
one Session per unit of work (`with Session(engine) as s, s.begin(): ...`).
Imports go one way: engine -> migrate -> meta, urls (URLs are in `urls`, the
store's identity and change counter in `meta`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError

from workbench.errors import StoreLockedError, WorkbenchError
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
    "store_error",
    "store_id",
    "store_version",
]


BUSY_TIMEOUT_ENV = "WORKBENCH_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0


def busy_timeout() -> float:
    """Seconds a command waits for a SQLite store another process is writing to (WORKBENCH_BUSY_TIMEOUT)."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value <= 86400):
        raise WorkbenchError(f"{BUSY_TIMEOUT_ENV}={raw!r}: give the seconds to wait for a locked store, e.g. 30.")
    return value


def _sqlite_pragmas(timeout_ms: int):
    def on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={timeout_ms}")
        cur.close()

    return on_connect


def store_error(exc: BaseException, url: str | URL) -> WorkbenchError | None:
    """The one-line error for a database error that is about the store itself (None: not one of those).

    A SQLite store locked by another writer past the busy timeout, a file that
    is not a SQLite database, or a damaged (e.g. truncated) one.
    """
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    where = redact_url(url if isinstance(url, str) else url.render_as_string(hide_password=False))
    message = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    lowered = message.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return StoreLockedError(
            f"The store at {where} is locked by another process writing to it (waited {busy_timeout():g} s): "
            f"run the command again when that process has finished, or set {BUSY_TIMEOUT_ENV}=SECONDS to wait longer."
        )
    if "file is not a database" in lowered:
        return WorkbenchError(
            f"{where} is not a workbench store: the file is not an SQLite database. "
            "Point --db at a workbench store, or at a new file to create one."
        )
    if "malformed" in lowered or "disk image" in lowered:
        return WorkbenchError(
            f"The store at {where} is damaged or truncated (SQLite: {message}). Restore it from a backup, or point --db at another store."
        )
    return None


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise WorkbenchError(
            f"Cannot read the database URL {redact_url(url)!r}: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB."
        ) from None
    except ValueError:  # e.g. a port that is not a number
        port = url.rsplit("@", 1)[-1].split("/", 1)[0].rpartition(":")[2]
        raise WorkbenchError(
            f"Cannot read the database URL {redact_url(url)!r}: the port {port!r} is not a number (postgresql+psycopg://USER@HOST:5432/DB)."
        ) from None


def make_engine(url: str) -> Engine:
    u = _parse_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            parent = Path(u.database).parent
            if not parent.exists():
                raise WorkbenchError(f"The folder {parent} for the SQLite store does not exist: create it or pass --db.")
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas(int(busy_timeout() * 1000)))
        return engine
    if u.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise WorkbenchError(f"Unsupported database {u.get_backend_name()!r}: workbench stores data in SQLite or PostgreSQL.")


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
        known = store_error(exc, url)
        if known is not None:
            raise known from None
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
