"""The local raters' outputs on the toolbox paper's words, computed once and cached (bench_hybrid.py reads them).

    python bench/hybrid_raters.py            # trains what is missing, then writes raters.json

Three LoRA adapters of Gemma 3 270M (soft objective, bench_finetune.py's settings): one on each
half of the training words (each rates the other half, so every training word has an out-of-fold
value for the stack to be fitted on, and the test words), then one on all 1,500 training words
(it rates the test words). Torch runs on one thread (BENCH_THREADS): on a loaded shared machine
more threads spin against each other. The embedding baseline the same way (5 folds on the training words, all of them for the
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


def halves(n: int, seed: int = 7) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[: n // 2]), np.sort(order[n // 2 :])]


def lora_outputs(train: list[tuple[str, float]], test: list[tuple[str, float]], have: dict, save) -> None:
    """Each half's adapter rates the other half and the test words ("lora_fold0", ...); the full one the test words."""
    import torch

    from workbench.finetune.lora import Example, LoraSettings, load_tuned, train_lora
    from workbench.store.uncertainty import spread

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))  # a shared, loaded machine: no thread thrash
    settings = LoraSettings(objective="soft", prompt=PROMPT)
    head, _, tail = PROMPT.partition("{item}")
    test_words = [w for w, _ in test]
    runs = []
    for k, idx in enumerate(halves(len(train))):
        other = sorted(set(range(len(train))) - set(idx.tolist()))
        runs.append((f"fold{k}", idx.tolist(), [train[i][0] for i in other] + test_words))
    runs.append(("full", list(range(len(train))), test_words))
    for name, idx, to_rate in runs:
        if f"lora_{name}" in have:
            continue
        folder = cache_dir() / "lora" / name
        start = time.perf_counter()

        def on_step(e, name=name):
            print(f"  lora {name} step {e['step']}/{e['total']} loss {e['loss']:.4f} {e['seconds']:.0f}s", flush=True)

        train_lora([Example(train[i][0], train[i][1]) for i in idx], POINTS, folder, settings, on_step=on_step)
        print(f"lora {name}: trained ({time.perf_counter() - start:.0f}s)", flush=True)
        model = load_tuned(folder)
        readouts = model.rate_expected(head, [w + tail for w in to_rate], POINTS, batch_size=32)
        have[f"lora_{name}"] = {w: [r.value, spread(r.distribution), r.mass] for w, r in zip(to_rate, readouts, strict=True)}
        save()
        print(f"lora {name}: rated {len(to_rate)} words ({time.perf_counter() - start:.0f}s)", flush=True)


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
