"""A Label Studio server: `workbench annotate serve`, the tests' and the benchmarks' server.

Two ways to run it:

- **development** (the default, for a one-person pilot): Label Studio's own
  ``label-studio start``: Django's development server, one process, on
  SQLite in the data directory. Django says not to use it in production.
- **production** (``database`` given, for a lab): Label Studio on
  PostgreSQL, served by gunicorn with several worker processes (threads in
  each), an RQ worker for its background jobs on Redis when Redis answers
  (without Redis the jobs run inside the request, and :attr:`LocalServer.notes`
  says so), the static files served by Label Studio's own ``/static/`` view
  from the build its wheel ships, and the host, CSRF and cookie settings made
  consistent with the public URL annotators see (behind the lab's reverse
  proxy and HTTPS).

Both run with a settings module of ours (:data:`SETTINGS_MODULE`, written into
the data directory) over Label Studio's: it reads the server's configuration
(database, Django secret key, Redis, public URL) from a file of mode 600, so no
secret is on a command line or in the environment. Label Studio lives in its
own virtualenv (scripts/label_studio.sh), since it pins its own Django stack.

A new SQLite data directory starts as a copy of the migrated, empty one the
script makes; a new PostgreSQL database starts as a copy of a migrated, empty
template database (made once per server and Label Studio version), so a first
start takes seconds rather than the minutes its 200-odd migrations take.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from workbench.annotate.connection import write_private
from workbench.errors import WorkbenchError
from workbench.extras import require
from workbench.files import cache_root

httpx = require("httpx", "`workbench annotate`")

INSTALL_HINT = "install it with scripts/label_studio.sh (its own virtualenv), or set WORKBENCH_LABEL_STUDIO to its `label-studio` program"
SETTINGS_MODULE = "workbench_ls_settings"
CONFIG_FILE = "workbench-server.json"
RQ_QUEUES = ("critical", "high", "default", "low")

SETTINGS_SOURCE = '''"""Written by workbench: Label Studio's settings, with the server's configuration read from a file of mode 600."""
import importlib.util as _util
import json as _json
import os as _os

# Label Studio's own settings, run in this module (imported under another name they would meet themselves half-made)
_origin = _util.find_spec("label_studio.core.settings.label_studio").origin
with open(_origin, encoding="utf-8") as _f:
    exec(compile(_f.read(), _origin, "exec"))

with open(_os.environ["WORKBENCH_LS_CONFIG"], encoding="utf-8") as _f:
    _wb = _json.load(_f)

if _wb.get("secret_key"):
    SECRET_KEY = _wb["secret_key"]
if _wb.get("database"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", **_wb["database"],
                             "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True, "OPTIONS": {"connect_timeout": 10}}}
if _wb.get("redis"):
    RQ_QUEUES = {_q: {"URL": _wb["redis"], "DEFAULT_TIMEOUT": 180} for _q in ("critical", "high", "default", "low")}
else:  # no Redis: Label Studio runs its background jobs inside the request (a socket that does not exist: refused at once)
    RQ_QUEUES = {_q: {"UNIX_SOCKET_PATH": "/nonexistent/workbench-no-redis.sock", "DB": 0, "DEFAULT_TIMEOUT": 180}
                 for _q in ("critical", "high", "default", "low")}
_public = _wb["public_url"].rstrip("/")
HOSTNAME = _public
CSRF_TRUSTED_ORIGINS = sorted({_public, *_wb.get("origins", [])})
ALLOWED_HOSTS = sorted(set(_wb["allowed_hosts"]))
USE_X_FORWARDED_HOST = True
if _public.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
ROOT_URLCONF = "workbench_ls_urls"
'''

URLS_MODULE = "workbench_ls_urls"
URLS_SOURCE = '''"""Written by workbench: Label Studio's URLs, and two read-only endpoints for `workbench annotate pull`.

GET /api/workbench/changes/?projects=1,2,3  every listed project of the caller's organization, in one answer:
    its counts as Label Studio's project list gives them and the newest ``updated_at`` of its tasks (Label Studio
    bumps a task's when one of its annotations is made, edited or deleted): a pull when nothing changed asks this
    once instead of once per list.
GET /api/workbench/tasks/?project=ID[&since=TIME]  the project's tasks (those updated after TIME) with their
    annotations, as plain rows: what Label Studio's task list with fields=all gives, without its serializers; and
    the project's counts, read in the same snapshot of the database (repeatable read on PostgreSQL, one read
    transaction on SQLite), so an annotation made while the tasks are read is in both or in neither.
"""
from django.db import connection, transaction
from django.db.models import Max, OuterRef, Subquery
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.urls import urlpatterns as _label_studio_urlpatterns
from projects.models import Project, ProjectManager
from tasks.models import Annotation, Task

_TIME = serializers.DateTimeField()
_COUNTS = ["task_number", "total_annotations_number", "skipped_annotations_number"]


def _time(value):
    return _TIME.to_representation(value) if value is not None else None


def _ids(text):
    return [int(x) for x in (text or "").split(",") if x.strip().isdigit()]


class Changes(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        projects = Project.objects.filter(organization=request.user.active_organization, id__in=_ids(request.GET.get("projects")))
        newest = Task.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(m=Max("updated_at")).values("m")
        projects = ProjectManager.with_counts_annotate(projects, fields=_COUNTS).annotate(wb_newest=Subquery(newest))
        out = {str(p.id): {**{k: getattr(p, k) or 0 for k in _COUNTS}, "updated_at": _time(p.wb_newest)} for p in projects}
        return Response({"now": _time(timezone.now()), "projects": out})


class Tasks(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        projects = Project.objects.filter(organization=request.user.active_organization)
        project = get_object_or_404(projects, pk=int(request.GET.get("project") or 0))
        since = parse_datetime(request.GET.get("since") or "")
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            counted = ProjectManager.with_counts_annotate(Project.objects.filter(pk=project.pk), fields=_COUNTS)
            counts = {k: v or 0 for k, v in counted.values(*_COUNTS)[0].items()}
            tasks = Task.objects.filter(project=project)
            if since is not None:
                tasks = tasks.filter(updated_at__gt=since)
            out = {t: {"id": t, "updated_at": _time(u), "annotations": []} for t, u in tasks.values_list("id", "updated_at")}
            anns = Annotation.objects.filter(project=project)
            if since is not None:
                anns = anns.filter(task_id__in=list(out))
            fields = ("id", "task_id", "completed_by_id", "result", "was_cancelled", "lead_time", "updated_at")
            for a_id, task_id, who, result, cancelled, lead, updated in anns.order_by("id").values_list(*fields):
                if task_id in out:
                    out[task_id]["annotations"].append({"id": a_id, "completed_by": who, "result": result, "was_cancelled": cancelled,
                                                        "lead_time": lead, "updated_at": _time(updated)})
        return Response({"total": len(out), "counts": counts, "tasks": list(out.values())})


urlpatterns = [
    path("api/workbench/changes/", Changes.as_view(), name="workbench-changes"),
    path("api/workbench/tasks/", Tasks.as_view(), name="workbench-tasks"),
    *_label_studio_urlpatterns,
]
'''


def ls_venv() -> Path:
    return Path(os.environ.get("WORKBENCH_LS_VENV") or cache_root() / "label-studio-venv")


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


def _ls_python() -> Path:
    """The Python of Label Studio's virtualenv (beside its `label-studio` program)."""
    py = label_studio_program().parent / "python"
    if not py.exists():
        raise WorkbenchError(f"no python beside {label_studio_program()}: {INSTALL_HINT}.")
    return py


def _ls_package_dir(py: Path) -> Path:
    out = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('label_studio').submodule_search_locations[0])"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise WorkbenchError(f"Label Studio's package cannot be found by {py}: {INSTALL_HINT}.")
    return Path(out.stdout.strip())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now: bound with SO_REUSEADDR, as servers bind, so a port whose last
    connections wait in TIME_WAIT (a server that crashed a moment ago) counts as free."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError:
            return False
    return True


def redis_available(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING at the URL (redis://host:port/db or unix:///path)."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "unix":
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(timeout)
            s.connect(parts.path)
        else:
            s = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
        with s:
            s.settimeout(timeout)
            if parts.password:
                auth = [parts.username, parts.password] if parts.username else [parts.password]
                s.sendall(_resp(["AUTH", *auth]))
                s.recv(256)
            s.sendall(_resp(["PING"]))
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _resp(words: list[str]) -> bytes:
    return f"*{len(words)}\r\n".encode() + b"".join(f"${len(w.encode())}\r\n".encode() + w.encode() + b"\r\n" for w in words)


def default_redis_url(data_dir: Path) -> str:
    """Redis on this machine, in a database number of its own for this data directory (1-15): two servers on one
    Redis must not take each other's jobs."""
    db = 1 + int(hashlib.sha256(str(data_dir).encode()).hexdigest(), 16) % 15
    return f"redis://127.0.0.1:6379/{db}"


def server_environment(data_dir: Path, url: str) -> dict[str, str]:
    """The environment a server runs in: its data here, no telemetry, version checks or error reporting,
    sign-up only through the invite link, our settings module over Label Studio's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_", "POSTGRE_", "HEARTEX_"))}
    env.pop("SECRET_KEY", None)
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
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        WORKBENCH_LS_CONFIG=str(data_dir / CONFIG_FILE),
        PYTHONPATH=str(data_dir),
        LOG_LEVEL=os.environ.get("WORKBENCH_LS_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class LocalServer:
    url: str  # where this machine reaches it (http://127.0.0.1:PORT, or the bound host)
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    public_url: str = ""
    mode: str = "development"  # development | production
    database: str = "sqlite"  # sqlite | postgresql
    workers: int = 1
    redis: str | None = None  # the Redis URL its job queue uses (None: jobs run inside the request)
    notes: list[str] = field(default_factory=list)
    helpers: list[subprocess.Popen] = field(default_factory=list, repr=False)  # the RQ worker

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """Stop the server and what it started: SIGINT (SIGTERM for gunicorn's master), then SIGKILL if it lingers."""
        for proc in [*self.helpers, self.process]:
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGINT if self.mode == "development" else signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            except ProcessLookupError:
                pass

    def worker_pids(self) -> list[int]:
        """The web worker processes (gunicorn's children), for tests that kill one."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [int(x) for x in out.split()]


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


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Database:
    """Label Studio's PostgreSQL database, from a URL."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    name: str

    @classmethod
    def from_url(cls, url: str) -> Database:
        parts = urlsplit(url)
        if not parts.scheme.startswith(("postgresql", "postgres")):
            raise WorkbenchError(
                f"--database {redact_url(url)}: Label Studio's database must be PostgreSQL "
                "(postgresql://user:password@host:5432/name); leave it out for the SQLite development server."
            )
        name = parts.path.lstrip("/")
        if not name:
            raise WorkbenchError(f"--database {redact_url(url)}: name the database (postgresql://user@host:5432/NAME).")
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres", parts.password or "", name)

    def settings(self) -> dict:
        return {"NAME": self.name, "USER": self.user, "PASSWORD": self.password, "HOST": self.host, "PORT": self.port}

    def sqlalchemy_url(self, name: str | None = None) -> str:
        from sqlalchemy.engine import URL

        return URL.create("postgresql+psycopg", self.user, self.password or None, self.host, self.port, name or self.name).render_as_string(
            hide_password=False
        )

    def shown(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"


def redact_url(url: str) -> str:
    """A URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    return url


def _admin_engine(db: Database):
    from sqlalchemy import create_engine

    return create_engine(db.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT", pool_pre_ping=False)


def _pg_error(db: Database, exc: Exception) -> WorkbenchError:
    first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WorkbenchError(f"PostgreSQL at {db.host}:{db.port} for Label Studio's database {db.name!r}: {first[:200]}")


def _template_name(package_dir: Path) -> str:
    stamp = "".join(p.name for p in sorted(package_dir.parent.glob("label_studio-*.dist-info")))
    return "wb_ls_template_" + hashlib.sha1(stamp.encode()).hexdigest()[:10]


def ensure_database(db: Database, py: Path, env: dict[str, str], package_dir: Path, log_path: Path) -> str:
    """Make Label Studio's database when it does not exist: a copy of the migrated template (made once, under an
    advisory lock so concurrent starts wait for one migration). Returns what was done, for the notes."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    admin = _admin_engine(db)
    try:
        with admin.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db.name}).scalar():
                return "existing database"
            template = _template_name(package_dir)
            c.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": template})
            try:
                if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}).scalar():
                    building = template + "_tmp"
                    c.execute(text(f'DROP DATABASE IF EXISTS "{building}"'))
                    c.execute(text(f'CREATE DATABASE "{building}"'))
                    tdb = Database(db.host, db.port, db.user, db.password, building)
                    _migrate(tdb, py, env, log_path)
                    c.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
                c.execute(text(f'CREATE DATABASE "{db.name}" TEMPLATE "{template}"'))
            finally:
                c.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": template})
        return f"new database {db.name!r} (a copy of the migrated template {template!r})"
    except SQLAlchemyError as exc:
        raise _pg_error(db, exc) from None
    finally:
        admin.dispose()


def _migrate(db: Database, py: Path, env: dict[str, str], log_path: Path) -> None:
    """Run Label Studio's migrations into a database (minutes: once per template)."""
    config = Path(env["WORKBENCH_LS_CONFIG"])
    saved = json.loads(config.read_text())
    write_private(config, json.dumps({**saved, "database": db.settings()}))
    try:
        _run_bootstrap(py, env, log_path, "from label_studio.server import _setup_env, _apply_database_migrations\n"
                                          "_setup_env()\n_apply_database_migrations()\n", timeout=1800)  # fmt: skip
    finally:
        write_private(config, json.dumps(saved))


def _run_bootstrap(py: Path, env: dict[str, str], log_path: Path, code: str, timeout: float = 900) -> None:
    with open(log_path, "ab") as log:
        proc = subprocess.run([str(py), "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout, cwd=env["LABEL_STUDIO_BASE_DATA_DIR"])  # fmt: skip
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise WorkbenchError(f"Label Studio could not set up its database (see {log_path}): " + " | ".join(tail)[:400])


BOOTSTRAP_USER = """import json, os, types
from label_studio.server import _setup_env, _apply_database_migrations, _create_user
_setup_env()
_apply_database_migrations()
with open(os.environ["WORKBENCH_LS_CONFIG"], encoding="utf-8") as f:
    admin = json.load(f)["admin"]
_create_user(types.SimpleNamespace(username=admin["username"], password=admin["password"], user_token=admin["token"],
                                   quiet_mode=True, enable_legacy_api_token=True), {})
"""


# --------------------------------------------------------------------------- starting


def _public_parts(public_url: str | None, host: str, port: int) -> tuple[str, list[str], list[str]]:
    """(public URL, allowed hosts, CSRF origins): the URL annotators see, and this machine's own names for it."""
    bound = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    public = (public_url or bound).rstrip("/")
    parts = urlsplit(public)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WorkbenchError(f"--public-url {public_url}: give the URL annotators open, e.g. https://norms.example.edu")
    if parts.path not in ("", "/"):
        raise WorkbenchError(f"--public-url {public_url}: Label Studio cannot live under a path ({parts.path}); give it a host of its own.")
    hosts = {parts.hostname, "127.0.0.1", "localhost"}
    if host not in ("0.0.0.0", "::", ""):
        hosts.add(host)
    origins = {f"{parts.scheme}://{parts.netloc}", bound, f"http://localhost:{port}"}
    return public, sorted(hosts), sorted(origins)


def start_server(
    data_dir: Path,
    *,
    username: str,
    password: str,
    token: str,
    port: int | None = None,
    log_path: Path | None = None,
    timeout: float = 600,
    host: str = "127.0.0.1",
    public_url: str | None = None,
    database: str | None = None,
    workers: int = 4,
    threads: int = 4,
    redis: str | None | bool = None,
    secret_key: str | None = None,
) -> LocalServer:
    """Start Label Studio and wait until it answers; the admin account and its token are made on first start.

    ``database`` None: the SQLite development server. A PostgreSQL URL: the production server (gunicorn with
    ``workers`` processes of ``threads`` threads). ``redis``: a Redis URL for the job queue, None for
    Redis on this machine when it answers, False for none.
    """
    program = label_studio_program()
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host if host not in ("0.0.0.0", "::") else "127.0.0.1")
    public, hosts, origins = _public_parts(public_url, host, port)
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    log_path = log_path or data_dir / "server.log"
    notes: list[str] = []
    redis_url: str | None = None
    if redis is not False and database is not None:
        candidate = redis if isinstance(redis, str) else default_redis_url(data_dir)
        if redis_available(candidate):
            redis_url = candidate
        else:
            notes.append(f"Redis does not answer at {redact_url(candidate)}: Label Studio runs its background jobs inside the "
                         "requests (slower imports and counters); start Redis and restart to use a job queue.")  # fmt: skip
    config = {"public_url": public, "allowed_hosts": hosts, "origins": origins, "redis": redis_url,
              "secret_key": secret_key, "admin": {"username": username, "password": password, "token": token}}  # fmt: skip
    db = Database.from_url(database) if database else None
    if db is not None:
        config["database"] = db.settings()
    (data_dir / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SOURCE)
    (data_dir / f"{URLS_MODULE}.py").write_text(URLS_SOURCE)
    write_private(data_dir / CONFIG_FILE, json.dumps(config))
    env = server_environment(data_dir, public)
    log = open(log_path, "ab")  # noqa: SIM115 - the server writes to it for its whole life
    helpers: list[subprocess.Popen] = []
    try:
        if db is None:
            prepare_data_dir(data_dir)
            cmd = [
                str(program), "start", "--no-browser", "--internal-host", host, "--port", str(port),
                "--data-dir", str(data_dir), "--username", username, "--password", password, "--user-token", token,
                "--enable-legacy-api-token",
            ]  # fmt: skip
            mode, n_workers = "development", 1
            notes.append("development server (Django's runserver, one process, SQLite): for a one-person pilot; "
                         "a lab runs `workbench annotate serve --database postgresql://...`.")  # fmt: skip
        else:
            py = _ls_python()
            gunicorn = py.parent / "gunicorn"
            if not gunicorn.exists():
                raise WorkbenchError(
                    f"gunicorn is not installed in Label Studio's virtualenv ({py.parent.parent}): run scripts/label_studio.sh."
                )
            package_dir = _ls_package_dir(py)
            env["DJANGO_DB"] = "default"
            env["PYTHONPATH"] = f"{data_dir}{os.pathsep}{package_dir}"
            notes.append(ensure_database(db, py, env, package_dir, log_path))
            _run_bootstrap(py, env, log_path, BOOTSTRAP_USER)
            cmd = [
                str(gunicorn), "label_studio.core.wsgi:application", "--bind", f"{host}:{port}", "--workers", str(workers),
                "--threads", str(threads), "--worker-class", "gthread", "--timeout", "120", "--graceful-timeout", "10",
                "--max-requests", "5000", "--max-requests-jitter", "500", "--name", "workbench-label-studio",
            ]  # fmt: skip
            mode, n_workers = "production", workers
            if redis_url:
                rq = subprocess.Popen(
                    [str(py), str(package_dir / "manage.py"), "rqworker", *RQ_QUEUES], env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if os.name == "posix" else None, cwd=data_dir,
                )  # fmt: skip
                helpers.append(rq)
        process = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if os.name == "posix" else None, cwd=data_dir,
        )  # fmt: skip
    except BaseException:
        for h in helpers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(h.pid, signal.SIGKILL)
        raise
    finally:
        log.close()
    server = LocalServer(local, username, password, token, data_dir, log_path, process, public, mode,
                         "postgresql" if db else "sqlite", n_workers, redis_url, notes, helpers)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise WorkbenchError(f"Label Studio stopped while starting (see {log_path}): " + " | ".join(tail)[:600])
        try:
            if httpx.get(f"{local}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise WorkbenchError(f"Label Studio did not answer at {local} within {timeout:.0f} s (see {log_path}).")


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `workbench annotate serve`")
