"""Looking for a key everywhere a run can leave it: the console, every table of the store, the DuckDB
snapshot and every file written under the given folders, in each encoding an echoing test server
(tests/openai_server.py echo_forms) sends it back in."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import inspect, text

from tests.openai_server import json_escaped


def encodings(key: str) -> dict[str, str]:
    """The key as the echoing server sends it back: as sent, JSON-escaped, URL-encoded, as HTML references,
    hex, base64 of the header and of a Basic user:KEY, and as the text of a list of its byte values."""
    return {
        "as sent": key,
        "json-escaped": json_escaped(key).decode(),
        "url-encoded": quote(key, safe=""),
        "html": "".join(f"&#{ord(c)};" for c in key),
        "hex": key.encode().hex(),
        "base64 of the header": base64.b64encode(f"Bearer {key}".encode()).decode(),
        "base64 of user:key": base64.urlsafe_b64encode(f"user:{key}".encode()).decode(),
        "byte list": ", ".join(str(b) for b in key.encode()),
        "byte list, packed": ",".join(str(b) for b in key.encode()),
    }


def leaks(key: str, where: str, content: str) -> list[str]:
    return [f"{name} in {where}" for name, form in encodings(key).items() if form in content]


def every_table_as_text(engine) -> str:
    """Every row of every table in the store, as text."""
    with engine.connect() as c:
        tables = inspect(c).get_table_names()
        return "\n".join(json.dumps([str(v) for v in row]) for t in tables for row in c.execute(text(f'SELECT * FROM "{t}"')))


def snapshot_as_text(engine) -> str:
    """Every row of every table of the store's DuckDB snapshot (built now if stale), as text."""
    from workbench.analysis.duck import open_snapshot

    con = open_snapshot(engine)
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    return "\n".join(json.dumps([str(v) for v in row]) for t in tables for row in con.execute(f'SELECT * FROM "{t}"').fetchall())


def files_under(*folders: Path) -> dict[Path, str]:
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                out[path] = path.read_bytes().decode("utf-8", errors="replace")
    return out


def assert_key_nowhere(key: str, *, console: str = "", engine=None, folders: tuple[Path, ...] = (), snapshot: bool = True) -> None:
    """Fail naming each place (and encoding) the key was found in."""
    found = leaks(key, "the console", console)
    if engine is not None:
        found += leaks(key, "the store", every_table_as_text(engine))
        if snapshot:
            found += leaks(key, "the DuckDB snapshot", snapshot_as_text(engine))
    files = files_under(*folders)
    for path, content in files.items():
        found += leaks(key, str(path), content)
    assert not found, found
