"""Files the workbench writes: one rule for every command; and a study value that may be a file.

A file (`report --out`, `export --out`, and the like) is written only into a
folder that exists and can be written to; a missing folder is not created,
so a typo in a path does not scatter new folders. The folders that a command
exists to make (`init DIR`, a study report's `out:` folder) are created, one
level deep, inside a folder that exists. Anything else is one line naming
the option, the path and what to do. The check writes and removes a probe
file, so it also holds for root and for read-only file systems.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import WorkbenchError

CACHE_ENV = "WORKBENCH_CACHE_DIR"


def cache_root() -> Path:
    """Where the workbench keeps what it can make again: ``$WORKBENCH_CACHE_DIR``, or ``~/.cache/workbench``.

    Converted local models, DuckDB snapshots of server stores, the Label Studio
    virtualenv (unless WORKBENCH_LS_VENV says otherwise).
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "workbench"


def _label(path: Path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def _probe(folder: Path, where: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".workbench-probe-"):
            pass
    except OSError as exc:
        raise WorkbenchError(
            f"{where}: cannot write in the folder {folder} ({exc.strerror or exc}); choose a folder you can write to."
        ) from None


def check_output_file(path: Path, option: str | None = "--out") -> Path:
    """`path` if a file may be written there: not a folder, its folder exists and is writable."""
    path = Path(path)
    where = _label(path, option)
    if path.is_dir():
        raise WorkbenchError(f"{where}: is a folder; name a file to write, e.g. {path / ('out' + (path.suffix or '.csv'))}.")
    parent = path.parent
    if not parent.exists():
        raise WorkbenchError(f"{where}: the folder {parent} does not exist; create it or name a file in an existing folder.")
    if not parent.is_dir():
        raise WorkbenchError(f"{where}: {parent} is a file, not a folder; name a file in an existing folder.")
    if path.exists() and not os.access(path, os.W_OK):
        raise WorkbenchError(f"{where}: the file is read-only; choose another file.")
    _probe(parent, where)
    return path


def ensure_output_folder(folder: Path, option: str | None = None) -> Path:
    """A folder a command makes (init DIR, a study report's out:): created inside an existing, writable folder."""
    folder = Path(folder)
    where = _label(folder, option)
    if folder.exists() and not folder.is_dir():
        raise WorkbenchError(f"{where}: is a file, not a folder; name a folder.")
    if not folder.exists():
        parent = folder.parent
        if not parent.is_dir():
            raise WorkbenchError(f"{where}: the folder {parent} does not exist; create it or name a folder inside an existing one.")
        _probe(parent, where)
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process
            pass
        except OSError as exc:
            raise WorkbenchError(f"{where}: cannot create the folder ({exc.strerror or exc}); choose another.") from None
    _probe(folder, where)
    return folder


@contextmanager
def writing(path: Path, option: str | None = "--out"):
    """Turn a failure while writing `path` (disk full, permissions changed) into one line."""
    try:
        yield
    except OSError as exc:
        raise WorkbenchError(
            f"{_label(Path(path), option)}: writing failed ({exc.strerror or exc}); choose another place or free some space."
        ) from None


def read_text_or_file(value: str | None, base_dir: Path) -> str | None:
    """A study value that is either a file (relative to the study) or the text itself."""
    if value is None:
        return None
    if "\n" not in value and len(value) < 300:
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if path.suffix and path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\n")  # the file's last newline is not part of the prompt
    return value
