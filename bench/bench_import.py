"""How much does an import cost over a bare bulk load of the same rows?

    python bench/bench_import.py                 # SQLite only
    python bench/bench_import.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Two generated files:

(a) a Brysbaert-sized concreteness file: 40,000 rows with the published columns
    (Word, Bigram, Conc.M, Conc.SD, Unknown, Total, Percent_known, SUBTLEX, Dom_Pos),
    imported with the brysbaert2014 preset: 40,000 ratings;
(b) 100,000 words x 10 dimensions with .M/.SD/.N columns and a generic DatasetSpec:
    1,000,000 ratings.

For each, on each database, it times workbench's import end to end (read, validate,
write, commit: `import_file` in one transaction) into a fresh store, and a bare load
of the same items and ratings with the driver alone into a second fresh store made by
workbench's own migration (same tables, constraints and indexes): sqlite3 executemany
of pre-built tuples, or psycopg COPY (cursor.copy + write_row) on PostgreSQL. The goal
is import <= 2x the bare load. Times and ratios are printed and written as JSON to
bench/results/ (gitignored).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import sqlite3
import string
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from workbench.ingest.load import import_file  # noqa: E402
from workbench.ingest.presets import preset_specs  # noqa: E402
from workbench.ingest.readers import read_table  # noqa: E402
from workbench.ingest.spec import DatasetSpec, RatingColumns  # noqa: E402
from workbench.ingest.validate import build_norms  # noqa: E402
from workbench.store import connect  # noqa: E402
from workbench.store.engine import server_version  # noqa: E402

GOAL = 2.0
RESULTS = ROOT / "bench" / "results"


# --------------------------------------------------------------------------- generated files


def unique_words(n: int, rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    letters = string.ascii_lowercase
    while len(words) < n:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(3, 11)))
        words.setdefault(w, None)
    return list(words)


def brysbaert_file(path: Path, n: int = 40_000, seed: int = 1) -> None:
    rng = random.Random(seed)
    pos = ["Noun", "Verb", "Adjective", "Adverb", "Name", "Number", "#N/A"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\r\n")
        w.writerow(["Word", "Bigram", "Conc.M", "Conc.SD", "Unknown", "Total", "Percent_known", "SUBTLEX", "Dom_Pos"])
        for word in unique_words(n, rng):
            total = rng.randint(25, 30)
            unknown = rng.randint(0, 4)
            w.writerow(
                [
                    word,
                    0,
                    round(rng.uniform(1, 5), 2),
                    round(rng.uniform(0, 1.9), 2),
                    unknown,
                    total,
                    round((total - unknown) / total, 2),
                    rng.randint(0, 50_000),
                    rng.choice(pos),
                ]
            )


N_DIMS = 10


def wide_file(path: Path, n: int = 100_000, seed: int = 2) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    words = unique_words(n, rng)
    means = np.round(nrng.uniform(1, 7, size=(n, N_DIMS)), 3)
    sds = np.round(nrng.uniform(0.1, 2.5, size=(n, N_DIMS)), 3)
    ns = nrng.integers(12, 70, size=(n, N_DIMS))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Word"] + [f"Dim{k:02d}.{s}" for k in range(1, N_DIMS + 1) for s in ("M", "SD", "N")])
        for i, word in enumerate(words):
            row = [word]
            for k in range(N_DIMS):
                row += [repr(float(means[i, k])), repr(float(sds[i, k])), int(ns[i, k])]
            w.writerow(row)


def wide_spec(name: str) -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name,
            item=("Word",),
            ratings=tuple(
                RatingColumns(f"dim{k:02d}", mean=(f"Dim{k:02d}.M",), sd=(f"Dim{k:02d}.SD",), n=(f"Dim{k:02d}.N",), scale=(1, 7))
                for k in range(1, N_DIMS + 1)
            ),
        )
    ]


# --------------------------------------------------------------------------- stores


class Stores:
    """Fresh, migrated stores; SQLite files in a temporary folder or databases on a PostgreSQL server."""

    def __init__(self, kind: str, tmp: Path, pg_server: str | None):
        self.kind, self.tmp, self.pg_server = kind, tmp, pg_server
        self.created: list[str] = []

    def fresh(self) -> str:
        if self.kind == "sqlite":
            url = f"sqlite:///{self.tmp / f'store-{uuid.uuid4().hex[:8]}.db'}"
        else:
            name = f"wb_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(self.pg_server, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.created.append(name)
            url = self.pg_server.rsplit("/", 1)[0] + "/" + name
        connect(url).dispose()  # workbench's own migration
        return url

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(self.pg_server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for name in self.created:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------------- the two loads


def time_import(url: str, path: Path, specs: list[DatasetSpec]) -> tuple[float, int]:
    engine = connect(url)
    try:
        t0 = time.perf_counter()
        with Session(engine) as s, s.begin():
            results = import_file(s, path, specs)
        elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    return elapsed, sum(r.ratings for r in results)


def bare_rows(path: Path, specs: list[DatasetSpec]) -> tuple[list[tuple], list[tuple], list[tuple[str, float, float]]]:
    """Items, ratings and dimensions as pre-built tuples (untimed), ids as a fresh store will give them."""
    raw = read_table(path)
    tables = [build_norms(raw, spec) for spec in specs]
    items = list(dict.fromkeys(t for table in tables for t in table.items))
    item_id = {t: i for i, t in enumerate(items, start=1)}
    ratings, dims = [], []
    for table in tables:
        ids = np.array([item_id[t] for t in table.items], dtype=np.int64)
        for d in table.dimensions:
            dims.append((d.columns.dimension, *d.columns.stored_scale()))
            dim_id = len(dims)
            k = len(d.value)
            sd = [None] * k if d.sd is None else d.sd.tolist()
            n = [None] * k if d.n is None else [int(x) for x in d.n.tolist()]
            ratings.extend(zip(ids[d.item_index].tolist(), [dim_id] * k, [1] * k, [0] * k, d.value.tolist(), sd, n, [1] * k))
    return [(t, "en") for t in items], ratings, dims


SETUP_ROWS = [
    "INSERT INTO datasets (id, name, language, imported_at) VALUES (1, 'bare', 'en', CURRENT_TIMESTAMP)",
    "INSERT INTO raters (id, name, kind, dataset_id, created_at) VALUES (1, 'bare', 'norm', 1, CURRENT_TIMESTAMP)",
    "INSERT INTO jobs (id, kind, status, rater_id, dataset_id, started_at) VALUES (1, 'import', 'running', 1, 1, CURRENT_TIMESTAMP)",
]
RATING_COLUMNS = "item_id, dimension_id, rater_id, replicate, value, sd, n, job_id"


def time_bare_sqlite(url: str, items, ratings, dims) -> float:
    db = url[len("sqlite:///") :]
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    try:
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        for sql in SETUP_ROWS:
            conn.execute(sql)
        conn.executemany(
            "INSERT INTO dimensions (id, name, scale_min, scale_max) VALUES (?, ?, ?, ?)", [(i, *d) for i, d in enumerate(dims, start=1)]
        )
        conn.executemany("INSERT INTO items (text, language) VALUES (?, ?)", items)
        conn.executemany(f"INSERT INTO ratings ({RATING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ratings)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        assert conn.execute("SELECT max(id), count(*) FROM items").fetchone() == (len(items), len(items))
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == len(ratings)
    finally:
        conn.close()
    return elapsed


def time_bare_pg(url: str, items, ratings, dims) -> float:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for sql in SETUP_ROWS:
                cur.execute(sql)
            cur.executemany(
                "INSERT INTO dimensions (id, name, scale_min, scale_max) VALUES (%s, %s, %s, %s)",
                [(i, *d) for i, d in enumerate(dims, start=1)],
            )
            with cur.copy("COPY items (text, language) FROM STDIN") as cp:
                for row in items:
                    cp.write_row(row)
            with cur.copy(f"COPY ratings ({RATING_COLUMNS}) FROM STDIN") as cp:
                for row in ratings:
                    cp.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - t0
        with conn.cursor() as cur:
            cur.execute("SELECT max(id), count(*) FROM items")
            assert cur.fetchone() == (len(items), len(items))
            cur.execute("SELECT count(*) FROM ratings")
            assert cur.fetchone()[0] == len(ratings)
    return elapsed


# --------------------------------------------------------------------------- main


def bench_case(name: str, path: Path, specs, stores: Stores, repeat: int) -> dict:
    items, ratings, dims = bare_rows(path, specs)
    imports, bares = [], []
    n_ratings = 0
    for _ in range(repeat):
        t, n_ratings = time_import(stores.fresh(), path, specs)
        imports.append(t)
        bare = time_bare_sqlite if stores.kind == "sqlite" else time_bare_pg
        bares.append(bare(stores.fresh(), items, ratings, dims))
    assert n_ratings == len(ratings), (n_ratings, len(ratings))
    best_import, best_bare = min(imports), min(bares)
    ratio = best_import / best_bare
    print(
        f"  {name:<12} {len(items):>8,} items {len(ratings):>10,} ratings   import {best_import:7.2f} s   "
        f"bare {best_bare:7.2f} s   ratio {ratio:5.2f}  {'ok' if ratio <= GOAL else 'MISSES the goal'}"
    )
    return {
        "case": name,
        "database": stores.kind,
        "items": len(items),
        "ratings": len(ratings),
        "import_s": imports,
        "bare_s": bares,
        "best_import_s": best_import,
        "best_bare_s": best_bare,
        "ratio": ratio,
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", metavar="URL", help="a PostgreSQL server URL; databases are created there and dropped")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the best is compared (default 1)")
    ap.add_argument("--only", choices=["brysbaert", "wide"], help="run one of the two cases")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = ap.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmpdir:
        tmp = Path(tmpdir)
        files = {}
        t0 = time.perf_counter()
        if args.only in (None, "brysbaert"):
            files["brysbaert"] = (tmp / "Concreteness_ratings_Brysbaert_et_al_BRM.txt", preset_specs("brysbaert2014", "brysbaert"))
            brysbaert_file(files["brysbaert"][0])
        if args.only in (None, "wide"):
            files["wide-1M"] = (tmp / "wide.csv", wide_spec("wide"))
            wide_file(files["wide-1M"][0])
        print(f"generated {len(files)} files in {time.perf_counter() - t0:.1f} s")
        kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
        for kind in kinds:
            pg = args.pg.replace("postgresql://", "postgresql+psycopg://", 1) if args.pg else None
            stores = Stores(kind, tmp, pg)
            try:
                first = stores.fresh()
                engine = connect(first)
                print(f"{kind}: {server_version(engine)}")
                engine.dispose()
                for name, (path, specs) in files.items():
                    results.append(bench_case(name, path, specs, stores, args.repeat))
            finally:
                stores.drop_all()

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out / f"bench_import-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if all(r["meets_goal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
