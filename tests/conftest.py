"""Shared fixtures: every store test runs on SQLite and on PostgreSQL; the fake OpenAI server.

PostgreSQL: one fresh template database per test run, migrated once; each
test gets its own database copied from it (CREATE DATABASE ... TEMPLATE),
dropped afterwards. Set WORKBENCH_TEST_PG to another server URL if needed.

The fake OpenAI-compatible server (tests/openai_server.py, real HTTP on
127.0.0.1): `openai_server` is one per test module, built from the module's
OPENAI_SERVER dict of OpenAIServer options (or, for a module run against
several servers, OPENAI_SERVERS: test id -> options); `server` is that server
reset for each test (stats and faults cleared, the module's settings back)
with the module's SECRET (else TEST_KEY) in $WORKBENCH_TEST_OPENAI_KEY.

Tiers: every test that needs a heavy component is marked here, at
collection, by the fixtures it uses, what its own code calls or the module
it is in (markers in
pyproject.toml): labelstudio, llama_server, local_model, wheel, and slow for
the few long ones; every other test is marked quick. `scripts/test.sh --quick`
runs `pytest -m quick`; the full run (CI) runs all of them.
"""

from __future__ import annotations

import functools
import inspect
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.openai_server import KEY_ENV, TEST_KEY, OpenAIServer
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
def runner() -> CliRunner:
    """Runs `workbench` in process (with tests/helpers.py cli)."""
    return CliRunner()


@pytest.fixture
def shared_data() -> Path:
    """The folder of norm files in the repository (tests/data)."""
    return DATA


# --------------------------------------------------------------------------- the fake OpenAI server


def pytest_generate_tests(metafunc):
    servers = getattr(metafunc.module, "OPENAI_SERVERS", None)
    if servers and "openai_server" in metafunc.fixturenames:
        metafunc.parametrize("openai_server", list(servers.values()), ids=list(servers), indirect=True, scope="module")


@pytest.fixture(scope="module")
def openai_server(request):
    """The test module's fake OpenAI server: OpenAIServer(**OPENAI_SERVER), started once per module."""
    options = getattr(request, "param", None) or getattr(request.module, "OPENAI_SERVER", {})
    with OpenAIServer(**options) as started:
        yield started


@pytest.fixture
def server(openai_server, request, monkeypatch):
    """The module's fake OpenAI server, reset for this test, its key in $WORKBENCH_TEST_OPENAI_KEY."""
    openai_server.reset()
    monkeypatch.setenv(KEY_ENV, getattr(request.module, "SECRET", TEST_KEY))
    return openai_server


# --------------------------------------------------------------------------- tiers

BY_FIXTURE = {"ls_server": "labelstudio", "llama_server": "llama_server", "wheel": "wheel", "venv": "wheel"}
"""A test that uses one of these fixtures (directly or through another) needs the component marked."""
BY_CALL = {"label_studio_program(": "labelstudio", "LocalModel.load(": "local_model"}
"""A test whose own code calls one of these (starts a Label Studio of its own, loads the model) needs it too."""
LOCAL_MODEL_MODULES = frozenset(
    {
        "test_local",  # Gemma 3 270M loaded in torch
        "test_finetune_local",  # a LoRA fine-tune of it
        "test_rate_inprocess",
        "test_methods",
        "test_newwords",
        "test_demo",
    }
)
"""Test modules whose tests load the real local model (Gemma in torch)."""
SLOW = frozenset(set())
"""Tests (module::name, without parameters) that take several seconds on 2 quiet cores with nothing heavy."""
HEAVY = ("labelstudio", "llama_server", "local_model", "wheel", "slow")


@functools.cache
def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark each test with what it needs (HEAVY), or as quick when it needs none of it."""
    seen = set()
    for item in items:
        module = item.path.stem
        name = f"{module}::{getattr(item, 'originalname', item.name)}"
        seen.add(name)
        needs = {marker for fixture, marker in BY_FIXTURE.items() if fixture in getattr(item, "fixturenames", ())}
        needs |= {marker for call, marker in BY_CALL.items() if call in _source(getattr(item, "function", None))}
        if module in LOCAL_MODEL_MODULES:
            needs.add("local_model")
        if name in SLOW:
            needs.add("slow")
        for marker in sorted(needs):
            item.add_marker(marker)
        if not any(item.get_closest_marker(marker) for marker in HEAVY):
            item.add_marker("quick")
    modules = {item.path.stem for item in items}
    stale = sorted(n for n in SLOW if n.partition("::")[0] in modules and n not in seen)
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOW names tests that do not exist: {', '.join(stale)}")
