"""Concurrent use of one store, in parallel processes, on SQLite and PostgreSQL.

Several `workbench apply` on a brand-new database race to create its schema,
then take turns (one apply per store at a time: tests/test_store_apply_lock.py):
each ends with exit 0 and the store holds everything once. A SQLite store that another process
keeps locked makes a command wait the busy timeout, then say so in one line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.helpers import norms_study, subprocess_env
from workbench.store import connect
from workbench.store.migrate import head_revision

STUDY = """\
study: race
dimensions:
  familiarity: {scale: [1, 7]}
datasets:
  toolbox: {file: norms.csv, preset: glasgow_mrc}
item_sets:
  pilot: {from: toolbox-glasgow, sample: 50, seed: 1}
"""
PROCESSES = 4


def _workbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli.main", *args]


def _study(folder: Path, words: int = 300) -> Path:
    return norms_study(folder, STUDY, words, digits=4)


def _fresh_url(kind: str, tmp_path: Path, request) -> str:
    return f"sqlite:///{tmp_path / 'race.db'}" if kind == "sqlite" else request.getfixturevalue("empty_pg_url")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_parallel_applies_on_a_new_database_all_succeed(kind, tmp_path, request):
    study = _study(tmp_path / "study")
    url = _fresh_url(kind, tmp_path, request)
    procs = [
        subprocess.Popen(
            _workbench("apply", "--study", str(study), "--db", url, "--wait", "300"),  # one apply at a time: the others wait
            cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(PROCESSES)
    ]  # fmt: skip
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err and err.strip() == "", err
    engine = connect(url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision(engine)]
            assert c.execute(text("SELECT count(*) FROM store_meta WHERE key = 'store_id'")).scalar_one() == 1
            assert sorted(c.execute(text("SELECT name FROM datasets")).scalars()) == ["toolbox-glasgow", "toolbox-mrc"]
            assert c.execute(text("SELECT count(*) FROM items")).scalar_one() == 300
            assert c.execute(text("SELECT count(*) FROM ratings")).scalar_one() == 600
            assert c.execute(text("SELECT count(*) FROM item_sets")).scalar_one() == 1
            assert c.execute(text("SELECT count(*) FROM item_set_members")).scalar_one() == 50
    finally:
        engine.dispose()
    # every process did something or found it done; and a further apply has nothing to do
    done = subprocess.run(
        _workbench("apply", "--study", str(study), "--db", url), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert done.returncode == 0 and "Nothing to do" in done.stdout, done.stdout + done.stderr


OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from workbench.store import connect
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
connect(sys.argv[1]).dispose()
"""


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_processes_opening_a_new_database_at_the_same_instant_migrate_it_once(kind, tmp_path, request):
    """The processes start, import, then wait for one signal: their migrations would overlap without the lock."""
    url = _fresh_url(kind, tmp_path, request)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, url, str(go)],
            cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(PROCESSES)
    ]  # fmt: skip
    time.sleep(8)  # all of them imported and waiting (2 shared cores)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    engine = connect(url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision(engine)]
            assert c.execute(text("SELECT count(*) FROM store_meta WHERE key = 'store_id'")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_store_locked_by_another_writer_waits_then_says_so(tmp_path):
    study = _study(tmp_path / "study")
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    connect(url).dispose()
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE store_meta SET value = value WHERE key = 'generation'")
        started = time.monotonic()
        done = subprocess.run(
            _workbench("apply", "--study", str(study), "--db", url),
            cwd=tmp_path, env=subprocess_env(WORKBENCH_BUSY_TIMEOUT="1.5"), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("Error: ") and "locked by another process" in lines[0], lines[0]
    assert waited >= 1.5
    # nothing half-written: once the lock is gone, apply does all of it
    done = subprocess.run(
        _workbench("apply", "--study", str(study), "--db", url), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "toolbox-glasgow" in done.stdout


def test_a_bad_busy_timeout_is_one_line(tmp_path):
    done = subprocess.run(
        _workbench("status", "--db", f"sqlite:///{tmp_path / 's.db'}"),
        cwd=tmp_path, env=subprocess_env(WORKBENCH_BUSY_TIMEOUT="soon"), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "Error: WORKBENCH_BUSY_TIMEOUT='soon': give the seconds to wait for a locked store, e.g. 30.\n"
