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
    is not a SQLite database, or a damaged (e.g. truncated) one; a full disk; a
    store that cannot be written (read-only mount, immutable or read-only file
    or folder; a read-only PostgreSQL server). `exc` is SQLAlchemy's wrapper or
    the driver's own error (code that writes through the raw DBAPI cursor).
    """
    orig = _driver_error(exc)
    if orig is None:
        return None
    where = redact_url(url if isinstance(url, str) else url.render_as_string(hide_password=False))
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = message.lower()
    db = _sqlite_file(url)
    if db is not None:
        known = _sqlite_file_error(db, where, message)
        if known is not None:
            return known
    else:
        known = _server_error(orig, where, message)
        if known is not None:
            return known
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


def _driver_error(exc: BaseException) -> BaseException | None:
    """The database driver's error behind `exc` (None: not a database error)."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    if isinstance(exc, Exception) and type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg"):
        return exc
    return None


def _sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite store URL (None: a server, or an in-memory database)."""
    try:
        u = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return Path(u.database)


def _sqlite_file_error(db: Path, where: str, message: str) -> WorkbenchError | None:
    """A full disk, a read-only mount, an immutable or read-only file or folder, said as such."""
    lowered = message.lower()
    if "disk is full" in lowered or "no space left" in lowered:
        return WorkbenchError(
            f"The disk holding the store's folder {db.parent} is full (SQLite: {message}): free some space there, "
            f"or move the store and point --db at it, then run the command again. The step that failed was rolled back; "
            f"the store at {where} is as it was before it."
        )
    if any(k in lowered for k in ("readonly", "read-only", "unable to open", "database is locked", "disk i/o error")):
        from workbench.store.filesystem import write_problem

        problem = write_problem(db)
        if problem is not None:
            return WorkbenchError(
                f"The store at {where} cannot be written: {problem}. Workbench writes to its store even to read it "
                "(the schema check, SQLite's journal beside it): fix that, or copy the store to a writable folder and point --db at the copy."
            )
    return None


def _server_error(orig: BaseException, where: str, message: str) -> WorkbenchError | None:
    """PostgreSQL out of disk space, or refusing writes (a standby, default_transaction_read_only)."""
    state = getattr(orig, "sqlstate", None)
    if state == "53100" or "no space left on device" in message.lower():
        return WorkbenchError(
            f"The server holding the store {where} is out of disk space ({message}): free space on the server, "
            "then run the command again. The step that failed was rolled back."
        )
    if state == "25006":
        return WorkbenchError(
            f"The store {where} is read-only ({message}): the server is a standby, or the database or user has "
            "default_transaction_read_only set. Point --db at a writable server or database."
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
