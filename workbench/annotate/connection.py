"""Reaching Label Studio: the URL and key, the label-studio-sdk client, and errors users can act on.

The key comes from the environment (LABEL_STUDIO_API_KEY, or the variable the
campaign names) or, for a server `workbench annotate serve` started, from the
study's ``.workbench/label-studio.json`` (mode 600). It is never written to
the store, printed or put in an error message. Legacy tokens and personal
access tokens both work: the SDK exchanges a personal access token (a JWT
refresh token) at /api/token/refresh/ for five-minute access tokens.

Every response, whatever the call (the SDK's or a plain request), comes in
through one door, :class:`RedactingTransport`: the token (and any ``Bearer``
value) is masked in its body and headers before anything parses, prints or
stores it, so a proxy that echoes ``Authorization: Token ...`` into an error
body or a task puts it nowhere.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from workbench.errors import WorkbenchError
from workbench.extras import require
from workbench.redact import Redactor

httpx = require("httpx", "`workbench annotate`")

T = TypeVar("T")
STATE_DIR = ".workbench"
SERVER_FILE = "label-studio.json"
SECRET_FILE = "annotate.secret"


# --------------------------------------------------------------------------- the study's private folder


def state_dir(base_dir: Path) -> Path:
    """The study's private folder (mode 700), with a .gitignore so nothing in it is committed."""
    d = Path(base_dir) / STATE_DIR
    d.mkdir(mode=0o700, exist_ok=True)
    ignore = d / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return d


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 600), replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def study_secret(base_dir: Path) -> bytes:
    """The study's secret for pseudonymous annotator ids, made on first use."""
    path = state_dir(base_dir) / SECRET_FILE
    if not path.exists():
        write_private(path, secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def saved_server(base_dir: Path) -> dict[str, str] | None:
    path = Path(base_dir) / STATE_DIR / SERVER_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise WorkbenchError(f"{path}: unreadable; delete it and run `workbench annotate serve` again.") from None


def save_server(base_dir: Path, info: dict[str, str]) -> Path:
    path = state_dir(base_dir) / SERVER_FILE
    write_private(path, json.dumps(info, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- the client


@dataclass
class Connection:
    """An SDK client bound to one server, and the way every call reaches it."""

    url: str
    client: Any  # label_studio_sdk.LabelStudio
    key_source: str
    _http: httpx.Client | None = None
    server_time: str | None = None  # the Date header of the last plain request: the server's clock
    database: str | None = None  # what the server runs on, when known (the server `annotate serve` started): sqlite | postgresql
    # whether the server has the read-only endpoints `annotate serve` adds (/api/workbench/...): None until asked
    workbench_api: bool | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call; a server that cannot be reached, a refused key or an API error become one clear line."""
        ApiError = require("label_studio_sdk.core.api_error", "`workbench annotate`").ApiError

        try:
            return fn()
        except ApiError as exc:
            raise self._api_error(what, exc.status_code, exc.body) from None
        except httpx.HTTPStatusError as exc:
            raise self._api_error(what, exc.response.status_code, _body(exc.response)) from None
        except (httpx.TransportError, OSError) as exc:
            raise WorkbenchError(
                f"Label Studio at {self.url} cannot be reached while trying to {what} ({type(exc).__name__}): "
                "check that the server is running, then run the command again (finished work is kept)."
            ) from None
        except ValueError as exc:  # a body that is not JSON (an HTML page from a proxy)
            raise WorkbenchError(
                f"Label Studio at {self.url} answered something that is not JSON when trying to {what}: "
                "is the URL Label Studio's (not a proxy's or a login page)?"
            ) from exc

    @property
    def timeout(self) -> float:
        """Seconds per request (the campaign's server.timeout)."""
        return float(self.client._client_wrapper.get_timeout() or 60)

    def request(self, method: str, path: str, **kwargs) -> Any:
        """A plain JSON request with the SDK's headers (so a personal access token is refreshed the same way):
        for what the SDK does not cover (the invite link) and bulk reads where parsing into its models is slow."""
        if self._http is None:
            self._http = redacting_client(self.redactor, self.timeout)
        headers = self.client._client_wrapper.get_headers()
        try:
            response = self._http.request(method, self.url + path, headers=headers, **kwargs)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            if method != "GET":
                raise
            # a kept-alive connection the server closed just as it was reused (gunicorn closes idle ones after 2 s,
            # and a worker at its request limit): a read is asked once more, on a new connection
            response = self._http.request(method, self.url + path, headers=headers, **kwargs)
        response.raise_for_status()
        if response.headers.get("date"):
            self.server_time = response.headers["date"]
        return response.json() if response.content else None

    def _api_error(self, what: str, status: int | None, body: Any) -> WorkbenchError:
        if status == 401:
            return WorkbenchError(
                f"Label Studio at {self.url} refused the token from {self.key_source} (401): "
                "copy the access token from Account & Settings and set it again."
            )
        if status == 403:
            return WorkbenchError(
                f"Label Studio at {self.url} does not allow this token to {what} (403): "
                "use an administrator's token, or enable legacy tokens for the organization."
            )
        detail = body.get("detail") or body.get("validation_errors") or body if isinstance(body, dict) else body
        text = " ".join(self.redactor(str(detail)).split())[:300]
        return WorkbenchError(f"Label Studio at {self.url} answered {status} when trying to {what}: {text}")


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def resolve_server(base_dir: Path, url: str | None, api_key_env: str = "LABEL_STUDIO_API_KEY") -> tuple[str, str, str]:
    """(url, key, where the key came from): the study's url, else LABEL_STUDIO_URL, else the server `serve` started."""
    saved = saved_server(base_dir)
    url = url or os.environ.get("LABEL_STUDIO_URL") or (saved or {}).get("url")
    if not url:
        raise WorkbenchError(
            "No Label Studio server: give the campaign's server.url, set LABEL_STUDIO_URL, or start one with `workbench annotate serve`."
        )
    url = url.rstrip("/")
    key = os.environ.get(api_key_env)
    source = api_key_env
    if not key and saved and saved.get("url", "").rstrip("/") == url:
        key, source = saved.get("token"), f"{STATE_DIR}/{SERVER_FILE}"
    if not key:
        raise WorkbenchError(
            f"No Label Studio token for {url}: set {api_key_env} to the access token from the server's "
            "Account & Settings page (a legacy token or a personal access token)."
        )
    return url, key, source


class RedactingTransport(httpx.BaseTransport):
    """The one door every Label Studio response comes in through: the token masked in its body and headers."""

    def __init__(self, redactor: Redactor, inner: httpx.BaseTransport | None = None) -> None:
        self.redactor = redactor
        self.inner = inner or httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
        text = body.decode("utf-8", "surrogateescape")
        clean = self.redactor(text)
        headers = self.redactor.headers(response.headers)
        if clean == text and headers == {k.lower(): v for k, v in response.headers.items()}:
            return httpx.Response(response.status_code, headers=response.headers, content=body, request=request,
                                  extensions=response.extensions)  # fmt: skip
        headers = {k: v for k, v in headers.items() if k not in ("content-length", "content-encoding", "transfer-encoding")}
        return httpx.Response(response.status_code, headers=headers, content=clean.encode("utf-8", "surrogateescape"),
                              request=request, extensions=response.extensions)  # fmt: skip

    def close(self) -> None:
        self.inner.close()


def redacting_client(redactor: Redactor, timeout: float) -> httpx.Client:
    return httpx.Client(transport=RedactingTransport(redactor), timeout=timeout, follow_redirects=True,
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))  # fmt: skip


def connect(
    url: str, key: str, *, key_source: str = "LABEL_STUDIO_API_KEY", timeout: float = 60, database: str | None = None
) -> Connection:
    """A client for the server; checks the key with one request (whoami)."""
    LabelStudio = require("label_studio_sdk", "`workbench annotate`").LabelStudio
    ApiError = require("label_studio_sdk.core.api_error", "`workbench annotate`").ApiError

    redactor = Redactor([key])
    http = redacting_client(redactor, timeout)
    try:
        client = LabelStudio(base_url=url, api_key=key, timeout=timeout, httpx_client=http)
    except ApiError:  # a personal access token that has expired or has no expiry
        raise WorkbenchError(
            f"The token from {key_source} is an expired or invalid personal access token: make a new one in Label Studio."
        ) from None
    except (httpx.TransportError, OSError) as exc:
        raise WorkbenchError(
            f"Label Studio at {url} cannot be reached while trying to check the token ({type(exc).__name__}): "
            "check that the server is running."
        ) from None
    conn = Connection(url, client, key_source, http, database=database, redactor=redactor)
    conn.call("check the token", lambda: client.users.whoami())
    return conn


def server_database(base_dir: Path, url: str) -> str | None:
    """What the server at the URL runs on, when it is the one `annotate serve` started for the study."""
    saved = saved_server(base_dir) or {}
    if saved.get("url", "").rstrip("/") == url.rstrip("/"):
        return saved.get("database_kind")
    return None


def public_url(base_dir: Path, url: str) -> str:
    """The URL annotators open for the server at `url`: the public URL `annotate serve` was given, else the URL."""
    saved = saved_server(base_dir) or {}
    if saved.get("url", "").rstrip("/") == url.rstrip("/") and saved.get("public_url"):
        return saved["public_url"].rstrip("/")
    return url.rstrip("/")
