"""Test helpers for the Label Studio tests: annotators who sign up and annotate as themselves, and a proxy
that cuts the connection to the server after a number of requests (a server going down mid-push or mid-pull).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from workbench.annotate.labelconfig import FROM_NAME, TO_NAME

PG_SERVER = os.environ.get("WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def ls_database(wanted: bool = True) -> Iterator[str | None]:
    """The URL of a new database for a production Label Studio on the test PostgreSQL server (None when not wanted);
    the server makes it from its migrated template on start; dropped afterwards (with any connection left to it)."""
    if not wanted:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"wb_ls_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_SERVER).set(drivername="postgresql", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = create_engine(make_url(PG_SERVER).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def invite_url(url: str, admin_token: str) -> str:
    r = httpx.get(url + "/api/invite", headers={"Authorization": f"Token {admin_token}"}, timeout=30)
    r.raise_for_status()
    return r.json()["invite_url"]


@dataclass
class Annotator:
    """A person who joined through the invite link and works through Label Studio's API as themselves."""

    url: str
    email: str
    token: str
    user_id: int

    @classmethod
    def sign_up(cls, url: str, invite: str, email: str, password: str = "annotator-pass-123") -> Annotator:
        with httpx.Client(base_url=url, timeout=60) as c:
            c.get(invite)
            token = re.search(r"token=([^&]+)", invite).group(1)
            r = c.post(f"/user/signup/?token={token}", data={
                "csrfmiddlewaretoken": c.cookies.get("csrftoken"), "email": email, "password": password,
            }, headers={"Referer": url + invite})  # fmt: skip
            assert r.status_code == 302, f"sign-up of {email} failed: {r.status_code}"
            key = c.get("/api/current-user/token").json()["token"]
            me = c.get("/api/current-user/whoami").json()
        assert me["active_organization"], "a user who joined through the invite link has an active organization"
        return cls(url, email, key, me["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def next_task(self, project_id: int) -> dict | None:
        """The labeling stream: the next task for this annotator (None when the project has none left for them)."""
        r = httpx.get(f"{self.url}/api/projects/{project_id}/next", headers=self.headers, timeout=60)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def annotate(self, task_id: int, choice: str, *, lead_time: float = 2.0, cancelled: bool = False) -> int:
        result = [] if cancelled else [
            {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choice]}}
        ]  # fmt: skip
        r = httpx.post(f"{self.url}/api/tasks/{task_id}/annotations/", headers=self.headers, timeout=60,
                       json={"result": result, "lead_time": lead_time, "was_cancelled": cancelled})  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def edit(self, annotation_id: int, choice: str) -> None:
        r = httpx.patch(f"{self.url}/api/annotations/{annotation_id}/", headers=self.headers, timeout=60, json={
            "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choice]}}],
        })  # fmt: skip
        r.raise_for_status()

    def delete(self, annotation_id: int) -> None:
        httpx.delete(f"{self.url}/api/annotations/{annotation_id}/", headers=self.headers, timeout=60).raise_for_status()


class CuttingProxy:
    """A TCP proxy in front of the server; `cut()` drops every connection and refuses new ones (the server went
    down), `heal()` lets connections through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self.down = True
            for s in list(self._open):
                _close(s)
            self._open.clear()

    def heal(self) -> None:
        self.down = False

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.down:
                _close(client)
                continue
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        with self._lock:
            self._open.update((client, upstream))

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                _close(a)
                _close(b)

        t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        t.start()
        pipe(client, upstream)
        t.join(5)
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)

    def close(self) -> None:
        self.cut()
        self.sock.close()


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


class EchoProxy:
    """An HTTP proxy in front of Label Studio that echoes the request's ``Authorization`` header back, as a hostile
    or broken proxy might: in a response header of every answer, in an extra field of every JSON object, in a 400
    body the first time a project is created, and as the choice of every annotation chosen as ``echo_choice``."""

    def __init__(self, target: str, echo_choice: str = "3") -> None:
        import http.server
        import json

        proxy = self
        self.target = target.rstrip("/")
        self.failed_create = False
        self.client = httpx.Client(timeout=120)

        def echo_in(value, auth: str):
            if isinstance(value, dict):
                out = {k: echo_in(v, auth) for k, v in value.items()}
                if out.get("choices") == [echo_choice]:
                    out["choices"] = [auth]
                return {**out, "echo": auth}
            if isinstance(value, list):
                return [echo_in(v, auth) for v in value]
            return value

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self) -> None:
                auth = self.headers.get("Authorization", "")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (
                    self.command == "POST"
                    and self.path.startswith("/api/projects/")
                    and self.path.count("/") == 3
                    and not proxy.failed_create
                ):
                    proxy.failed_create = True
                    self._send(400, json.dumps({"detail": f"bad request from Authorization: {auth}"}).encode(), auth)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "accept-encoding")}
                r = proxy.client.request(self.command, proxy.target + self.path, headers=headers, content=body)
                content = r.content
                if "json" in r.headers.get("content-type", "") and content:
                    content = json.dumps(echo_in(r.json(), auth)).encode()
                self._send(r.status_code, content, auth, r.headers.get("content-type", "application/json"))

            def _send(self, status: int, content: bytes, auth: str, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("X-Echo-Authorization", auth)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
