"""Imports in parallel processes, on SQLite and PostgreSQL: no IntegrityError, no traceback, nothing lost.

Several `workbench import` processes start at once: datasets that add the
same new items (uq_items_language_text on PostgreSQL's COPY path), and the
same dataset imported twice (a race on the dataset's name). Every process
ends with exit 0, or exit 1 and one line; the store holds each item once and
every dataset whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"word{i:05d}" for i in range(20_000)]
# each process loads the workbench, then waits for the go file, so their imports start together
STARTER = """
import os, sys, time
from workbench.cli.main import main
go = os.environ["WB_TEST_GO"]
open(go + "." + str(os.getpid()), "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
main()
"""


def workbench(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WB_TEST_GO": str(_go)}
    return subprocess.Popen(
        [sys.executable, "-c", STARTER, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


_go = Path()


@pytest.fixture(autouse=True)
def go_file(tmp_path):
    global _go
    _go = tmp_path / "go"
    yield


def run_all(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    deadline = time.monotonic() + 120
    while len(list(_go.parent.glob("go.*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    _go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append((p.returncode, stdout, stderr))
    for code, stdout, stderr in out:
        assert "Traceback" not in stderr, stderr
        assert code == 0 or (code == 1 and stderr.startswith("Error: ") and stderr.count("\n") == 1), (code, stderr)
    return out


def write_norms(path: Path, words: list[str], value: float) -> Path:
    path.write_text("Word,Fam\n" + "".join(f"{w},{value}\n" for w in words), encoding="utf-8")
    return path


def query(url: str, sql: str):
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text(sql)).all()
    finally:
        eng.dispose()


def test_datasets_adding_the_same_new_items_at_once(db_url, tmp_path):
    n = 4
    files = [write_norms(tmp_path / f"n{i}.csv", WORDS[i * 1000 :] + WORDS[: i * 1000], 1.0 + i) for i in range(n)]
    procs = [
        workbench("import", f, "--dataset", f"d{i}", "--item-column", "Word", "--rating", "familiarity=Fam", "--db", db_url)
        for i, f in enumerate(files)
    ]
    results = run_all(procs)
    assert [code for code, _, _ in results] == [0] * n, results
    assert query(db_url, "SELECT count(*), count(DISTINCT text) FROM items") == [(len(WORDS), len(WORDS))]
    per_dataset = query(
        db_url,
        "SELECT ra.name, count(*), min(r.value), max(r.value) FROM ratings r JOIN raters ra ON ra.id = r.rater_id "
        "GROUP BY ra.name ORDER BY ra.name",
    )
    assert per_dataset == [(f"d{i}", len(WORDS), 1.0 + i, 1.0 + i) for i in range(n)]


def test_the_same_dataset_imported_by_two_processes_at_once(db_url, tmp_path):
    path = write_norms(tmp_path / "n.csv", WORDS, 4.0)
    args = ["import", path, "--dataset", "d0", "--item-column", "Word", "--rating", "familiarity=Fam", "--db", db_url]
    results = run_all([workbench(*args) for _ in range(3)])
    outputs = sorted(stdout.strip() or stderr.strip() for _, stdout, stderr in results)
    # one process imports; the others wait for it and find the dataset already imported from this file
    # (or, where they could not wait, say that another process is importing it)
    assert outputs[0] == f"d0: imported {len(WORDS)} items, {len(WORDS)} ratings (familiarity)", outputs
    for other in outputs[1:]:
        assert other in (
            "d0: unchanged (already imported from this file)",
            "Error: dataset d0 is being imported by another process; run the command again when it is done.",
        ), outputs
    assert query(db_url, "SELECT count(*) FROM datasets") == [(1,)]
    assert query(db_url, "SELECT count(*) FROM ratings") == [(len(WORDS),)]


def test_a_different_file_under_the_same_name_at_once(db_url, tmp_path):
    a = write_norms(tmp_path / "a.csv", WORDS[:5000], 2.0)
    b = write_norms(tmp_path / "b.csv", WORDS[5000:10000], 3.0)
    common = ["--dataset", "d0", "--item-column", "Word", "--rating", "familiarity=Fam", "--db", db_url]
    results = run_all([workbench("import", a, *common), workbench("import", b, *common)])
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(stderr for code, _, stderr in results if code == 1)
    assert "Dataset 'd0' was imported from a different file or with other options" in loser
    assert query(db_url, "SELECT count(*) FROM ratings") == [(5000,)]
