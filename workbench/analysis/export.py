"""Export ratings from the store to CSV or Parquet, with a data dictionary beside the file.

Long form has one row per rating: item, language, dimension, rater, value, sd, n, replicate, mass, note.
Wide form has one row per item (the items of ``items`` when given, else every item a selected rater
rates) and, for each selected rater and dimension, a column ``RATER.DIMENSION`` holding the rating
(averaged over replicates) with its flags beside it: ``.sd``, ``.n``, ``.mass`` (probability on the scale
points) and ``.note`` (why a value is missing or doubtful, e.g. a word wordfreq does not know), each where
the store has any. Attributes that word lists give the items come after ``language``. A wide CSV writes
NA for a missing value, as R and Excel read it. ``digits`` rounds values, sds and masses.

Beside FILE, ``FILE_STEM.dictionary.csv`` describes every column: its type and what it holds (which
rater, its backend and model or its dataset's citation, the dimension and its scale).
"""

from __future__ import annotations

import csv
import math
import os
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dataset, DatasetItem, Dimension, Item, ItemAttribute, Rater, Rating

LONG_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("language", pa.string()),
        ("dimension", pa.string()),
        ("rater", pa.string()),
        ("value", pa.float64()),
        ("sd", pa.float64()),
        ("n", pa.int64()),
        ("replicate", pa.int64()),
        ("mass", pa.float64()),
        ("note", pa.string()),
    ]
)
LONG_DESCRIPTIONS = {
    "item": "the item (word) rated",
    "language": "the item's language (ISO 639 code)",
    "dimension": "what is rated",
    "rater": "who rated: a dataset's norms, an annotator, an LLM or a model (see the raters below)",
    "value": "the rating on the dimension's scale (for norms: the mean of the human ratings)",
    "sd": "standard deviation of the human ratings (norms), or of an LLM's distribution over the scale points",
    "n": "number of human ratings behind the mean (norms)",
    "replicate": "repeat number of the rating (0 for the first)",
    "mass": "probability the model put on the scale points (an LLM's read-out); low mass means an unsure answer",
    "note": "why a value is missing or doubtful (e.g. a word unknown to wordfreq, low mass on the scale points)",
}
FLAGS = ("sd", "n", "mass", "note")
NA = "NA"


def _known(session: Session, column) -> list[str]:
    return list(session.scalars(select(column).order_by(column)))


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(dict.fromkeys(value))


def _check(session: Session, column, names: list[str], what: str) -> None:
    if not names:
        return
    known = _known(session, column)
    for name in names:
        if name not in known:
            listing = ", ".join(known) if known else "none yet"
            raise WorkbenchError(f"Unknown {what} {name!r}.{did_you_mean(name, known)} The store's {what}s are {listing}.")


def export_ratings(
    session: Session,
    *,
    dataset: str | Sequence[str] | None = None,
    rater: str | Sequence[str] | None = None,
    dimension: str | None = None,
    items: str | None = None,
    fmt: Literal["csv", "parquet"],
    path: Path,
    wide: bool = False,
    digits: int | None = None,
    dictionary: bool = True,
) -> int:
    """Write the selected ratings to `path` as CSV (UTF-8, header row) or Parquet, and a data dictionary
    beside it; the rows written. Several datasets and raters are all exported (never only the last)."""
    if fmt not in ("csv", "parquet"):
        raise WorkbenchError(f"Unknown export format {fmt!r}: choose csv or parquet.")
    if digits is not None and not 0 <= digits <= 15:
        raise WorkbenchError(f"--digits {digits}: give 0 to 15 decimal places.")
    path = Path(path)
    if not path.parent.is_dir():
        raise WorkbenchError(f"The folder {path.parent} does not exist: create it or choose another output path.")
    datasets, raters = _names(dataset), _names(rater)
    _check(session, Dataset.name, datasets, "dataset")
    _check(session, Rater.name, raters, "rater")
    _check(session, Dimension.name, [dimension] if dimension else [], "dimension")
    words = [n for n in datasets if _is_word_list(session, n)]
    if words and not wide:
        raise WorkbenchError(
            f"{', '.join(words)}: a word list has no ratings to export; export the raters that rated it with "
            f"--wide --items {words[0]} (one row per word, a column per rater)."
        )
    datasets = [n for n in datasets if n not in words]
    if words and items is None:
        items = words[0]
    item_ids = set(resolve_items(session, items)) if items else None

    hybrid = _hybrid_details(session, datasets[0]) if not wide and len(datasets) == 1 and not raters else None
    query = (
        select(
            Item.id,
            Item.text,
            Item.language,
            Dimension.name,
            Rater.name,
            Rating.value,
            Rating.sd,
            Rating.n,
            Rating.replicate,
            Rating.mass,
            Rating.note,
        )  # fmt: skip
        .join(Item, Item.id == Rating.item_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .join(Rater, Rater.id == Rating.rater_id)
        .order_by(Dimension.name, Rater.name, Item.text, Item.language, Rating.replicate)
    )
    chosen = []
    if datasets:
        chosen += list(session.scalars(select(Rater.name).join(Dataset, Dataset.id == Rater.dataset_id).where(Dataset.name.in_(datasets))))
    chosen += raters
    if datasets or raters:
        query = query.where(Rater.name.in_(chosen))
    if dimension is not None:
        query = query.where(Dimension.name == dimension)
    rows = [r for r in session.execute(query).all() if item_ids is None or r[0] in item_ids]
    if wide:
        table, described = _wide(session, rows, item_ids, digits)
    else:
        cells = [dict(zip(LONG_SCHEMA.names, _rounded(r[1:], digits, (4, 5, 8)))) for r in rows]
        table, described = pa.Table.from_pylist(cells, LONG_SCHEMA), dict(LONG_DESCRIPTIONS)
        if hybrid is not None:  # a hybrid dataset: its interval, human weight, source and prior beside each value
            from workbench.analysis.hybrid import HYBRID_COLUMNS, hybrid_columns

            schema = pa.schema([*LONG_SCHEMA, *((c, pa.string() if c == "source" else pa.float64()) for c in HYBRID_COLUMNS)])
            table = pa.Table.from_pylist([c | hybrid_columns(hybrid, r[0]) for c, r in zip(cells, rows, strict=True)], schema)
            described |= {c: f"hybrid dataset: {c.replace('_', ' ')} of the word's combined value" for c in HYBRID_COLUMNS}
    _write(table, fmt, path, na=NA if wide else "")
    if dictionary:
        _write_dictionary(session, dictionary_path(path), table, described, rows)
    return table.num_rows


def dictionary_path(path: Path) -> Path:
    """Where the data dictionary of an export goes: FILE_STEM.dictionary.csv beside it."""
    return path.with_name(f"{path.stem}.dictionary.csv")


def _hybrid_details(session: Session, dataset: str | None) -> dict | None:
    if dataset is None:
        return None
    details = session.scalar(select(Dataset.details).where(Dataset.name == dataset))
    return (details or {}).get("hybrid")


def _is_word_list(session: Session, name: str) -> bool:
    details = session.scalar(select(Dataset.details).where(Dataset.name == name))
    return (details or {}).get("kind") == "words"


def _round(value, digits: int | None):
    if value is None or digits is None or not isinstance(value, float) or not math.isfinite(value):
        return value
    return round(value, digits)


def _rounded(row, digits: int | None, at: tuple[int, ...]) -> list:
    return [_round(v, digits) if i in at else v for i, v in enumerate(row)]


def _wide(session: Session, rows, item_ids: set[int] | None, digits: int | None) -> tuple[pa.Table, dict[str, str]]:
    # (rater, dimension) -> item -> [(value, sd, n, mass, note) per replicate]
    cells: dict[tuple[str, str], dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    texts: dict[int, tuple[str, str]] = {}
    for item_id, text, language, dim, rater, value, sd, n, _replicate, mass, note in rows:
        cells[(rater, dim)][item_id].append((value, sd, n, mass, note))
        texts[item_id] = (text, language)
    if item_ids is not None:  # every item of the set, rated or not
        missing = [i for i in item_ids if i not in texts]
        for start in range(0, len(missing), 5000):
            chunk = missing[start : start + 5000]
            texts.update(
                {i: (t, lang) for i, t, lang in session.execute(select(Item.id, Item.text, Item.language).where(Item.id.in_(chunk)))}
            )
    order = _positions(session, item_ids)
    keys = sorted(texts, key=lambda i: (order.get(i, 0), texts[i]))
    columns: dict[str, list] = {"item": [texts[i][0] for i in keys], "language": [texts[i][1] for i in keys]}
    types: dict[str, pa.DataType] = {"item": pa.string(), "language": pa.string()}
    described = {"item": LONG_DESCRIPTIONS["item"], "language": LONG_DESCRIPTIONS["language"]}
    for key, values in _attributes(session, keys).items():
        name = key if key not in columns else f"attribute.{key}"
        columns[name], types[name] = [values.get(i) for i in keys], pa.string()
        described[name] = f"attribute {key!r} of the item, from its word list's column {key!r}"
    for rater, dim in sorted(cells):
        base = f"{rater}.{dim}"
        per_item = {i: _combine(reps) for i, reps in cells[(rater, dim)].items()}
        columns[base] = [_round(per_item[i][0], digits) if i in per_item else None for i in keys]
        types[base] = pa.float64()
        described[base] = ("rating", rater, dim)  # filled in by _write_dictionary
        for k, flag in enumerate(FLAGS, start=1):
            values = [per_item[i][k] if i in per_item else None for i in keys]
            if all(v is None for v in values):
                continue
            name = f"{base}.{flag}"
            columns[name] = [_round(v, digits) if flag in ("sd", "mass") else v for v in values]
            types[name] = {"sd": pa.float64(), "n": pa.int64(), "mass": pa.float64(), "note": pa.string()}[flag]
            described[name] = (flag, rater, dim)
    schema = pa.schema([(c, types[c]) for c in columns])
    return pa.table(columns, schema=schema), described


def _positions(session: Session, item_ids: set[int] | None) -> dict[int, int]:
    """A word list's own order (its file's), when the export is restricted to a set; else none (by text)."""
    if item_ids is None:
        return {}
    order: dict[int, int] = {}
    ids = sorted(item_ids)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for item_id, pos in session.execute(select(DatasetItem.item_id, DatasetItem.position).where(DatasetItem.item_id.in_(chunk))):
            order.setdefault(item_id, pos)
    return order


def _combine(reps: list[tuple]) -> tuple:
    """One item's (value, sd, n, mass, note) over its replicates: a single one as stored; several averaged,
    with their sd and count."""
    if len(reps) == 1:
        return reps[0]
    values = [r[0] for r in reps if r[0] is not None]
    notes = "; ".join(dict.fromkeys(r[4] for r in reps if r[4]))
    masses = [r[3] for r in reps if r[3] is not None]
    if not values:
        return (None, None, None, None, notes or None)
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return (mean, sd, len(values), sum(masses) / len(masses) if masses else None, notes or None)


def _attributes(session: Session, item_ids: list[int]) -> dict[str, dict[int, str]]:
    """key -> item -> value: what word lists say about the items (the first list by name, where two differ)."""
    out: dict[str, dict[int, str]] = {}
    for start in range(0, len(item_ids), 5000):
        chunk = item_ids[start : start + 5000]
        q = (
            select(ItemAttribute.key, ItemAttribute.item_id, ItemAttribute.value)
            .join(Dataset, Dataset.id == ItemAttribute.dataset_id)
            .where(ItemAttribute.item_id.in_(chunk))
            .order_by(Dataset.name)
        )
        for key, item_id, value in session.execute(q):
            out.setdefault(key, {}).setdefault(item_id, value)
    # in the order of the word lists' own columns
    order: list[str] = []
    for details in session.scalars(select(Dataset.details).order_by(Dataset.name)):
        order += [k for k in (details or {}).get("attributes", []) if k not in order]
    return {k: out[k] for k in sorted(out, key=lambda k: (order.index(k) if k in order else len(order), k))}


def _rater_description(session: Session, name: str) -> str:
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        return name
    if rater.dataset_id is not None:
        ds = session.get(Dataset, rater.dataset_id)
        cite = f"; {ds.citation}" if ds is not None and ds.citation else ""
        return f"{name} ({rater.kind} ratings of dataset {ds.name if ds else name}{cite})"
    config = rater.config or {}
    how = ", ".join(str(config[k]) for k in ("backend", "model") if config.get(k))
    readout = f", read-out {config['readout']}" if config.get("readout") else ""
    return f"{name} ({rater.kind} rater{': ' + how if how else ''}{readout})"


def _scale(session: Session, dim: str) -> str:
    d = session.scalar(select(Dimension).where(Dimension.name == dim))
    if d is None or d.scale_min is None:
        return ""
    return f"{d.scale_min:g}-{d.scale_max:g}"


def _write_dictionary(session: Session, path: Path, table: pa.Table, described: dict, rows) -> None:
    """One row per column of the export: name, type, what it holds, rater, dimension, scale."""
    out = []
    kinds = {pa.float64(): "number", pa.int64(): "integer", pa.string(): "text"}
    for field in table.schema:
        what = described.get(field.name, "")
        rater = dim = scale = ""
        if isinstance(what, tuple):
            flag, rater, dim = what
            scale = _scale(session, dim)
            who = _rater_description(session, rater)
            if flag == "rating":
                text = f"{who}: rating of {dim} on its scale {scale} (mean over replicates); NA: not rated"
            else:
                text = f"{who}, {dim}: {LONG_DESCRIPTIONS[flag]}"
        else:
            text = what
        out.append([field.name, kinds.get(field.type, str(field.type)), text, rater, dim, scale])
    if "rater" in table.column_names:  # a long export: which raters its rows hold
        for name in sorted({r[4] for r in rows}):
            out.append([f"rater = {name}", "", _rater_description(session, name), name, "", ""])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["column", "type", "description", "rater", "dimension", "scale"])
            writer.writerows(out)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write(table: pa.Table, fmt: str, path: Path, na: str = "") -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(table.column_names)
                columns = [[na if v is None else v for v in c.to_pylist()] for c in table.columns]
                writer.writerows(zip(*columns))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
