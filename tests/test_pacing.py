"""Pacing under rate limits: the pacer against the test server's enforced sliding window.

The server counts requests over a sliding window and answers 429 beyond the
limit, with OpenAI's x-ratelimit-* headers. The window is shortened to a
second or two here (and the pacer's period with it) so a test sees several
windows; the pacer's 2% headroom is then two requests, not the 60 it is in a
real minute at 3,000 rpm.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from workbench.raters.openai.pacing import Bucket, Pacer, parse_duration

OPENAI_SERVER = {"latency": 0.02}  # `server` (tests/conftest.py) lifts each test's rate limit
COST = 3  # tokens the server counts for one of these requests: 5 prompt characters // 4 + 1, plus max_tokens 1


async def _hammer(url: str, n: int, concurrency: int, pacer: Pacer | None) -> tuple[int, int, float]:
    """Send n chat requests with `concurrency` workers; (ok, 429s, seconds). A 429 is retried after the pacer's hold."""
    body = lambda i: json.dumps({"model": "m", "messages": [{"role": "user", "content": f'"{i:03d}"'}], "max_tokens": 1})  # noqa: E731
    queue = list(range(n))
    ok = throttled = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, throttled
        while queue:
            i = queue.pop()
            while True:
                if pacer:
                    await pacer.acquire(COST)
                async with session.post(url + "/v1/chat/completions", data=body(i)) as response:
                    await response.read()
                    headers = {k.lower(): v for k, v in response.headers.items()}
                if pacer:
                    retry = float(headers["retry-after-ms"]) / 1000 if "retry-after-ms" in headers else None
                    pacer.done(COST, headers, throttled=response.status == 429, retry_after=retry)
                if response.status == 200:
                    ok += 1
                    break
                throttled += 1
                if not pacer:
                    await asyncio.sleep(0.05)

    start = time.perf_counter()
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ok, throttled, time.perf_counter() - start


def test_unpaced_workers_hit_the_limit_over_and_over(server):
    server.set_rate_limit(rpm=40, window=1.0)
    ok, throttled, _ = asyncio.run(_hammer(server.url, 80, 16, None))
    assert ok == 80 and throttled > 40  # the storm the pacer prevents


def test_a_declared_limit_runs_at_the_limit_without_a_429(server):
    server.set_rate_limit(rpm=100, window=2.0)  # 50 per second, over a 2 s sliding window
    pacer = Pacer(rpm=100, period=2.0)
    ok, throttled, seconds = asyncio.run(_hammer(server.url, 200, 16, pacer))
    # the 2% headroom is 2 requests in a 2 s window: on a loaded machine the server's thread may see a
    # stray pair arrive bunched; at a minute's scale it is 60 (bench/bench_ratelimit.py: 0 of 6,000)
    assert ok == 200 and throttled <= 2 and server.stats()["rate_limited"] == throttled
    assert 200 / seconds >= 0.85 * 50  # at the limit, not far below it
    assert seconds >= 2.0  # and not above it: 200 requests, 100 per 2 s, less the first window's allowance


def test_with_nothing_declared_the_headers_set_the_pace(server):
    server.set_rate_limit(rpm=40, window=1.0)
    pacer = Pacer(period=1.0)
    ok, throttled, seconds = asyncio.run(_hammer(server.url, 120, 16, pacer))
    assert ok == 120 and pacer.announced["requests"] == 40
    assert throttled <= 2  # only the first burst, sent before any answer told the limit, can overshoot
    assert 120 / seconds >= 0.8 * 40


def test_a_limit_on_tokens_paces_by_the_token_estimate(server):
    server.set_rate_limit(tpm=100 * COST, window=3.0)  # 100 requests per 3 s
    pacer = Pacer(tpm=100 * COST, period=3.0)
    ok, throttled, seconds = asyncio.run(_hammer(server.url, 150, 8, pacer))
    assert ok == 150 and throttled == 0 and seconds >= 4.0


def test_a_429_with_no_limit_known_holds_everyone_and_slows_to_what_was_answered():
    now = [0.0]
    pacer = Pacer(clock=lambda: now[0])
    for _ in range(100):  # 100 answers in 10 s
        asyncio.run(pacer.acquire())
        now[0] += 0.1
        pacer.done(0, {})
    pacer.done(0, {}, throttled=True, retry_after=2.0)
    assert pacer.hold_until == pytest.approx(12.0)
    assert pacer.per_minute("requests") == pytest.approx(0.9 * 600, rel=0.02)
    assert pacer.throttled_count == 1


def test_remaining_below_what_is_in_flight_puts_the_bucket_in_debt():
    now = [0.0]
    pacer = Pacer(rpm=600, clock=lambda: now[0])  # 9.8 per second after headroom
    for _ in range(3):
        asyncio.run(pacer.acquire())
    pacer.done(0, {"x-ratelimit-remaining-requests": "0"})  # two still out, none left
    bucket = pacer.buckets["requests"]
    assert bucket.level == pytest.approx(-2.0)
    assert bucket.delay(now[0]) == pytest.approx(2 / (600 / 60 * 0.98))


def test_bucket_holds_at_most_one_percent_of_a_period():
    b = Bucket(50.0, now=0.0, period=60.0)
    assert b.capacity == 30.0 and b.level == 30.0
    b = Bucket(40.0, now=0.0)
    b.level = -5
    assert b.delay(0.0) == pytest.approx(0.125)
    assert b.delay(10.0) == 0.0 and b.level == 24.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("17ms", 0.017),
     ("2m30.5s", 150.5), ("", None), ("soon", None), ("1x", None), ("-1", None), (None, None)],
)  # fmt: skip
def test_reset_durations_in_openai_formats(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_with_no_limit_known_an_exhausted_remaining_holds_until_the_reset():
    now = [0.0]
    pacer = Pacer(clock=lambda: now[0])
    asyncio.run(pacer.acquire())
    pacer.done(0, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"})
    assert pacer.hold_until == pytest.approx(1.5) and pacer.buckets["requests"] is None
    pacer.done(0, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"})
    assert pacer.hold_until == pytest.approx(60.0)  # held at most a minute at a time
