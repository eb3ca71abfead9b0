"""Each store has an identity: a store deleted and created again never answers with the old one's caches.

The DuckDB snapshot (`workbench sql`) and the study's report stamps are keyed
by identity + generation. The old and the new store below reach the same
generation at the same path or URL, so a cache keyed by location and
generation alone would answer with the old store's rows and keep its report.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import _admin, _pg_url
from workbench.analysis.duck import run_sql, snapshot_path
from workbench.store import connect, generation, store_id
from workbench.study.apply import apply_study, make_plan
from workbench.study.load import load_study

STUDY = """\
study: identity
dimensions:
  familiarity: {scale: [1, 7]}
datasets:
  toolbox: {file: norms.csv, preset: glasgow_mrc}
reports:
  main: {gold: [toolbox-glasgow], raters: [toolbox-mrc], formats: [json], n_boot: 100}
"""


def _norms(path: Path, words: list[str], offset: float) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Word", "FAM_Glas", "FAM_MRC"])
        for i, word in enumerate(words):
            w.writerow([word, 1 + (i % 6), round(1 + ((i * 7 + offset) % 6), 2)])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def recreatable(request, tmp_path, monkeypatch):
    """(url, drop): a store location that can be deleted and created again under the same name."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        def drop() -> None:
            for p in tmp_path.glob("store.db*"):
                p.unlink()

        yield f"sqlite:///{path}", drop
        return
    name = f"wb_id_{uuid.uuid4().hex[:8]}"
    admin = _admin()

    def drop_pg() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def create_pg() -> None:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))

    create_pg()
    try:
        yield _pg_url(name), lambda: (drop_pg(), create_pg())
    finally:
        drop_pg()
        admin.dispose()


def _apply(folder: Path, url: str, words: list[str], offset: float) -> tuple[str, int]:
    _norms(folder / "norms.csv", words, offset)
    loaded = load_study(folder / "study.yaml")
    engine = connect(url)
    try:
        apply_study(engine, loaded)
        with Session(engine) as s:
            assert not make_plan(s, loaded).changes
            return store_id(s), generation(s)
    finally:
        engine.dispose()


def _query(url: str, sql: str) -> list[dict]:
    engine = connect(url)
    try:
        return run_sql(engine, sql).to_pylist(), snapshot_path(engine)
    finally:
        engine.dispose()


def test_a_recreated_store_gets_fresh_answers_and_reports(recreatable, tmp_path):
    url, drop = recreatable
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.yaml").write_text(STUDY)
    report = folder / "reports" / "main.json"

    old_words = [f"old{i:02d}" for i in range(30)]
    first_id, first_gen = _apply(folder, url, old_words, 0)
    rows, old_snapshot = _query(url, "SELECT count(*) AS n, min(item) AS first FROM items")
    assert rows == [{"n": 30, "first": "old00"}]
    old_report = json.loads(report.read_text())
    assert old_report["dimensions"][0]["table"][0]["n"] == 30

    drop()
    new_words = [f"new{i:02d}" for i in range(40)]
    second_id, second_gen = _apply(folder, url, new_words, 3)
    # same location, same generation: only the identity tells the two stores apart
    assert second_gen == first_gen and second_id != first_id and len(second_id) == 32
    rows, new_snapshot = _query(url, "SELECT count(*) AS n, min(item) AS first FROM items")
    assert rows == [{"n": 40, "first": "new00"}]
    assert new_snapshot != old_snapshot and not old_snapshot.exists()
    new_report = json.loads(report.read_text())
    assert new_report["dimensions"][0]["table"][0]["n"] == 40


def test_a_store_made_before_identities_gets_one_on_first_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    connect(url).dispose()
    engine = connect(url)
    try:
        with engine.begin() as c:
            c.execute(text("DELETE FROM store_meta WHERE key = 'store_id'"))
        with Session(engine) as s:
            assert store_id(s) == ""
    finally:
        engine.dispose()
    engine = connect(url)
    try:
        with Session(engine) as s:
            ident = store_id(s)
        assert len(ident) == 32
    finally:
        engine.dispose()
    engine = connect(url)
    try:
        with Session(engine) as s:
            assert store_id(s) == ident  # kept from then on
    finally:
        engine.dispose()
