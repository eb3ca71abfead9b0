"""Stores and URLs that cannot be used: one line on stderr, exit 1, no traceback, nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.store import connect


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["status"]])
def test_a_port_that_is_not_a_number(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(*command, "--db", "postgresql+psycopg://postgres:secret@127.0.0.1:54x2/norms")
    assert line == (
        "Error: Cannot read the database URL 'postgresql+psycopg://postgres:***@127.0.0.1:54x2/norms': "
        "the port '54x2' is not a number (postgresql+psycopg://USER@HOST:5432/DB)."
    )


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["status"]])
def test_a_foreign_file(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "notes.db"
    content = b"Word,Rating\napple,5\n" * 300
    path.write_bytes(content)
    line = one_line_error(*command, "--db", str(path))
    assert line == (
        f"Error: sqlite:///{path} is not a workbench store: the file is not an SQLite database. "
        "Point --db at a workbench store, or at a new file to create one."
    )
    assert path.read_bytes() == content


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["status"]])
def test_a_truncated_store(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    whole = tmp_path / "whole.db"
    connect(f"sqlite:///{whole}").dispose()
    content = whole.read_bytes()[:8192]  # the header and the first pages of a real store
    path = tmp_path / "cut.db"
    path.write_bytes(content)
    line = one_line_error(*command, "--db", str(path))
    assert line.startswith(f"Error: The store at sqlite:///{path} is damaged or truncated (SQLite: ")
    assert line.endswith("Restore it from a backup, or point --db at another store.")
    assert path.read_bytes() == content


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["status"]])
def test_two_alembic_version_rows(command, db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    eng = create_engine(db_url)
    with eng.begin() as c:
        head = c.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        c.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
    eng.dispose()
    line = one_line_error(*command, "--db", db_url)
    assert "names 2 schema revisions in its alembic_version table" in line
    assert f"(0001, {head})" in line and "delete the others" in line
    eng = create_engine(db_url)
    with eng.connect() as c:
        assert sorted(c.execute(text("SELECT version_num FROM alembic_version")).scalars()) == ["0001", head]
    eng.dispose()
