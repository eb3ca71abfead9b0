"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: one fresh template database per test run, migrated once; each
test gets its own database copied from it (CREATE DATABASE ... TEMPLATE),
dropped afterwards. Set WORKBENCH_TEST_PG to another server URL if needed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workbench.store import connect

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PG_SERVER = os.environ.get("WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin():
    return create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def _pg_url(dbname: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def pg_template():
    """A migrated, empty workbench database to copy from; created fresh for this run."""
    name = f"wb_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng = connect(_pg_url(name))
    eng.dispose()
    yield name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(request):
    template = request.getfixturevalue("pg_template")
    name = f"wb_t_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_pg_url():
    """A brand-new, unmigrated PostgreSQL database (for migration tests)."""
    name = f"wb_e_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
    if not SHARED.exists():
        pytest.fail(f"the shared norm data is expected at {SHARED}")
    return SHARED
