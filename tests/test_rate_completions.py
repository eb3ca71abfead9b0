"""The openai-completions backend (POST /v1/completions, logprobs: N) against the test server, on SQLite and PostgreSQL.

The server answers text completions from the same deterministic model as chat
completions (tests/openai_server.py), so the expected rating of every word is
known without it. Every test runs against both shapes of /v1/completions
logprobs: the legacy one of OpenAI and vLLM ({token: logprob} dicts) and
llama.cpp's chat-like one (logprobs.content[].top_logprobs lists). The real
llama.cpp server is in tests/test_llama_server.py.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.openai_server import (
    OpenAIServer,
    reference_distribution,
    reference_expected,
    reference_mode,
)
from tests.test_rate import (
    FAST,
    KEY_ENV,
    SECRET,
    WORDS,
    all_text_in_store,
    ratings_by_word,
    setup_store,
    write_study,
)
from workbench.errors import WorkbenchError
from workbench.store.models import Call, Job, Rater
from workbench.study.load import load_study
from workbench.study.rate import run_rater

BASE = {"backend": "openai-completions", "model": "gemma-3-270m"}
# each test runs against both shapes of /v1/completions logprobs (`server`: tests/conftest.py)
OPENAI_SERVERS = {
    shape: {"latency": 0, "retry_after": 0.05, "slow_seconds": 3, "completions_logprobs": shape} for shape in ("legacy", "llama.cpp")
}


def test_expected_values_from_the_first_tokens_top_logprobs(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"base": dict(BASE)})
    report = run_rater(engine, loaded, "base", backoff_base=FAST)
    assert report.status == "completed" and report.counts["rated"] == len(WORDS)
    assert report.counts["mass_read"] == len(WORDS) and report.counts["mass_low"] == 0 and report.notes == []
    got = ratings_by_word(engine, "base")
    assert set(got) == set(WORDS)
    for word, (_, value, mass, note, dist, answer) in got.items():
        assert value == pytest.approx(reference_expected(word), abs=1e-9)
        assert dist == pytest.approx(reference_distribution(word), abs=1e-9)
        assert mass == pytest.approx(0.98, abs=1e-9) and note is None
        assert answer == reference_mode(word)
    with Session(engine) as s:
        calls = s.scalars(select(Call)).all()
        body = calls[0].request
        assert "messages" not in body and body["prompt"].endswith('"\nRating:') and body["logprobs"] == 20
        assert body["model"] == "gemma-3-270m" and body["max_tokens"] == 1 and body["temperature"] == 0
        logprobs = json.loads(calls[0].response)["choices"][0]["logprobs"]
        if server.model.completions_logprobs == "legacy":
            assert isinstance(logprobs["top_logprobs"][0], dict) and "content" not in logprobs
        else:
            assert isinstance(logprobs["content"][0]["top_logprobs"], list) and "top_logprobs" not in logprobs
        rater = s.scalar(select(Rater).where(Rater.name == "base"))
        assert rater.kind == "llm" and rater.config["backend"] == "openai-completions" and "system" not in rater.config
        assert s.scalar(select(Job.kind).where(Job.id == report.job_id)) == "rate:openai-completions"
    stats = server.stats()
    assert stats["completion_requests"] == len(WORDS) and stats["chat_requests"] == 0
    assert run_rater(engine, loaded, "base", backoff_base=FAST).job_id is None  # resumes: nothing left
    assert SECRET not in all_text_in_store(engine)
    engine.dispose()


def test_greedy_parsed_and_samples_read_the_text(tmp_path, db_url, server):
    raters = {
        "greedy": {**BASE, "readout": "greedy"},
        "parsed": {**BASE, "readout": "parsed"},
        "samples": {**BASE, "readout": "samples", "samples": 8},
    }
    engine, loaded = setup_store(tmp_path, db_url, server, raters, words=WORDS[:12])
    for name in raters:
        assert run_rater(engine, loaded, name, backoff_base=FAST).counts["rated"] == 12
    for name in ("greedy", "parsed"):
        for word, (_, value, mass, _, dist, answer) in ratings_by_word(engine, name).items():
            assert value == int(reference_mode(word)) and answer == reference_mode(word) and dist is None
    samples = ratings_by_word(engine, "samples")
    assert all(1 <= row[1] <= 7 for row in samples.values())
    assert any(row[1] != int(reference_mode(w)) for w, row in samples.items())  # sampled, not the mode
    with Session(engine) as s:
        bodies = [c.request for c in s.scalars(select(Call))]
    assert {b.get("n") for b in bodies} == {None, 8} and all("logprobs" not in b for b in bodies)
    assert {b["temperature"] for b in bodies if b.get("n") == 8} == {1.0}
    engine.dispose()


def test_faults_are_retried_and_failures_kept_for_the_next_run(tmp_path, db_url, server):
    engine, loaded = setup_store(tmp_path, db_url, server, {"base": {**BASE, "max_retries": 2}}, words=WORDS[:10])
    server.set_faults({
        "word000": ["500", "429"],            # retried, then answered
        "word001": "always:no_logprobs",     # never gives logprobs: failed
        "word002": "always:bad_logprob",     # logprobs that are not numbers: failed, not a crash
        "word003": "always:non_numeric",     # an answer with no rating in it: kept, with its reason
    })  # fmt: skip
    report = run_rater(engine, loaded, "base", backoff_base=FAST)
    assert report.status == "partial" and report.failed == 2
    assert report.counts["rated"] == 7 and report.counts["unreadable"] == 1
    assert {f["item"] for f in report.counts["failures"]} == {"word001", "word002"}
    assert server.stats()["attempts"]["word000"] == 3
    got = ratings_by_word(engine, "base")
    assert got["word000"][1] == pytest.approx(reference_expected("word000"))
    assert got["word003"][1] is None and "no scale point" in got["word003"][3]
    server.reset()
    again = run_rater(engine, loaded, "base", backoff_base=FAST)  # the failed items, and only they, again
    assert again.requested == 2 and again.counts["rated"] == 2 and again.status == "completed"
    engine.dispose()


def test_dry_run_estimates_prompt_tokens_and_cost(tmp_path, db_url, server):
    raters = {"base": dict(BASE), "priced": {**BASE, "price": {"input": 1.0, "output": 2.0}}}
    engine, loaded = setup_store(tmp_path, db_url, server, raters)
    unknown = run_rater(engine, loaded, "base", dry_run=True)
    assert unknown.requests == len(WORDS) and unknown.estimated_tokens[0] > 10 * len(WORDS)
    assert unknown.price_known is False
    priced = run_rater(engine, loaded, "priced", dry_run=True)
    prompt_tokens, completion_tokens = priced.estimated_tokens
    assert completion_tokens == 1 * len(WORDS)  # the expected read-out asks for the one token it reads
    assert priced.estimated_cost == pytest.approx((prompt_tokens * 1.0 + completion_tokens * 2.0) / 1e6)
    assert server.stats()["requests"] == 0
    engine.dispose()


def test_an_option_the_backend_does_not_take_is_named(tmp_path, server):
    path = write_study(tmp_path, "sqlite:///x.db", server, {"base": {**BASE, "system": "You rate words."}})
    with pytest.raises(WorkbenchError, match=r"raters\.base\.system: the openai-completions backend does not take this option"):
        load_study(path)
    path = write_study(tmp_path, "sqlite:///x.db", server, {"base": {**BASE, "backend": "openai-completion"}})
    with pytest.raises(WorkbenchError, match="unknown backend 'openai-completion'. Did you mean 'openai-completions'"):
        load_study(path)


def test_a_run_whose_answers_miss_the_scale_tokens_names_the_likely_cause(tmp_path, db_url, monkeypatch):
    """Most answers with little mass on the scale's tokens: the summary gives the share and the likely cause
    (for a text prompt, its ending without the space; for chat, the template). A healthy run says nothing
    (test_expected_values_from_the_first_tokens_top_logprobs)."""
    from workbench.cli.display import describe

    monkeypatch.setenv(KEY_ENV, SECRET)
    spaced = 'Rate the word from 1 to 7.\nWord: "{item}"\nRating: '
    raters = {
        "text": dict(BASE),  # the default prompt ends with "Rating:"
        "spaced": {**BASE, "prompt": spaced},
        "chat": {"backend": "openai", "model": "gpt-4o-mini"},
    }
    words = WORDS[:6]
    with OpenAIServer(latency=0, off_scale_mass=0.8, completions_logprobs="llama.cpp") as server:
        engine, loaded = setup_store(tmp_path, db_url, server, raters, words=words)
        reports = {name: run_rater(engine, loaded, name, backoff_base=FAST) for name in raters}
    for report in reports.values():
        assert report.counts["rated"] == len(words) and report.counts["low_mass"] == len(words)
        assert report.counts["mass_read"] == report.counts["mass_low"] == len(words)
        assert len(report.notes) == 1
        assert report.notes[0].startswith(f"{len(words)} of {len(words)} answers (100%) put less than 50% of their probability")
    assert "ends with 'Rating:', without the space before the answer" in reports["text"].notes[0]
    assert "'Rating: '" in reports["text"].notes[0]
    assert "space" not in reports["spaced"].notes[0] and "few_shot" in reports["spaced"].notes[0]
    assert "chat template" in reports["chat"].notes[0]
    assert reports["text"].notes[0] in "\n".join(describe(reports["text"])).replace("\n  ", "\n")
    with Session(engine) as s:
        counts = s.scalar(select(Job.counts).where(Job.id == reports["text"].job_id))
    assert counts["mass_read"] == counts["mass_low"] == len(words)
    engine.dispose()


def test_low_mass_note_counts_only_a_majority():
    from workbench.jobs.runner import low_mass_note

    assert low_mass_note({"mass_read": 10, "mass_low": 5}, 0.5, "cause") is None  # half is not most
    assert low_mass_note({"mass_read": 10, "mass_low": 6}, 0.5, "cause") == (
        "6 of 10 answers (60%) put less than 50% of their probability on the scale's tokens: cause."
    )
    assert low_mass_note({}, 0.5, "cause") is None  # a job counted before these counts existed, or no logprobs
    assert low_mass_note({"mass_read": 3, "mass_low": 3}, 0.25, None).endswith("less than 25% of their probability on the scale's tokens.")
