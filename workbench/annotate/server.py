"""A local Label Studio server: `workbench annotate serve`, and the tests' server.

Label Studio lives in its own virtualenv (scripts/label_studio.sh), since it
pins its own Django stack. A new data directory starts as a copy of the
migrated, empty one that script makes, so a first start takes seconds rather
than the minutes its 200-odd migrations take.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.extras import require

httpx = require("httpx", "`workbench annotate`")

DEFAULT_VENV = Path.home() / ".cache" / "workbench" / "label-studio-venv"
INSTALL_HINT = "install it with scripts/label_studio.sh (its own virtualenv), or set WORKBENCH_LABEL_STUDIO to its `label-studio` program"


def ls_venv() -> Path:
    return Path(os.environ.get("WORKBENCH_LS_VENV") or DEFAULT_VENV)


def label_studio_program() -> Path:
    """The `label-studio` executable: WORKBENCH_LABEL_STUDIO, the workbench's Label Studio virtualenv, or PATH."""
    explicit = os.environ.get("WORKBENCH_LABEL_STUDIO")
    if explicit:
        if not Path(explicit).is_file():
            raise WorkbenchError(f"WORKBENCH_LABEL_STUDIO={explicit}: no such file; {INSTALL_HINT}.")
        return Path(explicit)
    candidate = ls_venv() / "bin" / "label-studio"
    if candidate.is_file():
        return candidate
    found = shutil.which("label-studio")
    if found:
        return Path(found)
    raise WorkbenchError(f"Label Studio is not installed: {INSTALL_HINT}.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(data_dir: Path, url: str) -> dict[str, str]:
    """The environment a local server runs in: its data here, no telemetry, version checks or error reporting,
    sign-up only through the invite link."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_HOST=url,
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        SENTRY_RATE="0",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        DJANGO_DB="sqlite",
        LOG_LEVEL=os.environ.get("WORKBENCH_LS_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class LocalServer:
    url: str
    username: str
    password: str
    token: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """Stop the server (and anything it started): SIGINT, then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        except ProcessLookupError:
            pass


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM when the process that started it dies (a killed test worker, a killed CLI),
    so no server outlives its owner."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def prepare_data_dir(data_dir: Path) -> None:
    """A new data directory starts from the migrated, empty copy scripts/label_studio.sh made (when there is one)."""
    if (data_dir / "label_studio.sqlite3").exists():
        return
    pristine = ls_venv() / "pristine"
    data_dir.mkdir(parents=True, exist_ok=True)
    if (pristine / ".done").exists():
        shutil.copytree(pristine, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".done"))


def start_server(
    data_dir: Path, *, username: str, password: str, token: str, port: int | None = None, log_path: Path | None = None, timeout: float = 600
) -> LocalServer:
    """Start Label Studio on 127.0.0.1 and wait until it answers; the admin account and its token are made on first start."""
    program = label_studio_program()
    data_dir = Path(data_dir).resolve()
    prepare_data_dir(data_dir)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_path or data_dir / "server.log"
    cmd = [
        str(program), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--username", username, "--password", password, "--user-token", token,
        "--enable-legacy-api-token",
    ]  # fmt: skip
    log = open(log_path, "ab")  # noqa: SIM115 - the server writes to it for its whole life
    process = subprocess.Popen(
        cmd, env=server_environment(data_dir, url), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if os.name == "posix" else None, cwd=data_dir,
    )  # fmt: skip
    log.close()
    server = LocalServer(url, username, password, token, data_dir, log_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise WorkbenchError(f"Label Studio stopped while starting (see {log_path}): " + " | ".join(tail))
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise WorkbenchError(f"Label Studio did not answer at {url} within {timeout:.0f} s (see {log_path}).")
