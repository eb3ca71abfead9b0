"""One apply at a time per store, on SQLite and PostgreSQL, with real processes and a real HTTP server.

Two `workbench apply` on one store used to both rate every item (SQLite:
every request sent twice) or die on a unique constraint (PostgreSQL). Now
the second waits for the first (`--wait`), then finds nothing to do; or,
given too short a wait, says in one line which apply is running (its pid)
and exits 1. A lock left by a killed apply does not block the next one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import ROOT
from tests.helpers import wait_for
from tests.openai_server import KEY_ENV, OpenAIServer
from workbench.errors import StoreBusyError
from workbench.store import connect
from workbench.store.locks import study_lock
from workbench.store.models import Rater, Rating

WORDS = [f"word{i:03d}" for i in range(40)]
OPENAI_SERVER = {"latency": 0.15}  # `server` (tests/conftest.py) puts the latency back for each test


def _study(folder: Path, db_url: str, server: OpenAIServer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["word,fam"] + [f"{w},{1 + (i % 7)}" for i, w in enumerate(WORDS)]
    (folder / "gold.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    study = {
        "study": "lock-test",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": {"mini": {"backend": "openai", "model": "gpt-4o-mini", "base_url": server.base_url, "api_key_env": KEY_ENV,
                            "concurrency": 2, "timeout": 5.0, "max_retries": 1}},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def _apply(study: Path, *extra: str, command: tuple[str, ...] = ("apply",)) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_STUDY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[KEY_ENV] = "sk-test-lock"
    return subprocess.Popen([sys.executable, "-m", "workbench.cli.main", *command, "--study", str(study), *extra],
                            cwd=study.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _rated(db_url: str) -> int:
    engine = connect(db_url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(Rating).join(Rater).where(Rater.name == "mini"))
    finally:
        engine.dispose()


def test_two_applies_at_once_send_each_request_once(db_url, tmp_path, server):
    study = _study(tmp_path / "study", db_url, server)
    procs = [_apply(study, "--wait", "300") for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0 and "Error" not in err and "Traceback" not in err, out + err
    assert server.stats()["chat_requests"] == len(WORDS), server.stats()
    assert sum("Nothing to do" in out for _, out, _ in results) == 1, results
    assert _rated(db_url) == len(WORDS)


def test_a_second_apply_given_a_short_wait_names_the_one_running(db_url, tmp_path, server):
    server.latency = 1.5  # the first apply rates for ~30 s: the second starts (slowly, on a loaded machine) and gives up meanwhile
    study = _study(tmp_path / "study", db_url, server)
    first = _apply(study)
    try:
        wait_for(lambda: server.stats()["chat_requests"] > 0 or first.poll() is not None, 120)
        started = time.monotonic()
        second = _apply(study, "--wait", "1")
        out, err = second.communicate(timeout=120)
        waited = time.monotonic() - started
        assert first.poll() is None, "the first apply ended before the second asked: make the server slower"
        assert second.returncode == 1 and out == "", out + err
        assert err.count("\n") == 1 and "Traceback" not in err, err  # nothing but the error: no progress of its own
        assert err.startswith(f"Error: Another `workbench apply` is running on this store (pid {first.pid}, since "), err
        assert "waited 1 s. Run the command again when it has finished, or give it longer with --wait SECONDS." in err, err
        assert waited >= 1
        assert first.wait(timeout=300) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
    assert server.stats()["chat_requests"] == len(WORDS)
    assert _rated(db_url) == len(WORDS)


def test_an_apply_killed_while_it_holds_the_lock_does_not_block_the_next(db_url, tmp_path, server):
    study = _study(tmp_path / "study", db_url, server)
    first = _apply(study)
    try:
        wait_for(lambda: server.stats()["chat_requests"] > 0 or first.poll() is not None, 120)
        assert first.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    again = _apply(study, "--wait", "5")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "Error" not in err, out + err
    assert _rated(db_url) == len(WORDS)


def test_a_rate_beside_an_apply_waits_and_sends_nothing_twice(db_url, tmp_path, server):
    """`workbench rate` takes the same store-wide lock as apply: started while apply rates, it waits, then finds
    nothing left to rate (without the lock both rated every word: each request sent twice)."""
    server.latency = 1.5  # the apply rates for ~30 s: the rate starts (slowly, on a loaded machine) meanwhile
    study = _study(tmp_path / "study", db_url, server)
    first = _apply(study, "--wait", "300")
    try:
        wait_for(lambda: server.stats()["chat_requests"] > 0 or first.poll() is not None, 120)
        rate = _apply(study, "--wait", "300", command=("rate", "mini"))
        out, err = rate.communicate(timeout=300)
        assert rate.returncode == 0 and "Traceback" not in err, out + err
        assert first.wait(timeout=300) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
    assert server.stats()["chat_requests"] == len(WORDS), server.stats()
    assert _rated(db_url) == len(WORDS)


def test_the_lock_in_the_library(db_url):
    """Nested takes in one process are free; another holder is told apart; the lock is gone after the block."""
    engine = connect(db_url)
    other = connect(db_url)
    try:
        with study_lock(engine, "apply", 0) as me:
            assert me.pid == os.getpid()
            with Session(engine) as s, study_lock(s, "apply", 0):
                pass
            with study_lock(engine, "annotate push:pilot", 0):  # another name: not blocked
                pass
        # a holder in another process: simulate with a child that takes it and waits
        code = (
            "import sys, time\nfrom workbench.store import connect\nfrom workbench.store.locks import study_lock\n"
            "e = connect(sys.argv[1])\nwith study_lock(e, 'apply', 0, what='apply'):\n"
            "    print('held', flush=True)\n    sys.stdin.readline()\n"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        child = subprocess.Popen([sys.executable, "-c", code, db_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert child.stdout.readline() == "held\n"
            started = time.monotonic()
            with pytest.raises(StoreBusyError) as caught:
                with study_lock(other, "apply", 0.5, what="annotate push pilot"):
                    pass
            assert time.monotonic() - started >= 0.5
            assert str(caught.value).startswith(  # the holder's words, not the waiter's
                f"Another `workbench apply` is running on this store (pid {child.pid}, since "
            )
            assert str(caught.value).endswith("; waited 0.5 s. Run the command again when it has finished.")
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.wait(timeout=60) == 0
        finally:
            if child.poll() is None:
                child.kill()
        with study_lock(other, "apply", 0):
            pass
    finally:
        engine.dispose()
        other.dispose()
