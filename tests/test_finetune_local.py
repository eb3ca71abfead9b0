"""Local LoRA fine-tuning of the real Gemma 3 270M on the CPU: a short run that moves its ratings.

The study declares a split of 48 Glasgow words and a local fine-tune on its 32
training words; apply trains the adapter (a few dozen steps), registers the
tuned rater (its identity carries the adapter's fingerprint) and rates the 16
test words. Its expected ratings of the training words are then closer to the
gold values than the base model's. A run stopped mid-way resumes from its last
checkpoint. SQLite only: the model is the expensive part, the store paths are
tested with the OpenAI fine-tunes on both databases.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

pytest.importorskip("peft")
pytest.importorskip("torch")

from tests.conftest import ROOT, SHARED  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.finetune.job import current_job, finetune_dir  # noqa: E402
from workbench.finetune.lora import Example, LoraSettings, train_lora, training_status  # noqa: E402
from workbench.raters.local.adapter import load_tuned  # noqa: E402
from workbench.raters.local.files import adapter_fingerprint  # noqa: E402
from workbench.raters.local.model import LocalModel  # noqa: E402
from workbench.store import connect  # noqa: E402
from workbench.store.itemsets import gold_values, item_texts, resolve_items  # noqa: E402
from workbench.store.models import Rater, Rating  # noqa: E402
from workbench.study.apply import apply_study  # noqa: E402
from workbench.study.finetune import finetune_run, start_finetune  # noqa: E402
from workbench.study.load import load_study  # noqa: E402

POINTS = [1, 2, 3, 4, 5, 6, 7]
PROMPT = "Word: {item}\nRating: "


def _data() -> Path:
    for d in (ROOT / "tests" / "data" / "glasgow_mrc", SHARED / "glasgow_mrc"):
        if (d / "train_1500.xlsx").is_file():
            return d
    pytest.fail("no glasgow_mrc data in tests/data")


def _expected(model: LocalModel, words: list[str]) -> np.ndarray:
    head, _, tail = PROMPT.partition("{item}")
    return np.array([r.value for r in model.rate_expected(head, [w + tail for w in words], POINTS)])


def test_local_lora_moves_ratings_toward_the_training_targets(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    study = {
        "study": "lora-test",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"toolbox": {"file": str(_data() / "train_1500.xlsx"), "preset": "glasgow_mrc"}},
        "item_sets": {"pool": {"from": "toolbox-glasgow", "sample": 48, "seed": 1}},
        "splits": {"ft": {"from": "pool", "train": 32, "seed": 2, "stratify": "toolbox-glasgow"}},
        "finetunes": {"gemma-ft": {
            "backend": "local", "train": "ft.train", "gold": "toolbox-glasgow", "rate": "ft.test",
            "local": {"epochs": 6, "batch_size": 8, "learning_rate": 2e-3, "checkpoint_every": 8, "label_sd": 0.7},
        }},
    }  # fmt: skip
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    loaded = load_study(folder / "study.yaml")
    engine = connect(f"sqlite:///{folder / 'store.db'}")
    events: list[str] = []
    apply_study(engine, loaded, on_finetune_event=events.append)
    adapter = finetune_dir(finetune_run(loaded, "gemma-ft"))
    with Session(engine) as s:
        job = current_job(s, "gemma-ft")
        assert job.status == "succeeded", job.error
        assert job.external_id == str(adapter) and job.config["steps"] == 24
        rater = s.scalar(select(Rater).where(Rater.name == "gemma-ft"))
        train = resolve_items(s, "ft.train")
        test = resolve_items(s, "ft.test")
        words = item_texts(s, train)
        gold = gold_values(s, "toolbox-glasgow", "familiarity")
        rated = dict(s.execute(select(Rating.item_id, Rating.value).where(Rating.rater_id == rater.id)).all())
    assert any("step 24/24" in e for e in events)
    # the tuned rater: local, the adapter folder (relative to the study, so a moved study keeps its ratings) as its
    # model, the adapter's fingerprint in its identity
    assert rater.kind == "llm" and rater.config["model"] == "adapter:" + adapter.relative_to(folder).as_posix()
    base_fp = LocalModel.load().fingerprint
    assert rater.config["weights"] not in (None, base_fp)
    assert rater.config["trained_on"]["items"] == "ft.train" and rater.config["trained_on"]["n"] == 32
    assert sorted(rated) == test and not set(test) & set(train)
    # the files under the study: adapter, settings, training log
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    log = [json.loads(x) for x in (adapter / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, 25))
    assert training_status(adapter)["state"] == "done"
    # the tuned model rates the training words closer to their gold values than the base model
    texts = [words[i] for i in train]
    target = np.array([gold[i] for i in train])
    before = _expected(LocalModel.load(), texts)
    after = _expected(load_tuned(adapter), texts)
    mae_before, mae_after = np.abs(before - target).mean(), np.abs(after - target).mean()
    r_before, r_after = np.corrcoef(before, target)[0, 1], np.corrcoef(after, target)[0, 1]
    print(f"MAE {mae_before:.3f} -> {mae_after:.3f}, Pearson {r_before:.3f} -> {r_after:.3f}")
    assert mae_after < mae_before - 0.3
    assert r_after > r_before
    # a second apply has nothing to do: same job, same rater, nothing to rate
    again = start_finetune(engine, loaded, "gemma-ft")
    assert again.job_id == job.id and again.rating.job_id is None
    assert adapter_fingerprint(adapter) == again.details["adapter"]
    engine.dispose()


def test_stopped_training_resumes_from_its_last_checkpoint(tmp_path):
    words = ["dog", "cat", "house", "tree", "zygote", "quark", "sun", "moon", "ennui", "yurt"]
    examples = [Example(w, 1.0 + (i % 7)) for i, w in enumerate(words)]
    settings = LoraSettings(epochs=3, batch_size=4, r=4, alpha=8, layers=2)  # 3 steps an epoch, 9 in all
    stop = threading.Event()

    def on_step(entry):
        if entry["step"] == 5:
            stop.set()  # what Ctrl-C in `workbench finetune start` does: save, then stop

    first = train_lora(examples, POINTS, tmp_path / "ft", settings, checkpoint_every=2, on_step=on_step, stop=stop)
    assert first.steps == 5 and first.resumed_from == 0
    status = training_status(tmp_path / "ft")
    assert status["state"] == "stopped" and status["checkpoint_step"] == 5
    assert not (tmp_path / "ft" / "adapter_model.safetensors").exists()  # no adapter before the end
    second = train_lora(examples, POINTS, tmp_path / "ft", settings, checkpoint_every=2)
    assert second.resumed_from == 5 and second.steps == 9
    assert [e["step"] for e in second.log] == list(range(1, 10))
    assert training_status(tmp_path / "ft")["state"] == "done"
    # other settings in the same folder are refused, unless starting over
    with pytest.raises(WorkbenchError, match="holds a fine-tune with other settings or data"):
        train_lora(examples, POINTS, tmp_path / "ft", LoraSettings(epochs=1, batch_size=4, r=4, alpha=8, layers=2))


def test_soft_objective_needs_single_token_points(tmp_path):
    examples = [Example(f"w{i}", 20.0 + i) for i in range(10)]
    with pytest.raises(WorkbenchError, match="one token per scale point; '10' has 2: use objective text"):
        train_lora(examples, [10, 20, 30, 40, 50, 60, 70], tmp_path / "x", LoraSettings(layers=1, r=2, alpha=4))
