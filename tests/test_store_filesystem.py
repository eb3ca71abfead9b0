"""A store on a full disk, a read-only mount, an immutable or read-only file or folder: said as such, in one line.

Real file systems: a tiny tmpfs fills up for real, a read-only bind mount,
`chattr +i`, and permissions checked by a process without root's override
(root minus CAP_DAC_OVERRIDE, through setpriv). Each test needs what it
uses (root to mount, a file system with inode flags) and is skipped, saying
which, where that is missing. The PostgreSQL server fills up through a
tablespace on a tmpfs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import norms_study, subprocess_env
from workbench.analysis import duck
from workbench.analysis.duck import run_sql, snapshot_path
from workbench.errors import WorkbenchError
from workbench.store import connect

WORDS = 20000
STUDY = """\
study: full
dimensions:
  familiarity: {scale: [1, 7]}
datasets:
  toolbox: {file: norms.csv, preset: glasgow_mrc}
"""


def _study(folder: Path, words: int = WORDS) -> Path:
    return norms_study(folder, STUDY, words, digits=5)


def _workbench(*args: str, cwd: Path, prefix: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    cmd = [*prefix, sys.executable, "-m", "workbench.cli.main", *args]
    return subprocess.run(cmd, cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True, timeout=300)


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _resize(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


# --- a full disk ----------------------------------------------------------------------------------


def test_disk_full_during_an_import_inside_apply(tmp_path):
    study = _study(tmp_path / "study")
    with tmpfs(tmp_path / "small", "400k") as small:
        url = f"sqlite:///{small / 'store.db'}"
        done = _workbench("apply", "--study", str(study), "--db", url, cwd=study.parent)
        line = _one_line(done)
        assert line.startswith(f"Error: The disk holding the store's folder {small} is full (SQLite: database or disk is full): ")
        assert "free some space there" in line and "The step that failed was rolled back" in line
        # the store is whole: the dimension (its own step) is there, nothing of the import that failed
        con = sqlite3.connect(small / "store.db")
        try:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert con.execute("SELECT count(*) FROM dimensions").fetchone() == (1,)
            assert con.execute("SELECT count(*) FROM datasets").fetchone() == (0,)
            assert con.execute("SELECT count(*) FROM ratings").fetchone() == (0,)
            assert con.execute("SELECT count(*) FROM store_meta WHERE key LIKE 'lock:%'").fetchone() == (0,)
        finally:
            con.close()
        _resize(small, "30m")  # space freed: the next apply does the rest
        done = _workbench("apply", "--study", str(study), "--db", url, cwd=study.parent)
        assert done.returncode == 0, done.stderr
        con = sqlite3.connect(small / "store.db")
        try:
            assert con.execute("SELECT count(*) FROM ratings").fetchone() == (2 * WORDS,)
        finally:
            con.close()


@pytest.mark.postgres
def test_disk_full_on_the_postgresql_server(pg_url, tmp_path):
    """The ratings table lives in a tablespace on a 1 MB tmpfs: the import fills it."""
    if os.geteuid() != 0 or shutil.which("chown") is None:
        pytest.skip("needs root to mount a tmpfs for the server's tablespace")
    study = _study(tmp_path / "study")
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    space = f"wb_small_{os.getpid()}"
    outside = Path(tempfile.mkdtemp(prefix="wb-pgspace-"))  # the server's user cannot enter pytest's folders
    outside.chmod(0o755)
    with tmpfs(outside / "space", "1m") as folder:
        subprocess.run(["chown", "postgres:postgres", str(folder)], check=True)
        try:
            with admin.connect() as c:
                c.execute(text(f"CREATE TABLESPACE {space} LOCATION '{folder}'"))
        except Exception as exc:  # a server on another machine, or without that user
            pytest.skip(f"cannot put a tablespace on a tmpfs for this server: {str(exc).splitlines()[0]}")
        try:
            with admin.connect() as c:
                c.execute(text(f"ALTER TABLE ratings SET TABLESPACE {space}"))
            done = _workbench("apply", "--study", str(study), "--db", pg_url, cwd=study.parent)
            line = _one_line(done)
            assert line.startswith("Error: The server holding the store postgresql+psycopg://postgres@127.0.0.1:5432/")
            assert "is out of disk space (could not extend file" in line and "No space left on device" in line
            with admin.connect() as c:
                assert c.execute(text("SELECT count(*) FROM ratings")).scalar_one() == 0
                assert c.execute(text("SELECT count(*) FROM datasets")).scalar_one() == 0
                c.execute(text("ALTER TABLE ratings SET TABLESPACE pg_default"))
        finally:
            with admin.connect() as c:
                c.execute(text("ALTER TABLE ratings SET TABLESPACE pg_default"))
                c.execute(text(f"DROP TABLESPACE IF EXISTS {space}"))
            admin.dispose()
    shutil.rmtree(outside, ignore_errors=True)
    done = _workbench("apply", "--study", str(study), "--db", pg_url, cwd=study.parent)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def full_store(tmp_path):
    study = _study(tmp_path / "study")
    url = f"sqlite:///{tmp_path / 'study' / 'store.db'}"
    done = _workbench("apply", "--study", str(study), "--db", url, cwd=study.parent)
    assert done.returncode == 0, done.stderr
    return url


def test_a_snapshot_on_a_full_disk_is_never_used_incomplete(full_store, tmp_path, monkeypatch):
    """At every size, from too small for anything to enough: the right count or one line, never a cut snapshot.

    Somewhere in between (about 8 MB here) DuckDB wrote the tables to its WAL
    but could not check them into the file at close, and said nothing: the file,
    without its tables, was renamed into place and answered "Table with name
    ratings does not exist" until the store changed.
    """
    engine = connect(full_store)
    failed = 0
    try:
        with tmpfs(tmp_path / "cache", "30m") as cache:
            monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(cache))
            for size in ["256k", "1m", "2m", "3m", "4m", "5m", "6m", "7m", "8m", "9m", "10m", "12m", "16m"]:
                for leftover in cache.iterdir():
                    leftover.unlink()
                _resize(cache, size)
                duck._OPEN.clear()
                try:
                    table = run_sql(engine, "SELECT count(*) AS n FROM ratings")
                except WorkbenchError as exc:
                    failed += 1
                    assert str(exc) == (
                        f"Cannot write the SQL snapshot in {cache}: the disk is full. Free some space there, "
                        "or set WORKBENCH_CACHE_DIR to a writable folder on another disk, and run the query again."
                    ) or str(exc).startswith(f"The SQL snapshot written in {cache} came out incomplete"), (size, str(exc))
                    assert list(cache.iterdir()) == [], (size, list(cache.iterdir()))  # nothing left behind
                    continue
                assert table.column("n").to_pylist() == [2 * WORDS], size
                assert [p.name for p in cache.iterdir()] == [snapshot_path(engine).name]
            duck._OPEN.clear()
    finally:
        engine.dispose()
    assert failed >= 3  # the small sizes did fail: the test saw a full disk


def test_the_cli_says_a_full_snapshot_disk_in_one_line(full_store, tmp_path):
    with tmpfs(tmp_path / "cache", "1m") as cache:
        done = _workbench("sql", "SELECT count(*) FROM ratings", "--db", full_store, cwd=tmp_path, WORKBENCH_CACHE_DIR=str(cache))
        assert _one_line(done) == (
            f"Error: Cannot write the SQL snapshot in {cache}: the disk is full. Free some space there, "
            "or set WORKBENCH_CACHE_DIR to a writable folder on another disk, and run the query again."
        )


def test_an_incomplete_snapshot_left_in_place_is_built_again(full_store, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    engine = connect(full_store)
    try:
        path = snapshot_path(engine)
        path.parent.mkdir(parents=True)
        duckdb.connect(str(path)).close()  # what a full disk left before: a DuckDB file without the tables
        duck._OPEN.clear()
        assert run_sql(engine, "SELECT count(*) AS n FROM ratings").column("n").to_pylist() == [2 * WORDS]
    finally:
        duck._OPEN.clear()
        engine.dispose()


# --- a store that cannot be written -----------------------------------------------------------------

COMMANDS = [["db", "current"], ["status"], ["sql", "SELECT count(*) FROM items"]]


@pytest.fixture
def small_store(tmp_path):
    """A store (closed cleanly: no -wal or -shm beside it) in a folder of its own, readable by everyone."""
    folder = tmp_path / "st"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    url = f"sqlite:///{folder / 'store.db'}"
    study = _study(tmp_path / "study", words=50)
    done = _workbench("apply", "--study", str(study), "--db", url, cwd=study.parent)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]
    return folder / "store.db"


def _unprivileged() -> tuple[str, ...]:
    """A prefix that runs a command without root's permission override (nothing when not root)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and no setpriv to drop CAP_DAC_OVERRIDE: permissions would not apply")
    drop = "-dac_override,-dac_read_search"
    return ("setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_read_only_mount(command, small_store, tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    done = subprocess.run(["mount", "--bind", str(small_store.parent), str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount (needs root): {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        done = _workbench(*command, "--db", str(mnt / "store.db"), cwd=tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    line = _one_line(done)
    assert line.startswith(
        f"Error: The store at sqlite:///{mnt / 'store.db'} cannot be written: the folder {mnt} is on a file system mounted read-only"
    )
    assert "copy the store to a writable folder and point --db at the copy" in line


def _chattr(flag: str, path: Path) -> None:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} is not possible here (needs root and a file system with inode flags): {done.stderr.strip()}")


@contextlib.contextmanager
def _protected(how: str, path: Path):
    """The store file made immutable (chattr +i) or read-only (chmod 444); yields the command prefix to run with."""
    if how == "immutable":
        _chattr("+i", path)
        try:
            yield ()
        finally:
            _chattr("-i", path)
    else:
        prefix = _unprivileged()
        path.chmod(0o444)
        try:
            yield prefix
        finally:
            path.chmod(0o644)


SAID = {
    "immutable": "cannot be written: the file {f} is immutable (chattr +i; `chattr -i {f}` as root undoes it)",
    "read-only": "cannot be written: the file {f} is read-only for this user (-r--r--r--; `chmod u+rw {f}` makes it writable)",
}


@pytest.mark.parametrize("how", ["immutable", "read-only"])
def test_a_store_file_that_cannot_be_written(how, small_store, tmp_path):
    """Reading works (SQLite opens the file read-only, its WAL beside it); a write says what is wrong."""
    study = _study(tmp_path / "more", words=60)
    with _protected(how, small_store) as prefix:
        status = _workbench("status", "--db", str(small_store), cwd=tmp_path, prefix=prefix)
        sql = _workbench("sql", "SELECT count(*) AS n FROM items", "--db", str(small_store), "-f", "csv", cwd=tmp_path, prefix=prefix)
        done = _workbench("apply", "--study", str(study), "--db", str(small_store), cwd=study.parent, prefix=prefix)
    assert status.returncode == 0 and "toolbox-glasgow" in status.stdout, status.stderr
    assert sql.returncode == 0 and sql.stdout == "n\n50\n", sql.stdout + sql.stderr
    line = _one_line(done)
    assert SAID[how].format(f=small_store) in line, line
    assert "locked by another process" not in line


@pytest.mark.parametrize("how", ["immutable", "read-only"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_store_file_that_cannot_be_written_in_rollback_journal_mode(command, how, small_store, tmp_path):
    """A store whose journal is not a WAL (made or last changed by another tool): every command needs to write."""
    con = sqlite3.connect(small_store)
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    with _protected(how, small_store) as prefix:
        done = _workbench(*command, "--db", str(small_store), cwd=tmp_path, prefix=prefix)
    line = _one_line(done)
    assert SAID[how].format(f=small_store) in line, line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_immutable_folder(command, small_store, tmp_path):
    _chattr("+i", small_store.parent)
    try:
        done = _workbench(*command, "--db", str(small_store), cwd=tmp_path)
    finally:
        _chattr("-i", small_store.parent)
    line = _one_line(done)
    assert f"cannot be written: the folder {small_store.parent} is immutable (chattr +i;" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_read_only_folder(command, small_store, tmp_path):
    prefix = _unprivileged()
    small_store.parent.chmod(0o555)
    try:
        done = _workbench(*command, "--db", str(small_store), cwd=tmp_path, prefix=prefix)
    finally:
        small_store.parent.chmod(0o755)
    line = _one_line(done)
    assert f"cannot be written: the folder {small_store.parent} is read-only for this user (dr-xr-xr-x)" in line


@pytest.mark.postgres
def test_a_read_only_postgresql_database(pg_url, tmp_path):
    """Reads work on a database set read-only; a write says why it is refused."""
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = pg_url.rsplit("/", 1)[1]
    study = _study(tmp_path / "study", words=50)
    try:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        assert _workbench("status", "--db", pg_url, cwd=tmp_path).returncode == 0
        line = _one_line(_workbench("apply", "--study", str(study), "--db", pg_url, cwd=study.parent))
        assert line.startswith("Error: The store postgresql+psycopg://postgres@127.0.0.1:5432/")
        assert "is read-only (cannot execute" in line and "default_transaction_read_only" in line
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()
