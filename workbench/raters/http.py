"""Rating items through an OpenAI-compatible server (chat or text completions), many requests at a time.

``concurrency`` workers share a queue of items. Each request has its own
timeout; a 429 waits for the server's Retry-After (else backs off), a 5xx, a
timeout, a dropped connection or a response a rating cannot be read from is
retried with exponential backoff and jitter, up to ``max_retries``; then the
item is recorded as failed with its reason (a later run tries it again). An
answer that holds no rating ("banana") is a result, kept with its reason, not
retried. A refused key stops the whole job. Every attempt is logged.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.raters.backend import Outcome, RunJob, Writer
from workbench.raters.config import ResolvedRater
from workbench.raters.readout import Readout

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


class KeyRefused(WorkbenchError):
    pass


class BadResponse(Exception):
    """The server answered, but not with something a rating can be read from (retried)."""


Reader = Callable[[dict[str, Any]], Readout]  # a response -> its rating; raises BadResponse


def usage_of(response: dict[str, Any]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def api_key(rater: ResolvedRater) -> str:
    """The API key from the environment variable the rater names; a clear error when unset."""
    env = rater.spec.api_key_env
    key = os.environ.get(env)
    if not key:
        where = rater.spec.base_url or "OpenAI"
        raise WorkbenchError(f"raters.{rater.name}: set the environment variable {env} to the API key for {where}.")
    return key


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


def _call_row(attempt: int, body: dict, *, status: str, http_status: int | None, latency: float,
              response: str | None = None, error: str | None = None, usage: tuple[int, int] = (0, 0)) -> dict:
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
    go through the official client (jobs/batch.py).
    """

    def __init__(self, base_url: str | None, key: str, *, concurrency: int, path: str = "/chat/completions",
                 key_env: str = "OPENAI_API_KEY") -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + path
        self.key_env = key_env
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for env, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(env):
                self.headers[header] = os.environ[env]
        self.concurrency = concurrency
        self.session: Any = None

    async def __aenter__(self) -> ChatClient:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        self.session = aiohttp.ClientSession(connector=connector, headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def post(self, body: dict[str, Any], timeout: float) -> tuple[int, str, Any]:
        """(status, body text, headers); raises TimeoutError or aiohttp.ClientError."""
        import aiohttp

        async with self.session.post(
            self.url, data=json.dumps(body, ensure_ascii=False).encode(), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            return response.status, await response.text(), response.headers


async def rate_one(client: ChatClient, item_id: int, body: dict[str, Any], read: Reader, policy: RetryPolicy) -> Outcome:
    """One item, with retries; never raises except when the key is refused."""
    import aiohttp

    outcome = Outcome(item_id, None)
    last_error = "no attempt"
    for attempt in range(1, policy.max_retries + 2):
        start = time.perf_counter()
        wait: float | None = None
        code: int | None = None
        payload: str | None = None
        permanent = False  # the request itself is wrong: retrying cannot help
        try:
            code, payload, headers = await client.post(body, policy.timeout)
            if code == 200:
                try:
                    data = json.loads(payload)
                except ValueError:
                    raise BadResponse(f"the response is not valid JSON: {payload[:80]!r}") from None
                usage = usage_of(data)
                outcome.prompt_tokens += usage[0]
                outcome.completion_tokens += usage[1]
                readout = read(data)
                latency = time.perf_counter() - start
                outcome.calls.append(_call_row(attempt, body, status="ok", http_status=code, latency=latency, response=payload, usage=usage))
                outcome.readout = readout
                return outcome
            if code in (401, 403):
                raise KeyRefused(
                    f"the server refused the API key in ${client.key_env} (HTTP {code}): check the key and its permissions."
                )
            if code == 429:
                last_error, wait = "rate limited (HTTP 429)", retry_after(headers)
            else:
                last_error = f"HTTP {code}: {_error_message(payload)}"
                permanent = code < 500 and code not in (408, 409)
        except BadResponse as exc:
            last_error = str(exc)
        except (TimeoutError, asyncio.TimeoutError):
            last_error = f"no response within {policy.timeout:g} s"
        except aiohttp.ClientError as exc:
            last_error = f"connection failed: {exc.__class__.__name__}"
        outcome.calls.append(_call_row(attempt, body, status="error", http_status=code, latency=time.perf_counter() - start, response=payload, error=last_error))
        if permanent:
            break
        if attempt <= policy.max_retries:
            await asyncio.sleep(wait if wait is not None else policy.backoff(attempt))
    else:
        last_error += f" (after {policy.max_retries + 1} attempts)"
    outcome.error = last_error
    return outcome


def _error_message(text: str | None) -> str:
    try:
        return str(json.loads(text or "")["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return (text or "").strip()[:200] or "no message"


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
            outcome = await rate_one(client, item_id, body_of(text), read, policy)
            writer.add(outcome)
            if on_progress:
                on_progress(writer.done)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(items)) or 1)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


def run_requests(rater: ResolvedRater, texts: dict[int, str], job: RunJob, *, path: str,
                 body_of: Callable[[str], dict[str, Any]], read: Reader) -> str:
    """Rate the items through POST {base_url}{path}: one request per item, ``concurrency`` in flight.

    The rater's options give the server (base_url, api_key_env) and how the job
    runs (concurrency, timeout, max_retries).
    """
    spec = rater.spec
    policy = RetryPolicy(max_retries=spec.max_retries, timeout=spec.timeout, backoff_base=job.backoff_base)
    key = api_key(rater)

    async def main() -> None:
        async with ChatClient(spec.base_url, key, concurrency=spec.concurrency, path=path, key_env=spec.api_key_env) as client:
            await rate_all(client, list(texts.items()), body_of, read, job.writer, policy,
                           concurrency=spec.concurrency, on_progress=job.progress)  # fmt: skip

    asyncio.run(main())
    return "completed" if job.writer.counts["failed"] == 0 else "partial"
