"""Hybrid norms on the toolbox paper's words: the stack of local raters, its calibrated intervals, and the planner.

    python bench/hybrid_raters.py     # once: the local raters' outputs, cached (LoRA trainings, embeddings, frequency)
    python bench/bench_hybrid.py      # the figures: seconds, from the cache

Offline, on tests/data/glasgow_mrc (1,500 training and 1,045 test words; Glasgow and MRC familiarity) and
the Glasgow norms' per-word SD and N (tests/data/glasgow):

1. the stack (workbench.raters.stack: ridge over the LoRA's value, its distribution's spread and unsure mass,
   the embedding baseline, word frequency, and their disagreement) fitted on the 1,500 training words only, with
   their out-of-fold component values (5 LoRA fold adapters, each rating the fold it did not train on; the
   embedding in 5 folds), and Spearman against Glasgow on the 1,045 test words (LoRA there: the mean of the fold
   adapters; also shown with one seeded fold adapter per test word, exchangeable with the out-of-fold values);
2. conformal intervals (workbench.analysis.conformal) calibrated on the training words' out-of-fold stack values
   (never on a test word), coverage and mean width on the test words at 80/90/95%;
3. the planner (workbench.analysis.planner): Glasgow's per-word mean and SD as simulated annotators, the calibrated
   stack as prior, MRC as independent gold, at 5/10/25/50/100% of Glasgow's own number of ratings.

Writes bench/results/hybrid.json, hybrid_coverage.png and hybrid_planner.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from hybrid_raters import cache_dir, load_words, lora_design, lora_tag  # noqa: E402

from workbench.analysis.conformal import coverage, fit_conformal  # noqa: E402
from workbench.analysis.planner import Norm, Prior, simulate, spearman  # noqa: E402
from workbench.raters.stack import Component, cross_fit, feature_matrix, usable_features  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LEVELS = (0.8, 0.9, 0.95)


def _col(cache: dict, name: str, words: list[str], k: int) -> np.ndarray:
    return np.array([np.nan if (v := cache[name].get(w)) is None or v[k] is None else v[k] for w in words], dtype=float)


def lora_columns(cache: dict, train: list[str], test: list[str], tag: str) -> tuple[dict, dict, dict, str]:
    """The cross-fitted LoRA's columns (value, spread, mass): out-of-fold on the training words (fold j's adapter never saw
    fold j), on the test words the mean of the fold adapters, and (exchangeable with the out-of-fold values) one
    seeded fold adapter per test word."""
    runs = cache.get("lora", {}).get(tag, {})
    names = sorted(runs)
    oof = {w: runs[f][w] for f in names for w in train if w in runs[f]}
    on_test = {w: [float(np.mean([runs[f][w][k] for f in names])) for k in range(3)] for w in test}
    pick = np.random.default_rng(5).integers(0, len(names), len(test))
    one_fold = {w: runs[names[j]][w] for w, j in zip(test, pick, strict=True)}
    how = (f"{tag}: {len(names)} fold adapters ({', '.join(names)}); out-of-fold values for {len(oof)} of the "
           f"{len(train)} training words; test words: the mean of the {len(names)} adapters")  # fmt: skip
    return oof, on_test, one_fold, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--annotator-sd", type=float, default=0.3)
    ap.add_argument("--lora", help="the LoRA design's cache tag (default: hybrid_raters.py's, e.g. cv5-e2-bfloat16)")
    args = ap.parse_args()
    start = time.perf_counter()
    cache = json.loads((cache_dir() / "raters.json").read_text())
    train_rows, test_rows = load_words()
    train = [w for w, _ in train_rows]
    test = [w for w, _ in test_rows]
    y_train = np.array([v for _, v in train_rows])
    y_test = np.array([v for _, v in test_rows])
    out: dict = {"train": len(train), "test": len(test), "raters": {}}

    tag = args.lora or lora_tag(lora_design())
    have_lora = bool(cache.get("lora", {}).get(tag))
    comps_train: dict[str, Component] = {}
    comps_test: dict[str, Component] = {}
    comps_one: dict[str, Component] = {}  # the test words with one fold adapter's LoRA values each
    if have_lora:
        oof, on_test, one_fold, how = lora_columns(cache, train, test, tag)
        out["lora"] = how
        print(how)
        tr = np.array([oof.get(w, [np.nan] * 3) for w in train], dtype=float)
        te = np.array([on_test[w] for w in test], dtype=float)
        t1 = np.array([one_fold[w] for w in test], dtype=float)
        comps_train["lora"] = Component(tr[:, 0], tr[:, 1], 1 - tr[:, 2])
        comps_test["lora"] = Component(te[:, 0], te[:, 1], 1 - te[:, 2])
        comps_one["lora"] = Component(t1[:, 0], t1[:, 1], 1 - t1[:, 2])
    for name in ("embedding", "frequency"):
        comps_train[name] = Component(_col(cache, name, train, 0))
        comps_test[name] = Component(_col(cache, name, test, 0))
        comps_one[name] = comps_test[name]
    keep = np.all([np.isfinite(c.values) for c in comps_train.values()], axis=0)
    for c in comps_train.values():
        for attr in ("values", "spread", "unsure_mass"):
            if getattr(c, attr) is not None:
                setattr(c, attr, getattr(c, attr)[keep])
    y_fit = y_train[keep]

    print(f"Spearman against Glasgow on the {len(test)} test words (fitted on {int(keep.sum())} training words):")
    for name, c in comps_test.items():
        rho = spearman(c.values, y_test)
        out["raters"][name] = {"rho_glasgow": round(rho, 3)}
        print(f"  {name:<12} {rho:.3f}   (out of fold on the training words: {spearman(comps_train[name].values, y_fit):.3f})")
        out["raters"][name]["out_of_fold_rho_train"] = round(spearman(comps_train[name].values, y_fit), 3)
    names, X = feature_matrix(comps_train)
    use = usable_features(names, X)
    names, X = feature_matrix(comps_train, use)
    _, T = feature_matrix(comps_test, use)
    T = np.where(np.isfinite(T), T, np.nanmean(X, axis=0))
    oof_stack, model, _ = cross_fit(names, X, y_fit, folds=5, seed=args.seed, clip=(1.0, 7.0))
    stack_test = model.predict(T)
    rho_stack = spearman(stack_test, y_test)
    _, T1 = feature_matrix(comps_one, use)
    stack_one = model.predict(np.where(np.isfinite(T1), T1, np.nanmean(X, axis=0)))
    out["raters"]["stack_one_fold_per_word"] = {"rho_glasgow": round(spearman(stack_one, y_test), 3)}
    out["raters"]["stack"] = {"rho_glasgow": round(rho_stack, 3), "features": names, "coef": [round(c, 4) for c in model.coef],
                              "out_of_fold_rho_train": round(spearman(oof_stack, y_fit), 3)}  # fmt: skip
    print(f"  {'stack':<12} {rho_stack:.3f}   (goal >= 0.82; the human ceiling MRC~Glasgow on these words: "
          f"{spearman(np.array([r for r in _mrc(test)]), y_test):.3f})")  # fmt: skip
    print(f"  {'stack, one fold adapter per test word':<12} {spearman(stack_one, y_test):.3f}")

    # conformal intervals: calibrated on the training words (cross-fitted values), covered on the test words
    print("\nConformal coverage on the test words (calibrated on the training words' out-of-fold values):")
    sig_names = ["spread", "unsure_mass", "disagreement"]

    def signals(comps: dict[str, Component]) -> np.ndarray:
        lora = comps.get("lora")
        vals = np.column_stack([c.values for c in comps.values()])
        return np.column_stack([
            lora.spread if lora is not None else np.full(len(vals), np.nan),
            lora.unsure_mass if lora is not None else np.full(len(vals), np.nan), np.std(vals, axis=1),
        ])  # fmt: skip

    s_train, s_test, s_one = signals(comps_train), signals(comps_test), signals(comps_one)
    out["coverage"] = {}
    curves = {}
    cases = {"stack": (oof_stack, stack_test, s_test), "stack (one fold adapter per test word)": (oof_stack, stack_one, s_one),
             **{n: (comps_train[n].values, comps_test[n].values, s_test) for n in comps_train}}  # fmt: skip
    for name, (x_cal, x_new, s_new) in cases.items():
        cm = fit_conformal(x_cal, y_fit, s_train, signal_names=sig_names, levels=LEVELS, scale=(1.0, 7.0), seed=args.seed)
        cov = coverage(cm, x_new, y_test, s_new, LEVELS)
        out["coverage"][name] = [{"level": c.level, "covered": round(c.covered, 4), "mean_width": round(c.mean_width, 3)} for c in cov]
        curves[name] = [(c.level, c.covered) for c in cov]
        print(f"  {name:<12} " + "  ".join(f"{c.level:.0%}: {c.covered:.3f} (width {c.mean_width:.2f})" for c in cov), flush=True)
        if name == "stack":
            stack_cal = cm
    # the same, calibrated on a seeded half of the test words and covered on the other half: calibration values
    # exchangeable with the reported ones (the training words' out-of-fold values come from half-data adapters, whose
    # values are distributed differently from the full adapter's on the test words)
    splits = 20
    print(f"Conformal coverage on half the test words, calibrated on the other half (values from the same models; mean over "
          f"{splits} random halvings, [min, max]):")  # fmt: skip
    out["coverage_test_halves"] = {}
    for name, x_new in {"stack": stack_test, **{n: comps_test[n].values for n in comps_test}}.items():
        got = {lv: [] for lv in LEVELS}
        width = {lv: [] for lv in LEVELS}
        for k in range(splits):
            half = np.random.default_rng([args.seed, k]).permutation(len(test)) < len(test) // 2
            cm = fit_conformal(x_new[half], y_test[half], s_test[half], signal_names=sig_names, levels=LEVELS, scale=(1.0, 7.0), seed=k)
            for c in coverage(cm, x_new[~half], y_test[~half], s_test[~half], LEVELS):
                got[c.level].append(c.covered)
                width[c.level].append(c.mean_width)
        out["coverage_test_halves"][name] = [{"level": lv, "covered": round(float(np.mean(got[lv])), 4),
                                              "min": round(min(got[lv]), 4), "max": round(max(got[lv]), 4),
                                              "mean_width": round(float(np.mean(width[lv])), 3)} for lv in LEVELS]  # fmt: skip
        curves[name + " (test halves)"] = [(lv, float(np.mean(got[lv]))) for lv in LEVELS]
        print(f"  {name:<12} " + "  ".join(f"{lv:.0%}: {np.mean(got[lv]):.3f} [{min(got[lv]):.3f}, {max(got[lv]):.3f}] "
                                             f"(width {np.mean(width[lv]):.2f})" for lv in LEVELS))  # fmt: skip
    from workbench.analysis import plots

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hybrid_coverage.png").write_bytes(plots.coverage(curves))

    # the planner: Glasgow as simulated annotators, the calibrated stack as prior, MRC as gold
    norm = _glasgow_norm(test)
    mrc = np.array(_mrc(test))
    prior_mean = stack_cal.point(stack_test)
    prior_sd = stack_cal.predictive_sd(stack_test, s_test)
    ok = np.isfinite(norm.mean)
    print(f"\nPlanner: {int(ok.sum())} test words with Glasgow's per-word SD and N; prior: the calibrated stack; gold: MRC")
    plan = simulate(Norm(norm.mean[ok], norm.sd[ok], norm.n[ok]), mrc[ok], scale=(1.0, 7.0), prior=Prior(prior_mean[ok], prior_sd[ok]),
                    n_boot=args.n_boot, seed=args.seed, annotator_sd=args.annotator_sd)  # fmt: skip
    print(f"  real Glasgow norm vs MRC: {plan.real_norm:.3f} [{plan.real_norm_ci[0]:.3f}, {plan.real_norm_ci[1]:.3f}]; "
          f"machine (stack) alone: {plan.machine:.3f} [{plan.machine_ci[0]:.3f}, {plan.machine_ci[1]:.3f}]; "
          f"Glasgow's own ratings: {plan.norm_ratings}")  # fmt: skip
    print(f"  {'strategy':<10} {'budget':>6} {'ratings':>8} {'rho':>6}  95% CI")
    for r in plan.rows:
        print(f"  {r.strategy:<10} {r.budget:>6.0%} {r.ratings:>8} {r.spearman:6.3f}  [{r.ci[0]:.3f}, {r.ci[1]:.3f}]")
    for n in plan.notes:
        print("  " + n)
    (RESULTS / "hybrid_planner.png").write_bytes(plots.planner(
        [(r.strategy, r.ratings, r.spearman, r.ci[0], r.ci[1]) for r in plan.rows], real_norm=plan.real_norm,
        machine=plan.machine, norm_ratings=plan.norm_ratings, title="Glasgow -> MRC, the 1,045 test words"))  # fmt: skip
    out["planner"] = {
        "words": int(ok.sum()), "norm_ratings": plan.norm_ratings, "real_norm_rho_mrc": round(plan.real_norm, 3),
        "machine_rho_mrc": round(plan.machine, 3), "annotator_sd": args.annotator_sd,
        "rows": [{"strategy": r.strategy, "budget": r.budget, "ratings": r.ratings, "rho_mrc": round(r.spearman, 3),
                  "ci": [round(r.ci[0], 3), round(r.ci[1], 3)]} for r in plan.rows],
    }  # fmt: skip
    # the planner again with a prior calibrated on exchangeable words: a random half of the test words calibrates the
    # stack's intervals, the planner runs on the other half
    half = np.random.default_rng([args.seed, 99]).permutation(len(test)) < len(test) // 2
    cm = fit_conformal(
        stack_test[half], y_test[half], s_test[half], signal_names=sig_names, levels=LEVELS, scale=(1.0, 7.0), seed=args.seed
    )
    rest = ~half & ok
    print(f"\nPlanner on {int(rest.sum())} test words, the prior calibrated on the other {int(half.sum())}:")
    plan2 = simulate(Norm(norm.mean[rest], norm.sd[rest], norm.n[rest]), mrc[rest], scale=(1.0, 7.0),
                     prior=Prior(cm.point(stack_test[rest]), cm.predictive_sd(stack_test[rest], s_test[rest])),
                     n_boot=args.n_boot, seed=args.seed, annotator_sd=args.annotator_sd)  # fmt: skip
    print(f"  real Glasgow norm vs MRC: {plan2.real_norm:.3f}; machine (stack) alone: {plan2.machine:.3f}")
    for r in plan2.rows:
        print(f"  {r.strategy:<10} {r.budget:>6.0%} {r.ratings:>8} {r.spearman:6.3f}  [{r.ci[0]:.3f}, {r.ci[1]:.3f}]")
    out["planner_test_half"] = {
        "words": int(rest.sum()), "real_norm_rho_mrc": round(plan2.real_norm, 3), "machine_rho_mrc": round(plan2.machine, 3),
        "rows": [{"strategy": r.strategy, "budget": r.budget, "ratings": r.ratings, "rho_mrc": round(r.spearman, 3),
                  "ci": [round(r.ci[0], 3), round(r.ci[1], 3)]} for r in plan2.rows],
    }  # fmt: skip
    out["seconds"] = round(time.perf_counter() - start, 1)
    (RESULTS / "hybrid.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'hybrid.json'}, hybrid_coverage.png and hybrid_planner.png ({out['seconds']} s)")


def _mrc(words: list[str]) -> list[float]:
    import pandas as pd

    df = pd.read_excel(ROOT / "tests" / "data" / "glasgow_mrc" / "test_1045.xlsx")
    mrc = dict(zip(df["Word"].astype(str), df["FAM_MRC"], strict=True))
    return [float(mrc[w]) for w in words]


def _glasgow_norm(words: list[str]) -> Norm:
    import pandas as pd

    df = pd.read_csv(ROOT / "tests" / "data" / "glasgow" / "glasgow_norms.csv")
    by = {
        str(w).lower(): (m, s, n)
        for w, m, s, n in zip(df["Words"], df["Familiarty.M"], df["Familiarty.SD"], df["Familiarity.N"], strict=True)
    }
    rows = np.array([by.get(w.lower(), (np.nan, np.nan, 0)) for w in words], dtype=float)
    return Norm(rows[:, 0], rows[:, 1], np.nan_to_num(rows[:, 2]).astype(int))


if __name__ == "__main__":
    main()
