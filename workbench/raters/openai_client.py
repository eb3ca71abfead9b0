"""Calls through the official ``openai`` client (files, batches): one line for every way they fail.

The client raises its own exceptions (their text holds the server's error body,
which a hostile server fills with the key), returns a bare string when a
server answers with something that is not JSON, and raises JSONDecodeError on
a broken body. :func:`call` turns each into a WorkbenchError of one line, in
the words the chat path uses for the same failure ("HTTP 500: ...",
"connection failed: ...", "no response within ... s", "the response is not
valid JSON"), with the key redacted, and no exception chained to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from workbench.errors import WorkbenchError
from workbench.redact import Redactor

T = TypeVar("T")


class ServerError(WorkbenchError):
    """The server failed a call the job needs (submit, poll, download): the job fails with this reason."""


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

    from workbench.raters.http import KeyRefused, refused_message

    def fail(reason: str) -> ServerError:
        line = " ".join(redact(reason).split())[:300]
        return ServerError(f"{what} failed: {line}")

    try:
        result = fn(*args, **kwargs)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise KeyRefused(refused_message(key_env, exc.status_code)) from None
    except openai.APIStatusError as exc:
        raise fail(f"HTTP {exc.status_code}: {_message(exc.body, 'no message')}") from None
    except openai.APITimeoutError:
        raise fail(f"no response within {timeout:g} s") from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        detail = f"{cause.__class__.__name__}" if cause is not None else "no connection"
        raise fail(f"connection failed: {detail}") from None
    except (json.JSONDecodeError, openai.APIResponseValidationError):
        raise fail("the response is not valid JSON") from None
    except openai.OpenAIError as exc:  # anything else the client raises: its text, redacted, on one line
        raise fail(f"{exc.__class__.__name__}: {exc}") from None
    if expect is not None and not hasattr(result, expect):
        shown = result[:80] if isinstance(result, str) else type(result).__name__
        raise fail(f"the response is not valid JSON: {shown!r}")
    return result
