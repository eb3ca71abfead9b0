"""Word lists: items to rate that come with no ratings, their other columns kept as item attributes.

A word list is a CSV, TSV, .xlsx or Parquet table with a column of words (and any
other columns: part of speech, condition, frequency band), or a .txt file with one
word per line. It becomes a dataset with no rater, so it is never gold: its words
are in ``dataset_items`` and its other columns in ``item_attributes``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.ingest.load import ImportResult, file_checksum, lock_datasets, upsert_items
from workbench.ingest.readers import RawTable, decode, normalise_lines, read_table
from workbench.ingest.spec import NA_MARKERS, clip, header_key
from workbench.ingest.validate import (
    Problem,
    find_column,
    item_strings,
    missing_column_error,
    normalise_item,
    unstorable_items,
)
from workbench.store.engine import bump_generation
from workbench.store.models import Dataset, DatasetItem, ItemAttribute, Job, Rater, utcnow

WORDS_KIND = "words"  # Dataset.details["kind"] of a word list
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class WordListSpec:
    """How to read one word list."""

    name: str
    column: str | None = None  # the column of words; None: a .txt file's lines, or a table's only column
    attributes: tuple[str, ...] | None = None  # the columns kept as attributes (None: every other column)
    language: str = "en"
    citation: str | None = None
    licence: str | None = None
    url: str | None = None
    extra_na: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        keys = ("column", "attributes", "language", "citation", "licence", "url", "extra_na")
        return json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True, default=list)


@dataclass
class WordTable:
    spec: WordListSpec
    words: list[str]  # in file order, each once
    attributes: dict[str, list[str | None]] = field(default_factory=dict)  # column -> value per word
    rows_read: int = 0
    duplicates_merged: int = 0

    def describe(self) -> str:
        cols = f", attributes {', '.join(self.attributes)}" if self.attributes else ""
        return f"{len(self.words)} words{cols}"


def is_lines_file(path: Path, spec: WordListSpec) -> bool:
    """A .txt (or .lst) file without a named column: one word per line, no header."""
    return spec.column is None and Path(path).suffix.lower() in (".txt", ".lst")


def read_word_list(
    path: Path, spec: WordListSpec, *, encoding: str | None = None, separator: str | None = None, sheet: str | None = None
) -> WordTable:
    """Read and check a word list; one error naming every problem (file, line, column, value) and what to do."""
    path = Path(path)
    if is_lines_file(path, spec):
        if not path.is_file():
            raise WorkbenchError(f"{path}: no such file. Check the path (relative paths are from the study's folder).")
        text, _ = decode(path, path.read_bytes(), encoding)
        lines = normalise_lines(text).split("\n")
        rows = [(i + 1, normalise_item(line)) for i, line in enumerate(lines) if line.strip()]
        return _table(path, spec, [r[1] for r in rows], [r[0] for r in rows], {}, len(rows))
    raw = read_table(path, encoding=encoding, separator=separator, sheet=sheet)
    word_col = _word_column(raw, spec)
    words = item_strings(raw.columns[word_col])
    wanted = spec.attributes if spec.attributes is not None else tuple(h for i, h in enumerate(raw.header) if i != word_col)
    attributes: dict[str, list[str | None]] = {}
    na = {header_key(m) for m in (*NA_MARKERS, *spec.extra_na)}
    for name in wanted:
        idx = find_column(raw, (name,))
        if idx is None:
            raise missing_column_error(raw, f"an attribute of word list {spec.name!r}", (name,)) from None
        if idx == word_col:
            continue
        key = raw.header[idx].strip()
        if not key:
            continue  # an unnamed column (a trailing separator) is not an attribute
        if len(key) > MAX_KEY_LENGTH:
            raise WorkbenchError(f"{path}: column name {clip(key, 80)!r} is longer than {MAX_KEY_LENGTH} characters; shorten it.")
        cells = item_strings(raw.columns[idx])
        attributes[key] = [None if not c or header_key(c) in na else c for c in cells]
    keep = [i for i, w in enumerate(words) if w]
    blank_with_data = [i for i in range(raw.n_rows) if not words[i] and any(v[i] for v in attributes.values())]
    blank = [(raw.line_of(i), Problem(i, raw.header[word_col], "", "no word in this row")) for i in blank_with_data]
    return _table(
        path,
        spec,
        [words[i] for i in keep],
        [raw.line_of(i) for i in keep],
        {k: [v[i] for i in keep] for k, v in attributes.items()},
        raw.n_rows,
        column=raw.header[word_col],
        problems=blank,
    )


def _word_column(raw: RawTable, spec: WordListSpec) -> int:
    if spec.column is not None:
        idx = find_column(raw, (spec.column,))
        if idx is None:
            raise missing_column_error(raw, f"the words of word list {spec.name!r}", (spec.column,))
        return idx
    named = [i for i, h in enumerate(raw.header) if h.strip()]
    if len(named) == 1:
        return named[0]
    shown = ", ".join(repr(clip(h, 60)) for h in raw.header[:30])
    raise WorkbenchError(
        f"{raw.path}: the word list {spec.name!r} has {len(named)} columns ({shown}): say which holds the words "
        "with column: NAME (the other columns become the words' attributes)."
    )


def _table(path: Path, spec: WordListSpec, words: list[str], lines: list[int], attributes: dict[str, list[str | None]],
           rows_read: int, column: str = "word", problems: list[tuple[int, Problem]] | None = None) -> WordTable:  # fmt: skip
    problems = list(problems or [])
    problems += [(lines[i], Problem(i, column, words[i], reason)) for i, reason in unstorable_items(words)]
    first: dict[str, int] = {}
    keep: list[int] = []
    merged = 0
    for i, w in enumerate(words):
        j = first.get(w)
        if j is None:
            first[w] = i
            keep.append(i)
            continue
        differ = [k for k, v in attributes.items() if v[i] != v[j]]
        if differ:
            k = differ[0]
            problems.append((lines[i], Problem(i, k, str(attributes[k][i] or ""),
                                               f"{w!r} is also on line {lines[j]}, with {k} {attributes[k][j]!r}: keep one row per word")))  # fmt: skip
        else:
            merged += 1
    if problems:
        raise _problems(path, sorted(problems, key=lambda p: p[0]))
    if not keep:
        raise WorkbenchError(f"{path}: the word list {spec.name!r} has no words: put one word per line, or one per row under a header.")
    return WordTable(
        spec,
        [words[i] for i in keep],
        {k: [v[i] for i in keep] for k, v in attributes.items()},
        rows_read=rows_read,
        duplicates_merged=merged,
    )


def _problems(path: Path, problems: list[tuple[int, Problem]]) -> WorkbenchError:
    shown = "; ".join(f"row {line}, column {clip(p.column, 80)!r}, value {clip(p.value)!r}: {p.reason}" for line, p in problems[:10])
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    noun = "problem" if len(problems) == 1 else "problems"
    return WorkbenchError(f"{path}: {len(problems)} {noun}: {shown}{more}. Nothing was imported: fix the file.")


def word_list_key(checksum: str, spec: WordListSpec) -> str:
    return hashlib.sha256(f"words:{checksum}:{spec.fingerprint()}".encode()).hexdigest()


def is_word_list(dataset: Dataset | None) -> bool:
    return dataset is not None and (dataset.details or {}).get("kind") == WORDS_KIND


def plan_word_list(session: Session, path: Path, spec: WordListSpec, checksum: str | None = None) -> str:
    """import, replace or unchanged: what importing the word list would do."""
    ds = session.scalar(select(Dataset).where(Dataset.name == spec.name))
    if ds is None:
        return "import"
    if not is_word_list(ds):
        raise WorkbenchError(
            f"word list {spec.name!r}: the store holds a dataset of norms with this name; give the word list another name."
        )
    return "unchanged" if ds.import_key == word_list_key(checksum or file_checksum(path), spec) else "replace"


def import_word_list(
    session: Session,
    path: Path,
    spec: WordListSpec,
    *,
    encoding: str | None = None,
    separator: str | None = None,
    sheet: str | None = None,
    origin: str | None = None,
    table: WordTable | None = None,
) -> ImportResult:
    """Store the word list (its words and their attributes) inside the caller's transaction; replaces an
    earlier import of the same name. No ratings and no rater: a word list is never gold."""
    path = Path(path)
    lock_datasets(session, [spec.name])
    checksum = file_checksum(path)
    action = plan_word_list(session, path, spec, checksum)
    if action == "unchanged":
        return ImportResult(spec.name, "unchanged")
    if session.scalar(select(Rater.id).where(Rater.name == spec.name)) is not None:
        raise WorkbenchError(f"word list {spec.name!r}: a rater has this name; give the word list another name.")
    table = table or read_word_list(path, spec, encoding=encoding, separator=separator, sheet=sheet)
    ds = session.scalar(select(Dataset).where(Dataset.name == spec.name))
    if ds is None:
        ds = Dataset(name=spec.name)
        session.add(ds)
    ds.citation, ds.licence, ds.origin_url = spec.citation, spec.licence, spec.url
    ds.origin_file, ds.checksum, ds.import_key = origin or str(path.resolve()), checksum, word_list_key(checksum, spec)
    ds.preset, ds.language, ds.imported_at = None, spec.language, utcnow()
    ds.details = {"kind": WORDS_KIND, "column": spec.column, "attributes": list(table.attributes), "words": len(table.words),
                  "rows_read": table.rows_read, "duplicates_merged": table.duplicates_merged}  # fmt: skip
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise WorkbenchError(
            f"word list {spec.name} is being imported by another process; run the command again to see its state."
        ) from None
    session.execute(delete(DatasetItem).where(DatasetItem.dataset_id == ds.id))
    session.execute(delete(ItemAttribute).where(ItemAttribute.dataset_id == ds.id))
    ids = upsert_items(session, table.words, spec.language).tolist()
    session.execute(insert(DatasetItem), [{"dataset_id": ds.id, "item_id": i, "position": n} for n, i in enumerate(ids)])
    rows = [
        {"dataset_id": ds.id, "item_id": ids[n], "key": key, "value": value}
        for key, values in table.attributes.items()
        for n, value in enumerate(values)
        if value is not None
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(ItemAttribute), rows[start : start + 10_000])
    session.add(Job(kind="import", status="done", dataset_id=ds.id, config={"file": ds.origin_file, "word_list": True},
                    counts={"items": len(ids), "attributes": len(rows)}, finished_at=utcnow()))  # fmt: skip
    bump_generation(session)
    return ImportResult(spec.name, "replaced" if action == "replace" else "imported", items=len(ids),
                        duplicates_merged=table.duplicates_merged)  # fmt: skip


def describe_words(result: ImportResult) -> str:
    """A word list's import result in words (ImportResult.describe speaks of ratings)."""
    if result.status == "unchanged":
        return f"{result.dataset}: unchanged (already imported from this file)"
    extra = f", {result.duplicates_merged} identical duplicate rows merged" if result.duplicates_merged else ""
    return f"{result.dataset}: {result.status} word list, {result.items} words (no ratings){extra}"
