"""A fault-injecting OpenAI API test double that speaks real HTTP.

`OpenAIServer` serves the documented chat completions, text completions
(/v1/completions with ``logprobs: N``, as vLLM and llama.cpp serve it), files,
batches and fine_tuning.jobs (create, retrieve, list, events, cancel; a job
runs for ``set_finetuning(seconds=...)``, or fails with ``fail_with``, and its
fine-tuned model then answers chats with the expected rating, "5.23")
endpoints on 127.0.0.1 well enough for the official `openai`
client to run against it unchanged (``base_url=server.base_url``). Its
"model" is deterministic: the rated word is the last double-quoted string in
the last user message (or in the prompt, for text completions), and the
answer follows `reference_distribution(word)`, so tests can compute the
expected ratings without the server.

In-process (a background thread with its own event loop), through the
fixtures in tests/conftest.py: a test module declares its server's options and
asks for `server` (reset per test; `openai_server` is the same server, started
once per module)::

    OPENAI_SERVER = {"latency": 0, "retry_after": 0.05}   # OpenAIServer's options
    SECRET = "sk-test-..."                                # in $WORKBENCH_TEST_OPENAI_KEY (KEY_ENV) per test

    def test_rating(server):
        client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        server.set_faults({"dog": ["429", "500"], "cat": "always:500"})
        ...
        assert server.stats()["attempts"]["dog"] == 3

A module run against several servers names them: OPENAI_SERVERS = {"legacy":
{...}, "llama.cpp": {...}} (each test runs once per server). A test that needs
a server of its own (a key check, an echoing server) starts one:
``with OpenAIServer(api_key="sk-...") as strict: ...``.

As its own process (benchmarks)::

    python -m tests.openai_server --port 0 --latency 0.05 --scale 1 7 [--rpm 3000] [--echo-key]
    # prints "READY http://127.0.0.1:PORT" and serves until killed;
    # GET /_stats returns stats() as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import math
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    _loads = json.loads

Scale = tuple[int, int]

DEFAULT_WORD_PATTERN = r'"([^"]*)"'
KEY_ENV = "WORKBENCH_TEST_OPENAI_KEY"
"""Where the tests' `server` fixture (tests/conftest.py) puts the key that studies name in `api_key_env`."""
TEST_KEY = "sk-test-DO-NOT-STORE-0d5e"
"""The key a test module that declares no SECRET of its own sends."""
CHAT_ENDPOINT = "/v1/chat/completions"
MODE_MASS = 0.55
NEIGHBOUR_MASS = 0.15
SPACED_SHARE = 0.2  # share of each point's mass on the " 5" token (the rest on "5")
OFF_SCALE_TOKEN = "The"
NON_NUMERIC_TOKENS = (
    ("banana", 0.6),
    ("The", 0.15),
    ("I", 0.1),
    ("Sure", 0.06),
    ("As", 0.04),
    ("It", 0.03),
    ("This", 0.02),
)
FAULT_KINDS = frozenset(
    {
        "429",
        "500",
        "slow",
        "malformed",
        "no_logprobs",
        "non_numeric",
        # a 200 whose logprobs are broken: "logprob": "abc", null logprobs, entries missing fields, wrong types
        "bad_logprob",
        "null_logprob",
        "missing_fields",
        "wrong_types",
        # an empty answer with no logprobs (a model with no chat template)
        "empty",
        # no answer: the model refused ("refusal": "I can't help with that."), or the content filter stopped it
        "refusal",
        "content_filter",
        # a 200 of HUGE_BYTES (a valid completion padded with one long field)
        "huge",
    }
)
BROKEN_LOGPROBS = frozenset({"bad_logprob", "null_logprob", "missing_fields", "wrong_types"})
NO_LOGPROBS = frozenset({"no_logprobs", "empty", "refusal", "content_filter"})
REFUSAL = "I can't help with that."
HUGE_BYTES = 20 << 20
ENDPOINT_FAULTS = frozenset({"401", "500", "garbage", "html"})
MALFORMED_BODY = b'{"id": "chatcmpl-'
MAX_TOP_LOGPROBS = 20
COMPLETIONS_LOGPROBS = ("legacy", "llama.cpp")  # the two shapes of /v1/completions logprobs
MAX_CHOICE_CACHE = 200_000
FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "batch_output"})


# --------------------------------------------------------------------------- the model


def scale_labels(scale: Scale = (1, 7)) -> list[str]:
    """The answer labels of an integer scale: (1, 7) -> ["1", ..., "7"]."""
    low, high = scale
    if high < low:
        raise ValueError(f"empty scale {scale}")
    return [str(k) for k in range(low, high + 1)]


def reference_distribution(word: str, scale: Scale = (1, 7)) -> dict[str, float]:
    """The model's rating distribution for `word`: label -> probability.

    The mode is label index int.from_bytes(sha256(word)[:8], "big") % points;
    it gets 0.55, each existing neighbour 0.15, and the other points share the
    rest equally (weights renormalised when a scale has no other points).
    """
    labels = scale_labels(scale)
    digest = hashlib.sha256(word.encode("utf-8")).digest()
    mode = int.from_bytes(digest[:8], "big") % len(labels)
    neighbours = {i for i in (mode - 1, mode + 1) if 0 <= i < len(labels)}
    others = len(labels) - 1 - len(neighbours)
    rest = (1.0 - MODE_MASS - NEIGHBOUR_MASS * len(neighbours)) / others if others else 0.0
    weights = [MODE_MASS if i == mode else NEIGHBOUR_MASS if i in neighbours else rest for i in range(len(labels))]
    total = sum(weights)
    return {label: weight / total for label, weight in zip(labels, weights)}


def reference_mode(word: str, scale: Scale = (1, 7)) -> str:
    """The most likely label: the answer content at temperature 0."""
    distribution = reference_distribution(word, scale)
    return max(distribution, key=distribution.__getitem__)


def reference_expected(word: str, scale: Scale = (1, 7)) -> float:
    """The expected rating, sum of k * p(k)."""
    return sum(int(label) * p for label, p in reference_distribution(word, scale).items())


def reference_top_logprobs(word: str, scale: Scale = (1, 7), off_scale_mass: float = 0.02) -> list[tuple[str, float]]:
    """The full first-token distribution as (token, logprob), most likely first.

    Each point's probability, scaled by 1 - off_scale_mass, is split 80/20
    between the tokens "5" and " 5"; the token "The" gets off_scale_mass. Ties
    sort by token. The server returns the first `top_logprobs` entries.
    """
    probabilities = []
    for label, p in reference_distribution(word, scale).items():
        scaled = p * (1.0 - off_scale_mass)
        probabilities += [(label, scaled * (1.0 - SPACED_SHARE)), (" " + label, scaled * SPACED_SHARE)]
    if off_scale_mass > 0:
        probabilities.append((OFF_SCALE_TOKEN, off_scale_mass))
    probabilities.sort(key=lambda item: (-item[1], item[0]))
    return [(token, math.log(p)) for token, p in probabilities]


def extract_word(text: str, pattern: re.Pattern[str]) -> str:
    """The last match of `pattern` in `text` (its first group if it has one), else the stripped text."""
    last = None
    for last in pattern.finditer(text):
        pass
    if last is None:
        return text.strip()
    return last.group(1) if pattern.groups else last.group(0)


class ApiError(Exception):
    """An error answered in the OpenAI shape {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}

    def echoing(self, echo: str | None) -> ApiError:
        """The same error, its message (and code) carrying `echo` (echo_key mode)."""
        if echo:
            error = self.body["error"]
            error["message"] = f"{error['message']} You sent: {echo}"
            error["param"] = echo
        return self


class _RateLimited(ApiError):
    """A 429 from the rate limit, answered with its headers."""

    def __init__(self, error: ApiError, headers: dict[str, str]) -> None:
        super().__init__(error.status, error.body["error"]["message"], type=error.body["error"]["type"],
                         code=error.body["error"]["code"])  # fmt: skip
        self.headers = headers


JSON_ESCAPED_KEY = "@@echoed-key-json-escaped@@"
"""Stands for the key JSON-escaped (``\\/`` for ``/``, ``\\u002d`` for ``-``) in a serialized body: the
middleware puts it in after serialization, since a serializer never escapes so."""


def echo_forms(authorization: str) -> str:
    """What an echoing server sends back: the Authorization header and its key as sent, JSON-escaped, URL-encoded,
    as HTML references, in hex, in base64 (of the header, and of a Basic ``user:KEY``), and in a hint that masks
    only the word ``Bearer``."""
    key = authorization.partition(" ")[2].strip()
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return (
        f"{authorization} (key: {key}) (json: {JSON_ESCAPED_KEY}) (url: {quote(key, safe='')}) "
        f"(html: {''.join(f'&#{ord(c)};' for c in key)}) (hex: {key.encode().hex()}) (b64: {b64(authorization)}) "
        f"(basic: {base64.urlsafe_b64encode(('user:' + key).encode()).decode()}) (hint: header 'Bearer ***{JSON_ESCAPED_KEY}')"
    )


def echoed_key(echo: str) -> str:
    """The key inside echo_forms' text."""
    found = re.search(r"\(key: (\S+)\)", echo)
    return found.group(1) if found else echo.partition(" ")[2]


def json_escaped(key: str) -> bytes:
    return "".join("\\/" if c == "/" else "\\u002d" if c == "-" else c for c in key).encode()


def _echo_into(body: bytes, echo: str) -> bytes:
    """A chat or text completion with `echo` in every string the client reads: id, content (or text),
    and extra top logprob entries (with negligible probabilities, so the read-out stays the same)."""
    data = _loads(body)
    data["id"] = f"{data['id']} {echo}"
    data["system_fingerprint"] = echo
    key = echoed_key(echo)
    for choice in data["choices"]:
        if "message" in choice:  # chat
            message = choice["message"]
            message["content"] = f"{message['content']} {echo}"
            message["refusal"] = echo
            for entry in (choice.get("logprobs") or {}).get("content") or []:
                if isinstance(entry.get("top_logprobs"), list):
                    entry["top_logprobs"].append({"token": echo, "logprob": -30.0, "bytes": list(echo.encode())})
                    entry["top_logprobs"].append({"token": key, "logprob": -31.0, "bytes": None})
                    entry["top_logprobs"].append({"token": "x", "logprob": -32.0, "bytes": list(key.encode())})
        else:  # text completions: top logprobs are {token: logprob} dicts
            choice["text"] = f"{choice['text']} {echo}"
            logprobs = choice.get("logprobs") or {}
            for top in logprobs.get("top_logprobs") or []:
                if isinstance(top, dict):
                    top.update({echo: -30.0, key: -31.0})
            if isinstance(logprobs.get("tokens"), list):
                logprobs["tokens"].append(echo)
            for entry in logprobs.get("content") or []:  # llama.cpp's shape
                if isinstance(entry, dict) and isinstance(entry.get("top_logprobs"), list):
                    entry["top_logprobs"].append({"token": echo, "logprob": -30.0, "bytes": list(echo.encode())})
                    entry["top_logprobs"].append({"token": key, "logprob": -31.0, "bytes": None})
    return _dumps(data)


def _bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completions request that the model uses."""

    model: str
    word: str
    prompt_chars: int
    n: int
    top_logprobs: int | None  # None: logprobs not requested
    temperature: float
    max_tokens: int | None = None


def _message_text(message: dict[str, Any]) -> str:
    """The text of a message's content: a string or a list of {"type": "text"} parts."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise _bad_request("Invalid type for 'messages[].content': expected a string or an array.", "messages")


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad_request(f"Invalid '{name}': expected an integer from {low} to {high}.", name, "invalid_value")
    return value


def parse_chat_request(body: Any, pattern: re.Pattern[str]) -> ChatRequest:
    """Validate a chat completions body (unknown fields are ignored); raise ApiError(400) if malformed."""
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("You must provide a model parameter.", "model", "missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _bad_request("'messages' must be a non-empty array of message objects.", "messages")
    if body.get("stream"):
        raise _bad_request("Streaming is not supported by this test server.", "stream", "unsupported_value")
    texts = [_message_text(m) for m in messages]
    user_texts = [t for m, t in zip(messages, texts) if m.get("role") == "user"]
    n = _optional_int(body, "n", 1, 128) or 1
    max_tokens = _optional_int(body, "max_tokens", 1, 1 << 31)
    max_completion_tokens = _optional_int(body, "max_completion_tokens", 1, 1 << 31)
    top_logprobs = _optional_int(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    logprobs = body.get("logprobs")
    if logprobs not in (None, True, False):
        raise _bad_request("Invalid 'logprobs': expected a boolean.", "logprobs", "invalid_type")
    if top_logprobs is not None and logprobs is not True:
        raise _bad_request("'logprobs' must be true when 'top_logprobs' is set.", "top_logprobs")
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 0.0
    elif isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise _bad_request("Invalid 'temperature': expected a number from 0 to 2.", "temperature", "invalid_value")
    return ChatRequest(
        model=model,
        word=extract_word(user_texts[-1] if user_texts else texts[-1], pattern),
        prompt_chars=sum(map(len, texts)),
        n=n,
        top_logprobs=(top_logprobs or 0) if logprobs else None,
        temperature=float(temperature),
        max_tokens=max_tokens if max_tokens is not None else max_completion_tokens,
    )


def parse_completion_request(body: Any, pattern: re.Pattern[str]) -> ChatRequest:
    """Validate a text completions body (/v1/completions: prompt, max_tokens, logprobs: N, n, temperature)."""
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("You must provide a model parameter.", "model", "missing_required_parameter")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad_request("'prompt' must be a string (this test server takes one prompt per request).", "prompt")
    if body.get("stream"):
        raise _bad_request("Streaming is not supported by this test server.", "stream", "unsupported_value")
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= MAX_TOP_LOGPROBS):
        raise _bad_request(f"Invalid 'logprobs': expected an integer from 0 to {MAX_TOP_LOGPROBS}.", "logprobs", "invalid_value")
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 1.0  # the documented default of /v1/completions
    elif isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise _bad_request("Invalid 'temperature': expected a number from 0 to 2.", "temperature", "invalid_value")
    return ChatRequest(
        model=model,
        word=extract_word(prompt, pattern),
        prompt_chars=len(prompt),
        n=_optional_int(body, "n", 1, 128) or 1,
        top_logprobs=logprobs,
        temperature=float(temperature),
        max_tokens=_optional_int(body, "max_tokens", 1, 1 << 31),
    )


class Model:
    """The deterministic model: per-word choices, computed lazily and cached as serialized JSON."""

    def __init__(self, scale: Scale, off_scale_mass: float, completions_logprobs: str = "legacy") -> None:
        if completions_logprobs not in COMPLETIONS_LOGPROBS:
            raise ValueError(f"unknown completions_logprobs {completions_logprobs!r}; shapes: {COMPLETIONS_LOGPROBS}")
        self.scale = scale
        self.off_scale_mass = off_scale_mass
        self.completions_logprobs = completions_logprobs
        self._choices: dict[tuple[str, str, int | None, str], bytes] = {}
        self._modes: dict[str, str] = {}

    def completion_json(self, request: ChatRequest, completion_id: str, attempt: int, variant: str) -> bytes:
        """A serialized chat completion; variant is "normal", "no_logprobs", "non_numeric", "empty"
        or one of BROKEN_LOGPROBS."""
        prompt_tokens = request.prompt_chars // 4 + 1
        head = _dumps(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": request.n, "total_tokens": prompt_tokens + request.n},
                "system_fingerprint": None,
            }
        )
        top_k = None if variant in NO_LOGPROBS else request.top_logprobs
        choices = b",".join(
            b'{"index":%d,' % i + self._choice_json(request.word, label, top_k, variant)
            for i, label in enumerate(self._answer_labels(request, attempt))
        )
        return head[:-1] + b',"choices":[' + choices + b"]}"

    def text_completion_json(self, request: ChatRequest, completion_id: str, attempt: int, variant: str) -> bytes:
        """A serialized text completion (/v1/completions): the same answers as completion_json, with the
        first token's top logprobs as a {token: logprob} dict, the legacy shape."""
        prompt_tokens = request.prompt_chars // 4 + 1
        top_k = None if variant in NO_LOGPROBS else request.top_logprobs
        choices = [
            dict(self._text_choice(request, label, top_k, variant), index=i)
            for i, label in enumerate(self._answer_labels(request, attempt))
        ]
        return _dumps({
            "id": completion_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": request.n,
                      "total_tokens": prompt_tokens + request.n},
        })  # fmt: skip

    def _text_choice(self, request: ChatRequest, label: str, top_k: int | None, variant: str) -> dict[str, Any]:
        if variant in ("empty", "refusal"):
            return {"text": "", "logprobs": None, "finish_reason": "stop"}
        if variant == "content_filter":
            return {"text": "", "logprobs": None, "finish_reason": "content_filter"}
        if variant == "non_numeric":
            text, tokens = NON_NUMERIC_TOKENS[0][0], [(t, math.log(p)) for t, p in NON_NUMERIC_TOKENS]
        else:
            text, tokens = label, reference_top_logprobs(request.word, self.scale, self.off_scale_mass)
        if variant in BROKEN_LOGPROBS:
            top_k = top_k or MAX_TOP_LOGPROBS
        logprobs = None
        if top_k is not None:
            chosen = next(lp for token, lp in tokens if token == text)
            top: Any = {t: lp for t, lp in tokens[:top_k]}
            if variant == "bad_logprob":
                top = {t: "abc" for t in top}
            elif variant == "null_logprob":
                top = None
            elif variant == "wrong_types":
                top = {t: [lp] for t, lp in top.items()}  # a list where a number belongs
            logprobs = {"tokens": [text], "token_logprobs": [chosen], "top_logprobs": [top], "text_offset": [request.prompt_chars]}
            if variant == "missing_fields":
                logprobs = {"tokens": [text]}
            if self.completions_logprobs == "llama.cpp":
                logprobs = _llama_cpp_logprobs(text, chosen, top, variant)
        return {"text": text, "logprobs": logprobs, "finish_reason": "length" if request.max_tokens == 1 else "stop"}

    def _answer_labels(self, request: ChatRequest, attempt: int) -> list[str]:
        """The mode n times at temperature 0, else n labels sampled with an RNG seeded by (word, attempt)."""
        if request.temperature <= 0:
            mode = self._modes.get(request.word)
            if mode is None:
                mode = self._modes[request.word] = reference_mode(request.word, self.scale)
            return [mode] * request.n
        distribution = reference_distribution(request.word, self.scale)
        seed = hashlib.sha256(f"{request.word}\x00{attempt}".encode()).digest()
        rng = random.Random(int.from_bytes(seed[:8], "big"))
        return rng.choices(list(distribution), weights=list(distribution.values()), k=request.n)

    def _choice_json(self, word: str, label: str, top_k: int | None, variant: str) -> bytes:
        """A serialized choice without its leading '{"index": i,' part."""
        key = (word, label, top_k, variant)
        choice = self._choices.get(key)
        if choice is None:
            if len(self._choices) >= MAX_CHOICE_CACHE:
                self._choices.clear()
                self._modes.clear()
            choice = self._choices[key] = _dumps(self._build_choice(word, label, top_k, variant))[1:]
        return choice

    def _build_choice(self, word: str, label: str, top_k: int | None, variant: str) -> dict[str, Any]:
        if variant == "empty":
            message = {"role": "assistant", "content": "", "refusal": None, "annotations": []}
            return {"message": message, "logprobs": None, "finish_reason": "stop"}
        if variant == "refusal":
            message = {"role": "assistant", "content": None, "refusal": REFUSAL, "annotations": []}
            return {"message": message, "logprobs": None, "finish_reason": "stop"}
        if variant == "content_filter":
            message = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
            return {"message": message, "logprobs": None, "finish_reason": "content_filter"}
        if variant in BROKEN_LOGPROBS:
            choice = self._build_choice(word, label, top_k or MAX_TOP_LOGPROBS, "normal")
            return _break_logprobs(choice, variant)
        if variant == "non_numeric":
            content, tokens = NON_NUMERIC_TOKENS[0][0], [(t, math.log(p)) for t, p in NON_NUMERIC_TOKENS]
        else:
            content, tokens = label, reference_top_logprobs(word, self.scale, self.off_scale_mass)
        logprobs = None
        if top_k is not None:
            chosen = next(lp for token, lp in tokens if token == content)
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in tokens[:top_k]]
            entry = {"token": content, "logprob": chosen, "bytes": list(content.encode()), "top_logprobs": top}
            logprobs = {"content": [entry], "refusal": None}
        message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        return {"message": message, "logprobs": logprobs, "finish_reason": "stop"}


def _llama_cpp_logprobs(text: str, chosen: float, top: Any, variant: str) -> dict[str, Any]:
    """The logprobs of a text completion as llama.cpp's server writes them: the chat shape
    ({"content": [{id, token, logprob, bytes, top_logprobs: [{id, token, logprob, bytes}]}]})
    instead of the legacy {token: logprob} dicts; broken the same way for the broken variants."""
    entries: Any = None
    if isinstance(top, dict):
        entries = [{"id": i, "token": t, "bytes": list(t.encode()), "logprob": lp} for i, (t, lp) in enumerate(top.items())]
    entry: dict[str, Any] = {"id": 0, "token": text, "bytes": list(text.encode()), "logprob": chosen, "top_logprobs": entries}
    if variant == "missing_fields":
        entry = {"token": text}
    return {"content": [entry]}


def _break_logprobs(choice: dict[str, Any], variant: str) -> dict[str, Any]:
    """A choice whose logprobs are broken the way `variant` says (the answer itself stays right)."""
    entry = choice["logprobs"]["content"][0]
    top = entry["top_logprobs"]
    if variant == "bad_logprob":
        entry["logprob"] = "abc"
        top[0]["logprob"] = "abc"
    elif variant == "null_logprob":
        entry["logprob"] = None
        for t in top:
            t["logprob"] = None
    elif variant == "missing_fields":
        entry.pop("logprob")
        for t in top:
            t.pop("logprob")
        top[1].pop("token")
    else:  # wrong_types
        entry["token"] = 5
        entry["top_logprobs"] = {"1": "-0.1", "2": [1]}
    return choice


# --------------------------------------------------------------------------- faults and stats


@dataclass(slots=True)
class _FaultScript:
    """The faults still to come for one word: (kind, permanent) entries; a permanent one is never consumed."""

    pending: deque[tuple[str, bool]]

    @classmethod
    def parse(cls, spec: str | list[str] | tuple[str, ...]) -> _FaultScript:
        entries = [spec] if isinstance(spec, str) else list(spec)
        parsed = deque()
        for entry in entries:
            permanent = entry.startswith("always:")
            kind = entry.removeprefix("always:")
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {entry!r}; kinds: {sorted(FAULT_KINDS)}")
            parsed.append((kind, permanent))
        return cls(parsed)

    def next(self) -> str | None:
        """The fault for the next attempt, or None when the script is exhausted."""
        if not self.pending:
            return None
        kind, permanent = self.pending[0]
        if not permanent:
            self.pending.popleft()
        return kind


@dataclass(slots=True)
class _Stats:
    requests: int = 0
    chat_requests: int = 0
    chat_ok: int = 0
    completion_requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    batches_created: int = 0
    files_uploaded: int = 0
    rate_limited: int = 0
    models_listed: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    max_tokens: Counter[int | None] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "chat_requests": self.chat_requests,
            "chat_ok": self.chat_ok,
            "completion_requests": self.completion_requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "batches_created": self.batches_created,
            "files_uploaded": self.files_uploaded,
            "rate_limited": self.rate_limited,
            "models_listed": self.models_listed,
            "attempts": dict(self.attempts),
            "max_tokens": dict(self.max_tokens),
        }


@dataclass(slots=True)
class _Batch:
    obj: dict[str, Any]  # the documented batch object, as served
    expire_after: int | None
    task: asyncio.Task[None] | None = None
    echo: str | None = None  # echo_key mode: the creator's Authorization header


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response; `body` is an object or already serialized bytes."""
    data = body if isinstance(body, bytes) else _dumps(body)
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.body, error.status, getattr(error, "headers", None))


def format_duration(seconds: float) -> str:
    """A duration the way OpenAI's x-ratelimit-reset-* headers write it: "20ms", "1s", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class RateLimit:
    """Requests and tokens per minute over a sliding window, the way an API key is capped.

    A request is admitted when the requests and tokens of the last `window`
    seconds, with it, stay within the limits; else it gets a 429 with
    Retry-After. Every answer carries OpenAI's headers: x-ratelimit-limit-*,
    x-ratelimit-remaining-* (what the window has left) and x-ratelimit-reset-*
    (when the oldest request in the window leaves it, so the next one fits).
    A request costs its prompt tokens (characters / 4 + 1) plus max_tokens
    (16 when not given) times n, as OpenAI counts it when it admits a request.
    """

    def __init__(self, rpm: int | None = None, tpm: int | None = None, window: float = 60.0) -> None:
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self.entries: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def _prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.window:
            self.tokens -= self.entries.popleft()[1]

    def admit(self, cost: int, now: float) -> tuple[bool, dict[str, str], float]:
        """(admitted, headers, seconds until it would fit)."""
        self._prune(now)
        fits_requests = self.rpm is None or len(self.entries) + 1 <= self.rpm
        fits_tokens = self.tpm is None or self.tokens + cost <= self.tpm or not self.entries
        wait = 0.0
        if fits_requests and fits_tokens:
            self.entries.append((now, cost))
            self.tokens += cost
        else:
            if not fits_requests:
                wait = self.entries[len(self.entries) - self.rpm][0] + self.window - now
            if not fits_tokens:
                freed, need = 0, self.tokens + cost - self.tpm
                for stamp, tokens in self.entries:
                    freed += tokens
                    if freed >= need:
                        wait = max(wait, stamp + self.window - now)
                        break
        next_free = self.entries[0][0] + self.window - now if self.entries else 0.0
        headers = {}
        for kind, limit, used in (("requests", self.rpm, len(self.entries)), ("tokens", self.tpm, self.tokens)):
            if limit is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, limit - used))
                headers[f"x-ratelimit-reset-{kind}"] = format_duration(next_free)
        return fits_requests and fits_tokens, headers, max(0.0, wait)


# --------------------------------------------------------------------------- the server


class OpenAIServer:
    """An aiohttp server speaking the OpenAI chat and text completions, files and batches API, with faults.

    Use it as a context manager (``with OpenAIServer() as server``) or call
    start()/stop(). set_faults, expire_batches_after, stats and reset are
    thread-safe.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        scale: Scale = (1, 7),
        word_pattern: str = DEFAULT_WORD_PATTERN,
        off_scale_mass: float = 0.02,
        retry_after: float = 0.2,
        slow_seconds: float = 5.0,
        batch_seconds: float = 0.5,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rpm: int | None = None,
        tpm: int | None = None,
        models: list[str] | None = None,
        strict_models: bool = False,
        echo_key: bool = False,
        completions_logprobs: str = "legacy",
        finetune_seconds: float = 1.0,
    ) -> None:
        """rpm/tpm: enforce those limits (see RateLimit); models: what GET /v1/models lists (None: the
        endpoint does not exist, as on servers that do not list); strict_models: answer an unlisted
        model with 404 model_not_found (else any name is accepted, as llama.cpp does); echo_key: a
        hostile server that puts the caller's Authorization header in every field it can (error
        bodies, answer content, logprob tokens, batch files, response headers); completions_logprobs:
        the shape of /v1/completions logprobs, "legacy" (OpenAI, vLLM: {token: logprob} dicts) or
        "llama.cpp" (its server's chat-like logprobs.content[].top_logprobs lists); finetune_seconds: how long
        a fine-tuning job runs (see set_finetuning). reset() puts these settings back as given here."""
        self.latency = latency
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.batch_seconds = batch_seconds
        self.api_key = api_key
        self.host = host
        self.port = port
        self.model = Model(tuple(scale), off_scale_mass, completions_logprobs)
        self.models = models
        self.strict_models = strict_models
        self.echo_key = echo_key
        self.limit = RateLimit(rpm, tpm) if rpm or tpm else None
        self._pattern = re.compile(word_pattern)
        self._lock = threading.Lock()
        self._faults: dict[str, _FaultScript] = {}
        self._expire_after: int | None = None
        self._endpoint_faults: dict[str, str] = {}
        self._next_faults: list[list[Any]] = []
        self._drop_batch_creates = 0
        self._batch_create_delay = 0.0
        self._stats = _Stats()
        self._ids = itertools.count(1)
        self._given = {"latency": latency, "retry_after": retry_after, "slow_seconds": slow_seconds,
                       "batch_seconds": batch_seconds, "finetune_seconds": finetune_seconds, "rpm": rpm, "tpm": tpm}  # fmt: skip
        self._ft = _FineTuning(seconds=finetune_seconds)
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._batches: dict[str, _Batch] = {}
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- control (any thread)

    @property
    def url(self) -> str:
        """The server root, "http://127.0.0.1:PORT"."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The `base_url` for the openai client: url + "/v1"."""
        return self.url + "/v1"

    def set_faults(self, faults: dict[str, str | list[str]]) -> None:
        """Script faults per word, replacing those words' earlier scripts.

        A list is consumed one entry per attempt, then the word is answered
        normally; an entry "always:KIND" (or a plain string "always:KIND")
        answers every later attempt with KIND. A plain string "KIND" is a
        one-entry list. Kinds: 429, 500, slow, malformed, no_logprobs, non_numeric, empty (an empty
        answer with no logprobs), refusal (no answer, a "refusal" text), content_filter (no answer,
        finish_reason "content_filter"), and 200 answers with broken logprobs: bad_logprob ("logprob": "abc"),
        null_logprob, missing_fields, wrong_types.
        """
        scripts = {word: _FaultScript.parse(spec) for word, spec in faults.items()}
        with self._lock:
            self._faults.update(scripts)

    def set_rate_limit(self, rpm: int | None = None, tpm: int | None = None, window: float = 60.0) -> None:
        """Enforce requests/tokens per `window` seconds from now on (both None: no limit)."""
        with self._lock:
            self.limit = RateLimit(rpm, tpm, window) if rpm or tpm else None

    def set_endpoint_faults(self, faults: dict[str, str]) -> None:
        """Answer every request whose path starts with a key (e.g. "/v1/files", "/v1/batches") with a
        fault until reset: "401", "500", "garbage" (a 200 with a broken JSON body) or "html" (a 200 page)."""
        for kind in faults.values():
            if kind not in ENDPOINT_FAULTS:
                raise ValueError(f"unknown endpoint fault {kind!r}; kinds: {sorted(ENDPOINT_FAULTS)}")
        with self._lock:
            self._endpoint_faults.update(faults)

    def expire_batches_after(self, n: int | None) -> None:
        """Batches created from now on expire after answering their first n lines (None: never)."""
        with self._lock:
            self._expire_after = n

    def stats(self) -> dict[str, Any]:
        """Counters: requests (all /v1), chat_requests, chat_ok (chat answered 200 with a JSON completion),
        in_flight and max_in_flight (concurrent chat requests), batches_created, files_uploaded,
        and attempts (word -> chat requests plus batch lines for that word)."""
        with self._lock:
            return self._stats.as_dict()

    def reset(self) -> None:
        """Clear stats and every fault (scripts, endpoint faults, dropped or delayed creates, batch expiry) and
        put back the settings given to the constructor (latency, retry_after, slow_seconds, batch_seconds, the
        rate limit with a fresh window, fine-tuning's duration, no failure, no delays); files, batches and
        fine-tuning jobs stay."""
        given = self._given
        with self._lock:
            self._stats = _Stats()
            self._faults.clear()
            self._endpoint_faults.clear()
            self._next_faults.clear()
            self._expire_after = None
            self._drop_batch_creates, self._batch_create_delay = 0, 0.0
            self.latency, self.retry_after = given["latency"], given["retry_after"]
            self.slow_seconds, self.batch_seconds = given["slow_seconds"], given["batch_seconds"]
            self.limit = RateLimit(given["rpm"], given["tpm"]) if given["rpm"] or given["tpm"] else None
            ft = self._ft
            ft.seconds, ft.fail_with, ft.create_delay, ft.drop_creates = given["finetune_seconds"], None, 0.0, 0

    def start(self) -> OpenAIServer:
        """Serve from a background thread with its own event loop; returns once listening."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.open(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and end the background thread."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- lifecycle (server loop)

    async def open(self) -> None:
        """Start listening in the running event loop; sets `port` when it was 0."""
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 30)
        app.add_routes(
            [
                web.post("/v1/chat/completions", self._chat),
                web.post("/v1/completions", self._completions),
                web.get("/v1/models", self._list_models),
                web.post("/v1/files", self._upload_file),
                web.get("/v1/files/{file_id}", self._get_file),
                web.get("/v1/files/{file_id}/content", self._file_content),
                web.delete("/v1/files/{file_id}", self._delete_file),
                web.post("/v1/batches", self._create_batch),
                web.get("/v1/batches", self._list_batches),
                web.get("/v1/batches/{batch_id}", self._get_batch),
                web.post("/v1/batches/{batch_id}/cancel", self._cancel_batch),
                *self._finetune_routes(),
                web.get("/_stats", self._stats_handler),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Cancel running batches and stop listening."""
        for batch in self._batches.values():
            if batch.task is not None:
                batch.task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count /v1 requests, check the bearer key, and answer errors in the OpenAI shape."""
        if not request.path.startswith("/v1/"):
            return await handler(request)
        with self._lock:
            self._stats.requests += 1
        echo = self._echo(request)
        try:
            self._authorize(request)
            response = self._endpoint_fault(request, echo) or await handler(request)
        except ApiError as error:
            response = _error_response(error.echoing(echo))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _error_response(ApiError(exc.status, f"{exc.reason}: {request.method} {request.path}").echoing(echo))
        if echo:
            response.headers["x-echo-authorization"] = echo.replace(JSON_ESCAPED_KEY, "")
            if isinstance(response, web.Response) and isinstance(response.body, bytes) and JSON_ESCAPED_KEY.encode() in response.body:
                response.body = response.body.replace(JSON_ESCAPED_KEY.encode(), json_escaped(echoed_key(echo)))
        return response

    def fail_next(self, method: str, path: str, kind: str, times: int = 1) -> None:
        """Answer the next `times` requests of `method` whose path starts with `path` (regex) with `kind`
        (as set_endpoint_faults), then as usual."""
        if kind not in ENDPOINT_FAULTS:
            raise ValueError(f"unknown endpoint fault {kind!r}; kinds: {sorted(ENDPOINT_FAULTS)}")
        with self._lock:
            self._next_faults.append([method.upper(), re.compile(path), kind, times])

    def _endpoint_fault(self, request: web.Request, echo: str | None) -> web.Response | None:
        with self._lock:
            kind = next((k for p, k in self._endpoint_faults.items() if request.path.startswith(p)), None)
            for entry in self._next_faults:
                if kind is None and entry[3] > 0 and entry[0] == request.method and entry[1].match(request.path):
                    entry[3] -= 1
                    kind = entry[2]
        if kind == "401":
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        if kind == "500":
            raise ApiError(500, "The server had an error (test server).", type="server_error")
        if kind == "garbage":
            return web.Response(body=b'{"id": "' + (echo or "").encode(), content_type="application/json")
        if kind == "html":
            return web.Response(text=f"<html><body>Bad gateway {echo or ''}</body></html>", content_type="text/html")
        return None

    def _echo(self, request: web.Request) -> str | None:
        """In echo_key mode, the caller's Authorization header and its key, to put everywhere."""
        if not self.echo_key:
            return None
        return echo_forms(request.headers.get("Authorization", ""))

    def _authorize(self, request: web.Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or (self.api_key is not None and key != self.api_key):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        try:
            return _loads(await request.read())
        except ValueError:
            raise _bad_request("We could not parse the JSON body of your request.") from None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):016x}"

    def _begin_attempt(self, word: str) -> tuple[int, str | None]:
        """Count an attempt for `word`; return its number (1-based) and its fault, if any."""
        with self._lock:
            self._stats.attempts[word] += 1
            script = self._faults.get(word)
            return self._stats.attempts[word], script.next() if script else None

    # ----------------------------------------------------------------- chat completions

    async def _chat(self, request: web.Request) -> web.Response:
        with self._lock:
            stats = self._stats
            stats.chat_requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            chat = parse_chat_request(await self._json_body(request), self._pattern)
            self._check_model(chat.model)
            limit_headers = self._admit(chat)
            attempt, fault = self._begin_attempt(chat.word)
            with self._lock:
                self._stats.max_tokens[chat.max_tokens] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await self._answer_chat(chat, attempt, fault, self._echo(request))
            response.headers.update(limit_headers)
            return response
        finally:
            with self._lock:
                stats.in_flight -= 1

    def _check_model(self, model: str) -> None:
        if self.strict_models and self.models is not None and model not in self.models:
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           code="model_not_found")  # fmt: skip

    def _admit(self, chat: ChatRequest) -> dict[str, str]:
        """The rate limit's headers for an admitted request; ApiError(429) with them when over the limit."""
        if self.limit is None:
            return {}
        cost = chat.prompt_chars // 4 + 1 + (chat.max_tokens or 16) * chat.n
        with self._lock:
            admitted, headers, wait = self.limit.admit(cost, time.monotonic())
            if not admitted:
                self._stats.rate_limited += 1
        if admitted:
            return headers
        error = ApiError(429, "Rate limit reached for requests (test server).", type="requests", code="rate_limit_exceeded")
        raise _RateLimited(error, dict(headers, **{"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}))

    async def _list_models(self, request: web.Request) -> web.Response:
        if self.models is None:
            raise ApiError(404, "Unknown request URL: GET /v1/models.", code="unknown_url")
        with self._lock:
            self._stats.models_listed += 1
        owner = self._echo(request) or "test-server"
        return _json_response(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": owner} for m in self.models],
            }
        )

    async def _answer_chat(self, chat: ChatRequest, attempt: int, fault: str | None, echo: str | None = None) -> web.Response:
        if fault is None and chat.model in self._ft_state().models:
            return _json_response(self._finetuned_completion(chat))
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault == "malformed":
            return web.Response(body=MALFORMED_BODY + (echo or "").encode(), content_type="application/json")
        elif fault == "huge":
            body = self.model.completion_json(chat, self._new_id("chatcmpl-"), attempt, "normal")
            return web.Response(body=body[:-1] + b',"padding":"' + b"x" * HUGE_BYTES + b'"}', content_type="application/json")
        request_id = self._new_id("req_")
        status, body = self._outcome(chat, attempt, fault, echo)
        headers = {"x-request-id": request_id}
        if status == 429:
            headers["retry-after"] = str(math.ceil(self.retry_after))
            headers["retry-after-ms"] = str(round(self.retry_after * 1000))
        elif status == 200:
            with self._lock:
                self._stats.chat_ok += 1
        return _json_response(body, status, headers)

    def _outcome(self, chat: ChatRequest, attempt: int, fault: str | None, echo: str | None = None) -> tuple[int, bytes]:
        """Status and serialized body for one chat request under `fault` (in a batch, "slow" is
        answered normally and "malformed" as a 500); in echo_key mode every string field carries `echo`."""
        if fault == "429":
            error = ApiError(429, "Rate limit reached (test server).", type="rate_limit_error", code="rate_limit_exceeded")
            return 429, _dumps(error.echoing(echo).body)
        if fault in ("500", "malformed"):
            return 500, _dumps(ApiError(500, "The server had an error (test server).", type="server_error").echoing(echo).body)
        variant = fault if fault in NO_LOGPROBS or fault == "non_numeric" or fault in BROKEN_LOGPROBS else "normal"
        body = self.model.completion_json(chat, self._new_id("chatcmpl-"), attempt, variant)
        return 200, _echo_into(body, echo) if echo else body

    # ----------------------------------------------------------------- text completions

    async def _completions(self, request: web.Request) -> web.Response:
        """POST /v1/completions, as vLLM and llama.cpp's server serve it: the chat model's answers and
        faults (429, 500, slow, malformed, no_logprobs, non_numeric, empty, broken logprobs)."""
        with self._lock:
            self._stats.completion_requests += 1
        completion = parse_completion_request(await self._json_body(request), self._pattern)
        self._check_model(completion.model)
        limit_headers = self._admit(completion)
        attempt, fault = self._begin_attempt(completion.word)
        with self._lock:
            self._stats.max_tokens[completion.max_tokens] += 1
        echo = self._echo(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault == "malformed":
            return web.Response(body=b'{"id": "cmpl-' + (echo or "").encode(), content_type="application/json")
        if fault in ("429", "500"):
            status, body = self._outcome(completion, attempt, fault, echo)
            headers = {"retry-after": str(math.ceil(self.retry_after))} if status == 429 else {}
            return _json_response(body, status, dict(limit_headers, **headers))
        variant = fault if fault in NO_LOGPROBS or fault == "non_numeric" or fault in BROKEN_LOGPROBS else "normal"
        body = self.model.text_completion_json(completion, self._new_id("cmpl-"), attempt, variant)
        response = _json_response(_echo_into(body, echo) if echo else body)
        response.headers.update(limit_headers)
        return response

    # ----------------------------------------------------------------- files

    async def _upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField):
            raise _bad_request("Missing file upload in the 'file' field.", "file", "missing_required_parameter")
        if purpose not in FILE_PURPOSES:
            raise _bad_request(f"Invalid 'purpose': {purpose!r}.", "purpose", "invalid_value")
        data = upload.file.read()
        if purpose == "fine-tune":
            _check_training_file(data)
        file_obj = self._store_file(data, upload.filename, str(purpose))
        with self._lock:
            self._stats.files_uploaded += 1
        return _json_response(file_obj)

    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_obj = {
            "id": self._new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self._files[file_obj["id"]] = (file_obj, data)
        return file_obj

    def _file(self, file_id: str) -> tuple[dict[str, Any], bytes]:
        try:
            return self._files[file_id]
        except KeyError:
            raise ApiError(404, f"No such File object: {file_id}", param="id") from None

    async def _get_file(self, request: web.Request) -> web.Response:
        return _json_response(self._file(request.match_info["file_id"])[0])

    async def _file_content(self, request: web.Request) -> web.Response:
        return web.Response(body=self._file(request.match_info["file_id"])[1], content_type="application/octet-stream")

    async def _delete_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        self._file(file_id)
        del self._files[file_id]
        return _json_response({"id": file_id, "object": "file", "deleted": True})

    # ----------------------------------------------------------------- batches

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object.")
        if body.get("endpoint") != CHAT_ENDPOINT:
            raise _bad_request(f"Only endpoint {CHAT_ENDPOINT!r} is supported.", "endpoint", "invalid_value")
        if body.get("completion_window") != "24h":
            raise _bad_request("'completion_window' must be '24h'.", "completion_window", "invalid_value")
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str) or input_file_id not in self._files:
            raise _bad_request(f"Invalid 'input_file_id': {input_file_id!r}.", "input_file_id", "invalid_value")
        now = int(time.time())
        obj = {
            "id": self._new_id("batch_"),
            "object": "batch",
            "endpoint": CHAT_ENDPOINT,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self._stats.batches_created += 1
            batch = _Batch(obj, self._expire_after, echo=self._echo(request))
            drop = self._drop_batch_creates > 0
            self._drop_batch_creates -= drop
        self._batches[obj["id"]] = batch
        batch.task = asyncio.create_task(self._run_batch(batch))
        if self._batch_create_delay:
            await asyncio.sleep(self._batch_create_delay)
        if drop and request.transport is not None:
            request.transport.close()  # the batch exists; the client never hears of it
        return _json_response(obj)

    def drop_batch_creates(self, n: int, delay: float = 0.0) -> None:
        """The next n batch create requests make the batch, then drop the connection without an answer;
        delay: every batch create request waits that long, after the batch is made, before it is answered."""
        with self._lock:
            self._drop_batch_creates = n
            self._batch_create_delay = delay

    def _batch(self, batch_id: str) -> _Batch:
        try:
            return self._batches[batch_id]
        except KeyError:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id") from None

    async def _get_batch(self, request: web.Request) -> web.Response:
        return _json_response(self._batch(request.match_info["batch_id"]).obj)

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        obj = self._batch(request.match_info["batch_id"]).obj
        if obj["status"] not in ("validating", "in_progress", "finalizing", "cancelling"):
            raise ApiError(409, f"Cannot cancel a batch with status '{obj['status']}'.")
        if obj["status"] != "cancelling":
            obj.update(status="cancelling", cancelling_at=int(time.time()))
        return _json_response(obj)

    async def _list_batches(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", 20))
        except ValueError:
            raise _bad_request("Invalid 'limit'.", "limit", "invalid_value") from None
        if not 1 <= limit <= 100:
            raise _bad_request("'limit' must be from 1 to 100.", "limit", "invalid_value")
        objs = [batch.obj for batch in reversed(self._batches.values())]  # newest first
        after = request.query.get("after")
        if after is not None:
            ids = [obj["id"] for obj in objs]
            objs = objs[ids.index(after) + 1 :] if after in ids else []
        page = objs[:limit]
        return _json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(objs) > limit,
            }
        )

    async def _batch_pause(self, steps: int) -> None:
        """Wait `steps` tenths of batch_seconds, as batch_seconds is now (read again every 50 ms)."""
        start = time.monotonic()
        while (left := start + steps * self.batch_seconds / 10 - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))

    async def _run_batch(self, batch: _Batch) -> None:
        """Move a batch through validating -> in_progress -> finalizing -> completed in ~batch_seconds,
        answering its lines in six steps; it ends early as failed, expired or cancelled. A change of
        batch_seconds takes effect at once, on running batches too."""
        obj = batch.obj
        await self._batch_pause(2)
        lines, errors = parse_batch_lines(self._files[obj["input_file_id"]][1], self._pattern)
        output: list[bytes] = []  # JSONL lines of the output file
        failures: list[bytes] = []  # JSONL lines of the error file
        if obj["status"] == "cancelling":
            self._finish_batch(obj, "cancelled", lines, output, failures)
            return
        if errors:
            if batch.echo:
                errors = [dict(e, message=f"{e['message']} You sent: {batch.echo}") for e in errors]
            obj.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors})
            return
        obj.update(status="in_progress", in_progress_at=int(time.time()))
        obj["request_counts"]["total"] = len(lines)
        limit = len(lines) if batch.expire_after is None else min(batch.expire_after, len(lines))
        chunk = max(1, math.ceil(limit / 6))
        for start in range(0, max(limit, 1), chunk):
            await self._batch_pause(1)
            if obj["status"] == "cancelling":
                self._finish_batch(obj, "cancelled", lines, output, failures)
                return
            for custom_id, chat in lines[start : min(start + chunk, limit)]:
                self._answer_line(custom_id, chat, output, failures, batch.echo)
            obj["request_counts"].update(completed=len(output), failed=len(failures))
        if limit < len(lines):
            self._finish_batch(obj, "expired", lines, output, failures)
            return
        obj.update(status="finalizing", finalizing_at=int(time.time()))
        await self._batch_pause(1)
        status = "cancelled" if obj["status"] == "cancelling" else "completed"
        self._finish_batch(obj, status, lines, output, failures)

    def _answer_line(self, custom_id: str, chat: ChatRequest, output: list[bytes], failures: list[bytes],
                     echo: str | None = None) -> None:  # fmt: skip
        """Answer one batch line into the output lines (200) or the error lines (else)."""
        attempt, fault = self._begin_attempt(chat.word)
        status, body = self._outcome(chat, attempt, fault, echo)
        line = b'{"id":%s,"custom_id":%s,"response":{"status_code":%d,"request_id":%s,"body":%s},"error":null}' % (
            _dumps(self._new_id("batch_req_")),
            _dumps(custom_id),
            status,
            _dumps(self._new_id("req_")),
            body,
        )
        (output if status == 200 else failures).append(line)

    def _finish_batch(
        self,
        obj: dict[str, Any],
        status: str,
        lines: list[tuple[str, ChatRequest]],
        output: list[bytes],
        failures: list[bytes],
    ) -> None:
        """End a batch: unanswered lines of an expired/cancelled batch go to the error file."""
        code = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(status)
        if code is not None:
            error = {"code": code, "message": f"This request could not be executed before the batch was {status}."}
            answered = len(output) + len(failures)
            failures += [
                _dumps({"id": self._new_id("batch_req_"), "custom_id": custom_id, "response": None, "error": error})
                for custom_id, _ in lines[answered:]
            ]
        for key, entries, name in (("output_file_id", output, "output"), ("error_file_id", failures, "error")):
            if entries:
                data = b"".join(entry + b"\n" for entry in entries)
                obj[key] = self._store_file(data, f"{obj['id']}_{name}.jsonl", "batch_output")["id"]
        obj["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(failures)}
        obj.update({"status": status, f"{status}_at": int(time.time())})

    async def _stats_handler(self, request: web.Request) -> web.Response:
        return _json_response(self.stats())

    # ----------------------------------------------------------------- fine-tuning

    def _ft_state(self) -> _FineTuning:
        return self._ft

    def set_finetuning(self, *, seconds: float | None = None, fail_with: str | None = None, create_delay: float = 0.0,
                       drop_creates: int = 0) -> None:  # fmt: skip
        """Fine-tuning jobs created from now on take `seconds` to run (default 1) and, with
        fail_with, fail halfway with that message (code "training_failed"). create_delay: seconds a
        create request waits, after the job is made, before it is answered; drop_creates: the next
        that many create requests make the job, then drop the connection without an answer."""
        state = self._ft_state()
        with self._lock:
            if seconds is not None:
                state.seconds = seconds
            state.fail_with = fail_with
            state.create_delay, state.drop_creates = create_delay, drop_creates

    def finetuning_stats(self) -> dict[str, Any]:
        """Jobs created (ids in order), cancel requests, and the fine-tuned models served."""
        state = self._ft_state()
        with self._lock:
            return {"jobs": list(state.jobs), "cancels": state.cancels, "models": sorted(state.models)}

    def _finetune_routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/fine_tuning/jobs", self._create_ft_job),
            web.get("/v1/fine_tuning/jobs", self._list_ft_jobs),
            web.get("/v1/fine_tuning/jobs/{job_id}", self._get_ft_job),
            web.get("/v1/fine_tuning/jobs/{job_id}/events", self._ft_events),
            web.post("/v1/fine_tuning/jobs/{job_id}/cancel", self._cancel_ft_job),
        ]

    async def _create_ft_job(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _bad_request("You must provide a model parameter.", "model", "missing_required_parameter")
        if not model.startswith(FINETUNABLE_PREFIXES):
            raise _bad_request(f"Model {model} is not available for fine-tuning or does not exist.", "model", "model_not_available")
        files = {}
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if file_id is None and key == "validation_file":
                continue
            if not isinstance(file_id, str) or file_id not in self._files:
                raise _bad_request(f"invalid {key} ID: {file_id!r}", key, "invalid_request")
            file_obj, data = self._files[file_id]
            if file_obj["purpose"] != "fine-tune":
                raise _bad_request(f"File {file_id} has purpose {file_obj['purpose']!r}, not 'fine-tune'.", key)
            files[key] = (file_id, data)
        hyper = body.get("hyperparameters") or {}
        if not isinstance(hyper, dict) or set(hyper) - {"n_epochs", "batch_size", "learning_rate_multiplier"}:
            raise _bad_request("Invalid 'hyperparameters'.", "hyperparameters")
        state = self._ft_state()
        examples = sum(1 for line in files["training_file"][1].splitlines() if line.strip())
        job_id = self._new_id("ftjob-")
        now = time.time()
        suffix = body.get("suffix")
        obj = {
            "id": job_id, "object": "fine_tuning.job", "model": model, "created_at": int(now),
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-test", "result_files": [],
            "status": "validating_files", "training_file": files["training_file"][0],
            "validation_file": files.get("validation_file", (None,))[0],
            "hyperparameters": {"n_epochs": hyper.get("n_epochs", "auto"), "batch_size": hyper.get("batch_size", "auto"),
                                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto")},
            "trained_tokens": None, "error": None, "seed": body.get("seed", 0), "estimated_finish": None,
            "integrations": [], "user_provided_suffix": suffix, "method": {"type": "supervised"},
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else None,
        }  # fmt: skip
        fail = state.fail_with
        if examples < 10:
            fail = f"Training file has {examples} example(s), but must have at least 10 examples"
        job = _FineTuneJob(obj, now, state.seconds, fail, "invalid_training_file" if examples < 10 else "training_failed")
        job.event("info", f"Created fine-tuning job: {job_id}", now)
        with self._lock:
            state.by_id[job_id] = job
            state.jobs.append(job_id)
            drop = state.drop_creates > 0
            state.drop_creates -= drop
        if state.create_delay:
            await asyncio.sleep(state.create_delay)
        if drop and request.transport is not None:
            request.transport.close()  # the job exists; the client never hears of it
        return _json_response(obj)

    def _ft_job(self, job_id: str) -> _FineTuneJob:
        state = self._ft_state()
        job = state.by_id.get(job_id)
        if job is None:
            raise ApiError(404, f"No such fine-tuning job: {job_id}", param="id")
        with self._lock:
            job.advance(time.time(), state.models)
        return job

    async def _get_ft_job(self, request: web.Request) -> web.Response:
        obj = self._ft_job(request.match_info["job_id"]).obj
        echo = self._echo(request)
        if echo and obj.get("error"):  # a failure message that quotes the caller's header
            obj = dict(obj, error=dict(obj["error"], message=f"{obj['error']['message']} You sent: {echo}"))
        return _json_response(obj)

    async def _list_ft_jobs(self, request: web.Request) -> web.Response:
        state = self._ft_state()
        ids = list(reversed(state.jobs))
        after = request.query.get("after")
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        limit = int(request.query.get("limit", 20))
        data = [self._ft_job(i).obj for i in ids[:limit]]
        return _json_response({"object": "list", "data": data, "has_more": len(ids) > limit})

    async def _ft_events(self, request: web.Request) -> web.Response:
        job = self._ft_job(request.match_info["job_id"])
        events = list(reversed(job.events))  # newest first, as the API lists them
        after = request.query.get("after")
        ids = [e["id"] for e in events]
        if after in ids:
            events = events[ids.index(after) + 1 :]
        limit = int(request.query.get("limit", 20))
        echo = self._echo(request)
        if echo:  # an event that quotes the caller's header
            events = [{"object": "fine_tuning.job.event", "id": f"ftevent-echo-{len(job.events)}", "created_at": int(time.time()),
                       "level": "warn", "message": f"Checked credentials: {echo}", "data": {"auth": echo}, "type": "message"},
                      *events]  # fmt: skip
        return _json_response({"object": "list", "data": events[:limit], "has_more": len(events) > limit})

    async def _cancel_ft_job(self, request: web.Request) -> web.Response:
        job = self._ft_job(request.match_info["job_id"])
        state = self._ft_state()
        with self._lock:
            state.cancels += 1
            if job.obj["status"] in ("succeeded", "failed", "cancelled"):
                raise _bad_request(f"Job {job.obj['id']} has already {job.obj['status']}.", "id")
            job.obj.update(status="cancelled", finished_at=int(time.time()))
            job.event("info", "Fine-tuning job cancelled", time.time())
        return _json_response(job.obj)

    def _finetuned_completion(self, chat: ChatRequest) -> dict[str, Any]:
        """A fine-tuned model answers the expected rating with two decimals ("5.23"); its first
        token ("5") carries the reference distribution's top logprobs."""
        value = reference_expected(chat.word, self.model.scale)
        content = f"{value:.2f}"
        head, tail = content.split(".")
        tokens = reference_top_logprobs(chat.word, self.model.scale, self.model.off_scale_mass)
        logprobs = None
        if chat.top_logprobs is not None:
            first = dict(tokens).get(head, -20.0)
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in tokens[: chat.top_logprobs]]
            logprobs = {"content": [
                {"token": head, "logprob": first, "bytes": list(head.encode()), "top_logprobs": top},
                {"token": "." + tail, "logprob": -0.1, "bytes": list(("." + tail).encode()), "top_logprobs": []},
            ], "refusal": None}  # fmt: skip
        message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        with self._lock:
            self._stats.chat_ok += 1
        return {"id": self._new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                "model": chat.model, "usage": {"prompt_tokens": chat.prompt_chars // 4 + 1, "completion_tokens": 3,
                                               "total_tokens": chat.prompt_chars // 4 + 4},
                "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}]}  # fmt: skip


FINETUNABLE_PREFIXES = ("gpt-4o-mini", "gpt-4o-2024", "gpt-4.1", "gpt-3.5-turbo", "test-ft-")


@dataclass(slots=True)
class _FineTuneJob:
    """A fine-tuning job: validating_files, then running, then succeeded (or failed halfway) after `seconds`."""

    obj: dict[str, Any]
    started: float
    seconds: float
    fail_with: str | None
    fail_code: str
    events: list[dict[str, Any]] = field(default_factory=list)
    steps_logged: int = 0

    def event(self, level: str, message: str, at: float) -> None:
        self.events.append({"object": "fine_tuning.job.event", "id": f"ftevent-{self.obj['id']}-{len(self.events):04d}",
                            "created_at": int(at), "level": level, "message": message, "data": {}, "type": "message"})  # fmt: skip

    def advance(self, now: float, models: set[str]) -> None:
        """Move the job on to where it is at time `now` (called under the server's lock)."""
        obj = self.obj
        if obj["status"] in ("succeeded", "failed", "cancelled"):
            return
        elapsed = now - self.started
        if obj["status"] == "validating_files" and elapsed >= self.seconds * 0.2:
            if self.fail_with and self.fail_code == "invalid_training_file":
                self._fail(now)
                return
            obj["status"] = "running"
            self.event("info", "Validated training file", now)
            self.event("info", "Fine-tuning job started", now)
        if obj["status"] != "running":
            return
        steps = 10
        done = min(steps, int(steps * elapsed / self.seconds))
        for step in range(self.steps_logged + 1, done + 1):
            self.event("info", f"Step {step}/{steps}: training loss={1.0 / step:.4f}", now)
        self.steps_logged = max(self.steps_logged, done)
        if self.fail_with and elapsed >= self.seconds * 0.5:
            self._fail(now)
        elif elapsed >= self.seconds:
            suffix = obj.get("user_provided_suffix") or ""
            model = f"ft:{obj['model']}:workbench-test:{suffix}:{obj['id'][-8:]}"
            models.add(model)
            obj.update(status="succeeded", finished_at=int(now), fine_tuned_model=model, trained_tokens=1000)
            self.event("info", f"New fine-tuned model created: {model}", now)
            self.event("info", "The job has successfully completed", now)

    def _fail(self, now: float) -> None:
        self.obj.update(status="failed", finished_at=int(now), error={"code": self.fail_code, "message": self.fail_with, "param": None})
        self.event("error", self.fail_with or "failed", now)


@dataclass(slots=True)
class _FineTuning:
    seconds: float = 1.0
    fail_with: str | None = None
    jobs: list[str] = field(default_factory=list)
    by_id: dict[str, _FineTuneJob] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    cancels: int = 0
    create_delay: float = 0.0
    drop_creates: int = 0


def _check_training_file(data: bytes) -> None:
    """A fine-tune file must be JSONL of {"messages": [...]} chats ending with the assistant's answer."""
    for line_no, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = _loads(raw)
        except ValueError:
            raise _bad_request(f"Invalid file format for Fine-Tuning API: line {line_no} is not valid JSON.", "file") from None
        messages = entry.get("messages") if isinstance(entry, dict) else None
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _bad_request(f"Invalid file format for Fine-Tuning API: line {line_no} has no 'messages' list.", "file")
        if messages[-1].get("role") != "assistant" or not isinstance(messages[-1].get("content"), str):
            raise _bad_request(f"Invalid file format for Fine-Tuning API: line {line_no} does not end with an assistant message.", "file")


def parse_batch_lines(data: bytes, pattern: re.Pattern[str]) -> tuple[list[tuple[str, ChatRequest]], list[dict[str, Any]]]:
    """Parse and validate a batch input file: ([(custom_id, request)], [batch errors]).

    Errors follow the documented shape {code, message, param, line} (1-based line).
    """
    lines: list[tuple[str, ChatRequest]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def fail(line_no: int, code: str, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": line_no})

    for line_no, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = _loads(raw)
        except ValueError:
            fail(line_no, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(entry, dict):
            fail(line_no, "invalid_json_line", "Each line must be a JSON object.")
            continue
        custom_id = entry.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            fail(line_no, "missing_required_parameter", "Missing 'custom_id'.", "custom_id")
        elif custom_id in seen:
            fail(line_no, "duplicate_custom_id", f"The custom_id {custom_id!r} is duplicated.", "custom_id")
        elif entry.get("method") != "POST":
            fail(line_no, "invalid_method", "'method' must be 'POST'.", "method")
        elif entry.get("url") != CHAT_ENDPOINT:
            fail(line_no, "mismatched_endpoint", f"'url' must be {CHAT_ENDPOINT!r}.", "url")
        else:
            seen.add(custom_id)
            try:
                lines.append((custom_id, parse_chat_request(entry.get("body"), pattern)))
            except ApiError as error:
                fail(line_no, "invalid_request", error.body["error"]["message"], "body")
    if not lines and not errors:
        fail(0, "empty_file", "The input file contains no requests.")
    return lines, errors


# --------------------------------------------------------------------------- command line


async def _serve(server: OpenAIServer) -> None:
    await server.open()
    print(f"READY {server.url}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground until killed; prints "READY http://127.0.0.1:PORT"."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--scale", type=int, nargs=2, default=(1, 7), metavar=("MIN", "MAX"))
    parser.add_argument("--off-scale-mass", type=float, default=0.02)
    parser.add_argument("--batch-seconds", type=float, default=0.5)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--rpm", type=int, default=None, help="enforce requests per minute (sliding window, with headers)")
    parser.add_argument("--tpm", type=int, default=None, help="enforce tokens per minute")
    parser.add_argument("--models", nargs="*", default=None, help="what GET /v1/models lists")
    parser.add_argument("--echo-key", action="store_true", help="echo the Authorization header in every field")
    parser.add_argument("--completions-logprobs", choices=COMPLETIONS_LOGPROBS, default="legacy",
                        help="the shape of /v1/completions logprobs")  # fmt: skip
    args = parser.parse_args(argv)
    server = OpenAIServer(
        latency=args.latency,
        scale=tuple(args.scale),
        off_scale_mass=args.off_scale_mass,
        batch_seconds=args.batch_seconds,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        rpm=args.rpm,
        tpm=args.tpm,
        models=args.models,
        echo_key=args.echo_key,
        completions_logprobs=args.completions_logprobs,
    )
    try:
        asyncio.run(_serve(server))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
