"""Benchmark `workbench sql` against plain DuckDB over a Parquet file.

    python bench/bench_sql.py [--rows 1000000] [--dims 10] [--repeat 10] [--pg URL]

Builds a store (a SQLite file in a temporary folder, or the PostgreSQL
database given with --pg) holding ~ROWS fake ratings, imported through the
real importer from a generated CSV (ROWS/DIMS words x DIMS dimensions), then
times:

  (a) the first run_sql after the import, which builds the snapshot;
  (b) the same aggregate query repeated via run_sql (snapshot reused);
  (c) the query in plain DuckDB over a Parquet export of the same long-form
      rows (the export itself is not timed).

Prints the medians and (b)/(c), and appends a JSON line to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.analysis.duck import open_snapshot, run_sql, snapshot_path  # noqa: E402
from workbench.ingest.load import import_file  # noqa: E402
from workbench.ingest.spec import DatasetSpec, RatingColumns  # noqa: E402
from workbench.store import connect, resolve_url  # noqa: E402
from workbench.store.engine import server_version  # noqa: E402

QUERY = "SELECT dimension, rater, count(*) AS n, avg(value) AS mean, stddev(value) AS sd FROM ratings GROUP BY ALL"
RESULTS = Path(__file__).resolve().parent / "results"


def write_csv(path: Path, words: int, dims: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    stems = ["".join(rng.choice(letters, size=rng.integers(3, 9))) for _ in range(words)]
    data = {"Word": [f"{s}{i}" for i, s in enumerate(stems)]}
    for d in range(dims):
        sd = rng.uniform(0.5, 2.0, words).round(3)
        sd[rng.random(words) < 0.05] = np.nan  # some SDs missing, as in real norms
        data[f"D{d}.M"] = rng.uniform(1, 7, words).round(3)
        data[f"D{d}.SD"] = sd
        data[f"D{d}.N"] = rng.integers(10, 40, words)
    pd.DataFrame(data).to_csv(path, index=False)


def spec(dims: int) -> DatasetSpec:
    ratings = tuple(RatingColumns(f"dim{d}", mean=(f"D{d}.M",), sd=(f"D{d}.SD",), n=(f"D{d}.N",), scale=(1, 7)) for d in range(dims))
    return DatasetSpec("bench", item=("Word",), ratings=ratings)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--pg", metavar="URL", help="benchmark this PostgreSQL database instead of a SQLite file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_sql_") as tmp:
        work = Path(tmp)
        os.environ.setdefault("WORKBENCH_CACHE_DIR", str(work / "cache"))
        url = resolve_url(args.pg) if args.pg else f"sqlite:///{work / 'store.db'}"
        engine = connect(url)
        words = args.rows // args.dims
        source = work / "bench.csv"
        write_csv(source, words, args.dims)

        with Session(engine) as s, s.begin():
            start = time.perf_counter()
            (result,) = import_file(s, source, [spec(args.dims)], replace=True)
            import_s = time.perf_counter() - start
        print(f"store: {server_version(engine)}; {result.describe()} in {import_s:.1f} s")
        snapshot_path(engine).unlink(missing_ok=True)  # a rerun on --pg must transfer too

        first_s = timed(lambda: run_sql(engine, QUERY))
        size_mb = snapshot_path(engine).stat().st_size / 1e6
        repeated = [timed(lambda: run_sql(engine, QUERY)) for _ in range(args.repeat)]

        con = open_snapshot(engine)
        open_conn = [timed(lambda: con.sql(QUERY).to_arrow_table()) for _ in range(args.repeat)]
        con.close()

        parquet = work / "ratings.parquet"
        rows = run_sql(engine, "SELECT * FROM ratings")
        plain = duckdb.connect()
        plain.register("long_rows", rows)
        plain.execute(f"COPY long_rows TO '{parquet}' (FORMAT parquet)")
        plain.unregister("long_rows")
        plain.execute(f"CREATE VIEW ratings AS SELECT * FROM read_parquet('{parquet}')")
        baseline = [timed(lambda: plain.sql(QUERY).to_arrow_table()) for _ in range(args.repeat)]
        plain.close()
        engine.dispose()

    med_b, med_c = statistics.median(repeated), statistics.median(baseline)
    record = {
        "bench": "sql",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backend": "postgresql" if args.pg else "sqlite",
        "rows": rows.num_rows,
        "dims": args.dims,
        "repeat": args.repeat,
        "duckdb": duckdb.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "import_s": round(import_s, 3),
        "snapshot_mb": round(size_mb, 1),
        "first_run_sql_s": round(first_s, 4),
        "run_sql_median_s": round(med_b, 4),
        "open_snapshot_query_median_s": round(statistics.median(open_conn), 4),
        "parquet_duckdb_median_s": round(med_c, 4),
        "ratio_run_sql_vs_parquet": round(med_b / med_c, 2),
    }
    print(f"(a) first run_sql, with the transfer: {first_s:.3f} s (snapshot {size_mb:.1f} MB)")
    print(f"(b) run_sql, median of {args.repeat}:       {med_b * 1000:.1f} ms")
    print(f"    same query on an open snapshot:   {record['open_snapshot_query_median_s'] * 1000:.1f} ms")
    print(f"(c) DuckDB over Parquet, median:      {med_c * 1000:.1f} ms")
    print(f"(b)/(c) = {record['ratio_run_sql_vs_parquet']:.2f} (goal <= 3)")
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "bench_sql.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
