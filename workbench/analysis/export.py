"""Export ratings from the store to CSV or Parquet.

Long form has one row per rating: item, language, dimension, rater, value,
sd, n, replicate. Wide form has one row per item of a single rater (pick it
with `dataset` or `rater` when the store holds several) and one column per
dimension holding the mean rating, averaged over replicates.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.store.models import Dataset, Dimension, Item, Rater, Rating

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
    ]
)


def _known(session: Session, column) -> list[str]:
    return list(session.scalars(select(column).order_by(column)))


def _check(session: Session, column, name: str | None, what: str) -> None:
    if name is None:
        return
    known = _known(session, column)
    if name not in known:
        listing = ", ".join(known) if known else "none yet"
        raise WorkbenchError(f"Unknown {what} {name!r}.{did_you_mean(name, known)} The store's {what}s are {listing}.")


def export_ratings(
    session: Session,
    *,
    dataset: str | None = None,
    rater: str | None = None,
    dimension: str | None = None,
    fmt: Literal["csv", "parquet"],
    path: Path,
    wide: bool = False,
) -> int:
    """Write the selected ratings to `path` as CSV (UTF-8, header row) or Parquet; the rows written."""
    if fmt not in ("csv", "parquet"):
        raise WorkbenchError(f"Unknown export format {fmt!r}: choose csv or parquet.")
    path = Path(path)
    if not path.parent.is_dir():
        raise WorkbenchError(f"The folder {path.parent} does not exist: create it or choose another output path.")
    _check(session, Dataset.name, dataset, "dataset")
    _check(session, Rater.name, rater, "rater")
    _check(session, Dimension.name, dimension, "dimension")

    hybrid = _hybrid_details(session, dataset) if not wide else None
    query = (
        select(Item.text, Item.language, Dimension.name, Rater.name, Rating.value, Rating.sd, Rating.n, Rating.replicate, Item.id)
        .join(Item, Item.id == Rating.item_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .join(Rater, Rater.id == Rating.rater_id)
        .order_by(Dimension.name, Rater.name, Item.text, Item.language, Rating.replicate)
    )
    if dataset is not None:
        query = query.join(Dataset, Dataset.id == Rater.dataset_id).where(Dataset.name == dataset)
    if rater is not None:
        query = query.where(Rater.name == rater)
    if dimension is not None:
        query = query.where(Dimension.name == dimension)
    rows = session.execute(query).all()
    if hybrid is not None:  # a hybrid dataset: its interval, human weight, source and prior beside each value
        from workbench.analysis.hybrid import HYBRID_COLUMNS, hybrid_columns

        schema = pa.schema([*LONG_SCHEMA, *((c, pa.string() if c == "source" else pa.float64()) for c in HYBRID_COLUMNS)])
        table = pa.Table.from_pylist([dict(zip(LONG_SCHEMA.names, r[:-1])) | hybrid_columns(hybrid, r[-1]) for r in rows], schema)
    else:
        table = _wide(rows) if wide else pa.Table.from_pylist([dict(zip(LONG_SCHEMA.names, r[:-1])) for r in rows], LONG_SCHEMA)
    _write(table, fmt, path)
    return table.num_rows


def _hybrid_details(session: Session, dataset: str | None) -> dict | None:
    if dataset is None:
        return None
    details = session.scalar(select(Dataset.details).where(Dataset.name == dataset))
    return (details or {}).get("hybrid")


def _wide(rows) -> pa.Table:
    raters = sorted({r[3] for r in rows})
    if len(raters) > 1:
        raise WorkbenchError(
            f"A wide export holds one rater's means, but {len(raters)} are selected ({', '.join(raters)}): "
            "choose one with --dataset or --rater."
        )
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for item, language, dim, _rater, value, *_ in rows:
        cells = values[(item, language)]  # an item rated only NULL still gets its row
        if value is not None:
            cells[dim].append(value)
    dims = sorted({r[2] for r in rows})
    keys = sorted(values)
    columns = {"item": [k[0] for k in keys], "language": [k[1] for k in keys]}
    for dim in dims:
        columns[dim] = [sum(v) / len(v) if (v := values[k].get(dim)) else None for k in keys]
    schema = pa.schema([("item", pa.string()), ("language", pa.string()), *((d, pa.float64()) for d in dims)])
    return pa.table(columns, schema=schema)


def _write(table: pa.Table, fmt: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(table.column_names)
                columns = [c.to_pylist() for c in table.columns]
                writer.writerows(zip(*columns))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
