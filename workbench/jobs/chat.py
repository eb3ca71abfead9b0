"""Rating items through an OpenAI-compatible chat completions server, many requests at a time.

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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.jobs.writer import JobWriter, Outcome
from workbench.raters.config import ResolvedRater
from workbench.raters.openai_chat import BadResponse, read_rating, request_body, usage_of

MAX_RETRY_AFTER = 120.0


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


async def rate_one(client: Any, resolved: ResolvedRater, item_id: int, text: str, policy: RetryPolicy) -> Outcome:
    """One item, with retries; never raises except when the key is refused."""
    import openai

    body = request_body(resolved, text)
    outcome = Outcome(item_id, None)
    last_error = "no attempt"
    for attempt in range(1, policy.max_retries + 2):
        start = time.perf_counter()
        wait: float | None = None
        try:
            raw = await client.chat.completions.with_raw_response.create(**body, timeout=policy.timeout)
            http = raw.http_response
            payload = http.text
            latency = time.perf_counter() - start
            try:
                data = json.loads(payload)
            except ValueError:
                raise BadResponse(f"the response is not valid JSON: {payload[:80]!r}") from None
            usage = usage_of(data)
            outcome.prompt_tokens += usage[0]
            outcome.completion_tokens += usage[1]
            readout = read_rating(resolved, data)
            outcome.calls.append(_call_row(attempt, body, status="ok", http_status=http.status_code, latency=latency, response=payload, usage=usage))
            outcome.readout = readout
            return outcome
        except BadResponse as exc:
            last_error, code, response = str(exc), 200, payload
        except openai.RateLimitError as exc:
            last_error, code, response = "rate limited (HTTP 429)", 429, exc.response.text
            wait = retry_after(exc.response.headers)
        except openai.APITimeoutError:
            last_error, code, response = f"no response within {policy.timeout:g} s", None, None
        except openai.APIConnectionError as exc:
            last_error, code, response = f"connection failed: {exc.__class__.__name__}", None, None
        except openai.APIStatusError as exc:
            code, response = exc.status_code, exc.response.text
            if code in (401, 403):
                raise KeyRefused(
                    f"the server refused the API key in ${resolved.spec.api_key_env} (HTTP {code}): check the key and its permissions."
                ) from None
            last_error = f"HTTP {code}: {_error_message(response)}"
            if code < 500 and code not in (408, 409):
                outcome.calls.append(_call_row(attempt, body, status="error", http_status=code, latency=time.perf_counter() - start, response=response, error=last_error))
                break  # the request itself is wrong: retrying cannot help
        outcome.calls.append(_call_row(attempt, body, status="error", http_status=code, latency=time.perf_counter() - start, response=response, error=last_error))
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
    client: Any,
    resolved: ResolvedRater,
    items: list[tuple[int, str]],
    writer: JobWriter,
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
            outcome = await rate_one(client, resolved, item_id, text, policy)
            writer.add(outcome)
            if on_progress:
                on_progress(writer.done)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(items)) or 1)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
