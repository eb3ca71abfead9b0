"""Local LoRA fine-tuning of Gemma 3 270M: Spearman rho on held-out words against Glasgow familiarity.

    python bench/bench_finetune.py                      # the paper's split: 1,500 training, 1,045 test words
    python bench/bench_finetune.py --train 200 --test 200 --epochs 1 --objectives soft   # a quick look

Reported, not pass/fail. Trains one adapter per objective (``soft``: soft
labels on the scale tokens; ``text``: the paper's value as text) with
workbench.finetune.lora on the training words, rates the test words with the
expected read-out of the tuned model, and sets them beside the base model
(few-shot: 30 training words in the prompt, as bench_quality.py) and the
embedding baseline (ridge on all-MiniLM-L6-v2, fitted on the same training
words). Prints training time and peak memory (process max RSS on the CPU,
max allocated on a GPU), and the process's CPU seconds for training (on a
shared machine, CPU seconds / cores is what the wall time would be alone);
writes bench/results/finetune.json after each rater.
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

from scipy.stats import spearmanr  # noqa: E402

from workbench.finetune.lora import Example, LoraSettings, load_tuned, train_lora  # noqa: E402

DATA = ROOT / "tests" / "data" / "glasgow_mrc"  # the repository's copy (tests/data/README.md): nothing outside the clone
RESULTS = ROOT / "bench" / "results"
POINTS = [1, 2, 3, 4, 5, 6, 7]
FEW_SHOT_PROMPT = (
    "Familiarity is how familiar a word is: how often you have seen, heard or used it. "
    "Rate each word from 1 (very unfamiliar) to 7 (very familiar).\n\n"
)
LONG_PROMPT = FEW_SHOT_PROMPT + "Word: {item}\nRating: "


def data_dir() -> Path:
    if not (DATA / "train_1500.xlsx").is_file():
        raise SystemExit(f"no glasgow_mrc data in {DATA}: the repository's tests/data is incomplete")
    return DATA


def words(name: str, n: int | None) -> list[tuple[str, float]]:
    import pandas as pd

    df = pd.read_excel(data_dir() / name)
    rows = [(str(w), float(v)) for w, v in zip(df["Word"], df["FAM_Glas"], strict=True)]
    return rows[:n] if n else rows


def rate(model, words_: list[str], prompt: str, prefix: str = "") -> list[float]:
    head, _, tail = prompt.partition("{item}")
    out = model.rate_expected(prefix + head, [w + tail for w in words_], POINTS, batch_size=32)
    return [r.value for r in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, help="first N training words (default all 1,500)")
    ap.add_argument("--test", type=int, help="first N test words (default all 1,045)")
    ap.add_argument("--objectives", default="soft,text")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--layers", type=int, help="LoRA on the top N layers only")
    ap.add_argument("--label-sd", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=10, help="warm-up steps")
    ap.add_argument("--long-prompt", action="store_true", help="train and rate with the instructions in the prompt")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--out", type=Path, help="keep the adapters here (default: a temporary folder)")
    args = ap.parse_args()
    train, test = words("train_1500.xlsx", args.train), words("test_1045.xlsx", args.test)
    gold = [v for _, v in test]
    test_words = [w for w, _ in test]
    results: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "train": len(train), "test": len(test),
                     "settings": vars(args) | {"out": str(args.out)}, "raters": {}}  # fmt: skip

    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS / ("finetune.json" if not (args.train or args.test) else "finetune_subset.json")

    def report(name: str, values: list[float], **extra) -> None:
        rho = float(spearmanr(values, gold)[0])
        results["raters"][name] = {"rho_glasgow": round(rho, 3), **extra}
        print(f"{name:<28} rho {rho:6.3f}  " + "  ".join(f"{k} {v}" for k, v in extra.items()), flush=True)
        out_file.write_text(json.dumps(results, indent=2) + "\n")  # after each rater: a long run keeps what it measured

    prompt = LONG_PROMPT if args.long_prompt else "Word: {item}\nRating: "
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for objective in args.objectives.split(","):
            settings = LoraSettings(objective=objective, prompt=prompt, epochs=args.epochs, learning_rate=args.lr,
                                    batch_size=args.batch_size, r=args.r, alpha=2 * args.r, layers=args.layers,
                                    label_sd=args.label_sd, warmup_steps=args.warmup)  # fmt: skip
            cpu0 = time.process_time()

            def on_step(e, objective=objective):
                if e["step"] % 10 == 0 or e["step"] == e["total"]:
                    print(f"  {objective} step {e['step']}/{e['total']} loss {e['loss']:.4f} {e['seconds']:.0f}s", flush=True)

            res = train_lora([Example(w, v) for w, v in train], POINTS, out / objective, settings, on_step=on_step)
            train_cpu = time.process_time() - cpu0
            model = load_tuned(out / objective)
            start = time.perf_counter()
            values = rate(model, test_words, prompt)
            report(f"lora {objective}", values, train_seconds=round(res.seconds, 1), train_cpu_seconds=round(train_cpu, 1), steps=res.steps,
                   peak_memory_mb=res.peak_memory_mb, device=res.device, rate_seconds=round(time.perf_counter() - start, 1))  # fmt: skip
    if not args.skip_baselines:  # after the adapters, so a cut-short run has those first
        import numpy as np

        from workbench.raters.baselines import fit_embedding_baseline
        from workbench.raters.local.model import LocalModel
        from workbench.raters.prompts import format_examples

        start = time.perf_counter()
        fitted = fit_embedding_baseline([w for w, _ in train], [v for _, v in train], clip=(1.0, 7.0))
        report("embedding (same train)", [float(x) for x in fitted.predict(test_words)], seconds=round(time.perf_counter() - start, 1))
        base = LocalModel.load()
        rng = np.random.default_rng(1)
        shots = [train[i] for i in rng.choice(len(train), size=min(30, len(train)), replace=False)]
        examples = format_examples(shots, "Word: {item}\nRating: {value}", round_to=1.0)
        start = time.perf_counter()
        report("base few-shot (30)", rate(base, test_words, "Word: {item}\nRating: ", FEW_SHOT_PROMPT + examples),
               seconds=round(time.perf_counter() - start, 1))  # fmt: skip
    print("reference: base few-shot 0.33 and embedding 0.75 (bench_quality.py); published LoRA Llama-3.1-8B 0.86")


if __name__ == "__main__":
    main()
