"""The migration runner: Alembic driven from code, on the engine we hold."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

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


def alembic_config(engine: Engine) -> Config:
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
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _ensure_identity(engine: Engine) -> None:
    """A store at head has an identity (see workbench.store.meta); a read-only store keeps none."""
    try:
        with engine.begin() as conn:
            ensure_store_id(conn)
    except OperationalError:  # e.g. a read-only SQLite file: caches are keyed without an identity
        pass


def ensure_current(engine: Engine, *, allow_upgrade: bool = False) -> None:
    """Bring a new store to head; refuse (or upgrade) an old one; refuse a foreign one."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    current = current_revision(engine)
    where = redact_url(engine.url.render_as_string(hide_password=False))
    if current == head:
        _ensure_identity(engine)
        return
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if tables - {"alembic_version"}:
            raise StoreVersionError(
                f"The database at {where} has tables but is not a workbench store: "
                "point --db at an empty database or a workbench store."
            )
        upgrade(engine)
        _ensure_identity(engine)
        return
    try:
        script.get_revision(current)
    except Exception:
        raise StoreVersionError(
            f"The store at {where} is at schema revision {current}, which this workbench does not know: "
            "it was written by a newer workbench. Upgrade workbench to open it."
        ) from None
    if allow_upgrade:
        upgrade(engine)
        _ensure_identity(engine)
        return
    raise StoreVersionError(
        f"The store at {where} is at schema revision {current}; this workbench needs {head}. "
        f"Run `workbench db upgrade --db {where}` (back it up first) and try again."
    )
