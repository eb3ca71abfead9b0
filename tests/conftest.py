"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: one fresh template database per test run, migrated once; each
test gets its own database copied from it (CREATE DATABASE ... TEMPLATE),
dropped afterwards. Set WORKBENCH_TEST_PG to another server URL if needed.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workbench.store import connect

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
"""Norm files the tests read (source and licence of each: tests/data/README.md)."""
SHARED = DATA  # the name older tests import
PG_SERVER = os.environ.get("WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin():
    return create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def _pg_url(dbname: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + dbname


@contextmanager
def _fresh_database(prefix: str, template: str | None = None):
    """A new PostgreSQL database (copied from `template` if given), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_template():
    """A migrated, empty workbench database to copy from; created fresh for this run."""
    with _fresh_database("wb_tpl") as name:
        connect(_pg_url(name)).dispose()
        yield name


@pytest.fixture
def pg_url(request):
    """A fresh, migrated PostgreSQL store (a copy of the template, with an identity of its own)."""
    with _fresh_database("wb_t", request.getfixturevalue("pg_template")) as name:
        eng = create_engine(_pg_url(name))
        with eng.begin() as c:
            c.execute(text("UPDATE store_meta SET value = :v WHERE key = 'store_id'"), {"v": uuid.uuid4().hex})
        eng.dispose()
        yield _pg_url(name)


@pytest.fixture
def empty_pg_url():
    """A brand-new, unmigrated PostgreSQL database (for migration tests)."""
    with _fresh_database("wb_e") as name:
        yield _pg_url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, migrated store URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        connect(url).dispose()
        return url
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url):
    eng = connect(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def shared_data() -> Path:
    """The folder of norm files in the repository (tests/data)."""
    return DATA
