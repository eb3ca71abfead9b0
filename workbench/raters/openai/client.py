"""The official ``openai`` client (files, Batch, fine-tuning) and the model list, through the one redacting door.

Every response the client receives passes through :class:`RedactingTransport`
(an httpx transport under the client) before the client reads it: the body is
read up to a cap, handed to ``raters/openai/http.py`` :func:`receive` (the door the
aiohttp chat and completions path uses too), which redacts the key in every
encoding from the body and the headers, and only then parsed by the client.
So a key echoed in an upload error, a failed job's message, a job event, a
batch output file or the model list never reaches an object the workbench
reads, prints or stores.

:func:`call` turns each way a call through the client fails into a
WorkbenchError of one line, in the words the chat path uses for the same
failure ("HTTP 500: ...", "connection failed: ...", "no response within ...
s", "the response is not valid JSON"), with the key redacted, and no
exception chained to it. :class:`OpenAIApi` holds the client, its key and its
redactor for one server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from workbench.errors import WorkbenchError
from workbench.raters.openai.wire import MAX_API_RESPONSE, MAX_FILE_CONTENT, KeyRefused, api_key, receive, redactor_for, refused_message
from workbench.redact import Redactor

T = TypeVar("T")


class ServerError(WorkbenchError):
    """The server failed a call the job needs (submit, poll, download): the job fails with this reason."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # a 5xx, 408, 429, timeout or dropped connection: asking again may work


def _transport_class() -> type:
    import httpx

    class RedactingTransport(httpx.BaseTransport):
        """httpx's own transport, with every response read (up to a cap) and redacted before anyone reads it."""

        def __init__(self, redact: Redactor, *, timeout: float | None = None) -> None:
            self.redact = redact
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            cap = MAX_FILE_CONTENT if request.url.path.endswith("/content") else MAX_API_RESPONSE
            chunks, size, cut = [], 0, False
            try:
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > cap:
                        cut = True
                        break
            finally:
                response.close()
            raw = b"".join(chunks)
            answer = receive(response.status_code, raw[:cap] if cut else raw, response.headers, self.redact, cut=cut)
            headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-encoding", "transfer-encoding")}
            return httpx.Response(answer.status, headers=headers, content=answer.body, request=request,
                                  extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")})  # fmt: skip

        def close(self) -> None:
            self.inner.close()

    return RedactingTransport


def http_client(redact: Redactor, timeout: float) -> Any:
    """An httpx client whose every response goes through the redacting door."""
    import httpx

    return httpx.Client(transport=_transport_class()(redact), timeout=timeout, follow_redirects=True)


class OpenAIApi:
    """One server through the official client: the client (its responses redacted where they enter), the
    key's redactor, and :meth:`__call__`, which makes each failure one redacted line."""

    def __init__(self, base_url: str | None, key: str, *, key_env: str, timeout: float, max_retries: int = 3) -> None:
        import openai

        self.key, self.key_env, self.timeout = key, key_env, timeout
        self.redact = redactor_for(key)
        self.client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout,
                                    http_client=http_client(self.redact, timeout))  # fmt: skip

    @classmethod
    def for_rater(cls, resolved: Any, *, timeout: float | None = None, max_retries: int = 3) -> OpenAIApi:
        spec = resolved.spec
        return cls(spec.base_url, api_key(resolved), key_env=spec.api_key_env,
                   timeout=timeout if timeout is not None else spec.timeout, max_retries=max_retries)  # fmt: skip

    def __call__(self, what: str, fn: Callable[..., Any], *args: Any, expect: str | None = "id", **kwargs: Any) -> Any:
        return call(what, fn, *args, redact=self.redact, key_env=self.key_env, timeout=self.timeout, expect=expect, **kwargs)

    def once(self) -> Any:
        """The client without retries: for a call that must never be sent twice blindly (creating a job)."""
        return self.client.with_options(max_retries=0)

    def find(self, what: str, list_fn: Callable[..., Any], match: Callable[[Any], bool], *, pages: int, **params: Any) -> Any | None:
        """The first object of a paged listing (``list_fn``, 100 a page, at most ``pages`` pages) that ``match``es,
        or None: also when the server cannot list them (a failure that is not transient; a transient one raises)."""
        after: str | None = None
        for _ in range(pages):
            try:
                page = self(what, list_fn, expect="data", limit=100, **params, **({"after": after} if after else {}))
            except ServerError as exc:
                if exc.transient:
                    raise
                return None  # a server that does not list them: nothing to adopt
            found = list(page.data or [])
            for obj in found:
                if match(obj):
                    return obj
            if not found or not getattr(page, "has_more", False):
                return None
            after = getattr(found[-1], "id", None)
        return None


def _message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def call(what: str, fn: Callable[..., T], *args: Any, redact: Redactor, key_env: str, timeout: float,
         expect: str | None = "id", **kwargs: Any) -> T:  # fmt: skip
    """fn(*args, **kwargs) through the openai client; every failure is a ServerError saying `what` failed.

    expect: an attribute the answer must have (the documented object), else the answer was not one.
    """
    import openai

    def fail(reason: str, transient: bool = False) -> ServerError:
        line = " ".join(redact(reason).split())[:300]
        return ServerError(f"{what} failed: {line}", transient=transient)

    try:
        result = fn(*args, **kwargs)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise KeyRefused(refused_message(key_env, exc.status_code)) from None
    except openai.APIStatusError as exc:
        code = exc.status_code
        raise fail(f"HTTP {code}: {_message(exc.body, 'no message')}", code >= 500 or code in (408, 409, 429)) from None
    except openai.APITimeoutError:
        raise fail(f"no response within {timeout:g} s", True) from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        detail = f"{cause.__class__.__name__}" if cause is not None else "no connection"
        raise fail(f"connection failed: {detail}", True) from None
    except (json.JSONDecodeError, openai.APIResponseValidationError):
        raise fail("the response is not valid JSON") from None
    except openai.OpenAIError as exc:  # anything else the client raises: its text, redacted, on one line
        raise fail(f"{exc.__class__.__name__}: {exc}") from None
    if expect is not None and not hasattr(result, expect):
        shown = result[:80] if isinstance(result, str) else type(result).__name__
        raise fail(f"the response is not valid JSON: {redact(shown)!r}")
    return result
