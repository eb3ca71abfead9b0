"""The migration runner: Alembic driven from code, on the engine we hold.

Opening a store that is already at head does not import Alembic: the head is
read from the version files' `revision`/`down_revision` lines and compared
with `alembic_version` in one query (`_at_head`); anything else goes
through Alembic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from workbench.errors import StoreVersionError
from workbench.store.meta import ensure_store_id
from workbench.store.urls import redact_url

_PACKAGE = Path(__file__).resolve().parents[1]


def migrations_dir() -> Path:
    """Alembic's scripts: `workbench/migrations/` in a wheel, else `migrations/` at the top of a source tree.

    The wheel build copies the top-level folder into the package (pyproject.toml,
    `[tool.hatch.build.targets.wheel.force-include]`); a source checkout or an
    editable install reads the top-level folder itself.
    """
    for candidate in (_PACKAGE / "migrations", _PACKAGE.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    return _PACKAGE / "migrations"


MIGRATIONS_DIR = migrations_dir()


def alembic_config(engine: Engine):
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise StoreVersionError(
            f"The migrations folder {MIGRATIONS_DIR} is missing: reinstall workbench (pip install workbench, "
            "or pip install -e . in a source tree)."
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _revision_on(conn: Connection, where: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise StoreVersionError(
            f"The store at {where} names {len(heads)} schema revisions in its alembic_version table "
            f"({', '.join(sorted(heads))}); a store has one. Keep the row of the revision its tables are at, "
            "delete the others, and run the command again."
        )
    return heads[0] if heads else None


def _where(engine: Engine) -> str:
    return redact_url(engine.url.render_as_string(hide_password=False))


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision (None: an empty database)."""
    with engine.connect() as conn:
        return _revision_on(conn, _where(engine))


def _run(engine: Engine, conn: Connection, cmd, revision: str) -> None:
    cfg = alembic_config(engine)
    cfg.attributes["connection"] = conn
    cmd(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with _migration_lock(engine) as conn:
        _run(engine, conn, command.upgrade, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with _migration_lock(engine) as conn:
        _run(engine, conn, command.downgrade, revision)


# one key for every workbench store: the lock is per database, so stores do not wait on each other
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"workbench.migrate").digest()[:8], "big", signed=True)
MIGRATION_LOCK_TIMEOUT_S = 300


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other workbench can migrate the store beside.

    PostgreSQL: a session advisory lock (a second process waits, then finds
    the store migrated). SQLite: the store's write lock (BEGIN IMMEDIATE,
    waiting up to the busy timeout); Alembic runs in that transaction.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SET lock_timeout = '{MIGRATION_LOCK_TIMEOUT_S}s'"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            except OperationalError as exc:
                if "lock timeout" not in str(exc.orig):
                    raise
                raise StoreVersionError(
                    f"Another process has been migrating the store at {_where(engine)} for over "
                    f"{MIGRATION_LOCK_TIMEOUT_S} s: run the command again when it has finished."
                ) from None
            conn.execute(text("SET lock_timeout = DEFAULT"))
            conn.commit()
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            return
        with conn.begin():
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(?:None|['\"]([^'\"]+)['\"])\s*$", re.M)


@cache
def _head_from_files(folder: Path) -> str | None:
    """The single head revision, read from the version files' text; None when that is not plain."""
    revisions: dict[str, str | None] = {}
    for f in sorted((folder / "versions").glob("*.py")):
        source = f.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if not rev or not down:
            return None  # a merge (tuple down_revision) or an unusual file: ask Alembic
        revisions[rev.group(1)] = down.group(1)
    heads = set(revisions) - {d for d in revisions.values() if d}
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """True when the store's one alembic_version row is the head (False also when unsure)."""
    head = _head_from_files(MIGRATIONS_DIR)
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no such table (a new database), or not a database: the full path says which
        return False
    return rows == [head]


def _ensure_identity(engine: Engine) -> None:
    """A store at head has an identity (see workbench.store.meta); a read-only store keeps none."""
    try:
        with engine.begin() as conn:
            ensure_store_id(conn)
    except OperationalError:  # e.g. a read-only SQLite file: caches are keyed without an identity
        pass


def ensure_current(engine: Engine, *, allow_upgrade: bool = False) -> None:
    """Bring a new store to head; refuse (or upgrade) an old one; refuse a foreign one.

    Safe when several processes open a new store at once: the check and the
    migration run under the migration lock, so one migrates and the others
    find the store at head.
    """
    if _at_head(engine):
        _ensure_identity(engine)
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    where = _where(engine)
    if current_revision(engine) == head:
        _ensure_identity(engine)
        return
    with _migration_lock(engine) as conn:
        current = _revision_on(conn, where)
        if current is None:
            tables = set(inspect(conn).get_table_names())
            if tables - {"alembic_version"}:
                raise StoreVersionError(
                    f"The database at {where} has tables but is not a workbench store: "
                    "point --db at an empty database or a workbench store."
                )
        elif current != head:
            try:
                script.get_revision(current)
            except Exception:
                raise StoreVersionError(
                    f"The store at {where} is at schema revision {current}, which this workbench does not know: "
                    "it was written by a newer workbench. Upgrade workbench to open it."
                ) from None
            if not allow_upgrade:
                raise StoreVersionError(
                    f"The store at {where} is at schema revision {current}; this workbench needs {head}. "
                    f"Run `workbench db upgrade --db {where}` (back it up first) and try again."
                )
        if current != head:
            _run(engine, conn, command.upgrade, "head")
        ensure_store_id(conn)
