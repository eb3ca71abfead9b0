"""The local raters' outputs on the toolbox paper's words, computed once and cached (bench_hybrid.py reads them).

    python bench/hybrid_raters.py            # trains what is missing, then writes raters.json

Cross-fitted LoRA adapters of Gemma 3 270M (soft objective): the 1,500 training words in 5 seeded
folds, one adapter per fold trained on the other four (1,200 words, 1.25 epochs = 94 steps, as many as
one epoch over all 1,500 words; matmuls in bfloat16);
each rates its held-out fold (so every training word has an out-of-fold value from a model of the
same kind, for the stack to be fitted on and the intervals to be calibrated on) and the 1,045 test
words (their value: the mean of the fold adapters). An earlier design trained on halves (750 words,
47 steps): its out-of-fold values were much weaker (~0.56) than the full adapter's on the test
words, so the stack and the calibration learnt from values unlike the reported ones. Torch runs on
one thread (BENCH_THREADS): on a loaded shared machine more threads spin against each other.
BENCH_LORA_FOLDS / BENCH_LORA_EPOCHS / BENCH_LORA_AUTOCAST change the design (they go into the
cache key). The embedding baseline the same way (5 folds on the training words, all of them for the
test words), and the Zipf frequency of every word. Everything lies under
$WORKBENCH_CACHE_DIR/hybrid-bench (default ~/.cache/workbench/hybrid-bench): the adapters resume
where they stopped, and a finished run costs nothing the second time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

POINTS = [1, 2, 3, 4, 5, 6, 7]
PROMPT = "Word: {item}\nRating: "
DATA = ROOT / "tests" / "data" / "glasgow_mrc"


def cache_dir() -> Path:
    base = Path(os.environ.get("WORKBENCH_CACHE_DIR") or Path.home() / ".cache" / "workbench")
    out = base / "hybrid-bench"
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_words() -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    import pandas as pd

    def read(name: str) -> list[tuple[str, float]]:
        df = pd.read_excel(DATA / name)
        return [(str(w), float(v)) for w, v in zip(df["Word"], df["FAM_Glas"], strict=True)]

    return read("train_1500.xlsx"), read("test_1045.xlsx")


def folds(n: int, k: int, seed: int = 7) -> list[np.ndarray]:
    """k seeded folds of range(n), each sorted (fold j: every k-th index of one permutation)."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[j::k]) for j in range(k)]


def lora_design() -> dict:
    return {"folds": int(os.environ.get("BENCH_LORA_FOLDS", "5")), "epochs": float(os.environ.get("BENCH_LORA_EPOCHS", "1.25")),
            "autocast": os.environ.get("BENCH_LORA_AUTOCAST", "bfloat16") or None}  # fmt: skip


def lora_tag(design: dict) -> str:
    return f"cv{design['folds']}-e{design['epochs']:g}-{design['autocast'] or 'fp32'}"


def lora_outputs(train: list[tuple[str, float]], test: list[tuple[str, float]], have: dict, save) -> None:
    """Fold j's adapter (trained on the other folds) rates fold j and the test words: have["lora"][tag]["fold{j}"]."""
    import torch

    from workbench.finetune.lora import Example, LoraSettings, load_tuned, train_lora
    from workbench.store.uncertainty import spread

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))  # a shared, loaded machine: no thread thrash
    design = lora_design()
    tag = lora_tag(design)
    settings = LoraSettings(objective="soft", prompt=PROMPT, epochs=design["epochs"], autocast=design["autocast"])
    head, _, tail = PROMPT.partition("{item}")
    test_words = [w for w, _ in test]
    mine = have.setdefault("lora", {}).setdefault(tag, {})
    runs = []
    for k, held in enumerate(folds(len(train), design["folds"])):
        idx = sorted(set(range(len(train))) - set(held.tolist()))
        runs.append((f"fold{k}", idx, [train[i][0] for i in held] + test_words))
    for name, idx, to_rate in runs:
        if name in mine:
            continue
        folder = cache_dir() / "lora" / tag / name
        start = time.perf_counter()

        def on_step(e, name=name):
            print(f"  lora {name} step {e['step']}/{e['total']} loss {e['loss']:.4f} {e['seconds']:.0f}s", flush=True)

        train_lora([Example(train[i][0], train[i][1]) for i in idx], POINTS, folder, settings, on_step=on_step)
        print(f"lora {name}: trained ({time.perf_counter() - start:.0f}s)", flush=True)
        model = load_tuned(folder)
        readouts = model.rate_expected(head, [w + tail for w in to_rate], POINTS, batch_size=32)
        mine[name] = {w: [r.value, spread(r.distribution), r.mass] for w, r in zip(to_rate, readouts, strict=True)}
        save()
        print(f"lora {tag} {name}: rated {len(to_rate)} words ({time.perf_counter() - start:.0f}s)", flush=True)


def embedding_outputs(train: list[tuple[str, float]], test: list[tuple[str, float]]) -> dict[str, list[float | None]]:
    from workbench.raters.baselines import fit_embedding_baseline

    out: dict[str, list[float | None]] = {}
    words = [w for w, _ in train]
    values = [v for _, v in train]
    fitted = fit_embedding_baseline(words, values, clip=(1.0, 7.0))
    for w, v in zip([w for w, _ in test], fitted.predict([w for w, _ in test]), strict=True):
        out[w] = [float(v), None, None]
    order = np.random.default_rng(11).permutation(len(train))
    for k in range(5):
        held = set(order[k::5].tolist())
        fit = fit_embedding_baseline([words[i] for i in range(len(words)) if i not in held],
                                     [values[i] for i in range(len(words)) if i not in held], clip=(1.0, 7.0))  # fmt: skip
        held_words = [words[i] for i in sorted(held)]
        for w, v in zip(held_words, fit.predict(held_words), strict=True):
            out[w] = [float(v), None, None]
    return out


def frequency_outputs(words: list[str]) -> dict[str, list[float | None]]:
    from workbench.raters.baselines import word_frequency

    return {w: [float(v), None, None] for w, v in zip(words, word_frequency(words, language="en"), strict=True)}


def main() -> None:
    train, test = load_words()
    path = cache_dir() / "raters.json"
    have = json.loads(path.read_text()) if path.is_file() else {}
    if "frequency" not in have:
        have["frequency"] = frequency_outputs([w for w, _ in train + test])
        path.write_text(json.dumps(have))
        print("frequency: done", flush=True)
    if "embedding" not in have:
        start = time.perf_counter()
        have["embedding"] = embedding_outputs(train, test)
        path.write_text(json.dumps(have))
        print(f"embedding: done ({time.perf_counter() - start:.0f}s)", flush=True)
    lora_outputs(train, test, have, lambda: path.write_text(json.dumps(have)))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
