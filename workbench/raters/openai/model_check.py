"""Checking a rater's model name against the models its server lists (GET {base_url}/models).

Some servers accept any model name (llama.cpp's server echoes it back), so a
typo would rate with whatever model is loaded; OpenAI answers an unknown name
with a 404 on every request. Where the server lists its models, ``rate
--dry-run`` and the first request of a run check the name first and say what
the server has (with a did-you-mean). A server that does not list its models
(404, not JSON, no list) is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import WorkbenchError, did_you_mean
from workbench.redact import Redactor

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SHOWN = 8


@dataclass(frozen=True)
class ModelList:
    """What the server said: the model ids it lists, or why there is no list."""

    models: tuple[str, ...] | None
    reason: str | None = None  # why models is None


def list_models(base_url: str | None, key: str, *, timeout: float, redact: Redactor,
                headers: dict[str, str] | None = None) -> ModelList:  # fmt: skip
    """The model ids the server lists; raises WorkbenchError when the server refuses the key (401/403)."""
    import httpx

    from workbench.raters.openai.client import http_client

    url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/models"
    try:
        with http_client(redact, min(timeout, 30.0)) as client:  # the redacting door, as every other request
            response = client.get(url, headers={"Authorization": f"Bearer {key}", **(headers or {})})
    except httpx.HTTPError as exc:
        return ModelList(None, f"could not list the server's models: {redact(exc.__class__.__name__ + ': ' + str(exc))[:120]}")
    if response.status_code == 401:
        raise KeyRefusedOnList(401)
    if response.status_code == 403:  # a restricted key may rate without the right to list models
        return ModelList(None, "the key may not list the server's models (HTTP 403)")
    if response.status_code >= 300:
        return ModelList(None, f"the server does not list its models (HTTP {response.status_code})")
    try:
        data = response.json()
        entries = data["data"] if isinstance(data, dict) else data
        ids = tuple(str(e["id"]) if isinstance(e, dict) else str(e) for e in entries)
    except (ValueError, KeyError, TypeError):
        return ModelList(None, "the server's model list is not the documented JSON")
    return ModelList(ids)


class KeyRefusedOnList(Exception):
    """The server refused the key when asked for its models."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def check_model(model: str, listed: ModelList, *, rater: str, base_url: str | None) -> str:
    """A line saying the model is listed (or could not be checked); WorkbenchError when the server lists others."""
    where = base_url or DEFAULT_BASE_URL
    if listed.models is None:
        return f"Model {model!r} not checked: {listed.reason}."
    if model in listed.models:
        return f"Model {model!r} is served by {where}."
    shown = ", ".join(listed.models[:SHOWN]) + (f" and {len(listed.models) - SHOWN} more" if len(listed.models) > SHOWN else "")
    raise WorkbenchError(
        f"raters.{rater}: the server at {where} does not list the model {model!r}.{did_you_mean(model, listed.models)}"
        f" It lists: {shown or 'nothing'}. Fix model: in the study."
    )
