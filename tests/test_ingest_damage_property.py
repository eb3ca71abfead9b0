"""Property test: a damaged table is imported exactly, or not at all with one line and exit 1.

Hypothesis writes small norm tables (Word, Fam on 1-7, an unread Note
column) as CSV in a random separator, or as .xlsx, and damages them at
random: a stray opening quote, lines in Windows-1252 among UTF-8 ones,
double-decoded UTF-8 (cafÃ©), a NUL or only zero-width characters in an
item, the read column or an unread one headed twice, a formula with no
saved value. Each file goes through `workbench import` and:

* the import stores exactly the rows the table holds (item -> value), or
* it exits 1 with one line on stderr, no traceback, and the store is unchanged;
* damage that would lose or garble rows (everything above except a
  duplicated unread column, and Windows-1252 throughout) always fails.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from workbench.cli.main import app

WORDS = ["cat", "dog", "café", "naïve", "crème", "über", "São", "eel", "fox", "gnu", "hen", "jay", "Zoë", "piñata"]
NOTES = ["", "ok", '"x, y"', '"say ""hi"""', '5" tall']  # as written in the CSV (valid quoting)
NOTE_TEXT = {'"x, y"': "x, y", '"say ""hi"""': 'say "hi"'}
DAMAGES = ["quote", "quote_value", "quote_note", "cp1252", "mojibake", "nul", "invisible", "dup_used", "dup_unused", "formula"]
MUST_FAIL = {"quote", "quote_value", "quote_note", "mojibake", "nul", "invisible", "dup_used", "formula"}  # cp1252: only when mixed
_counter = itertools.count()


@dataclass
class Table:
    rows: list[tuple[str, float, str]]  # item, value, note
    fmt: str  # csv | xlsx
    sep: str
    damages: dict[str, int] = field(default_factory=dict)  # damage -> row it hits
    cp1252_rows: frozenset[int] = frozenset()


@st.composite
def tables(draw) -> Table:
    items = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=7, unique=True))
    values = draw(st.lists(st.sampled_from([1.0, 2.5, 3.0, 4.25, 7.0]), min_size=len(items), max_size=len(items)))
    notes = draw(st.lists(st.sampled_from(NOTES), min_size=len(items), max_size=len(items)))
    fmt = draw(st.sampled_from(["csv", "csv", "xlsx"]))
    allowed = [d for d in DAMAGES if fmt == "csv" or d in ("invisible", "dup_used", "dup_unused", "formula")]
    if fmt == "csv":
        allowed.remove("formula")
    chosen = draw(st.lists(st.sampled_from(allowed), max_size=3, unique=True))
    rows = list(zip(items, values, notes))
    damages = {d: draw(st.integers(0, len(rows) - 1)) for d in chosen}
    cp1252_rows: frozenset[int] = frozenset()
    if "cp1252" in damages:
        cp1252_rows = frozenset(draw(st.sets(st.integers(0, len(rows) - 1), min_size=1)))
    return Table(rows, fmt, draw(st.sampled_from([",", ";", "\t"])), damages, cp1252_rows)


def cells(t: Table) -> tuple[list[str], list[list]]:
    """Header and rows after the damage to cells (not to bytes)."""
    header = ["Word", "Fam", "Note"]
    if "dup_used" in t.damages:
        header.append("fam")
    elif "dup_unused" in t.damages:
        header.append("NOTE ")
    out = []
    for i, (item, value, note) in enumerate(t.rows):
        if t.damages.get("nul") == i:
            item = item[:1] + "\x00" + item[1:]
        if t.damages.get("invisible") == i:
            item = "\u200b\u2060"
        if t.damages.get("mojibake") == i and i not in t.cp1252_rows:
            item = "caf\u00c3\u00a9-" + item  # 'café-' encoded as UTF-8, decoded as Windows-1252
        if t.damages.get("quote") == i:
            item = '"' + item
        row: list = [item, value, NOTE_TEXT.get(note, note) if t.fmt == "xlsx" else note]
        if t.damages.get("quote_value") == i:
            row[1] = f'"{value!r}'
        if t.damages.get("quote_note") == i:
            row[2] = '"' + NOTE_TEXT.get(note, note).replace('"', "")
        if t.fmt == "xlsx" and t.damages.get("formula") == i:
            row[1] = f"=B{i + 1}+0"
        if len(header) == 4:
            row.append(value if "dup_used" in t.damages else "n")
        out.append(row)
    return header, out


def must_fail(t: Table) -> bool:
    applied = set(t.damages)
    if t.damages.get("mojibake") in t.cp1252_rows:
        applied.discard("mojibake")  # not applied to a Windows-1252 line
    if MUST_FAIL & applied:
        return True
    if "cp1252" in t.damages:  # mixed only when both encodings hold a non-ASCII line
        non_ascii = [i for i, r in enumerate(t.rows) if not r[0].isascii()]
        return any(i in t.cp1252_rows for i in non_ascii) and any(i not in t.cp1252_rows for i in non_ascii)
    return False


def write_table(t: Table, path: Path) -> Path:
    header, rows = cells(t)
    if t.fmt == "xlsx":
        path = path.with_suffix(".xlsx")
        wb = openpyxl.Workbook()
        wb.active.append(header)
        for r in rows:
            wb.active.append(r)
        wb.save(path)
        return path
    path = path.with_suffix(".csv")
    lines = [t.sep.join(header).encode("utf-8")]
    for i, r in enumerate(rows):
        line = t.sep.join(str(c) if not isinstance(c, float) else repr(c) for c in r)
        enc = "cp1252" if i in t.cp1252_rows else "utf-8"
        try:
            lines.append(line.encode(enc))
        except UnicodeEncodeError:
            lines.append(line.encode("utf-8"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def store_state(url: str) -> tuple[int, int, int]:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return tuple(c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("items", "ratings", "datasets"))
    finally:
        eng.dispose()


def stored(url: str, dataset: str) -> dict[str, float]:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return dict(
                c.execute(
                    text(
                        "SELECT i.text, r.value FROM ratings r JOIN items i ON i.id = r.item_id "
                        "JOIN raters ra ON ra.id = r.rater_id WHERE ra.name = :n"
                    ),
                    {"n": dataset},
                ).all()
            )
    finally:
        eng.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=tables())
def test_a_damaged_table_is_imported_exactly_or_not_at_all(db_url, tmp_path, t):
    n = next(_counter)
    name = f"d{n}"
    path = write_table(t, tmp_path / f"t{n}")
    before = store_state(db_url)
    args = ["import", str(path), "--dataset", name, "--item-column", "Word", "--rating", "familiarity=Fam"]
    result = CliRunner().invoke(app, [*args, "--scale", "familiarity=1:7", "--db", db_url])
    for d in t.damages:
        event(f"damage {d}")
    if result.exit_code == 0:
        event("imported")
        assert not must_fail(t), (t, result.output)
        assert stored(db_url, name) == {item: value for item, value, _ in t.rows}
        return
    event("refused")
    assert result.exit_code == 1, (t, result.output, result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert store_state(db_url) == before
    # an undamaged table (or one damaged harmlessly) must not be refused
    assert must_fail(t), (t, result.stderr)
