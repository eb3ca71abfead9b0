"""How long does a whole validation report take over 40,000 items x 6 raters with 1,000 resamples?

    python bench/bench_report.py [--items 40000] [--raters 6] [--n-boot 1000]

Builds a fresh SQLite store with one gold dataset and N model raters
(synthetic: the gold values plus noise of increasing size, 5% missing),
then times `build_report` (every number: the table with bootstrap intervals,
comparisons of every pair of raters, error analysis, heatmap) and writing the
self-contained HTML file with its plots. Goal: under a minute on this machine.
The ratio of the vectorised bootstrap to a per-resample pandas loop is
bench/bench_report_stats.py. Writes bench/results/report.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from workbench.analysis.report import build_report, write_report  # noqa: E402
from workbench.ingest.load import import_file  # noqa: E402
from workbench.ingest.spec import DatasetSpec, RatingColumns  # noqa: E402
from workbench.store import connect  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def make_store(folder: Path, n_items: int, n_raters: int):
    rng = np.random.default_rng(0)
    gold = rng.uniform(1, 7, n_items)
    columns = {"word": [f"w{i:06d}" for i in range(n_items)], "gold": np.round(gold, 2)}
    for k in range(n_raters):
        values = np.clip(gold + rng.normal(0, 0.5 + 0.3 * k, n_items), 1, 7).round(3).astype(object)
        values[rng.random(n_items) < 0.05] = ""
        columns[f"rater{k + 1}"] = values
    path = folder / "ratings.csv"
    names = list(columns)
    with path.open("w") as f:
        f.write(",".join(names) + "\n")
        for row in zip(*columns.values(), strict=True):
            f.write(",".join(str(v) for v in row) + "\n")
    engine = connect(f"sqlite:///{folder / 'store.db'}")
    scale = (1.0, 7.0)
    with Session(engine) as s, s.begin():
        import_file(s, path, [DatasetSpec("gold", item=("word",), ratings=(RatingColumns("familiarity", mean=("gold",), scale=scale),))])
        for k in range(n_raters):
            spec = DatasetSpec(f"rater{k + 1}", item=("word",), rater_kind="model",
                               ratings=(RatingColumns("familiarity", mean=(f"rater{k + 1}",), scale=scale),))  # fmt: skip
            import_file(s, path, [spec])
    return engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--raters", type=int, default=6)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_store(Path(tmp), args.items, args.raters)
        start = time.perf_counter()
        with Session(engine) as s:
            report, datas = build_report(s, n_boot=args.n_boot)
        numbers = time.perf_counter() - start
        write_report(report, datas, Path(tmp) / "report.html", "html")
        total = time.perf_counter() - start
        size = (Path(tmp) / "report.html").stat().st_size
        engine.dispose()
    part = report.dimensions[0]
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "items": args.items, "raters": args.raters, "n_boot": args.n_boot,
        "comparisons": len(part.comparisons), "numbers_seconds": round(numbers, 2),
        "total_seconds_with_html": round(total, 2), "html_bytes": size, "goal_seconds": 60,
    }  # fmt: skip
    print(f"{args.items:,} items x {args.raters} raters, {args.n_boot} resamples, {len(part.comparisons)} pairwise comparisons")
    print(f"  numbers (build_report):   {numbers:6.1f} s")
    print(f"  with the HTML and plots:  {total:6.1f} s   (goal: under 60 s)   {size / 1e6:.1f} MB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
