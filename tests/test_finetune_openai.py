"""OpenAI fine-tuning jobs against the test server's files and fine_tuning.jobs endpoints.

A split of 60 words (stratified), a fine-tune of the openai rater on the
training words, and its rater on the test words; the job's failures; and a
workbench killed while the job runs, picked up by the next apply. Stores on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import wait_for
from tests.leaks import assert_key_nowhere
from tests.openai_server import KEY_ENV, OpenAIServer, reference_expected
from workbench.errors import WorkbenchError
from workbench.finetune.run import current_job
from workbench.store import connect
from workbench.store.itemsets import resolve_items
from workbench.store.models import Job, Rater, Rating
from workbench.study.apply import apply_study, make_plan
from workbench.study.finetune import finetune_status, start_finetune
from workbench.study.load import LoadedStudy, load_study

SECRET = "sk-test-DO-NOT-STORE-ft-31c9"
WORDS = [f"word{i:03d}" for i in range(60)]
OPENAI_SERVER = {"latency": 0, "finetune_seconds": 0.5}  # `server`: tests/conftest.py


def write_study(folder: Path, db_url: str, server: OpenAIServer, finetune: dict | None = None, gold=None,
                split: dict | None = None, gold_scale=None) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    gold = gold or {w: min(7.0, 1 + (i % 7) + (i % 3) * 0.25) for i, w in enumerate(WORDS)}
    rows = ["word,fam"] + [f"{w},{v}" for w, v in gold.items()]
    column = {"mean": "fam", "scale": gold_scale} if gold_scale else "fam"
    (folder / "gold.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    study = {
        "study": "ft-test",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": column}}},
        "splits": {"ft": split or {"from": "gold", "train": 40, "stratify": "gold", "seed": 3}},
        "raters": {"mini": {"backend": "openai", "model": "gpt-4o-mini-2024-07-18", "base_url": server.base_url,
                            "api_key_env": KEY_ENV, "items": "ft.test", "readout": "expected"}},
        "finetunes": {"mini-ft": {"backend": "openai", "base": "mini", "train": "ft.train", "gold": "gold",
                                  "rate": "ft.test", "poll_seconds": 0.05, **(finetune or {})}},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def _prepared(tmp_path, db_url, server, **kw):
    loaded = load_study(write_study(tmp_path / "study", db_url, server, **kw))
    engine = connect(db_url)
    bare = loaded.study.model_copy(update={"raters": {}, "finetunes": {}})
    apply_study(engine, LoadedStudy(loaded.path, bare))
    return engine, loaded


def test_split_is_stored_stratified_and_disjoint(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server)
    with Session(engine) as s:
        train, test = resolve_items(s, "ft.train"), resolve_items(s, "ft.test")
        assert len(train) == 40 and len(test) == 20 and not set(train) & set(test)
        from workbench.store.itemsets import gold_values

        gold = gold_values(s, "gold", "familiarity")
    # stratified: each fifth of the gold values gives 8 training and 4 test items
    ordered = sorted(gold, key=lambda i: gold[i])
    for k in range(5):
        fifth = set(ordered[k * 12 : (k + 1) * 12])
        assert len(fifth & set(train)) == 8
    # same study, same split; a second apply changes nothing
    with Session(engine) as s:
        assert all(st.action == "unchanged" for st in make_plan(s, loaded).steps if st.kind == "split")
    engine.dispose()


def test_overlapping_given_split_is_refused(tmp_path, db_url, server):
    loaded = load_study(write_study(tmp_path / "study", db_url, server, split={"train": "gold", "test": "gold"}))
    engine = connect(db_url)
    bare = loaded.study.model_copy(update={"raters": {}, "finetunes": {}})
    with pytest.raises(WorkbenchError, match="share 60 items .* a training item must never be scored as a test item"):
        apply_study(engine, LoadedStudy(loaded.path, bare))
    engine.dispose()


def test_finetune_trains_registers_a_rater_and_rates_the_test_words(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server, finetune={"openai": {"n_epochs": 3, "suffix": "fam"}})
    events: list[str] = []
    report = start_finetune(engine, loaded, "mini-ft", on_event=events.append)
    assert report.status == "succeeded", report.error
    assert report.model.startswith("ft:gpt-4o-mini-2024-07-18:workbench-test:fam:")
    assert any("Step 10/10" in e for e in events) and any("uploaded the training file (40 examples)" in e for e in events)
    # the uploaded file: the rater's chat with the gold value (two decimals) as the answer
    job_id = server.finetuning_stats()["jobs"][-1]
    with Session(engine) as s:
        job = current_job(s, "mini-ft")
        assert job.external_id == job_id and job.status == "succeeded" and job.kind == "finetune:openai"
        file_id = job.config["training_file"]
        texts = dict(s.execute(select(Rater.name, Rater.config)).all())
    lines = [json.loads(x) for x in server._files[file_id][1].decode().splitlines()]
    assert len(lines) == 40
    assert lines[0]["messages"][-1]["role"] == "assistant"
    assert all(len(m["messages"][-1]["content"].split(".")[1]) == 2 for m in lines)
    assert 'Word: "word' in lines[0]["messages"][-2]["content"]
    assert server._ft_state().by_id[job_id].obj["hyperparameters"]["n_epochs"] == 3
    # the tuned rater rated the 20 test words with the fine-tuned model, and says what it was trained on
    assert report.rating.status == "completed" and report.rating.counts["rated"] == 20
    assert texts["mini-ft"]["model"] == report.model
    assert texts["mini-ft"]["trained_on"] == {"finetune": "mini-ft", "items": "ft.train", "n": 40, "gold": "gold"}
    with Session(engine) as s:
        got = dict(s.execute(select(Rating.item_id, Rating.value).join(Rater).where(Rater.name == "mini-ft")).all())
        test = resolve_items(s, "ft.test")
        from workbench.store.itemsets import item_texts

        names = item_texts(s, test)
    assert sorted(got) == test
    for i in test:
        assert got[i] == pytest.approx(reference_expected(names[i]), abs=0.02)
    # again: nothing to do
    jobs_before = len(server.finetuning_stats()["jobs"])
    again = start_finetune(engine, loaded, "mini-ft")
    assert again.status == "succeeded" and again.rating.job_id is None
    assert len(server.finetuning_stats()["jobs"]) == jobs_before
    # the report says what the tuned rater was trained on, and that none of its reported items were among them
    from workbench.analysis.render import render_markdown
    from workbench.analysis.report import build_report

    with Session(engine) as s:
        rep, _ = build_report(s, raters=["mini-ft"], n_boot=100)
    trained = rep.dimensions[0].trained
    assert [(t.rater, t.items, t.n, t.gold, t.overlap) for t in trained] == [("mini-ft", "ft.train", 40, "gold", 0)]
    assert "mini-ft was trained on ft.train (40 items of gold); none of the items it is reported on" in render_markdown(rep)
    apply_study(engine, loaded)  # rates the base rater too
    with Session(engine) as s:
        assert [st.describe() for st in make_plan(s, loaded).changes] == []
    assert_key_nowhere(SECRET, console="\n".join(events), engine=engine, folders=(tmp_path,))
    engine.dispose()


def test_parsed_readout_reads_the_answer(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server, finetune={"readout": "parsed"})
    report = start_finetune(engine, loaded, "mini-ft")
    assert report.status == "succeeded"
    with Session(engine) as s:
        rows = s.execute(select(Rating.value, Rating.raw_answer).join(Rater).where(Rater.name == "mini-ft")).all()
    assert len(rows) == 20 and all(v == pytest.approx(float(a)) for v, a in rows)
    engine.dispose()


@pytest.mark.parametrize(
    ("finetune", "fail_with", "reason"),
    [
        ({"model": None}, "The model diverged (test).", "OpenAI job ftjob-.* failed: training_failed: The model diverged"),
    ],
)
def test_job_failed_upstream_is_marked_failed_and_registers_no_rater(tmp_path, db_url, server, finetune, fail_with, reason):
    server.set_finetuning(seconds=0.5, fail_with=fail_with)
    engine, loaded = _prepared(tmp_path, db_url, server)
    report = start_finetune(engine, loaded, "mini-ft")
    assert report.status == "failed"
    import re

    assert re.search(reason, report.error)
    with Session(engine) as s:
        assert s.scalar(select(Rater).where(Rater.name == "mini-ft")) is None
        assert finetune_status(s, loaded, "mini-ft").status == "failed"
    # apply does not retry it silently; --restart does
    again = start_finetune(engine, loaded, "mini-ft")
    assert again.status == "failed" and "--restart" in again.details["hint"]
    server.set_finetuning(seconds=0.3, fail_with=None)
    retried = start_finetune(engine, loaded, "mini-ft", restart=True)
    assert retried.status == "succeeded" and retried.job_id != report.job_id
    engine.dispose()


def test_model_that_cannot_be_fine_tuned(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server, finetune={"model": "o3-mini"})
    report = start_finetune(engine, loaded, "mini-ft")
    assert report.status == "failed"
    assert "creating the fine-tuning job for o3-mini failed: HTTP 400: Model o3-mini is not available for fine-tuning" in report.error
    with Session(engine) as s:
        assert s.scalar(select(Rater).where(Rater.name == "mini-ft")) is None
    engine.dispose()


def test_tiny_training_set_and_gold_outside_the_scale(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server, split={"from": "gold", "train": 5, "seed": 1})
    with pytest.raises(WorkbenchError, match="training set 'ft.train' .* has 5 items with a gold value; fine-tuning needs at least 8"):
        start_finetune(engine, loaded, "mini-ft")
    engine.dispose()
    gold = {w: (9.5 if i == 0 else 3.0 + (i % 4)) for i, w in enumerate(WORDS)}
    engine, loaded = _prepared(tmp_path / "b", db_url.replace("store.db", "store2.db"), server,
                               gold=gold, gold_scale=[1, 10], split={"from": "gold", "train": 59, "seed": 1})  # fmt: skip
    with pytest.raises(WorkbenchError, match=r"gold values outside the scale 1-7 \('word000' = 9.5\)"):
        start_finetune(engine, loaded, "mini-ft")
    with Session(engine) as s:
        assert s.scalar(select(Job).where(Job.kind.like("finetune:%"))) is None  # nothing half-made
    engine.dispose()


def test_rejected_training_file(tmp_path, db_url, server, monkeypatch):
    import workbench.finetune.trainers.openai as oft

    monkeypatch.setattr(oft, "chat_lines", lambda prep, examples: ["not json"] * len(examples))
    engine, loaded = _prepared(tmp_path, db_url, server)
    report = start_finetune(engine, loaded, "mini-ft")
    assert report.status == "failed"
    assert "uploading the training file failed: HTTP 400: Invalid file format for Fine-Tuning API" in report.error
    engine.dispose()


def test_cancel_upstream(tmp_path, db_url, server):
    server.set_finetuning(seconds=30)
    cancels = server.finetuning_stats()["cancels"]
    engine, loaded = _prepared(tmp_path, db_url, server, finetune={"poll_seconds": 0.05})
    env = dict(os.environ, WORKBENCH_DB=db_url)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "finetune", "start", "mini-ft", "--study", str(loaded.path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: _external(engine) is not None)
        cancel = subprocess.run([sys.executable, "-m", "workbench.cli.main", "finetune", "cancel", "mini-ft", "--study", str(loaded.path)],
                                env=env, capture_output=True, text=True)  # fmt: skip
        assert cancel.returncode == 0, cancel.stderr
        assert "cancelled" in cancel.stdout
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert server.finetuning_stats()["cancels"] == cancels + 1
    with Session(engine) as s:
        assert current_job(s, "mini-ft").status == "cancelled"
        assert s.scalar(select(Rater).where(Rater.name == "mini-ft")) is None
    assert_key_nowhere(SECRET, console=out + err + cancel.stdout + cancel.stderr, engine=engine, folders=(tmp_path,))
    engine.dispose()


def _external(engine):
    with Session(engine) as s:
        job = current_job(s, "mini-ft")
        return job.external_id if job else None


def test_killed_while_the_job_runs_apply_picks_the_same_job_up(tmp_path, db_url, server):
    server.set_finetuning(seconds=6)
    before = len(server.finetuning_stats()["jobs"])
    loaded = load_study(write_study(tmp_path / "study", db_url, server))
    engine = connect(db_url)
    env = dict(os.environ, WORKBENCH_DB=db_url)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "apply", "--study", str(loaded.path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: _external(engine) is not None)
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = _external(engine)
    with Session(engine) as s:
        assert current_job(s, "mini-ft").status == "running"
        assert s.scalar(select(Rater).where(Rater.name == "mini-ft")) is None
    assert server.finetuning_stats()["jobs"][before:] == [first]
    status = subprocess.run([sys.executable, "-m", "workbench.cli.main", "finetune", "status", "mini-ft", "--study", str(loaded.path)],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "mini-ft (openai): job " in status.stdout and f" running, {first}" in status.stdout
    again = subprocess.run([sys.executable, "-m", "workbench.cli.main", "apply", "--study", str(loaded.path)],
                           env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "resuming job" in again.stdout and first in again.stdout
    assert server.finetuning_stats()["jobs"][before:] == [first]  # no second job
    with Session(engine) as s:
        job = current_job(s, "mini-ft")
        assert job.status == "succeeded" and job.external_id == first
        assert s.query(Rating).join(Rater).filter(Rater.name == "mini-ft").count() == 20
    status = subprocess.run([sys.executable, "-m", "workbench.cli.main", "finetune", "status", "mini-ft", "--study", str(loaded.path)],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert f" succeeded, {first}" in status.stdout and "model: ft:gpt-4o-mini-2024-07-18:workbench-test:" in status.stdout
    console = "\n".join([*proc.communicate(), again.stdout, again.stderr, status.stdout, status.stderr])
    assert_key_nowhere(SECRET, console=console, engine=engine, folders=(tmp_path,))
    engine.dispose()


def test_server_gone_mid_job_keeps_the_job_running_and_the_next_start_resumes_it(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with OpenAIServer(latency=0) as own:
        own.set_finetuning(seconds=4)
        engine, loaded = _prepared(tmp_path, db_url, own)
        import threading

        from workbench.finetune.run import StillRunning

        outcome: dict = {}

        def follow():
            try:
                outcome["report"] = start_finetune(engine, loaded, "mini-ft")
            except StillRunning as exc:
                outcome["error"] = str(exc)

        worker = threading.Thread(target=follow)
        worker.start()
        wait_for(lambda: _external(engine) is not None)
        first = _external(engine)
        own.stop()  # the server goes away while the job is followed
        worker.join(timeout=120)
        assert "connection failed" in outcome["error"] and "stays running" in outcome["error"]
        with Session(engine) as s:
            assert current_job(s, "mini-ft").status == "running"
        own.start()  # back on the same port, with the same jobs
        report = start_finetune(engine, loaded, "mini-ft")
        assert report.status == "succeeded" and report.external_id == first
        assert own.finetuning_stats()["jobs"] == [first]
    engine.dispose()


def test_a_rate_set_that_shares_items_with_train_is_refused(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server, finetune={"rate": "gold"})
    with pytest.raises(WorkbenchError, match=r"train 'ft.train' and rate 'gold' share 40 items .*make the sets disjoint"):
        start_finetune(engine, loaded, "mini-ft")
    with Session(engine) as s:
        assert s.scalar(select(Job).where(Job.kind.like("finetune:%"))) is None
    engine.dispose()


# --------------------------------------------------------------------------- keys, money and jobs upstream

ECHO_KEY = "sk-ft/Echo+Zq8vXw2-LmN4pR7tY=="  # a "/" to be JSON-escaped, a "+" and "=" to be URL-encoded


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "workbench.cli.main", *args], env=env, capture_output=True, text=True, timeout=180)


def test_a_server_that_echoes_the_key_in_job_events_failures_and_upload_errors_leaves_it_nowhere(tmp_path, db_url, monkeypatch):
    """The fine-tuning and files endpoints (and the tuned rater's chats) against a server that sends the key back in
    every encoding: in upload errors, an HTML page answering an upload, a failed job's message, every events list;
    the key is in no console line, no table, not in the DuckDB snapshot and in no file written."""
    monkeypatch.setenv(KEY_ENV, ECHO_KEY)
    with OpenAIServer(latency=0, echo_key=True) as echo:
        engine, loaded = _prepared(tmp_path, db_url, echo)
        engine.dispose()
        path = loaded.path
        env = dict(os.environ, WORKBENCH_DB=db_url, WORKBENCH_CACHE_DIR=str(tmp_path / "cache"))
        runs = []
        echo.fail_next("POST", "/v1/files", "html")  # an upload answered with a 200 HTML page quoting the key
        runs.append(_cli("finetune", "start", "mini-ft", "--study", str(path), env=env))
        echo.fail_next("POST", "/v1/fine_tuning/jobs$", "500")  # a create refused with the key in the error body
        echo.set_finetuning(seconds=0.5, fail_with="The model diverged (test).")
        runs.append(_cli("apply", "--study", str(path), env=env))  # the first job failed: apply says so, exit 2
        runs.append(_cli("finetune", "start", "mini-ft", "--restart", "--study", str(path), env=env))  # fails upstream
        runs.append(_cli("finetune", "status", "mini-ft", "--study", str(path), env=env))
        echo.set_finetuning(seconds=0.5)
        runs.append(_cli("finetune", "start", "mini-ft", "--restart", "--study", str(path), env=env))  # succeeds, rates
        runs.append(_cli("sql", "SELECT * FROM jobs", "--study", str(path), env=env))
        runs.append(_cli("status", "--study", str(path), env=env))
    console = "\n".join(r.stdout + r.stderr for r in runs)
    assert "Traceback" not in console, console
    assert [r.returncode for r in runs] == [1, 2, 1, 0, 0, 0, 0], console
    assert "uploading the training file failed: the response is not valid JSON: '<html>" in runs[0].stderr + runs[0].stdout
    assert "fine-tune mini-ft failed" in runs[1].stderr
    assert "The model diverged (test). You sent: Bearer ***" in runs[2].stdout, runs[2].stdout
    assert "Checked credentials: Bearer ***" in runs[4].stdout
    engine = connect(db_url)
    with Session(engine) as s:
        jobs = s.scalars(select(Job).where(Job.kind == "finetune:openai").order_by(Job.id)).all()
        assert [j.status for j in jobs] == ["failed", "failed", "succeeded"]
        assert "***" in jobs[1].error and s.query(Rating).join(Rater).filter(Rater.name == "mini-ft").count() == 20
    assert_key_nowhere(ECHO_KEY, console=console, engine=engine, folders=(tmp_path,))
    engine.dispose()


def test_a_create_whose_connection_drops_after_the_job_was_made_adopts_that_job(tmp_path, db_url, server):
    server.set_finetuning(seconds=0.5, drop_creates=3)  # the client's own retries would have made four jobs
    before = len(server.finetuning_stats()["jobs"])
    engine, loaded = _prepared(tmp_path, db_url, server)
    events: list[str] = []
    report = start_finetune(engine, loaded, "mini-ft", on_event=events.append)
    assert report.status == "succeeded", report.error
    made = server.finetuning_stats()["jobs"][before:]
    assert made == [report.external_id], made
    assert any("adopted (made earlier for this run)" in e for e in events), events
    job = server._ft_state().by_id[report.external_id].obj
    with Session(engine) as s:
        assert job["metadata"]["workbench_run"] == current_job(s, "mini-ft").config["run_token"]
    engine.dispose()


def test_killed_while_the_job_is_created_the_rerun_adopts_it(tmp_path, db_url, server):
    server.set_finetuning(seconds=0.5, create_delay=30)
    before = len(server.finetuning_stats()["jobs"])
    engine, loaded = _prepared(tmp_path, db_url, server)
    env = dict(os.environ, WORKBENCH_DB=db_url)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "finetune", "start", "mini-ft", "--study", str(loaded.path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: len(server.finetuning_stats()["jobs"]) > before)  # made upstream, not answered yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _external(engine) is None  # the workbench never heard of it
    server.set_finetuning(seconds=0.5)
    again = _cli("finetune", "start", "mini-ft", "--study", str(loaded.path), env=env)
    assert again.returncode == 0, again.stderr
    made = server.finetuning_stats()["jobs"][before:]
    assert len(made) == 1 and f"OpenAI job {made[0]} adopted" in again.stdout, again.stdout
    with Session(engine) as s:
        job = current_job(s, "mini-ft")
        assert job.status == "succeeded" and job.external_id == made[0]
    engine.dispose()


def test_transient_errors_while_polling_are_asked_again_and_only_the_upstream_status_decides(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server)
    server.set_finetuning(seconds=1.0)
    server.fail_next("GET", r"/v1/fine_tuning/jobs/[^/]+$", "500", times=6)  # more than the client's own retries
    events: list[str] = []
    report = start_finetune(engine, loaded, "mini-ft", on_event=events.append)
    assert report.status == "succeeded", report.error
    assert any("failed: HTTP 500" in e and "asking again" in e for e in events), events
    assert len(server.finetuning_stats()["jobs"]) >= 1
    engine.dispose()


def test_a_server_that_stays_broken_while_polling_leaves_the_job_running_and_cancel_still_cancels_upstream(tmp_path, db_url, server):
    from workbench.finetune.run import StillRunning
    from workbench.study.finetune import cancel_finetune

    engine, loaded = _prepared(tmp_path, db_url, server)
    server.set_finetuning(seconds=60)
    server.fail_next("GET", r"/v1/fine_tuning/jobs/[^/]+$", "500", times=1000)
    with pytest.raises(StillRunning, match="checking job ftjob-.* failed: HTTP 500.* stays running"):
        start_finetune(engine, loaded, "mini-ft")
    with Session(engine) as s:
        job = current_job(s, "mini-ft")
        assert job.status == "running" and job.external_id
    cancels = server.finetuning_stats()["cancels"]
    cancel_finetune(engine, loaded, "mini-ft")
    assert server.finetuning_stats()["cancels"] == cancels + 1
    assert server._ft_state().by_id[job.external_id].obj["status"] == "cancelled"
    with Session(engine) as s:
        assert current_job(s, "mini-ft").status == "cancelled"
    engine.dispose()


def test_an_upload_answered_with_an_html_page_fails_the_job_in_one_line(tmp_path, db_url, server):
    engine, loaded = _prepared(tmp_path, db_url, server)
    server.fail_next("POST", "/v1/files", "html")
    report = start_finetune(engine, loaded, "mini-ft")
    assert report.status == "failed"
    assert report.error.startswith("uploading the training file failed: the response is not valid JSON: '<html>")
    assert "\n" not in report.error
    with Session(engine) as s:
        assert current_job(s, "mini-ft").status == "failed"
    engine.dispose()
