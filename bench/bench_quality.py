"""How well do the offline raters predict Glasgow familiarity on the toolbox paper's 1,045 test words?

    python bench/bench_quality.py [--limit N]

Reported, not pass/fail. A fresh SQLite store gets the train (1,500 words)
and test (1,045 words) files of tests/data/glasgow_mrc; then, through the
study file and `run_rater`, four raters rate the test words:

- gemma-zero: Gemma 3 270M (local backend), zero-shot, expected value;
- gemma-few: the same with 30 examples from the training words (the prefix cache makes them cheap);
- frequency: Zipf word frequency mapped onto the scale (fitted on the training words);
- embedding: ridge regression on all-MiniLM-L6-v2 sentence embeddings (fitted on the training words).

Prints Spearman rho against Glasgow and MRC familiarity, beside the human
ceiling (Glasgow vs MRC on the same words) and the published figures (Conde
et al. 2025: gpt-4o-mini weighted 0.82, Llama-3.1-8B weighted 0.63), and
writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from workbench.store import connect  # noqa: E402
from workbench.store.itemsets import gold_values  # noqa: E402
from workbench.store.models import Rater, Rating  # noqa: E402
from workbench.study.apply import apply_study  # noqa: E402
from workbench.study.load import LoadedStudy, load_study  # noqa: E402
from workbench.study.rate import run_rater  # noqa: E402

DATA = ROOT / "tests" / "data" / "glasgow_mrc"
RESULTS = ROOT / "bench" / "results"
PROMPT = (
    "Familiarity is how familiar a word is: how often you have seen, heard or used it. "
    "Rate each word from 1 (very unfamiliar) to 7 (very familiar).\n\n{examples}Word: {item}\nRating:"
)
FEW_SHOT = {"items": "train-glasgow", "gold": "train-glasgow", "n": 30, "seed": 1, "format": "Word: {item}\nRating: {value}"}


def study(folder: Path, items: str) -> LoadedStudy:
    local = {"backend": "local", "items": items, "prompt": PROMPT, "batch_size": 32}
    data = {
        "study": "quality",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {
            "train": {"file": str(DATA / "train_1500.xlsx"), "preset": "glasgow_mrc"},
            "test": {"file": str(DATA / "test_1045.xlsx"), "preset": "glasgow_mrc"},
        },
        "raters": {
            "gemma-zero": local,
            "gemma-few": {**local, "few_shot": FEW_SHOT},
            "frequency": {"backend": "wordfreq", "items": items, "train": "train-glasgow", "gold": "train-glasgow"},
            "embedding": {"backend": "embedding", "items": items, "train": "train-glasgow", "gold": "train-glasgow"},
        },
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_study(folder / "study.yaml")


def rho(engine, rater: str, gold: str) -> tuple[float, int]:
    with Session(engine) as s:
        values = dict(s.execute(
            select(Rating.item_id, Rating.value).join(Rater).where(Rater.name == rater, Rating.value.is_not(None))
        ).all())  # fmt: skip
        truth = gold_values(s, gold, "familiarity")
    shared = sorted(set(values) & set(truth))
    return float(spearmanr([values[i] for i in shared], [truth[i] for i in shared])[0]), len(shared)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, help="rate only the first N test words (a quick look)")
    args = ap.parse_args()
    results: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "raters": {}}
    with tempfile.TemporaryDirectory() as tmp:
        loaded = study(Path(tmp), "test-glasgow")
        engine = connect(loaded.study.database)
        apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
        ceiling, n = rho(engine, "test-mrc", "test-glasgow")
        results["human_ceiling_glasgow_vs_mrc"] = {"rho": round(ceiling, 3), "n": n}
        print(f"{'rater':<12} {'rho Glasgow':>12} {'rho MRC':>8} {'n':>6} {'seconds':>8}")
        print(f"{'MRC (human)':<12} {ceiling:>12.3f} {'':>8} {n:>6}")
        for name in ("gemma-zero", "gemma-few", "frequency", "embedding"):
            start = time.perf_counter()
            report = run_rater(engine, loaded, name, limit=args.limit)
            seconds = time.perf_counter() - start
            r_glasgow, n = rho(engine, name, "test-glasgow")
            r_mrc, _ = rho(engine, name, "test-mrc")
            results["raters"][name] = {
                "rho_glasgow": round(r_glasgow, 3), "rho_mrc": round(r_mrc, 3), "n": n,
                "seconds": round(seconds, 1), "low_mass": report.counts.get("low_mass", 0),
            }  # fmt: skip
            print(f"{name:<12} {r_glasgow:>12.3f} {r_mrc:>8.3f} {n:>6} {seconds:>8.1f}")
        engine.dispose()
    print("published (Conde et al. 2025, same words): gpt-4o-mini weighted 0.82, Llama-3.1-8B weighted 0.63, "
          "human Glasgow vs MRC 0.80 on all 2,545 words")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
