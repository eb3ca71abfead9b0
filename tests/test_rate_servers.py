"""Servers that misbehave, leak or cap: rating against hostile test servers, on SQLite and PostgreSQL.

- a server that echoes the key in every field (error bodies, content, logprob
  tokens, batch files, headers): the key is nowhere afterwards, not in the
  console, not in any table, not in the report files;
- 200 answers with broken logprobs are unreadable responses (retried, then
  failed), never an aborted job; an empty answer is stored once, with a note;
- the Batch path's failures (401, 500, a dead port, garbage) are one line;
- the model name is checked where the server lists its models;
- rpm/tpm and the x-ratelimit-* headers pace the requests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.openai_server import OpenAIServer, reference_expected
from tests.test_rate import KEY_ENV, RATE_JOB, WORDS, _without_raters, ratings_by_word, write_study
from workbench.errors import WorkbenchError
from workbench.store import connect
from workbench.store.models import Job
from workbench.study.apply import apply_study
from workbench.study.load import load_study
from workbench.study.rate import run_rater

SECRET = "sk-echo-Zq8vXw2LmN4pR7tY"
ECHO_SECRET = "sk-echo/Zq8v+Xw2-LmN4pR7tY="  # a "/" to be JSON-escaped, "+" and "=" to be URL-encoded
FAST = 0.01
OPENAI_SERVER = {"latency": 0, "retry_after": 0.05, "batch_seconds": 0.3}  # `server`: tests/conftest.py


def setup(tmp_path, db_url, server, raters, **kw):
    loaded = load_study(write_study(tmp_path / "study", db_url, server, raters, **kw))
    engine = connect(db_url)
    apply_study(engine, _without_raters(loaded))
    return engine, loaded


def workbench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "workbench.cli.main", *args], env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def every_table_as_text(engine) -> str:
    """Every row of every table in the store, as text."""
    from sqlalchemy import inspect, text

    with engine.connect() as c:
        tables = inspect(c).get_table_names()
        assert {"ratings", "calls", "jobs", "raters"} <= set(tables)
        return "\n".join(json.dumps([str(v) for v in row]) for t in tables for row in c.execute(text(f'SELECT * FROM "{t}"')))


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- secrets


def test_a_server_that_echoes_the_key_in_every_field_leaves_it_nowhere(tmp_path, db_url, monkeypatch):
    """Chat, completions, Batch (files and batches) and the model list against a server that sends the key back
    in every encoding (tests/openai_server.py echo_forms): nowhere afterwards."""
    from tests.leaks import assert_key_nowhere

    monkeypatch.setenv(KEY_ENV, ECHO_SECRET)
    with OpenAIServer(echo_key=True, models=["gpt-4o-mini"], retry_after=0.05, batch_seconds=0.3) as echo:
        raters = {  # the slow answer (word005) times out after 1 s
            "mini": {"max_retries": 1, "timeout": 1.0},
            "greedy": {"readout": "greedy", "max_retries": 1, "timeout": 1.0},
            "batch": {"backend": "openai-batch", "poll_seconds": 0.05},
            "base": {"backend": "openai-completions", "max_retries": 1, "timeout": 1.0},
            "base-greedy": {"backend": "openai-completions", "readout": "greedy", "max_retries": 1, "timeout": 1.0},
        }
        path = write_study(tmp_path / "study", db_url, echo, raters, words=WORDS[:20])
        data = yaml.safe_load(path.read_text())
        data["reports"] = {"main": {"formats": ["html", "md", "json"], "n_boot": 100}}
        path.write_text(yaml.safe_dump(data))
        echo.set_faults({
            "word000": "always:500", "word001": ["429", "malformed"], "word002": "always:non_numeric",
            "word003": "always:empty", "word004": "always:bad_logprob", "word005": ["slow"],
        })  # fmt: skip
        env = dict(os.environ, WORKBENCH_DB=db_url, WORKBENCH_CACHE_DIR=str(tmp_path / "cache"))
        runs = [
            workbench("rate", "mini", "--dry-run", "--study", str(path), env=env),
            workbench("apply", "--study", str(path), env=env),
            workbench("status", "--study", str(path), env=env),
            workbench("sql", "SELECT * FROM ratings", "--study", str(path), env=env),
        ]
        # and a key the server refuses, with the refusal echoing it
        echo.api_key = "sk-the-right-one"
        runs.append(workbench("rate", "greedy", "--items", "gold", "--study", str(path), env=dict(env, **{KEY_ENV: ECHO_SECRET + "x"})))
        echo.set_endpoint_faults({"/v1/files": "401"})
        runs.append(workbench("rate", "batch", "--study", str(path), env=env))
    console = "\n".join(r.stdout + r.stderr for r in runs)
    assert "Traceback" not in console
    assert runs[1].returncode in (0, 2), runs[1].stderr
    assert "refused the API key" in runs[-2].stderr and "refused the API key" in runs[-1].stderr
    engine = connect(db_url)
    assert "***" in every_table_as_text(engine)  # redacted, not dropped
    assert {p.suffix for p in (tmp_path / "study" / "reports").iterdir()} >= {".html", ".md", ".json"}
    for key in (ECHO_SECRET, ECHO_SECRET + "x"):  # console, every table, the DuckDB snapshot, every file written
        assert_key_nowhere(key, console=console, engine=engine, folders=(tmp_path,))
    for rater in ("greedy", "base-greedy"):  # the answer text came back with the key in it: kept, redacted
        answer = ratings_by_word(engine, rater)["word010"][5]
        assert "***" in answer and answer.split()[0] in "1234567", answer
    engine.dispose()


# --------------------------------------------------------------------------- misbehaving servers


BROKEN = ("bad_logprob", "null_logprob", "missing_fields", "wrong_types")


@pytest.mark.parametrize("backend", ["openai", "openai-completions", "openai-batch"])
def test_broken_logprobs_are_unreadable_responses_retried_then_failed_never_an_aborted_job(tmp_path, db_url, server, backend):
    batch = backend == "openai-batch"
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {"backend": backend, "max_retries": 2, "poll_seconds": 0.05} if batch
                                                      else {"backend": backend, "max_retries": 2}})  # fmt: skip
    faults = {WORDS[i]: f"always:{kind}" for i, kind in enumerate(BROKEN)}
    faults |= {WORDS[4 + i]: kind for i, kind in enumerate(BROKEN)}  # once, then a good answer
    server.set_faults(faults)
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    if batch:  # one answer per line, no retry inside a batch: all eight are unreadable, the job goes on
        assert report.status == "partial" and report.counts["failed"] == 8 and report.counts["rated"] == len(WORDS) - 8
        assert all("logprob" in f["reason"] for f in report.counts["failures"]), report.counts["failures"]
        return
    assert report.status == "partial" and report.counts["failed"] == 4
    assert report.counts["rated"] == len(WORDS) - 4
    attempts = server.stats()["attempts"]
    assert all(attempts[WORDS[i]] == 3 for i in range(4)) and all(attempts[WORDS[4 + i]] == 2 for i in range(4))
    got = ratings_by_word(engine, "mini")
    for i in range(4, 8):
        assert got[WORDS[i]][1] == pytest.approx(reference_expected(WORDS[i]))
    reasons = {f["item"]: f["reason"] for f in report.counts["failures"]}
    assert all("logprob" in reasons[WORDS[i]] for i in range(4)), reasons
    engine.dispose()


def test_an_empty_answer_is_stored_once_as_an_answer_with_no_rating(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {}, "greedy": {"readout": "greedy"}})
    server.set_faults({"word000": "always:empty", "word001": "always:empty"})
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert report.status == "completed" and report.counts["unreadable"] == 2 and report.counts["failed"] == 0
    assert server.stats()["attempts"]["word000"] == 1
    got = ratings_by_word(engine, "mini")
    value, note, answer = got["word000"][1], got["word000"][3], got["word000"][5]
    assert value is None and answer == "" and "the model returned nothing" in note
    greedy = run_rater(engine, loaded, "greedy", backoff_base=FAST)
    assert greedy.counts["unreadable"] == 2 and "the model returned nothing" in ratings_by_word(engine, "greedy")["word001"][3]
    engine.dispose()


@pytest.mark.parametrize("backend", ["openai", "openai-completions", "openai-batch"])
def test_refusals_and_content_filter_stops_are_recorded_as_refusals_with_their_own_note_and_count(tmp_path, db_url, server, backend):
    options = {"backend": backend, "poll_seconds": 0.05} if backend == "openai-batch" else {"backend": backend}
    engine, loaded = setup(tmp_path, db_url, server, {"mini": options})
    chat = backend != "openai-completions"  # a text completion has no refusal field: only the content filter
    server.set_faults({"word000": "always:content_filter", "word001": "always:refusal" if chat else "always:content_filter",
                       "word002": "always:empty"})  # fmt: skip
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert report.status == "completed" and report.counts["unreadable"] == 3 and report.counts["refused"] == 2, report.counts
    got = ratings_by_word(engine, "mini")
    assert got["word000"][1] is None and "content filter stopped the answer (finish_reason: content_filter)" in got["word000"][3]
    if chat:
        assert (
            got["word001"][3] == "the model refused to answer: I can't help with that." and got["word001"][5] == "I can't help with that."
        )
    assert "the model returned nothing" in got["word002"][3]  # an empty answer is still that
    assert all("chat template" not in got[w][3] for w in ("word000", "word001"))
    if backend == "openai":
        assert server.stats()["attempts"]["word000"] == 1  # a result, not retried
        from workbench.cli.display import describe

        assert "  2 of the answers with no rating were refusals" in "\n".join(describe(report))
    engine.dispose()


def test_a_huge_response_is_not_read_whole_nor_stored_whole(tmp_path, db_url, server):
    """A 20 MB answer: the first MAX_RESPONSE bytes are read, MAX_STORED_RESPONSE characters kept, saying so."""
    from workbench.jobs.writer import MAX_STORED_RESPONSE
    from workbench.raters.openai import wire

    engine, loaded = setup(tmp_path, db_url, server, {"mini": {"max_retries": 0, "timeout": 60}})
    server.set_faults({"word000": "always:huge"})
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert report.counts["failed"] == 1 and report.counts["rated"] == len(WORDS) - 1
    reason = report.counts["failures"][0]["reason"]
    assert f"the response is larger than {wire.MAX_RESPONSE >> 20} MiB" in reason
    from workbench.store.models import Call

    with Session(engine) as s:
        stored = [c.response for c in s.scalars(select(Call).where(Call.status == "error"))]
    assert len(stored) == 1 and len(stored[0]) < MAX_STORED_RESPONSE + 200
    assert f"[... cut by the workbench: {MAX_STORED_RESPONSE} of " in stored[0][-100:]
    engine.dispose()


def test_requests_ask_for_the_tokens_the_readout_uses(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {}, "greedy": {"readout": "greedy"}, "long": {"max_tokens": 3}})
    run_rater(engine, loaded, "mini", limit=10)
    assert server.stats()["max_tokens"] == {1: 10}  # the expected read-out reads the first token only
    server.reset()
    run_rater(engine, loaded, "greedy", limit=10)
    run_rater(engine, loaded, "long", limit=10)
    assert server.stats()["max_tokens"] == {5: 10, 3: 10}
    engine.dispose()


def test_a_batch_is_created_once_even_when_the_connection_drops_and_polling_rides_out_5xx(tmp_path, db_url, server):
    """The batch create is never resent blindly (the dropped request's batch is adopted, not paid twice), and
    500s while waiting are asked again; a server that stays away leaves the job submitted for the next run."""
    batch = {"backend": "openai-batch", "poll_seconds": 0.05}
    engine, loaded = setup(tmp_path, db_url, server, {"batch": batch, "batch2": dict(batch, top_logprobs=10)})
    server.drop_batch_creates(3)  # the client's own retries would have made four batches
    server.fail_next("GET", r"/v1/batches/", "500", times=6)  # more than the client's own retries
    report = run_rater(engine, loaded, "batch", backoff_base=FAST)
    assert report.status == "completed" and report.counts["rated"] == len(WORDS), report.counts
    assert server.stats()["batches_created"] == 1
    # a server that stays away while the batch runs: the job stays submitted, the next run picks it up
    server.reset()
    server.fail_next("GET", r"/v1/batches/", "500", times=1000)
    with pytest.raises(WorkbenchError, match="is left waiting: run again to pick it up"):
        run_rater(engine, loaded, "batch2", backoff_base=FAST)
    with Session(engine) as s:
        job = s.scalars(select(Job).where(Job.kind == "rate:openai-batch").order_by(Job.id.desc())).first()
        assert job.status == "submitted" and job.external_id
    server.reset()
    again = run_rater(engine, loaded, "batch2", backoff_base=FAST)
    assert server.stats()["batches_created"] == 0 and again.counts["rated"] == 0
    assert len(ratings_by_word(engine, "batch2")) == len(WORDS)
    engine.dispose()


def test_a_workbench_killed_while_creating_a_batch_picks_that_batch_up_instead_of_paying_again(tmp_path, db_url, server):
    import signal

    engine, loaded = setup(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    server.drop_batch_creates(0, delay=30)  # the batch is made at once, its answer comes late
    env = dict(os.environ, WORKBENCH_DB=db_url)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "rate", "batch", "--study", str(loaded.path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while server.stats()["batches_created"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stats()["batches_created"] == 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    server.drop_batch_creates(0)
    again = workbench("rate", "batch", "--study", str(loaded.path), env=env)
    assert again.returncode == 0, again.stderr
    assert server.stats()["batches_created"] == 1  # the batch the killed run made, picked up
    assert len(ratings_by_word(engine, "batch")) == len(WORDS)
    engine.dispose()


def test_batch_failures_are_one_line_and_the_job_says_why(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    cases = {
        "401": ({"/v1/files": "401"}, f"refused the API key in ${KEY_ENV} (HTTP 401)"),
        "500": ({"/v1/files": "500"}, "HTTP 500: The server had an error"),
        "garbage": ({"/v1/batches": "garbage"}, "the response is not valid JSON"),
        "html": ({"/v1/files": "html"}, "the response is not valid JSON"),
    }
    for name, (faults, wording) in cases.items():
        server.reset()
        server.set_endpoint_faults(faults)
        with pytest.raises(WorkbenchError, match=wording.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")) as caught:
            run_rater(engine, loaded, "batch")
        assert "\n" not in str(caught.value) and caught.value.__cause__ is None, name
        with Session(engine) as s:
            job = s.scalars(select(Job).where(RATE_JOB).order_by(Job.id.desc())).first()
            assert job.status == "failed" and wording.split(":")[0] in job.error, (name, job.error)
    server.reset()
    dead = load_study(
        write_study(
            tmp_path / "dead",
            db_url,
            server,
            {"batch": {"backend": "openai-batch", "base_url": f"http://127.0.0.1:{dead_port()}/v1", "timeout": 2}},
        )
    )
    with pytest.raises(WorkbenchError, match="connection failed"):
        run_rater(engine, dead, "batch")
    engine.dispose()


def test_batch_failures_in_the_cli_are_one_line_with_exit_1(tmp_path, server):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine, loaded = setup(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    engine.dispose()
    server.set_endpoint_faults({"/v1/batches": "500"})
    run = workbench("rate", "batch", "--study", str(loaded.path), env=dict(os.environ, WORKBENCH_DB=db_url))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    (line,) = [x for x in run.stderr.splitlines() if x.startswith("Error:")]
    assert "HTTP 500" in line


# --------------------------------------------------------------------------- the model name


def test_a_model_name_the_server_does_not_list_is_refused_with_a_suggestion(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with OpenAIServer(models=["gpt-4o-mini", "gemma-3-270m"]) as listing:  # accepts any name, like llama.cpp
        engine, loaded = setup(tmp_path, db_url, listing, {"typo": {"model": "gpt-4o-mni"}, "mini": {}})
        with pytest.raises(WorkbenchError, match="does not list the model 'gpt-4o-mni'. Did you mean 'gpt-4o-mini'?"):
            run_rater(engine, loaded, "typo", dry_run=True, check_server=True)
        with pytest.raises(WorkbenchError, match="does not list the model 'gpt-4o-mni'"):
            run_rater(engine, loaded, "typo")
        assert listing.stats()["chat_requests"] == 0
        dry = run_rater(engine, loaded, "mini", dry_run=True, check_server=True)
        assert any("is served by" in note for note in dry.notes)
        assert run_rater(engine, loaded, "mini", limit=3).counts["rated"] == 3
        assert listing.stats()["models_listed"] == 4  # each dry run and each run asked once
    engine.dispose()


def test_a_server_that_does_not_list_models_is_not_checked(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {"model": "anything"}})
    dry = run_rater(engine, loaded, "mini", dry_run=True, check_server=True)
    assert any("not checked" in note for note in dry.notes)
    assert run_rater(engine, loaded, "mini", limit=2).counts["rated"] == 2
    engine.dispose()


def test_dry_run_before_the_first_apply_needs_no_store_changes(tmp_path, server):
    db_file = tmp_path / "fresh.db"
    path = write_study(tmp_path / "study", f"sqlite:///{db_file}", server, {"mini": {}})
    run = workbench("rate", "mini", "--dry-run", "--study", str(path))
    assert run.returncode == 0, run.stderr
    assert "not in the store" not in run.stdout + run.stderr
    assert f"{len(WORDS)} of {len(WORDS)} items to rate" in run.stdout
    assert not db_file.exists()  # nothing created


# --------------------------------------------------------------------------- rate limits


def test_a_declared_rpm_paces_the_requests(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {"rpm": 600, "concurrency": 16}})
    start = time.monotonic()
    report = run_rater(engine, loaded, "mini", limit=30)
    elapsed = time.monotonic() - start
    assert report.counts["rated"] == 30
    assert elapsed >= 2.0  # 600 per minute: 10 a second, after a burst of at most 1% of a minute (6)
    engine.dispose()


def test_the_servers_rate_limit_headers_pace_the_requests_without_a_429_storm(tmp_path, db_url, server):
    server.set_rate_limit(rpm=600)
    try:
        engine, loaded = setup(tmp_path, db_url, server, {"mini": {"concurrency": 8}})
        start = time.monotonic()
        report = run_rater(engine, loaded, "mini", limit=40, backoff_base=FAST)
        elapsed = time.monotonic() - start
        assert report.counts["rated"] == 40 and server.stats()["rate_limited"] == 0
        assert elapsed >= 2.5  # the first answer says 600 a minute: the rest follow at 10 a second
    finally:
        server.set_rate_limit(None)
    engine.dispose()


def test_a_429_holds_every_worker_not_just_the_one_that_got_it(tmp_path, db_url, server):
    engine, loaded = setup(tmp_path, db_url, server, {"mini": {"concurrency": 8}})
    server.retry_after = 1.5
    seen: list[int] = []
    timer = threading.Timer(0.75, lambda: seen.append(server.stats()["chat_requests"]))
    try:
        server.set_faults({WORDS[0]: ["429"]})
        timer.start()
        report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    finally:
        timer.cancel()
        server.retry_after = 0.05
    assert report.counts["rated"] == len(WORDS)
    assert seen and seen[0] < 40  # half-way through the hold, the others wait too (unpaced, all 60 would be done)
    engine.dispose()


@pytest.mark.postgres
def test_dry_run_before_the_first_apply_leaves_an_empty_postgresql_database_empty(tmp_path, server, empty_pg_url):
    from sqlalchemy import create_engine, inspect

    path = write_study(tmp_path / "study", empty_pg_url, server, {"mini": {}})
    run = workbench("rate", "mini", "--dry-run", "--study", str(path))
    assert run.returncode == 0, run.stderr
    assert f"{len(WORDS)} of {len(WORDS)} items to rate" in run.stdout and "scratch copy" in run.stdout
    engine = create_engine(empty_pg_url)
    try:
        assert inspect(engine).get_table_names() == []  # not even migrated
    finally:
        engine.dispose()


def test_answers_are_kept_when_the_process_is_killed_while_another_request_stalls(tmp_path, db_url, monkeypatch):
    """Only the requests in flight are lost: what was answered is flushed on a timer, not only when the next
    answer arrives (which, behind a stalled request, never does)."""
    import signal

    monkeypatch.setenv(KEY_ENV, SECRET)
    with OpenAIServer(latency=0, slow_seconds=300) as slow:
        slow.set_faults({"word000": "always:slow"})
        engine, loaded = setup(tmp_path, db_url, slow, {"mini": {"concurrency": 4, "timeout": 600}})
        env = dict(os.environ, WORKBENCH_DB=db_url)
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "rate", "mini", "--study", str(loaded.path)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while slow.stats()["chat_ok"] < len(WORDS) - 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert slow.stats()["chat_ok"] == len(WORDS) - 1
            time.sleep(3.0)  # the writer's timer (commit_seconds = 1) has had its turn
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        kept = ratings_by_word(engine, "mini")
        assert len(kept) == len(WORDS) - 1 and "word000" not in kept  # every answered item; only the stalled one is lost
    engine.dispose()
