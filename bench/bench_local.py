"""How much faster is the local model with prefix caching and batching than one forward pass per prompt?

    python bench/bench_local.py                        # 300 words; ~5 minutes on 2 cores
    python bench/bench_local.py --n 100 --batch-sizes 8 16 --continuation-n 0

Words: the first --n words of the Glasgow/MRC familiarity test set
(tests/data/glasgow_mrc/test_1045.xlsx, column Word). Prompt: rating
instructions and 10 few-shot examples from the training set (train_1500.xlsx,
FAM_Glas rounded to the 1-7 scale), then 'Word: "<word>"\\nRating: ' per item.

For the single-token 1-7 scale it times LocalModel.rate_expected with the prefix
cache and batching at each --batch-sizes value, and the plain baseline
(cache_prefix=False, batch_size=1: one full forward pass per prompt, output layer
on the last position only), checks that the expected values agree (max abs
difference < 1e-4) and reports words/s and the speed-up; the goal is >= 3x.
It does the same for the 100-700 scale (FAM_MRC_OLD; points scored as whole
continuations " 100" ... " 700"), the plain baseline (one forward pass per word
and point) on the first --continuation-n words only, as it is 7x slower; there
the values are compared in units of the scale's step (100).
Pearson r with the human means is printed as a sanity check, not a result.
Results are printed and written as JSON to bench/results/local.json (gitignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.raters.local.model import LocalModel  # noqa: E402
from workbench.scale import scale_points  # noqa: E402

GOAL = 3.0
TOLERANCE = 1e-4
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "tests" / "data" / "glasgow_mrc"

INSTRUCTIONS = (
    "Familiarity is a measure of how familiar something is. A word is very FAMILIAR if you see, hear or use it "
    "every day; it is very UNFAMILIAR if you have never seen, heard or used it.\n"
    "Rate each word on a scale from 1 (very unfamiliar) to 7 (very familiar); 4 is moderately familiar. "
    "Answer with one number.\n\n"
)


def load_words(n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    import pandas as pd

    df = pd.read_excel(DATA / "test_1045.xlsx").dropna(subset=["Word"]).head(n)
    return [str(w) for w in df["Word"]], df["FAM_Glas"].to_numpy(float), df["FAM_MRC_OLD"].to_numpy(float)


def few_shot(k: int = 10, scale: str = "1-7") -> list[tuple[str, int]]:
    """k training words spread over the rating range (every len/k-th word by rating)."""
    import pandas as pd

    df = pd.read_excel(DATA / "train_1500.xlsx").dropna(subset=["Word", "FAM_Glas"]).sort_values("FAM_Glas")
    picks = df.iloc[np.linspace(0, len(df) - 1, k).round().astype(int)]
    order = np.random.default_rng(7).permutation(k)  # not sorted by rating in the prompt
    rows = [picks.iloc[i] for i in order]
    if scale == "1-7":
        return [(str(r["Word"]), int(np.clip(round(r["FAM_Glas"]), 1, 7))) for r in rows]
    return [(str(r["Word"]), int(np.clip(round(r["FAM_MRC_OLD"], -2), 100, 700))) for r in rows]


def prompt(scale: str) -> str:
    text = (
        INSTRUCTIONS
        if scale == "1-7"
        else INSTRUCTIONS.replace("1 (very", "100 (very").replace("7 (very", "700 (very").replace("; 4 is", "; 400 is")
    )
    return text + "".join(f'Word: "{w}"\nRating: {r}\n\n' for w, r in few_shot(10, scale))


REPEAT = 1


def timed(fn, repeat: int = 1):
    """(result, best wall time of `repeat` runs): this machine may be shared."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")


def bench_scale(model: LocalModel, scale: str, words: list[str], human: np.ndarray, batch_sizes: list[int], plain_n: int) -> dict:
    points = scale_points(1, 7) if scale == "1-7" else scale_points(100, 700, 100)
    prefix = prompt(scale)
    suffix_end = " " if scale == "1-7" else ""  # 1-7: the digit is the next token; 100-700: score " 300"
    suffixes = [f'Word: "{w}"\nRating:{suffix_end}' for w in words]
    tokens = model.split_tokens(prefix, suffixes)
    print(f"\n{scale} scale: {len(words)} words, prefix {len(tokens.head)} tokens, "
          f"item tokens {min(map(len, tokens.tails))}-{max(map(len, tokens.tails))}, plain on {plain_n} words")  # fmt: skip
    model.rate_expected(prefix, suffixes[:4], points)  # warm-up

    plain, plain_s = timed(lambda: model.rate_expected(prefix, suffixes[:plain_n], points, cache_prefix=False, batch_size=1), REPEAT)
    plain_wps = plain_n / plain_s
    plain_values = np.array([r.value for r in plain], dtype=float)
    step = 1.0 if scale == "1-7" else 100.0
    print(f"  {'path':<18} {'batch':>5} {'seconds':>8} {'words/s':>8} {'speed-up':>8} {'max |diff|':>11}")
    print(f"  {'plain (baseline)':<18} {1:>5} {plain_s:>8.2f} {plain_wps:>8.2f} {1.0:>8.2f} {'-':>11}")
    runs = []
    for bs in batch_sizes:
        fast, fast_s = timed(lambda bs=bs: model.rate_expected(prefix, suffixes, points, batch_size=bs), REPEAT)
        values = np.array([r.value for r in fast], dtype=float)
        diff = float(np.max(np.abs(values[:plain_n] - plain_values)))
        wps = len(words) / fast_s
        runs.append({"batch_size": bs, "seconds": fast_s, "words_per_s": wps, "speedup": wps / plain_wps,
                     "max_abs_diff": diff, "max_abs_diff_in_steps": diff / step,
                     "pearson_r_human": pearson(values, human)})  # fmt: skip
        print(f"  {'cached + batched':<18} {bs:>5} {fast_s:>8.2f} {wps:>8.2f} {wps / plain_wps:>8.2f} {diff:>11.2e}")
    best = max(runs, key=lambda r: r["words_per_s"])
    low = sum(r.low_mass for r in fast)
    print(f"  best: batch {best['batch_size']}, {best['speedup']:.1f}x; Pearson r with human means {best['pearson_r_human']:.3f}; "
          f"low-mass read-outs {low}/{len(fast)}")  # fmt: skip
    # the expected values agree when their difference is below 1e-4 in units of the scale's step
    agree = all(r["max_abs_diff_in_steps"] < TOLERANCE for r in runs)
    return {
        "scale": scale,
        "words": len(words),
        "prefix_tokens": len(tokens.head),
        "plain_words": plain_n,
        "plain_seconds": plain_s,
        "plain_words_per_s": plain_wps,
        "runs": runs,
        "best_batch_size": best["batch_size"],
        "best_speedup": best["speedup"],
        "agree": agree,
        "meets_goal": best["speedup"] >= GOAL and agree,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="words to rate (default 300)")
    ap.add_argument("--plain-n", type=int, help="words for the plain baseline on the 1-7 scale (default: all)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    ap.add_argument(
        "--continuation-n",
        type=int,
        default=30,
        help="the 100-700 scale: plain baseline on this many words (default 30; 0 skips the scale)",
    )
    ap.add_argument("--continuation-batch-sizes", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the best is kept (default 1)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--model", help="a .gguf file or model folder (default: the packaged gemma3-270m)")
    ap.add_argument("--out", type=Path, default=RESULTS / "local.json", help="the JSON results file")
    args = ap.parse_args(argv)

    import torch

    global REPEAT
    REPEAT = max(1, args.repeat)
    (model, load_s) = timed(lambda: LocalModel.load(args.model, threads=args.threads))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{model!r}: loaded in {load_s:.1f} s, max RSS {rss:.0f} MB, torch {torch.__version__}, {torch.get_num_threads()} threads")
    words, fam, mrc = load_words(args.n)
    results = [bench_scale(model, "1-7", words, fam, args.batch_sizes, min(args.plain_n or len(words), len(words)))]
    if args.continuation_n > 0:
        results.append(bench_scale(model, "100-700", words, mrc, args.continuation_batch_sizes, min(args.continuation_n, len(words))))

    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax RSS after the runs: {rss_end:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": model.describe(),
        "load_seconds": load_s,
        "max_rss_mb_after_load": rss,
        "max_rss_mb": rss_end,
        "repeat": REPEAT,
        "goal_speedup": GOAL,
        "tolerance": TOLERANCE,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if all(r["meets_goal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
