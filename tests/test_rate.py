"""Rating jobs against a real HTTP server that speaks the OpenAI API, faults included.

Every store assertion runs on SQLite and PostgreSQL. The server's model is
deterministic (tests/openai_server.py), so the expected value of every word is
known without it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.helpers import wait_for
from tests.openai_server import KEY_ENV, OpenAIServer, reference_distribution, reference_expected
from workbench.errors import WorkbenchError
from workbench.store import connect
from workbench.store.models import Call, Job, Rater, Rating
from workbench.study.apply import apply_study
from workbench.study.load import load_study
from workbench.study.rate import run_rater

SECRET = "sk-test-DO-NOT-STORE-8f2b91c4"
WORDS = [f"word{i:03d}" for i in range(60)]
FAST = 0.01  # backoff base in tests
TIMEOUT = 30.0  # seconds per request: far above any answer on a loaded machine, so the tests that count requests
# exactly count no retry after a timeout; a test of the timeout sets its own
RATE_JOB = Job.kind.like("rate:%")
MINI_COUNT = select(func.count()).select_from(Rating).join(Rater).where(Rater.name == "mini")
OPENAI_SERVER = {"latency": 0, "retry_after": 0.05, "slow_seconds": 3, "batch_seconds": 0.3}  # `server`: tests/conftest.py


def write_study(folder: Path, db_url: str, server: OpenAIServer, raters: dict, words=WORDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["word,fam"] + [f"{w},{1 + (i % 7)}" for i, w in enumerate(words)]
    (folder / "gold.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    base = {"backend": "openai", "model": "gpt-4o-mini", "base_url": server.base_url, "api_key_env": KEY_ENV,
            "concurrency": 8, "timeout": TIMEOUT, "max_retries": 3}  # fmt: skip
    study = {
        "study": "rate-test",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1, "labels": {1: "unfamiliar", 7: "familiar"}}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": {name: {**base, **cfg} for name, cfg in raters.items()},
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def setup_store(tmp_path, db_url, server, raters, **kw):
    loaded = load_study(write_study(tmp_path / "study", db_url, server, raters, **kw))
    engine = connect(db_url)
    apply_study(engine, _without_raters(loaded))
    return engine, loaded


def _without_raters(loaded):
    from workbench.study.load import LoadedStudy

    return LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}}))


def ratings_by_word(engine, rater: str) -> dict[str, Rating]:
    with Session(engine) as s:
        q = text(
            "SELECT i.text, r.value, r.mass, r.note, r.distribution, r.raw_answer FROM ratings r "
            "JOIN items i ON i.id = r.item_id JOIN raters ra ON ra.id = r.rater_id WHERE ra.name = :n"
        )
        rows = s.execute(q, {"n": rater}).all()
    decode = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731 (JSON comes back as text in raw SQL)
    return {row[0]: (*row[:4], decode(row[4]), row[5]) for row in rows}


def count_per_item(engine, rater: str) -> list[int]:
    with Session(engine) as s:
        q = text("SELECT count(*) FROM ratings r JOIN raters ra ON ra.id = r.rater_id WHERE ra.name = :n GROUP BY r.item_id")
        return [c for (c,) in s.execute(q, {"n": rater})]


def all_text_in_store(engine) -> str:
    """Every table dumped as text, to prove a secret is nowhere in it."""
    parts = []
    with engine.connect() as c:
        for table in ("raters", "jobs", "ratings", "calls", "datasets", "store_meta"):
            for row in c.execute(text(f"SELECT * FROM {table}")):
                parts.append(json.dumps([str(v) for v in row]))
    return "\n".join(parts)


def test_rates_every_item_with_the_expected_value_and_keeps_the_evidence(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"mini": {}})
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert report.status == "completed" and report.counts["rated"] == len(WORDS)
    got = ratings_by_word(engine, "mini")
    assert set(got) == set(WORDS)
    for word, (_, value, mass, note, dist, answer) in got.items():
        assert value == pytest.approx(reference_expected(word), abs=1e-9)
        ref = reference_distribution(word)
        assert dist == pytest.approx(ref, abs=1e-9)
        assert mass == pytest.approx(0.98, abs=1e-9) and note is None
        assert answer == max(ref, key=ref.get)
    with Session(engine) as s:
        calls = s.scalars(select(Call)).all()
        assert len(calls) == len(WORDS) and all(c.status == "ok" and c.latency_ms > 0 for c in calls)
        body = calls[0].request
        assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["model"] == "gpt-4o-mini"
        assert json.loads(calls[0].response)["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        job = s.get(Job, report.job_id)
        assert job.status == "completed" and job.counts["prompt_tokens"] > 0 and job.cost > 0
        assert job.finished_at is not None
    # the same configuration resumes: nothing left to do
    again = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert again.job_id is None and again.already == len(WORDS)
    assert server.stats()["chat_requests"] == len(WORDS)
    assert SECRET not in all_text_in_store(engine)
    engine.dispose()


def test_faults_end_with_a_right_store(tmp_path, db_url, server):
    # the slow answer comes after 30 s, the client gives up after 3 s: only word002 times out, even on a loaded machine
    server.slow_seconds = 30
    engine, loaded = setup_store(tmp_path, db_url, server, {"mini": {"timeout": 3.0, "max_retries": 3}})
    server.set_faults({
        "word000": ["429", "429"],        # waits Retry-After, then answers
        "word001": ["500", "500", "500"],  # three failures, the fourth attempt answers
        "word002": ["slow"],              # times out once
        "word003": ["malformed"],         # a broken body once
        "word004": ["no_logprobs"],       # no logprobs once
        "word005": "always:non_numeric",  # a real answer with no rating in it
        "word006": "always:500",          # never answers
        "word007": "always:no_logprobs",  # never gives logprobs
    })  # fmt: skip
    report = run_rater(engine, loaded, "mini", backoff_base=FAST)
    attempts = server.stats()["attempts"]
    assert attempts["word000"] == 3 and attempts["word001"] == 4 and attempts["word006"] == 4
    assert report.status == "partial"
    assert report.counts["failed"] == 2 and report.counts["unreadable"] == 1
    assert {f["item"] for f in report.counts["failures"]} == {"word006", "word007"}
    got = ratings_by_word(engine, "mini")
    assert "word006" not in got and "word007" not in got
    for word in ("word000", "word001", "word002", "word003", "word004"):
        assert got[word][1] == pytest.approx(reference_expected(word))
    assert got["word005"][1] is None and got["word005"][5] == "banana"
    assert "no scale point" in got["word005"][3]
    with Session(engine) as s:
        errors = s.execute(select(Call.http_status, Call.error).where(Call.status == "error")).all()
        assert (429, "rate limited (HTTP 429)") in errors
        assert any(code == 500 for code, _ in errors) and any("not valid JSON" in e for _, e in errors)
        assert any("no response within" in e for _, e in errors) and any("no logprobs" in e for _, e in errors)
        job = s.get(Job, report.job_id)
        assert "word006" in job.error and job.status == "partial"
    # the server recovers: a second run rates only the failed items, and nothing twice
    server.reset()
    second = run_rater(engine, loaded, "mini", backoff_base=FAST)
    assert second.requested == 2 and second.counts["rated"] == 2
    assert sorted(count_per_item(engine, "mini")) == [1] * len(WORDS)
    engine.dispose()


def test_a_refused_key_stops_the_job_with_a_clear_error_and_no_key_anywhere(tmp_path, db_url):
    with OpenAIServer(api_key="sk-the-right-one") as strict:
        os.environ[KEY_ENV] = SECRET
        try:
            engine, loaded = setup_store(tmp_path, db_url, strict, {"mini": {}})
            with pytest.raises(WorkbenchError, match=rf"refused the API key in \${KEY_ENV} \(HTTP 401\)"):
                run_rater(engine, loaded, "mini", backoff_base=FAST)
        finally:
            del os.environ[KEY_ENV]
    with Session(engine) as s:
        assert s.scalar(select(Job.status).where(RATE_JOB)) == "failed"
        assert s.scalar(select(func.count()).select_from(Rating).join(Rater).where(Rater.name == "mini")) == 0
    assert SECRET not in all_text_in_store(engine)
    engine.dispose()


def test_missing_key_is_a_clear_error_before_any_request(tmp_path, db_url, server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    engine, loaded = setup_store(tmp_path, db_url, server, {"mini": {}})
    with pytest.raises(WorkbenchError, match=f"set the environment variable {KEY_ENV}"):
        run_rater(engine, loaded, "mini")
    assert server.stats()["chat_requests"] == 0
    engine.dispose()


def test_dry_run_counts_requests_and_cost_and_sends_nothing(tmp_path, db_url, server):
    engine, loaded = setup_store(
        tmp_path,
        db_url,
        server,
        {"mini": {}, "custom": {"model": "my-model", "price": {"input": 1, "output": 2}}, "unknown": {"model": "my-model"}},
    )
    report = run_rater(engine, loaded, "mini", dry_run=True)
    assert report.requests == len(WORDS) and report.estimated_cost > 0
    p, c = report.estimated_tokens
    assert report.estimated_cost == pytest.approx((p * 0.15 + c * 0.60) / 1e6)
    custom = run_rater(engine, loaded, "custom", dry_run=True, limit=10)
    assert custom.requests == 10 and custom.estimated_cost == pytest.approx(
        (custom.estimated_tokens[0] + 2 * custom.estimated_tokens[1]) / 1e6
    )
    assert run_rater(engine, loaded, "unknown", dry_run=True).price_known is False
    assert server.stats()["requests"] == 0
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Job).where(RATE_JOB)) == 0
    engine.dispose()


def test_a_changed_configuration_is_a_new_rater_and_the_old_one_is_kept(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"mini": {}})
    run_rater(engine, loaded, "mini", limit=5)
    changed = load_study(write_study(tmp_path / "study", db_url, server, {"mini": {"prompt": 'How familiar is "{item}"? Answer 1-7.'}}))
    report = run_rater(engine, changed, "mini", limit=3)
    assert report.already == 0 and report.counts["rated"] == 3
    with Session(engine) as s:
        raters = dict(s.execute(select(Rater.name, Rater.config_hash).where(Rater.kind == "llm")).all())
    assert len(raters) == 2 and "mini" in raters
    old = next(n for n in raters if n != "mini")
    assert old.startswith("mini@") and len(ratings_by_word(engine, old)) == 5
    # back to the first prompt: it resumes under its name, the five stay
    report = run_rater(engine, loaded, "mini", limit=1)
    assert report.already == 5
    engine.dispose()


def test_greedy_parsed_and_samples_readouts(tmp_path, db_url, server):
    engine, loaded = setup_store(
        tmp_path, db_url, server,
        {"greedy": {"readout": "greedy"}, "parsed": {"readout": "parsed"}, "samples": {"readout": "samples", "samples": 8}},
    )  # fmt: skip
    for name in ("greedy", "parsed", "samples"):
        assert run_rater(engine, loaded, name, limit=10).counts["rated"] == 10
    greedy = ratings_by_word(engine, "greedy")
    for word, row in greedy.items():
        ref = reference_distribution(word)
        assert row[1] == float(max(ref, key=ref.get)) and row[4] is None
    assert {w: r[1] for w, r in ratings_by_word(engine, "parsed").items()} == {w: r[1] for w, r in greedy.items()}
    with Session(engine) as s:
        sample_rows = s.execute(select(Rating.value, Rating.n, Rating.sd).join(Rater).where(Rater.name == "samples")).all()
        body = s.scalars(select(Call.request).join(Job).join(Rater).where(Rater.name == "samples")).first()
    assert body["n"] == 8 and body["temperature"] == 1.0 and "logprobs" not in body
    assert all(1 <= v <= 7 and n == 8 for v, n, _ in sample_rows)
    engine.dispose()


def test_expected_readout_refuses_a_scale_whose_points_are_not_single_tokens(tmp_path, db_url, server):
    path = write_study(tmp_path / "study", db_url, server, {"mini": {}})
    data = yaml.safe_load(path.read_text())
    data["dimensions"]["familiarity"] = {"scale": [100, 700], "step": 100}
    data["datasets"]["gold"]["ratings"] = {"familiarity": {"mean": "fam", "scale": [1, 7]}}
    path.write_text(yaml.safe_dump(data))
    loaded = load_study(path)
    engine = connect(db_url)
    apply_study(engine, _without_raters(loaded))
    with pytest.raises(WorkbenchError, match="single tokens, and 100-700 has points that are not.*backend: local"):
        run_rater(engine, loaded, "mini", dry_run=True)
    assert server.stats()["requests"] == 0
    engine.dispose()


def test_apply_rates_declared_raters_and_a_second_apply_does_nothing(tmp_path, db_url, server):
    path = write_study(tmp_path / "study", db_url, server, {"mini": {"items": "pilot"}})
    data = yaml.safe_load(path.read_text())
    data["item_sets"] = {"pilot": {"from": "gold", "sample": 12, "seed": 3}}
    path.write_text(yaml.safe_dump(data))
    loaded = load_study(path)
    engine = connect(db_url)
    reports = []
    apply_study(engine, loaded, on_rater=reports.append)
    assert reports[0].counts["rated"] == 12
    assert len(ratings_by_word(engine, "mini")) == 12
    again = []
    plan = apply_study(engine, loaded, on_rater=again.append)
    assert not plan.changes and again[0].job_id is None
    assert server.stats()["chat_requests"] == 12
    engine.dispose()


# --------------------------------------------------------------------------- batch


def test_batch_rates_everything_and_records_the_batch(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    server.set_faults({"word010": "always:500"})
    report = run_rater(engine, loaded, "batch")
    assert report.counts["rated"] == len(WORDS) - 1 and report.counts["failed"] == 1
    got = ratings_by_word(engine, "batch")
    assert got["word020"][1] == pytest.approx(reference_expected("word020"))
    with Session(engine) as s:
        job = s.get(Job, report.job_id)
        assert job.external_id.startswith("batch") and job.status == "partial"
        assert job.cost == pytest.approx((job.counts["prompt_tokens"] * 0.075 + job.counts["completion_tokens"] * 0.3) / 1e6)
    assert server.stats()["batches_created"] == 1
    engine.dispose()


def test_an_expired_batch_keeps_its_partial_results_and_the_rest_is_rated_next_time(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    server.expire_batches_after(25)
    first = run_rater(engine, loaded, "batch")
    assert first.status == "expired" and first.counts["rated"] == 25 and first.counts["failed"] == 0
    server.expire_batches_after(None)
    second = run_rater(engine, loaded, "batch")
    assert second.requested == len(WORDS) - 25 and second.status == "completed"
    assert sorted(count_per_item(engine, "batch")) == [1] * len(WORDS)
    engine.dispose()


def _workbench(args, env):
    return subprocess.Popen([sys.executable, "-m", "workbench.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_restarted_batch_job_picks_up_its_batch_instead_of_paying_twice(tmp_path, db_url, openai_server, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"batch": {"backend": "openai-batch", "poll_seconds": 0.05}})
    openai_server.batch_seconds = 60.0  # the batch runs on while the process that made it is killed, however slowly
    env = dict(os.environ, WORKBENCH_DB=db_url)
    proc = _workbench(["rate", "batch", "--study", str(loaded.path)], env)
    try:
        with Session(engine) as s:
            wait_for(lambda: s.scalar(select(Job.status).where(Job.external_id.is_not(None))) == "submitted")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        openai_server.batch_seconds = 0.3
    report = run_rater(engine, loaded, "batch")
    assert server.stats()["batches_created"] == 1
    assert sorted(count_per_item(engine, "batch")) == [1] * len(WORDS)
    with Session(engine) as s:
        statuses = dict(s.execute(select(Job.id, Job.status).where(RATE_JOB)).all())
    assert len(statuses) == 2 and set(statuses.values()) == {"completed"}
    assert report.status == "completed"
    engine.dispose()


# --------------------------------------------------------------------------- kill -9


def test_kill_9_mid_run_then_resume_gives_every_item_exactly_one_rating(tmp_path, db_url):
    words = [f"kill{i:04d}" for i in range(400)]
    with OpenAIServer(latency=0.05) as slow:
        os.environ[KEY_ENV] = SECRET
        try:
            engine, loaded = setup_store(tmp_path, db_url, slow, {"mini": {"concurrency": 8}}, words=words)
            env = dict(os.environ, WORKBENCH_DB=db_url)
            proc = _workbench(["rate", "mini", "--study", str(loaded.path)], env)

            def some_rated():
                with Session(engine) as s:
                    return (s.scalar(MINI_COUNT) or 0) >= 60

            try:
                wait_for(some_rated)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            with Session(engine) as s:
                before = s.scalar(MINI_COUNT)
            assert 60 <= before < len(words)
            report = run_rater(engine, loaded, "mini")
            assert report.requested == len(words) - before
        finally:
            del os.environ[KEY_ENV]
    assert sorted(count_per_item(engine, "mini")) == [1] * len(words)
    with Session(engine) as s:
        statuses = sorted(s.scalars(select(Job.status).where(RATE_JOB)))
    assert statuses == ["completed", "interrupted"]
    for word, row in ratings_by_word(engine, "mini").items():
        assert math.isclose(row[1], reference_expected(word), abs_tol=1e-9)
    engine.dispose()


def test_cli_rate_dry_run_then_rate_then_status(tmp_path, server):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine, loaded = setup_store(tmp_path, db_url, server, {"mini": {}})
    engine.dispose()
    env = dict(os.environ, WORKBENCH_DB=db_url)
    dry = subprocess.run([sys.executable, "-m", "workbench.cli.main", "rate", "mini", "--dry-run", "--study", str(loaded.path)],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"mini (openai, gpt-4o-mini): {len(WORDS)} of {len(WORDS)} items to rate" in dry.stdout
    assert "Estimated cost: $" in dry.stdout and "Dry run: nothing was rated or stored." in dry.stdout
    assert "Model 'gpt-4o-mini' not checked: the server does not list its models (HTTP 404)." in dry.stdout
    assert server.stats()["chat_requests"] == 0  # only GET /v1/models, to check the model name
    run = subprocess.run([sys.executable, "-m", "workbench.cli.main", "rate", "mini", "--limit", "7", "--study", str(loaded.path)],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "completed: 7 rated, 0 answers with no rating, 0 failed." in run.stdout
    assert "Rating with mini: 7/7" in run.stderr
    status = subprocess.run([sys.executable, "-m", "workbench.cli.main", "status", "--study", str(loaded.path)],
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert "Recent rating jobs" in status.stdout and "completed" in status.stdout
    unknown = subprocess.run([sys.executable, "-m", "workbench.cli.main", "rate", "nope", "--study", str(loaded.path)],
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert unknown.returncode == 1 and "no rater named 'nope' (the study's raters: mini)" in unknown.stderr
    assert "Traceback" not in unknown.stderr
