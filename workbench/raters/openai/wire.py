"""The one door every response of an OpenAI-style server enters by: read up to a cap, decoded, parsed, redacted.

Two HTTP stacks talk to OpenAI-style servers: aiohttp for the chat and
completions hot path (``raters/openai/http.py``, about a tenth of the official
client's CPU per call) and the official ``openai`` client over httpx for
files, Batch, fine-tuning and the model list (``raters/openai/client.py``).
Both hand every response, whatever its status, to :func:`receive` before
anything reads it, so the key (in every encoding, see ``workbench/redact.py``)
is gone before a response is printed, logged, stored or parsed into an
object. The key itself (:func:`api_key`), the headers sent with it and the
error of a refused key live here too.

What is read is capped: ``MAX_RESPONSE`` bytes of a chat or completions
answer (a larger one is not a rating: its start is kept in the call log,
saying so), ``MAX_API_RESPONSE`` of any other API answer, ``MAX_FILE_CONTENT``
of a file's content (a batch's output). What is stored of one response is
capped again by the job writer (``jobs/writer.py``, ``MAX_STORED_RESPONSE``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.redact import Redactor

MAX_RESPONSE = 8 << 20
"""Bytes read of one chat or completions response: a larger one is not read further (and is not a rating)."""
MAX_API_RESPONSE = 64 << 20
"""Bytes read of one other answer of the API (a job, a list, an error): a larger one is cut there."""
MAX_FILE_CONTENT = 4 << 30
"""Bytes read of a file's content (a batch's output file)."""


class KeyRefused(WorkbenchError):
    """The server refused the API key: the whole job stops."""


def refused_message(key_env: str, code: int | None) -> str:
    return f"the server refused the API key in ${key_env} (HTTP {code}): check the key and its permissions."


def api_key(rater: Any) -> str:
    """The API key from the environment variable the rater names; a clear error when unset."""
    env = rater.spec.api_key_env
    key = os.environ.get(env)
    if not key:
        where = rater.spec.base_url or "OpenAI"
        raise WorkbenchError(f"raters.{rater.name}: set the environment variable {env} to the API key for {where}.")
    return key


def org_headers() -> dict[str, str]:
    """OpenAI-Organization and OpenAI-Project, from OPENAI_ORG_ID and OPENAI_PROJECT_ID when set."""
    return {
        header: os.environ[env]
        for env, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project"))
        if os.environ.get(env)
    }


def redactor_for(key: str) -> Redactor:
    """The redactor of a server's responses: the key and the organisation and project ids sent with it."""
    return Redactor([key, *org_headers().values()])


@dataclass(frozen=True)
class Answer:
    """A response as it entered the workbench: the key already gone from every part of it.

    text: the body, redacted (what the call log keeps); data: the body parsed as JSON and redacted value
    by value, or None when it is not JSON; headers: lower-case names, redacted values; cut: the body was
    larger than MAX_RESPONSE (or the cap given) and only its start was read; body: the redacted body as
    bytes (the parsed values serialized again when redaction changed them), for a client that parses it.
    """

    status: int
    text: str
    headers: dict[str, str]
    data: Any = None
    cut: bool = False
    body: bytes = b""


def receive(status: int, raw: bytes, headers: Any, redact: Redactor, *, cut: bool = False) -> Answer:
    """The one place a server's response enters: decode, parse, redact. Never raises.

    cut: `raw` is only the start of a larger body; its last characters are dropped too, so no part of a
    secret cut in half by the cap is left.
    """
    if cut:
        raw = raw[: max(0, len(raw) - 8 * redact.longest - 8)]
    text = raw.decode("utf-8", errors="replace")
    try:
        data = None if cut else json.loads(text)
    except ValueError:
        data = None
    clean = redact(text)
    body = None
    if data is not None and (clean != text or "\\u" in text):
        redacted = redact.json(data)  # a key in the body (escaped or not): redact every value
        if redacted != data:
            body = json.dumps(redacted, ensure_ascii=False).encode()
        data = redacted
    return Answer(status, clean, redact.headers(headers), data, cut, body if body is not None else clean.encode())


async def read_capped(content: Any, cap: int) -> tuple[bytes, bool]:
    """At most `cap` bytes of an aiohttp response body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(1 << 20)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
