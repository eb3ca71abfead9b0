"""Write validated norms into the store: one import, one transaction.

Items are upserted, each dataset gets a rater of kind "norm", and ratings go
in through the driver's bulk path (executemany on SQLite, COPY on
PostgreSQL) inside the caller's transaction, so a failure anywhere leaves
the store exactly as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.files import check_output_file
from workbench.ingest.readers import RawTable, read_table
from workbench.ingest.spec import DatasetSpec, clip
from workbench.ingest.validate import NormTable, build_norms
from workbench.store.engine import bump_generation
from workbench.store.models import Dataset, Dimension, Job, Rater, Rating, utcnow

CHUNK = 50_000


@dataclass
class ImportResult:
    dataset: str
    status: str  # imported | replaced | unchanged
    items: int = 0
    ratings: int = 0
    dimensions: list[str] = field(default_factory=list)
    rejected_rows: int = 0
    duplicates_merged: int = 0
    rejects_file: Path | None = None
    # what was read other than as written, or looks wrong but was imported (one sentence each)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.status == "unchanged":
            return f"{self.dataset}: unchanged (already imported from this file)"
        extra = ""
        if self.duplicates_merged:
            extra += f", {self.duplicates_merged} identical duplicate rows merged"
        if self.rejected_rows:
            extra += f", {self.rejected_rows} rows rejected (see {self.rejects_file})"
        line = f"{self.dataset}: {self.status} {self.items} items, {self.ratings} ratings ({', '.join(self.dimensions)}){extra}"
        return "".join([line, *(f"\n  note: {n}" for n in self.notes)])


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_key(checksum: str, spec: DatasetSpec) -> str:
    return hashlib.sha256(f"{checksum}:{spec.fingerprint()}".encode()).hexdigest()


def plan_import(session: Session, path: Path, specs: Sequence[DatasetSpec], checksum: str | None = None) -> dict[str, str]:
    """What importing would do for each dataset: "import", "unchanged" or "replace"."""
    checksum = checksum or file_checksum(path)
    out = {}
    for spec in specs:
        ds = session.scalar(select(Dataset).where(Dataset.name == spec.name))
        if ds is None:
            out[spec.name] = "import"
        elif ds.import_key == import_key(checksum, spec):
            out[spec.name] = "unchanged"
        else:
            out[spec.name] = "replace"
    return out


def import_file(
    session: Session,
    path: Path,
    specs: Sequence[DatasetSpec],
    *,
    replace: bool = False,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    encoding: str | None = None,
    separator: str | None = None,
    sheet: str | None = None,
    origin: str | None = None,
    raw: RawTable | None = None,
) -> list[ImportResult]:
    """Import the datasets `specs` read from `path`, inside the session's transaction.

    Re-importing the same file with the same options changes nothing. A
    dataset that exists from a different file or options is refused unless
    `replace`, which swaps its ratings. Nothing is written if any dataset fails.
    """
    path = Path(path)
    for spec in specs:
        if not spec.name.strip() or len(spec.name) > 200 or not spec.name.isprintable():
            raise WorkbenchError(f"dataset name {clip(spec.name, 80)!r}: use 1 to 200 printable characters, e.g. glasgow-2019.")
        if len(spec.language) > 16 or not re.fullmatch(r"[a-z]{2,3}([-_][A-Za-z0-9]+)?", spec.language):
            raise WorkbenchError(
                f"language {clip(spec.language, 80)!r}: use an ISO 639 code such as en, es or pt-BR (at most 16 characters)."
            )
    if rejects_path is not None:
        check_rejects_path(session, Path(rejects_path), path)
    lock_datasets(session, [s.name for s in specs])
    checksum = file_checksum(path)
    actions = plan_import(session, path, specs, checksum)
    for spec in specs:
        if actions[spec.name] == "replace" and not replace:
            raise WorkbenchError(
                f"Dataset {spec.name!r} was imported from a different file or with other options. "
                "Pass --replace to swap its ratings for this file's, or choose another --dataset name."
            )
    if all(a == "unchanged" for a in actions.values()):
        return [ImportResult(s.name, "unchanged") for s in specs]

    raw = raw or read_table(path, encoding=encoding, separator=separator, sheet=sheet, language=specs[0].language if specs else None)
    tables = []
    for spec in specs:
        if actions[spec.name] != "unchanged":
            table = build_norms(raw, rater_scale(session, spec), skip_invalid=skip_invalid)
            table.spec = spec  # the import key is the spec's as given
            tables.append(table)
    if any(t.items == [] for t in tables):
        empty = next(t for t in tables if not t.items)
        raise WorkbenchError(f"{path}: no usable rows for dataset {empty.spec.name!r}: the file has a header but no data.")

    rejects_file = None
    if any(t.rejected for t in tables):
        rejects_file = rejects_path or path.with_name(path.stem + ".rejected.csv")
        if rejects_path is None:
            check_rejects_path(session, rejects_file, path)
        write_rejects(rejects_file, tables)

    results = [ImportResult(s.name, "unchanged") for s in specs if actions[s.name] == "unchanged"]
    for table in tables:
        res = _write_dataset(session, path, table, checksum, origin or str(path.resolve()), actions[table.spec.name])
        res.rejects_file = rejects_file if table.rejected else None
        res.notes = [*raw.notes, *table.notes]
        results.append(res)
    bump_generation(session)
    return sorted(results, key=lambda r: [s.name for s in specs].index(r.dataset))


def check_rejects_path(session: Session, rejects: Path, source: Path) -> None:
    """Refuse a rejects file that would overwrite the store or the input; else the rule for every file written."""
    where = f"--rejects {rejects}"
    if rejects.is_file():
        if source.exists() and rejects.samefile(source):
            raise WorkbenchError(f"{where}: is the file being imported; name another file for the rejected rows.")
        bind = session.get_bind()
        db = bind.url.database if bind.dialect.name == "sqlite" else None
        if db and db != ":memory:":
            store = Path(db)
            for f in (store, Path(f"{db}-wal"), Path(f"{db}-journal"), Path(f"{db}-shm")):
                if f.exists() and rejects.samefile(f):
                    raise WorkbenchError(f"{where}: is the store ({store}); name another file for the rejected rows.")
    check_output_file(rejects, "--rejects")  # a folder, a missing or read-only folder: one line, as for --out


def lock_datasets(session: Session, names: Sequence[str]) -> None:
    """Serialise imports of the same dataset names: the second waits for the first, then sees its result.

    On SQLite the transaction takes the store's write lock now (before it reads anything), so concurrent
    imports run one after the other; on PostgreSQL a transaction-scoped advisory lock per dataset name.
    """
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        try:
            session.execute(text("DELETE FROM store_meta WHERE 0"))
        except OperationalError:
            raise WorkbenchError(
                "The store is locked by another process (an import or apply?) and stayed locked; run the command again when it is done."
            ) from None
        return
    for name in sorted(set(names)):
        key = int.from_bytes(hashlib.sha256(f"workbench.dataset:{name}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SET LOCAL lock_timeout = '120s'"))
        try:
            with session.begin_nested():
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        except OperationalError:
            raise WorkbenchError(f"dataset {name} is being imported by another process; run the command again when it is done.") from None
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))


def rater_scale(session: Session, spec: DatasetSpec) -> DatasetSpec:
    """Ratings imported as a rater are checked against the scale of their dimension in the store,
    unless --scale names the scale they are on: a value off the scale is a problem, not a silent rating."""
    if spec.rater_kind == "norm" or all(rc.scale is not None for rc in spec.ratings):
        return spec
    ratings = []
    for rc in spec.ratings:
        if rc.scale is None:
            dim = session.scalar(select(Dimension).where(Dimension.name == rc.dimension))
            if dim is not None and dim.scale_min is not None and dim.scale_max is not None:
                f = rc.rescale or 1.0  # values are checked before --rescale multiplies them
                rc = replace(rc, scale=(dim.scale_min / f, dim.scale_max / f))
        ratings.append(rc)
    return replace(spec, ratings=tuple(ratings))


def write_rejects(path: Path, tables: list[NormTable]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "row", "column", "value", "reason"])
        for t in tables:
            for line, problems in t.rejected:
                for p in problems:
                    w.writerow([t.spec.name, line, p.column, p.value, p.reason])
    tmp.replace(path)


def ensure_dimension(session: Session, name: str, scale: tuple[float, float] | None) -> Dimension:
    """The dimension `name`, created (race-free: another import may create it at the same time) if missing."""
    dim = session.scalar(select(Dimension).where(Dimension.name == name))
    if dim is None:
        values = {"name": name, "scale_min": scale[0] if scale else None, "scale_max": scale[1] if scale else None}
        session.execute(_insert(session, Dimension).values(**values).on_conflict_do_nothing())
        dim = session.scalar(select(Dimension).where(Dimension.name == name))
    return dim


def _insert(session: Session, model):
    """INSERT with the dialect's ON CONFLICT support."""
    if session.get_bind().dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert(model)


def _write_dataset(session: Session, path: Path, table: NormTable, checksum: str, origin: str, action: str) -> ImportResult:
    spec = table.spec
    ds = session.scalar(select(Dataset).where(Dataset.name == spec.name))
    details = {
        "file": path.name,
        "rows_read": table.rows_read,
        "blank_rows": table.blank_rows,
        "duplicates_merged": table.duplicates_merged,
        "rejected_rows": len(table.rejected),
        "item_column": list(spec.item),
        "dimensions": {
            d.columns.dimension: {
                "column": d.mean_column,
                "scale": list(d.columns.scale) if d.columns.scale else None,
                "rescale": d.columns.rescale,
                "stored_scale": list(d.columns.stored_scale()) if d.columns.scale else None,
                "ratings": int(len(d.value)),
                **({"open_scale": True} if d.columns.open_scale else {}),
            }
            for d in table.dimensions
        },
    }
    if ds is None:
        ds = Dataset(name=spec.name)
        session.add(ds)
    ds.citation, ds.licence, ds.origin_url = spec.citation, spec.licence, spec.url
    ds.origin_file, ds.checksum, ds.import_key = origin, checksum, import_key(checksum, spec)
    ds.preset, ds.language, ds.details, ds.imported_at = spec.preset, spec.language, details, utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # lock_datasets makes this a safety net: a writer that did not take the lock
        raise WorkbenchError(
            f"dataset {spec.name} is being imported by another process (or was just imported); run the command again to see its state."
        ) from None

    rater = session.scalar(select(Rater).where(Rater.name == spec.name))
    if rater is None:
        config = {"dataset": spec.name} if spec.rater_kind == "norm" else {"imported_from": origin, "columns": details["dimensions"]}
        rater = Rater(name=spec.name, kind=spec.rater_kind, dataset_id=ds.id, config=config)
        session.add(rater)
        session.flush()
    elif rater.kind != spec.rater_kind or rater.dataset_id != ds.id:
        raise WorkbenchError(f"A {rater.kind} rater is already named {spec.name!r}: choose another name.")
    else:
        session.execute(delete(Rating).where(Rating.rater_id == rater.id))

    job = Job(kind="import", status="running", dataset_id=ds.id, rater_id=rater.id, config={"file": origin, "preset": spec.preset})
    session.add(job)
    session.flush()

    item_ids = upsert_items(session, table.items, spec.language)
    total = 0
    for d in table.dimensions:
        dim = ensure_dimension(session, d.columns.dimension, d.columns.stored_scale())
        ids = item_ids[d.item_index]
        bulk_insert_ratings(session, rater.id, dim.id, job.id, ids, d.value, d.sd, d.n, known_share(d.n, d.n_unknown))
        total += len(ids)
    job.status, job.finished_at = "done", utcnow()
    job.counts = {"items": len(table.items), "ratings": total, "rejected_rows": len(table.rejected)}
    session.flush()
    return ImportResult(
        dataset=spec.name,
        status="replaced" if action == "replace" else "imported",
        items=len(table.items),
        ratings=total,
        dimensions=[d.columns.dimension for d in table.dimensions],
        rejected_rows=len(table.rejected),
        duplicates_merged=table.duplicates_merged,
    )


def _driver(session: Session):
    return session.connection().connection.driver_connection


def upsert_items(session: Session, texts: list[str], language: str) -> np.ndarray:
    """Ids of the items `texts` in `language`, creating the missing ones. Same order as texts."""
    dialect = session.get_bind().dialect.name
    conn = _driver(session)
    cur = conn.cursor()
    ph = "?" if dialect == "sqlite" else "%s"
    cur.execute(f"SELECT text, id FROM items WHERE language = {ph}", (language,))
    existing = dict(cur.fetchall())
    new = [t for t in dict.fromkeys(texts) if t not in existing]
    if new:
        # Another import may add the same items at the same time: insert what is missing, skip what a
        # concurrent writer added (ON CONFLICT DO NOTHING, which waits for that writer), then read the ids
        # back. On PostgreSQL in text order, so two imports wait on each other's rows in one order and
        # cannot deadlock; SQLite has one writer at a time and keeps file order (ids in the order the
        # ratings are then inserted keep their index appends sequential).
        if dialect == "sqlite":
            cur.execute("SELECT coalesce(max(id), 0) FROM items")
            (before,) = cur.fetchone()
            cur.executemany("INSERT INTO items (text, language) VALUES (?, ?) ON CONFLICT DO NOTHING", [(t, language) for t in new])
            cur.execute("SELECT text, id FROM items WHERE language = ? AND id > ?", (language, before))
            existing.update(cur.fetchall())
            if any(t not in existing for t in new):  # added by another writer since the first read
                cur.execute("SELECT text, id FROM items WHERE language = ?", (language,))
                existing.update(cur.fetchall())
        else:
            cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS wb_new_items (text text, language text) ON COMMIT DROP")
            cur.execute("TRUNCATE wb_new_items")
            with cur.copy("COPY wb_new_items (text, language) FROM STDIN") as cp:
                for t in new:
                    cp.write_row((t, language))
            cur.execute(
                "INSERT INTO items (text, language) SELECT text, language FROM wb_new_items ORDER BY text "
                "ON CONFLICT (language, text) DO NOTHING"
            )
            cur.execute("SELECT i.text, i.id FROM items i JOIN wb_new_items n ON i.language = n.language AND i.text = n.text")
            existing.update(cur.fetchall())
    cur.close()
    missing = [t for t in new if t not in existing]
    if missing:  # pragma: no cover - would mean a concurrent writer removed items mid-transaction
        raise WorkbenchError(f"Items vanished while importing: {missing[:3]}; run the import again.")
    return np.fromiter((existing[t] for t in texts), dtype=np.int64, count=len(texts))


def known_share(n: np.ndarray | None, n_unknown: np.ndarray | None) -> list[str | None] | None:
    """Per rating, {"known": share of people who knew the word, "n_unknown": how many did not} as JSON text, as a
    campaign's pull stores it; None where the file has no count of people who did not know the word."""
    if n is None or n_unknown is None:
        return None
    out: list[str | None] = []
    for rated, unknown in zip(n.tolist(), n_unknown.tolist(), strict=True):
        if rated != rated or unknown != unknown or rated + unknown <= 0:
            out.append(None)
        else:
            out.append(json.dumps({"known": round(rated / (rated + unknown), 6), "n_unknown": int(unknown)}))
    return out


def bulk_insert_ratings(
    session: Session,
    rater_id: int,
    dimension_id: int,
    job_id: int | None,
    item_ids: np.ndarray,
    value: np.ndarray,
    sd: np.ndarray | None,
    n: np.ndarray | None,
    known: list[str | None] | None = None,
) -> None:
    """known: per rating, its distribution as JSON text (the share of people who knew the word) or None."""
    dialect = session.get_bind().dialect.name
    conn = _driver(session)
    k = len(item_ids)
    ids = item_ids.tolist()
    vals = value.tolist()
    sds = [None] * k if sd is None else [None if x != x else x for x in sd.tolist()]
    ns = [None] * k if n is None else [None if x != x else int(x) for x in n.tolist()]
    dists = [None] * k if known is None else known
    if dialect == "sqlite":
        cur = conn.cursor()
        cur.executemany(
            "INSERT INTO ratings (item_id, dimension_id, rater_id, replicate, value, sd, n, distribution, job_id) "
            f"VALUES (?, {dimension_id}, {rater_id}, 0, ?, ?, ?, ?, {job_id if job_id else 'NULL'})",
            zip(ids, vals, sds, ns, dists),
        )
        cur.close()
        return
    null = "\\N"
    prefix = f"\t{dimension_id}\t{rater_id}\t0\t"
    suffix = f"\t{job_id if job_id else null}\n"
    buf = io.StringIO()
    for i, v, s, c, d in zip(ids, vals, sds, ns, dists):
        buf.write(f"{i}{prefix}{v!r}\t{null if s is None else repr(s)}\t{null if c is None else c}\t{null if d is None else d}{suffix}")
    with conn.cursor() as cur:
        with cur.copy("COPY ratings (item_id, dimension_id, rater_id, replicate, value, sd, n, distribution, job_id) FROM STDIN") as cp:
            cp.write(buf.getvalue())
