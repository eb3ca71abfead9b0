"""The OpenAI test server, exercised through the real `openai` client over HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.openai_server import (
    OpenAIServer,
    reference_distribution,
    reference_expected,
    reference_mode,
    reference_top_logprobs,
)

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["dog", "cat", "justice", "banana", "run"]


def prompt(word: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": 'Rate words from 1 to 7. Example: "apple" -> 6.'},
        {"role": "user", "content": f'How concrete is the word "{word}"? Answer with a number.'},
    ]


def rate(client: OpenAI, word: str, **kwargs):
    return client.chat.completions.create(model="gpt-test", messages=prompt(word), **kwargs)


OPENAI_SERVER = {"batch_seconds": 0.2}  # `server`: tests/conftest.py


@pytest.fixture
def client(server):
    with OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        yield client


# ------------------------------------------------------------------ the reference model


def test_reference_distribution_is_a_peaked_distribution():
    for word in WORDS:
        dist = reference_distribution(word)
        assert list(dist) == [str(k) for k in range(1, 8)]
        assert math.isclose(sum(dist.values()), 1.0)
        assert min(dist.values()) > 0
        assert dist[reference_mode(word)] == pytest.approx(0.55)
        assert 1 <= reference_expected(word) <= 7
    assert math.isclose(sum(reference_distribution("x", (1, 2)).values()), 1.0)


def test_reference_top_logprobs_split_scale_and_off_scale_mass():
    tokens = dict(reference_top_logprobs("dog", off_scale_mass=0.1))
    dist = reference_distribution("dog")
    assert math.exp(tokens["The"]) == pytest.approx(0.1)
    for label, p in dist.items():
        assert math.exp(tokens[label]) == pytest.approx(0.9 * 0.8 * p)
        assert math.exp(tokens[" " + label]) == pytest.approx(0.9 * 0.2 * p)


# ------------------------------------------------------------------ chat completions


def test_completion_without_logprobs(client):
    completion = rate(client, "dog")
    choice = completion.choices[0]
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert choice.message.role == "assistant"
    assert choice.message.content == reference_mode("dog")
    assert choice.logprobs is None
    assert choice.finish_reason == "stop"
    text = "".join(m["content"] for m in prompt("dog"))
    assert completion.usage.prompt_tokens == len(text) // 4 + 1
    assert completion.usage.completion_tokens == 1


def test_completion_with_logprobs_matches_reference(client, server):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=prompt("justice"), logprobs=True, top_logprobs=20, max_tokens=1
    )
    assert raw.headers["content-type"] == "application/json"
    assert json.loads(raw.http_response.text)["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    first = raw.parse().choices[0].logprobs.content[0]
    expected = reference_top_logprobs("justice", off_scale_mass=0.02)
    assert [t.token for t in first.top_logprobs] == [token for token, _ in expected]
    assert [t.logprob for t in first.top_logprobs] == pytest.approx([logprob for _, logprob in expected])
    assert first.token == reference_mode("justice")
    assert sum(math.exp(t.logprob) for t in first.top_logprobs) == pytest.approx(1.0)
    assert server.stats()["chat_ok"] == 1


def test_top_logprobs_are_truncated(client):
    top = rate(client, "cat", logprobs=True, top_logprobs=3).choices[0].logprobs.content[0].top_logprobs
    assert [t.token for t in top] == [t for t, _ in reference_top_logprobs("cat")[:3]]
    assert rate(client, "cat", logprobs=True).choices[0].logprobs.content[0].top_logprobs == []


def test_word_falls_back_to_the_whole_message(client):
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "  moon \n"}])
    assert completion.choices[0].message.content == reference_mode("moon")


def test_n_choices_sample_reproducibly_with_temperature(client, server):
    def labels(temperature: float) -> list[str]:
        completion = rate(client, "run", n=40, temperature=temperature)
        assert completion.usage.completion_tokens == 40
        return [c.message.content for c in completion.choices]

    assert labels(0) == [reference_mode("run")] * 40
    server.reset()
    sampled = labels(1.0)
    assert len(set(sampled)) > 1 and set(sampled) <= set(reference_distribution("run"))
    server.reset()
    assert labels(1.0) == sampled


def test_undocumented_fields_are_ignored_and_malformed_requests_get_400(client):
    assert rate(client, "dog", extra_body={"frobnicate": {"x": 1}}).choices
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=[])
    assert info.value.param == "messages"
    assert info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        rate(client, "dog", top_logprobs=99, logprobs=True)


def test_authentication():
    with OpenAIServer(api_key="secret") as server:
        with pytest.raises(openai.AuthenticationError) as info:
            rate(OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0), "dog")
        assert info.value.code == "invalid_api_key"
        request = urllib.request.Request(server.base_url + "/chat/completions", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as http_info:
            urllib.request.urlopen(request)
        assert http_info.value.code == 401
        assert set(json.loads(http_info.value.read())["error"]) == {"message", "type", "param", "code"}
        assert rate(OpenAI(base_url=server.base_url, api_key="secret", max_retries=0), "dog").choices


def test_async_client_runs_concurrently():
    words = [f"w{i}" for i in range(32)]

    async def rate_all(base_url: str) -> list[str]:
        async with AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0) as client:

            async def one(word: str) -> str:
                completion = await client.chat.completions.create(model="m", messages=prompt(word))
                return completion.choices[0].message.content

            return await asyncio.gather(*(one(w) for w in words))

    with OpenAIServer(latency=0.1) as server:
        started = time.perf_counter()
        answers = asyncio.run(rate_all(server.base_url))
        elapsed = time.perf_counter() - started
        stats = server.stats()
    assert answers == [reference_mode(w) for w in words]
    assert elapsed < 1.5  # 32 sequential calls would take 3.2 s
    assert stats["max_in_flight"] > 8 and stats["chat_ok"] == 32


# ------------------------------------------------------------------ faults


def test_fault_scripts_are_consumed_per_attempt(client, server):
    server.set_faults({"dog": ["429", "500", "no_logprobs", "non_numeric"], "cat": "always:500"})
    with pytest.raises(openai.RateLimitError) as info:
        rate(client, "dog")
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.response.headers["retry-after-ms"] == "200"
    assert info.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        rate(client, "dog")
    assert rate(client, "dog", logprobs=True, top_logprobs=5).choices[0].logprobs is None
    odd = rate(client, "dog", logprobs=True, top_logprobs=20).choices[0]
    assert odd.message.content == "banana"
    assert not any(t.token.strip().isdigit() for t in odd.logprobs.content[0].top_logprobs)
    assert rate(client, "dog").choices[0].message.content == reference_mode("dog")
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            rate(client, "cat")
    stats = server.stats()
    assert stats["attempts"] == {"dog": 5, "cat": 3}
    assert stats["chat_ok"] == 3 and stats["chat_requests"] == 8


def test_malformed_body_raises(client, server):
    server.set_faults({"dog": ["malformed"]})
    raw = client.chat.completions.with_raw_response.create(model="m", messages=prompt("dog"))
    assert raw.http_response.text == '{"id": "chatcmpl-'
    server.set_faults({"dog": ["malformed"]})
    with pytest.raises(json.JSONDecodeError):  # the client does not wrap it in an openai error
        rate(client, "dog")


def test_slow_fault_times_out():
    with OpenAIServer(slow_seconds=2) as server:
        server.set_faults({"dog": ["slow"]})
        client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            rate(client, "dog")
        assert rate(client, "dog").choices[0].message.content == reference_mode("dog")


def test_unknown_fault_kind_is_rejected(server):
    with pytest.raises(ValueError, match="unknown fault"):
        server.set_faults({"dog": ["404"]})


# ------------------------------------------------------------------ files and batches


def batch_file(words: list[str]) -> bytes:
    lines = [
        {
            "custom_id": f"r-{word}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-test", "messages": prompt(word), "logprobs": True, "top_logprobs": 5},
        }
        for word in words
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def start_batch(client: OpenAI, data: bytes):
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data) and uploaded.status == "processed"
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "test"},
    )


def wait_for(client: OpenAI, batch_id: str, seen: set[str] | None = None):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if seen is not None:
            seen.add(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.01)
    raise AssertionError("batch did not finish")


def jsonl(client: OpenAI, file_id: str | None) -> dict[str, dict]:
    if file_id is None:
        return {}
    return {line["custom_id"]: line for line in map(json.loads, client.files.content(file_id).text.splitlines())}


def test_batch_happy_path_with_a_failing_line(client, server):
    server.set_faults({"cat": "always:500"})
    batch = start_batch(client, batch_file(WORDS))
    assert batch.status == "validating" and batch.metadata == {"job": "test"}
    seen: set[str] = set()
    batch = wait_for(client, batch.id, seen)
    assert batch.status == "completed" and "in_progress" in seen
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 4, "failed": 1}
    output, errors = jsonl(client, batch.output_file_id), jsonl(client, batch.error_file_id)
    assert set(output) == {f"r-{w}" for w in WORDS if w != "cat"}
    for word in ("dog", "justice"):
        line = output[f"r-{word}"]
        assert line["response"]["status_code"] == 200 and line["error"] is None
        assert line["response"]["body"]["choices"][0]["message"]["content"] == reference_mode(word)
    assert errors["r-cat"]["response"]["status_code"] == 500
    assert errors["r-cat"]["response"]["body"]["error"]["type"] == "server_error"
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"
    stats = server.stats()
    assert stats["batches_created"] == 1 and stats["files_uploaded"] == 1
    assert stats["attempts"]["cat"] == 1
    assert client.batches.list(limit=1).data[0].id == batch.id


def test_batch_expiry_keeps_partial_results(client, server):
    server.expire_batches_after(2)
    batch = wait_for(client, start_batch(client, batch_file(WORDS)).id)
    assert batch.status == "expired" and batch.expired_at
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 3}
    output, errors = jsonl(client, batch.output_file_id), jsonl(client, batch.error_file_id)
    assert list(output) == ["r-dog", "r-cat"]
    assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in errors.values())
    assert list(errors) == ["r-justice", "r-banana", "r-run"]


def test_batch_cancel_keeps_partial_results():
    words = [f"w{i}" for i in range(60)]
    with OpenAIServer(batch_seconds=1) as server:  # answers 10 lines every 0.1 s
        client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        batch = start_batch(client, batch_file(words))
        while client.batches.retrieve(batch.id).request_counts.completed == 0:
            time.sleep(0.005)
        assert client.batches.cancel(batch.id).status == "cancelling"
        batch = wait_for(client, batch.id)
        assert batch.status == "cancelled" and batch.cancelled_at
        output, errors = jsonl(client, batch.output_file_id), jsonl(client, batch.error_file_id)
        assert 0 < len(output) < 60 and len(output) + len(errors) == 60
        assert {e["error"]["code"] for e in errors.values()} == {"batch_cancelled"}
        assert batch.request_counts.completed == len(output)
        with pytest.raises(openai.ConflictError):
            client.batches.cancel(batch.id)


def test_invalid_batch_input_fails_validation(client):
    good = batch_file(["dog"])
    data = good + good + b"not json\n"
    batch = wait_for(client, start_batch(client, data).id)
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("duplicate_custom_id", 2), ("invalid_json_line", 3)]


def test_file_lifecycle(client):
    uploaded = client.files.create(file=("x.jsonl", b"abc"), purpose="batch")
    assert client.files.retrieve(uploaded.id).filename == "x.jsonl"
    assert client.files.content(uploaded.id).read() == b"abc"
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


# ------------------------------------------------------------------ as a process


def test_runs_as_a_process_and_reports_stats():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", "0", "--latency", "0.01", "--scale", "1", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = process.stdout.readline().split()
        assert ready[0] == "READY"
        client = OpenAI(base_url=ready[1] + "/v1", api_key="test", max_retries=0)
        assert rate(client, "dog").choices[0].message.content == reference_mode("dog", (1, 5))
        with urllib.request.urlopen(ready[1] + "/_stats") as response:
            assert json.loads(response.read())["chat_ok"] == 1
    finally:
        process.terminate()
        process.wait(timeout=5)


# ------------------------------------------------------------------ fault modes for hostile and capped servers


@pytest.mark.parametrize("fault", ["bad_logprob", "null_logprob", "missing_fields", "wrong_types"])
def test_broken_logprob_faults_answer_200_with_broken_logprobs(client, server, fault):
    server.set_faults({"dog": fault})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=prompt("dog"), logprobs=True, top_logprobs=5, max_tokens=1
    )
    assert raw.status_code == 200
    choice = json.loads(raw.text)["choices"][0]
    assert choice["message"]["content"] == reference_mode("dog")
    entry = choice["logprobs"]["content"][0]
    broken = {
        "bad_logprob": lambda: entry["top_logprobs"][0]["logprob"] == "abc",
        "null_logprob": lambda: all(t["logprob"] is None for t in entry["top_logprobs"]),
        "missing_fields": lambda: "logprob" not in entry and "token" not in entry["top_logprobs"][1],
        "wrong_types": lambda: entry["token"] == 5 and isinstance(entry["top_logprobs"], dict),
    }
    assert broken[fault]()
    assert server.stats()["max_tokens"] == {1: 1}


def test_empty_fault_answers_nothing_and_no_logprobs(client, server):
    server.set_faults({"dog": "empty"})
    response = rate(client, "dog", logprobs=True, top_logprobs=5)
    assert response.choices[0].message.content == "" and response.choices[0].logprobs is None


def test_echo_key_mode_puts_the_authorization_header_everywhere():
    secret = "sk-echo-1234567890"
    with OpenAIServer(echo_key=True, models=["gpt-test"], batch_seconds=0.2) as server:
        with OpenAI(base_url=server.base_url, api_key=secret, max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=prompt("dog"), logprobs=True, top_logprobs=5)
            assert secret in raw.headers["x-echo-authorization"]
            data = json.loads(raw.text)
            assert secret in data["choices"][0]["message"]["content"]
            tokens = [t["token"] for t in data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]]
            assert any(secret in t for t in tokens)
            assert secret in json.dumps(client.models.list().model_dump())
            server.set_faults({"cat": "500"})
            with pytest.raises(openai.InternalServerError) as caught:
                rate(client, "cat")
            assert secret in str(caught.value)


def test_models_listing_and_strict_model_names():
    with OpenAIServer() as silent:
        with OpenAI(base_url=silent.base_url, api_key="k", max_retries=0) as client:
            with pytest.raises(openai.NotFoundError):
                client.models.list()
    with OpenAIServer(models=["gpt-test", "other"], strict_models=True) as server:
        with OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
            assert [m.id for m in client.models.list()] == ["gpt-test", "other"]
            with pytest.raises(openai.NotFoundError, match="gpt-tset` does not exist"):
                client.chat.completions.create(model="gpt-tset", messages=prompt("dog"))
            assert rate(client, "dog").choices[0].message.content == reference_mode("dog")


def test_rate_limit_mode_enforces_a_sliding_window_and_sends_openai_headers(server):
    server.set_rate_limit(rpm=5, window=1.0)
    try:
        with OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
            seen = []
            for i in range(5):
                raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=prompt(f"w{i}"))
                seen.append(raw.headers)
            assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["4", "3", "2", "1", "0"]
            assert all(h["x-ratelimit-limit-requests"] == "5" for h in seen)
            assert seen[-1]["x-ratelimit-reset-requests"].endswith("ms")
            with pytest.raises(openai.RateLimitError) as caught:
                rate(client, "w5")
            headers = caught.value.response.headers
            assert headers["x-ratelimit-remaining-requests"] == "0" and 0 < int(headers["retry-after-ms"]) <= 1000
            assert server.stats()["rate_limited"] == 1
            time.sleep(int(headers["retry-after-ms"]) / 1000 + 0.05)
            assert rate(client, "w6").choices[0].message.content == reference_mode("w6")
    finally:
        server.set_rate_limit(None)


def test_rate_limit_counts_tokens_the_way_openai_admits_them():
    from tests.openai_server import RateLimit, format_duration

    limit = RateLimit(tpm=100, window=60)
    assert limit.admit(60, 0.0)[0] and not limit.admit(60, 1.0)[0]
    admitted, headers, wait = limit.admit(60, 2.0)
    assert not admitted and headers["x-ratelimit-remaining-tokens"] == "40" and wait == pytest.approx(58.0)
    assert limit.admit(60, 60.5)[0]
    assert [format_duration(x) for x in (0.02, 1, 1.5, 360, 3725.25)] == ["20ms", "1s", "1.5s", "6m0s", "62m5.25s"]
