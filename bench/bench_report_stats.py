"""How fast are a validation report's bootstrap intervals for many raters at once?

    python bench/bench_report_stats.py [--items 40000] [--raters 6] [--boot 1000] [--loop-boot 20]

Synthetic data: a gold vector of n items (familiarity-like, 1-7) and 6 raters
correlated with it to different degrees, their values rounded to 2 decimals
(ties), with 5% of each rater's values missing. Both sides compute, for every
rater and every bootstrap resample of items, Spearman rho and Pearson r
against gold over the drawn pairs where the rater has a value:

- vectorised: `workbench.analysis.stats.agreement_many` (all resamples, in
  chunks; also point estimates, MAE, RMSE, bias, SD ratio and the intervals);
- loop: a straightforward pandas loop over the same resamples (rows of
  `bootstrap_indices`): ``sub = df.iloc[idx]``, then per rater
  ``sub[rater].corr(sub["gold"], method="spearman")`` and the same for
  Pearson (pandas drops the pairs with a missing value).

The loop is timed on the first --loop-boot resamples only and its time
extrapolated linearly to --boot resamples (stated as such in the output); its
correlations on those resamples are checked against the vectorised ones. The
goal: the vectorised run under 60 s and at least 10x faster than the
(extrapolated) loop. Prints a table and writes bench/results/report_stats.json
(gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.analysis import stats  # noqa: E402

GOAL_SPEEDUP = 10.0
GOAL_SECONDS = 60.0
RESULTS = ROOT / "bench" / "results"


def synthetic(n_items: int, n_raters: int, missing: float = 0.05, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Gold ~ N(5, 1) clipped to 1-7; rater k = gold + noise of SD 0.3 + 0.15 k, rounded, 5% NaN."""
    rng = np.random.default_rng(seed)
    gold = np.clip(rng.normal(5, 1, size=n_items), 1, 7).round(3)
    noise = rng.normal(size=(n_items, n_raters)) * (0.3 + 0.15 * np.arange(n_raters))
    raters = np.clip(gold[:, None] + noise, 1, 7).round(2)
    raters[rng.random(raters.shape) < missing] = np.nan
    return pd.DataFrame(raters, columns=[f"rater{k + 1}" for k in range(n_raters)]), gold


def pandas_loop(df: pd.DataFrame, gold: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample and rater, Spearman and Pearson with gold by pandas: two [len(idx), n_raters]."""
    data = df.assign(gold=gold)
    raters = list(df.columns)
    rho, r = np.empty((len(idx), len(raters))), np.empty((len(idx), len(raters)))
    for b, rows in enumerate(idx):
        sub = data.iloc[rows]
        for k, rater in enumerate(raters):
            rho[b, k] = sub[rater].corr(sub["gold"], method="spearman")
            r[b, k] = sub[rater].corr(sub["gold"])
    return rho, r


def peak_bytes(df: pd.DataFrame, gold: np.ndarray, n_boot: int) -> int:
    """Peak memory numpy allocates during a run of agreement_many (tracemalloc)."""
    tracemalloc.start()
    try:
        stats.agreement_many(df, gold, n_boot=n_boot, seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--raters", type=int, default=6)
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--loop-boot", type=int, default=20, help="resamples the pandas loop is timed on (default 20)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side; the best counts (default 1)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = ap.parse_args(argv)

    df, gold = synthetic(args.items, args.raters)
    print(
        f"{args.items:,} items x {args.raters} raters, {args.boot:,} resamples, {df.isna().to_numpy().mean():.1%} of rater values missing"
    )

    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        results = stats.agreement_many(df, gold, n_boot=args.boot, seed=0)
        runs.append(time.perf_counter() - t0)
    vectorised = min(runs)

    # every item has gold and (with 5% missing per rater) at least one rater value, so agreement_many
    # resampled rows of bootstrap_indices(n_items, ...): the loop uses the same rows
    assert df.notna().any(axis=1).all()
    idx = stats.bootstrap_indices(args.items, args.boot, seed=0)[: args.loop_boot]
    loop_runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        loop_rho, loop_r = pandas_loop(df, gold, idx)
        loop_runs.append(time.perf_counter() - t0)
    loop_measured = min(loop_runs)
    loop_extrapolated = loop_measured * args.boot / args.loop_boot
    vec_rho, vec_r = stats._boot_correlations(df.to_numpy(), gold, args.loop_boot, seed=0)
    max_diff = float(max(np.abs(vec_rho - loop_rho).max(), np.abs(vec_r - loop_r).max()))
    assert max_diff < 1e-9, f"vectorised and loop correlations differ by {max_diff}"

    speedup = loop_extrapolated / vectorised
    peak = peak_bytes(df, gold, min(args.boot, 200))
    meets = speedup >= GOAL_SPEEDUP and vectorised <= GOAL_SECONDS

    print(f"\n  {'rater':<8} {'n':>7} {'spearman':>9} {'95% CI':>17} {'pearson':>8} {'95% CI':>17}")
    for a in results:
        print(
            f"  {a.rater:<8} {a.n:>7,} {a.spearman:9.4f} {a.spearman_ci[0]:8.4f}-{a.spearman_ci[1]:.4f} "
            f"{a.pearson:8.4f} {a.pearson_ci[0]:8.4f}-{a.pearson_ci[1]:.4f}"
        )
    print(f"\n  vectorised agreement_many          {vectorised:8.2f} s   (peak numpy memory {peak / 2**20:.0f} MiB)")
    print(f"  pandas loop, {args.loop_boot} resamples measured   {loop_measured:8.2f} s")
    print(f"  pandas loop, {args.boot} extrapolated     {loop_extrapolated:8.2f} s   (linear: x {args.boot / args.loop_boot:g})")
    print(
        f"  speed-up                           {speedup:8.1f} x   "
        f"{'ok' if meets else 'MISSES the goal'} (goal >= {GOAL_SPEEDUP:g}x and <= {GOAL_SECONDS:g} s)"
    )
    print(f"  max |vectorised - loop| over the measured resamples: {max_diff:.1e}")

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "report_stats.json"
    out.write_text(
        json.dumps(
            {
                "when": dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "items": args.items,
                "raters": args.raters,
                "resamples": args.boot,
                "vectorised_s": runs,
                "best_vectorised_s": vectorised,
                "peak_numpy_bytes": peak,
                "loop_resamples_measured": args.loop_boot,
                "loop_measured_s": loop_runs,
                "best_loop_measured_s": loop_measured,
                "loop_extrapolated_s": loop_extrapolated,
                "loop_extrapolated_note": f"linear extrapolation from {args.loop_boot} to {args.boot} resamples",
                "speedup": speedup,
                "max_abs_difference": max_diff,
                "goal": {"speedup": GOAL_SPEEDUP, "seconds": GOAL_SECONDS},
                "meets_goal": meets,
                "agreement": [a.to_dict() for a in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())
