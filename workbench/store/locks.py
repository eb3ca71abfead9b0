"""Serialising writers across processes.

`lock_names`: one named thing (an item set, say), for one transaction. Take
the lock first thing in the transaction that checks and then writes the
thing: a second process waits for the first to commit, then sees its result.

`study_lock`: one kind of work on the whole store (an `apply`, an `annotate
push`), for as many transactions as the work takes: a second process waits a
bounded time, then is told who holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from workbench.errors import StoreBusyError, StoreLockedError

PG_LOCK_TIMEOUT_S = 120


def lock_names(session: Session, kind: str, names: Iterable[str]) -> None:
    """Hold, until the transaction ends, the lock on each of `names` of this `kind`.

    PostgreSQL: a transaction-scoped advisory lock per name (waits up to
    PG_LOCK_TIMEOUT_S). SQLite: the store's write lock, taken now rather
    than at the first write (waits up to the busy timeout).
    """
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        session.execute(text("DELETE FROM store_meta WHERE 0"))  # takes the write lock, changes nothing
        return
    for name in sorted(set(names)):
        key = int.from_bytes(hashlib.sha256(f"workbench.{kind}:{name}".encode()).digest()[:8], "big", signed=True)
        session.execute(text(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT_S}s'"))
        try:
            with session.begin_nested():
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        except OperationalError:
            raise StoreLockedError(
                f"{kind.replace('_', ' ')} {name} is being written by another process; run the command again when it is done."
            ) from None
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))


# --- one writer of a kind per store: apply, annotate push/pull ------------------------------------------

DEFAULT_LOCK_WAIT_S = 10.0
_POLL_S = 0.2
_HELD: dict[tuple[str, str], int] = {}  # (store, name) -> depth, for this process (a nested take is free)
_HELD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds a store-level lock: the process, its host and since when (epoch seconds)."""

    pid: int | None = None
    host: str = ""
    since: float | None = None
    what: str = ""
    token: str = ""
    started: str = ""  # the process's start time on its host (Linux), to tell a reused pid from the holder

    def describe(self) -> str:
        parts = []
        if self.pid is not None:
            parts.append(
                f"pid {self.pid}"
                + (f" on {self.host}" if self.host and not socket.gethostname().replace(" ", "_").startswith(self.host) else "")
            )
        if self.since is not None:
            parts.append("since " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since)))
        return f" ({', '.join(parts)})" if parts else ""


def _process_started(pid: int) -> str:
    """The start time of process `pid` (clock ticks after boot, from /proc), "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(holder: Holder) -> bool:
    """False only when the holder surely is gone: a process of this host that no longer runs."""
    if holder.pid is None or holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if holder.started and _process_started(holder.pid) not in ("", holder.started):
        return False  # the pid was given to another process since
    return True


def _me(what: str) -> Holder:
    return Holder(os.getpid(), socket.gethostname(), time.time(), what, uuid.uuid4().hex, _process_started(os.getpid()))


def _busy(what: str, holder: Holder, wait_s: float, wait_option: str | None) -> StoreBusyError:
    longer = f", or give it longer with {wait_option} SECONDS" if wait_option else ""
    return StoreBusyError(  # the holder's own words where it left them (a push waiting on a pull says "pull")
        f"Another `workbench {holder.what or what}` is running on this store{holder.describe()}; waited {wait_s:g} s. "
        f"Run the command again when it has finished{longer}."
    )


def _engine_of(target: Session | Engine) -> Engine:
    if isinstance(target, Session):
        bind = target.get_bind()
        return bind if isinstance(bind, Engine) else bind.engine
    return target


@contextmanager
def study_lock(
    target: Session | Engine,
    name: str,
    wait_s: float = DEFAULT_LOCK_WAIT_S,
    *,
    what: str | None = None,
    wait_option: str | None = None,
) -> Iterator[Holder]:
    """Hold the store-wide lock `name` (e.g. "apply") while the block runs: one holder per store at a time.

    Unlike `lock_names`, the lock does not live in a transaction: the block
    runs as many transactions as it likes. A second process asking for the
    same name waits up to `wait_s` seconds, then gets a StoreBusyError naming
    the holder: "Another `workbench apply` is running on this store (pid 1234,
    since ...)". `what` is how the holder is named there (default: `name`);
    `wait_option` (e.g. "--wait") is offered as the way to wait longer. Taking
    a name this process already holds on this store is free (nested use).

    PostgreSQL: a session-level advisory lock on a connection of its own,
    which the server frees when the process dies; the holder is told by that
    connection's application_name. SQLite: a row `lock:<name>` in store_meta,
    inserted under the write lock and deleted on exit; a row left by a
    process of this host that no longer runs is taken over.
    """
    engine = _engine_of(target)
    what = what or name
    key = (engine.url.render_as_string(hide_password=True), name)
    with _HELD_LOCK:
        depth = _HELD.get(key, 0)
        if depth:
            _HELD[key] = depth + 1
    if depth:
        try:
            yield _me(what)
        finally:
            with _HELD_LOCK:
                _HELD[key] -= 1
        return
    take = _pg_lock if engine.dialect.name == "postgresql" else _sqlite_lock
    with take(engine, name, what, max(0.0, float(wait_s)), wait_option) as me:
        with _HELD_LOCK:
            _HELD[key] = 1
        try:
            yield me
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)


def _pg_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"workbench.store_lock:{name}".encode()).digest()[:8], "big", signed=True)


_PG_HOLDER = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::text::bigint = :hi AND l.objid::text::bigint = :lo AND l.objsubid = 1 LIMIT 1"
)


def _pg_holder(conn, key: int) -> Holder:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    try:
        app = conn.execute(_PG_HOLDER, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).scalar()
    except DBAPIError:
        return Holder()
    parts = (app or "").split(" ", 4)  # "workbench <pid> <since> <host> <what>" (cut at 63 characters)
    if len(parts) < 3 or parts[0] != "workbench":
        return Holder()
    try:
        return Holder(int(parts[1]), parts[3] if len(parts) > 3 else "", float(parts[2]), parts[4] if len(parts) > 4 else "")
    except ValueError:
        return Holder()


@contextmanager
def _pg_lock(engine: Engine, name: str, what: str, wait_s: float, wait_option: str | None) -> Iterator[Holder]:
    key = _pg_key(name)
    me = _me(what)
    # autocommit: the connection holds the lock, not an open transaction (no snapshot kept for hours)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + wait_s
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            if time.monotonic() >= deadline:
                raise _busy(what, _pg_holder(conn, key), wait_s, wait_option)
            time.sleep(_POLL_S)
        what_shown = what if len(what) <= 24 else ""  # application_name holds 63 characters: a cut name would mislead
        label = f"workbench {me.pid} {int(me.since)} {me.host[:16].replace(' ', '_')} {what_shown}".rstrip()[:63]
        conn.execute(text("SELECT set_config('application_name', :v, false)"), {"v": label})
    except BaseException:
        conn.invalidate()  # closing the server connection frees whatever it took
        conn.close()
        raise
    try:
        yield me
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.execute(text("RESET application_name"))
        except DBAPIError:
            conn.invalidate()
        conn.close()


def _sqlite_key(name: str) -> str:
    key = f"lock:{name}"
    return key if len(key) <= 64 else "lock:" + hashlib.sha256(name.encode()).hexdigest()[:32]


def _read_holder(value: str | None) -> Holder | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
        return Holder(int(data["pid"]), str(data.get("host", "")), float(data["since"]), str(data.get("what", "")),
                      str(data.get("token", "")), str(data.get("started", "")))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return Holder()  # unreadable: held by someone unknown


@contextmanager
def _sqlite_lock(engine: Engine, name: str, what: str, wait_s: float, wait_option: str | None) -> Iterator[Holder]:
    from workbench.store.models import StoreMeta

    key = _sqlite_key(name)
    me = _me(what)
    mine = json.dumps(dict(pid=me.pid, host=me.host, since=me.since, what=what, token=me.token, started=me.started))
    deadline = time.monotonic() + wait_s
    while True:
        with Session(engine) as s, s.begin():
            s.execute(text("DELETE FROM store_meta WHERE 0"))  # the write lock: check and take at once
            row = s.get(StoreMeta, key)
            holder = _read_holder(row.value if row is not None else None)
            if holder is None or not _alive(holder):
                if row is None:
                    s.add(StoreMeta(key=key, value=mine))
                else:
                    row.value = mine
                break
        if time.monotonic() >= deadline:
            raise _busy(what, holder, wait_s, wait_option)
        time.sleep(_POLL_S)
    try:
        yield me
    finally:
        try:
            with Session(engine) as s, s.begin():
                s.execute(delete(StoreMeta).where(StoreMeta.key == key, StoreMeta.value == mine))
        except DBAPIError:  # a full disk, say: the row names this process, so the next one takes it over
            pass
