"""Rating items through an OpenAI-compatible server (chat or text completions), many requests at a time.

``concurrency`` workers share a queue of items and one pacer (raters/openai/pacing.py:
the rater's ``rpm``/``tpm`` and the server's x-ratelimit-* headers; a 429 holds
every worker for its Retry-After). Each request has its own timeout; a 5xx, a
timeout, a dropped connection or a response a rating cannot be read from (not
JSON, logprobs of any wrong shape) is retried with exponential backoff and
jitter, up to ``max_retries``; then the item is recorded as failed with its
reason (a later run tries it again). An answer that holds no rating ("banana")
is a result, kept with its reason, not retried; so is an empty answer with no
logprobs. A refused key stops the whole job. Every attempt is logged.

Every response enters through :func:`receive`, which redacts the key (and any
``Bearer`` token) from the body, its parsed values and the headers before
anything reads, logs or stores them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.raters.backend import Outcome, ResolvedRater, RunJob, Writer
from workbench.raters.openai.pacing import Pacer
from workbench.raters.openai.wire import (
    MAX_RESPONSE,
    Answer,
    KeyRefused,
    api_key,
    org_headers,
    read_capped,
    receive,
    redactor_for,
    refused_message,
)
from workbench.raters.pricing import estimate_tokens
from workbench.raters.readout import Readout, Refusal
from workbench.redact import Redactor

MAX_RETRY_AFTER = 120.0
DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    timeout: float = 60.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^(attempt-1), capped, times a random factor in [0.5, 1)."""
        return min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class BadResponse(Exception):
    """The server answered, but not with something a rating can be read from (retried)."""


Reader = Callable[[dict[str, Any]], Readout]  # a response -> its rating; raises BadResponse


def usage_of(response: dict[str, Any]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait (retry-after-ms or retry-after), or None."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(value) * scale))
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


def _call_row(
    attempt: int,
    body: dict,
    *,
    status: str,
    http_status: int | None,
    latency: float,
    response: str | None = None,
    error: str | None = None,
    usage: tuple[int, int] = (0, 0),
) -> dict:
    return {
        "attempt": attempt, "status": status, "http_status": http_status, "error": error,
        "request": body, "response": response, "latency_ms": round(latency * 1000, 2),
        "prompt_tokens": usage[0] or None, "completion_tokens": usage[1] or None,
    }  # fmt: skip


class ChatClient:
    """A minimal async client for POST {base_url}/chat/completions (or another path), the documented HTTP API.

    The official ``openai`` client costs about 1.7 ms of CPU per call, which caps
    one process at a few hundred requests a second; this path costs a tenth of
    that, so 64 requests in flight keep a 50 ms server busy. Files and batches
    go through the official client (backends/openai_batch.py).
    """

    def __init__(self, base_url: str | None, key: str, *, concurrency: int, path: str = "/chat/completions",
                 key_env: str = "OPENAI_API_KEY", redact: Redactor | None = None) -> None:  # fmt: skip
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + path
        self.key_env = key_env
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.headers.update(org_headers())
        self.redact = redact or redactor_for(key)
        self.concurrency = concurrency
        self.session: Any = None

    async def __aenter__(self) -> ChatClient:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        self.session = aiohttp.ClientSession(connector=connector, headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def post(self, body: dict[str, Any], timeout: float) -> Answer:
        """The server's answer, redacted; raises TimeoutError or aiohttp.ClientError."""
        import aiohttp

        async with self.session.post(
            self.url, data=json.dumps(body, ensure_ascii=False).encode(), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw, cut = await read_capped(response.content, MAX_RESPONSE)
            return receive(response.status, raw, response.headers, self.redact, cut=cut)


def request_tokens(body: dict[str, Any]) -> int:
    """Tokens a server counts against a tokens-per-minute limit when it admits the request: the prompt
    (estimated) plus max_tokens for each answer, as OpenAI counts them."""
    if "messages" in body:
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in body["messages"])
    else:
        prompt = estimate_tokens(str(body.get("prompt") or ""))
    return prompt + int(body.get("max_tokens") or 16) * int(body.get("n") or 1)


def read_answer(data: Any, read: Reader) -> tuple[Readout, tuple[int, int]]:
    """(rating, usage) from a 200 answer's JSON. An empty answer with no logprobs is a result (the model
    returned nothing: asking again gives the same); anything else a rating cannot be read from, whatever
    its shape (a logprob "abc", null, a missing field, a wrong type), is a BadResponse, never a crash."""
    if not isinstance(data, dict):
        raise BadResponse("the response is not a JSON object")
    try:
        usage = usage_of(data)
    except (TypeError, ValueError):
        usage = (0, 0)
    refusal = _refusal(data)
    if refusal is not None:
        return refusal, usage
    if _is_empty(data):
        return EMPTY_ANSWER, usage
    try:
        return read(data), usage
    except BadResponse:
        raise
    except (WorkbenchError, TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise BadResponse(f"the response's logprobs or answer are malformed: {' '.join(str(exc).split())[:160]}") from None


EMPTY_ANSWER = Readout(
    value=None, distribution=None, mass=None, low_mass=False, answer="",
    reason="the model returned nothing: an empty answer with no logprobs (does the model have a chat template?)",
)  # fmt: skip


def _refusal(data: dict[str, Any]) -> Refusal | None:
    """A refusal: the first choice answered nothing and carries a ``refusal`` text (the model declined), or
    was stopped by the server's content filter (``finish_reason: content_filter``)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else None
    answer = message.get("content") if message is not None else choice.get("text")
    if answer not in (None, ""):
        return None
    refusal = message.get("refusal") if message is not None else None
    if isinstance(refusal, str) and refusal.strip():
        text = " ".join(refusal.split())
        return Refusal(value=None, answer=text[:500], reason=f"the model refused to answer: {text[:200]}")
    if choice.get("finish_reason") == "content_filter":
        return Refusal(value=None, answer="", reason="the server's content filter stopped the answer (finish_reason: content_filter)")
    return None


def _is_empty(data: dict[str, Any]) -> bool:
    """Every choice answered nothing ("" or null) and carries no logprobs."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("logprobs"):
            return False
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if text not in (None, ""):
            return False
    return True


async def rate_one(client: ChatClient, item_id: int, body: dict[str, Any], read: Reader, policy: RetryPolicy,
                   pacer: Pacer | None = None) -> Outcome:  # fmt: skip
    """One item, with retries; never raises except when the key is refused."""
    import aiohttp

    outcome = Outcome(item_id, None)
    last_error = "no attempt"
    tokens = request_tokens(body)
    for attempt in range(1, policy.max_retries + 2):
        if pacer is not None:
            await pacer.acquire(tokens)
        start = time.perf_counter()
        wait: float | None = None
        code: int | None = None
        answer: Answer | None = None
        permanent = False  # the request itself is wrong: retrying cannot help
        try:
            answer = await client.post(body, policy.timeout)
            code = answer.status
            if pacer is not None:
                if code == 429:
                    wait = retry_after(answer.headers)
                pacer.done(tokens, answer.headers, throttled=code == 429, retry_after=wait)
            if answer.cut:
                raise BadResponse(f"the response is larger than {MAX_RESPONSE >> 20} MiB: only its start was read (and kept)")
            if code == 200:
                if answer.data is None:
                    raise BadResponse(f"the response is not valid JSON: {answer.text[:80]!r}")
                readout, usage = read_answer(answer.data, read)
                outcome.prompt_tokens += usage[0]
                outcome.completion_tokens += usage[1]
                latency = time.perf_counter() - start
                outcome.calls.append(
                    _call_row(attempt, body, status="ok", http_status=code, latency=latency, response=answer.text, usage=usage)
                )
                outcome.readout = readout
                return outcome
            if code in (401, 403):
                raise KeyRefused(refused_message(client.key_env, code))
            if code == 429:
                last_error = "rate limited (HTTP 429)"
                wait = 0.0 if pacer is not None else retry_after(answer.headers)  # the pacer holds every worker
            else:
                last_error = f"HTTP {code}: {_error_message(answer)}"
                permanent = code < 500 and code not in (408, 409)
        except BadResponse as exc:
            last_error = str(exc)
        except TimeoutError:
            last_error = f"no response within {policy.timeout:g} s"
        except aiohttp.ClientError as exc:
            last_error = f"connection failed: {exc.__class__.__name__}"
        if pacer is not None and answer is None:
            pacer.done(tokens, None)
        response = answer.text if answer is not None else None
        outcome.calls.append(
            _call_row(
                attempt, body, status="error", http_status=code, latency=time.perf_counter() - start, response=response, error=last_error
            )
        )
        if permanent:
            break
        if attempt <= policy.max_retries:
            await asyncio.sleep(wait if wait is not None else policy.backoff(attempt))
    else:
        last_error += f" (after {policy.max_retries + 1} attempts)"
    outcome.error = last_error
    return outcome


def _error_message(answer: Answer) -> str:
    data = answer.data
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and data["error"].get("message") is not None:
        return " ".join(str(data["error"]["message"]).split())[:200]
    return " ".join(answer.text.split())[:200] or "no message"


async def rate_all(
    client: ChatClient,
    items: list[tuple[int, str]],
    body_of: Callable[[str], dict[str, Any]],
    read: Reader,
    writer: Writer,
    policy: RetryPolicy,
    *,
    concurrency: int,
    on_progress: Callable[[int], None] | None = None,
    pacer: Pacer | None = None,
) -> None:
    """Rate every item with ``concurrency`` requests in flight; results go to the writer as they come."""
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for entry in items:
        queue.put_nowait(entry)

    async def worker() -> None:
        while True:
            try:
                item_id, text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcome = await rate_one(client, item_id, body_of(text), read, policy, pacer)
            writer.add(outcome)
            if on_progress:
                on_progress(writer.done)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(items)) or 1)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


def run_requests(
    rater: ResolvedRater, texts: dict[int, str], job: RunJob, *, path: str, body_of: Callable[[str], dict[str, Any]], read: Reader
) -> str:
    """Rate the items through POST {base_url}{path}: one request per item, ``concurrency`` in flight.

    The rater's options give the server (base_url, api_key_env), how the job
    runs (concurrency, timeout, max_retries) and the server's limits (rpm, tpm).
    Before the first request, the model name is checked where the server
    lists its models.
    """
    spec = rater.spec
    policy = RetryPolicy(max_retries=spec.max_retries, timeout=spec.timeout, backoff_base=job.backoff_base)
    key = api_key(rater)
    redact = redactor_for(key)
    check_model_name(rater, key, redact)
    pacer = Pacer(rpm=getattr(spec, "rpm", None), tpm=getattr(spec, "tpm", None))

    async def main() -> None:
        async with ChatClient(spec.base_url, key, concurrency=spec.concurrency, path=path, key_env=spec.api_key_env,
                              redact=redact) as client:  # fmt: skip
            await rate_all(client, list(texts.items()), body_of, read, job.writer, policy,
                           concurrency=spec.concurrency, on_progress=job.progress, pacer=pacer)  # fmt: skip

    asyncio.run(main())
    return "completed" if job.writer.counts["failed"] == 0 else "partial"


def check_model_name(rater: ResolvedRater, key: str, redact: Redactor) -> str:
    """Where the server lists its models, refuse a model name it does not list; returns a line saying what was found."""
    from workbench.raters.openai.model_check import KeyRefusedOnList, check_model, list_models

    spec = rater.spec
    try:
        listed = list_models(spec.base_url, key, timeout=spec.timeout, redact=redact, headers=org_headers())
    except KeyRefusedOnList as exc:
        raise KeyRefused(refused_message(spec.api_key_env, exc.code)) from None
    return check_model(spec.model, listed, rater=rater.name, base_url=spec.base_url)
