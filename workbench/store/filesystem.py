"""Why a SQLite store's files cannot be written: a read-only mount, an immutable file, permissions.

SQLite reports all of these as "attempt to write a readonly database",
"unable to open database file" or even "database is locked"; the file system
knows which it is. `write_problem` asks it, so the error can say what is
wrong and how to fix it.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

FS_IOC_GETFLAGS = 0x80086601  # Linux: the inode flags that lsattr shows
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20


def inode_flags(path: Path) -> int:
    """The file's Linux inode flags (0 where they cannot be read: another system, a file system without them)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux
        return 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        return int.from_bytes(buf[:4], sys.byteorder)
    except OSError:
        return 0
    finally:
        os.close(fd)


def read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _mode(path: Path) -> str:
    try:
        return stat.filemode(path.stat().st_mode)
    except OSError:
        return "?"


def write_problem(db: Path) -> str | None:
    """Why SQLite cannot write the store `db` (its file, its journal files, its folder); None: no such reason found."""
    db = Path(db)
    folder = db.parent
    if not folder.is_dir():
        return None
    if read_only_mount(folder):
        return f"the folder {folder} is on a file system mounted read-only (remount it read-write)"
    files = [db] + [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
    for f in files:
        if not f.exists():
            continue
        flags = inode_flags(f)
        if flags & FS_IMMUTABLE_FL:
            return f"the file {f} is immutable (chattr +i; `chattr -i {f}` as root undoes it)"
        if flags & FS_APPEND_FL:
            return f"the file {f} is append-only (chattr +a; `chattr -a {f}` as root undoes it)"
        if not os.access(f, os.R_OK | os.W_OK):
            return f"the file {f} is read-only for this user ({_mode(f)}; `chmod u+rw {f}` makes it writable)"
    flags = inode_flags(folder)
    if flags & (FS_IMMUTABLE_FL | FS_APPEND_FL):
        kind = "immutable (chattr +i" if flags & FS_IMMUTABLE_FL else "append-only (chattr +a"
        undo = "-i" if flags & FS_IMMUTABLE_FL else "-a"
        return (
            f"the folder {folder} is {kind}; `chattr {undo} {folder}` as root undoes it), "
            "and SQLite writes its journal files beside the store"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the folder {folder} is read-only for this user ({_mode(folder)}), and SQLite writes its journal "
            f"files beside the store (`chmod u+w {folder}` makes it writable)"
        )
    return None
