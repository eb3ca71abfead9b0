"""The chat completions request a rater sends for one item, and the rating read from the response.

Shared by the openai backend (one request per item) and the openai-batch
backend (the same bodies in a JSONL file). Bodies and responses are plain
JSON dicts: what is sent is exactly what is logged.
"""

from __future__ import annotations

import os
from typing import Any

from workbench.errors import WorkbenchError
from workbench.raters.config import ResolvedRater, effective_temperature
from workbench.raters.readout import (
    Readout,
    expected_from_top_logprobs,
    greedy_from_answer,
    mean_of_samples,
    parsed_from_answer,
    single_token_scale,
)


class BadResponse(Exception):
    """The server answered, but not with something a rating can be read from (retried)."""


def check_readout(resolved: ResolvedRater) -> None:
    """Refuse, before any request, a read-out the server cannot give for this scale."""
    if resolved.spec.readout == "expected" and not single_token_scale(resolved.points):
        lo, hi = resolved.scale
        raise WorkbenchError(
            f"raters.{resolved.name}: the expected read-out needs scale points that are single tokens, "
            f"and {lo:g}-{hi:g} has points that are not: the server's top logprobs cover only the first token. "
            "Use readout: greedy or parsed, or backend: local, which scores whole continuations."
        )


def request_body(resolved: ResolvedRater, item: str) -> dict[str, Any]:
    """The chat completions body for one item."""
    spec = resolved.spec
    assert resolved.prompt is not None
    messages = []
    if resolved.system:
        messages.append({"role": "system", "content": resolved.system})
    messages.append({"role": "user", "content": resolved.prompt.render(item)})
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": messages,
        "max_tokens": spec.max_tokens,
        "temperature": effective_temperature(spec),
    }
    if spec.readout == "expected":
        body["logprobs"] = True
        body["top_logprobs"] = spec.top_logprobs
    if spec.readout == "samples":
        body["n"] = spec.samples
    return body


def read_rating(resolved: ResolvedRater, response: dict[str, Any]) -> Readout:
    """The rating in a chat completion; BadResponse when the response lacks what the read-out needs."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices or not isinstance(choices, list):
        raise BadResponse("the response has no choices")
    readout = resolved.spec.readout
    points = resolved.points
    if readout == "samples":
        return mean_of_samples([_content(c) for c in choices], points)
    choice = choices[0]
    answer = _content(choice)
    if readout == "greedy":
        return greedy_from_answer(answer, points)
    if readout == "parsed":
        return parsed_from_answer(answer, points)
    content = ((choice.get("logprobs") or {}).get("content")) or []
    if not content or not content[0].get("top_logprobs"):
        raise BadResponse("the response has no logprobs: does the server support logprobs/top_logprobs?")
    result = expected_from_top_logprobs(content[0]["top_logprobs"], points, min_mass=resolved.spec.min_mass)
    return Readout(result.value, result.distribution, result.mass, result.low_mass, answer, result.reason)


def _content(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        raise BadResponse("a choice is not an object")
    message = choice.get("message") or {}
    return message.get("content")


def usage_of(response: dict[str, Any]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def api_key(resolved: ResolvedRater) -> str:
    """The API key from the environment variable the rater names; a clear error when unset."""
    env = resolved.spec.api_key_env
    key = os.environ.get(env)
    if not key:
        where = resolved.spec.base_url or "OpenAI"
        raise WorkbenchError(f"raters.{resolved.name}: set the environment variable {env} to the API key for {where}.")
    return key
