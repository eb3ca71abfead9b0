"""Raters that run in process, through the study file: the baselines and the local Gemma model.

Real data (the Glasgow/MRC familiarity split of tests/data/glasgow_mrc),
real models (wordfreq, all-MiniLM-L6-v2, Gemma 3 270M), SQLite store (the
store paths are the same as for the HTTP raters, which run on both databases).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.store import connect
from workbench.store.itemsets import gold_values
from workbench.store.models import Item, Job, Rater, Rating
from workbench.study.apply import apply_study
from workbench.study.load import LoadedStudy, load_study
from workbench.study.rate import run_rater

pytest.importorskip("torch", reason="the local extra is not installed: pip install -e .[local]")


def make_study(folder, shared_data, raters: dict, item_sets: dict | None = None) -> LoadedStudy:
    data = shared_data / "glasgow_mrc"
    study = {
        "study": "familiarity",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1, "labels": {1: "unfamiliar", 7: "very familiar"}}},
        "datasets": {
            "train": {"file": str(data / "train_1500.xlsx"), "preset": "glasgow_mrc"},
            "test": {"file": str(data / "test_1045.xlsx"), "preset": "glasgow_mrc"},
        },
        "item_sets": item_sets or {},
        "raters": raters,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return load_study(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_data_module):
    folder = tmp_path_factory.mktemp("inprocess")
    loaded = make_study(folder, shared_data_module, {})
    engine = connect(loaded.study.database)
    apply_study(engine, loaded)
    yield folder, engine
    engine.dispose()


@pytest.fixture(scope="module")
def shared_data_module():
    from tests.conftest import DATA

    return DATA


def rho_against(engine, rater: str, gold: str) -> tuple[float, int]:
    with Session(engine) as s:
        values = dict(
            s.execute(select(Rating.item_id, Rating.value).join(Rater).where(Rater.name == rater, Rating.value.is_not(None))).all()
        )
        truth = gold_values(s, gold, "familiarity")
    shared = sorted(set(values) & set(truth))
    return float(spearmanr([values[i] for i in shared], [truth[i] for i in shared])[0]), len(shared)


def test_frequency_and_embedding_baselines_rate_the_test_words(store, shared_data_module):
    folder, engine = store
    loaded = make_study(folder, shared_data_module, {
        "zipf": {"backend": "wordfreq", "items": "test-glasgow"},
        "freq": {"backend": "wordfreq", "train": "train-glasgow", "gold": "train-glasgow", "items": "test-glasgow"},
        "emb": {"backend": "embedding", "train": "train-glasgow", "gold": "train-glasgow", "items": "test-glasgow"},
    })  # fmt: skip
    for name in ("zipf", "freq", "emb"):
        report = run_rater(engine, loaded, name)
        assert report.status == "completed" and report.counts["rated"] == 1045
    rho_zipf, n = rho_against(engine, "zipf", "test-glasgow")
    rho_freq, _ = rho_against(engine, "freq", "test-glasgow")
    rho_emb, _ = rho_against(engine, "emb", "test-glasgow")
    assert n == 1045
    assert rho_freq == pytest.approx(rho_zipf, abs=1e-3)  # a rising line keeps the ranks (but for clipped ties)
    assert 0.55 < rho_freq < 0.75 and 0.65 < rho_emb < 0.85
    with Session(engine) as s:
        raters = {r.name: r for r in s.scalars(select(Rater).where(Rater.kind == "model"))}
        assert raters["emb"].config["weights"] and raters["emb"].config["train_data"]
        values = s.scalars(select(Rating.value).join(Rater).where(Rater.name == "emb")).all()
        assert min(values) >= 1 and max(values) <= 7
        notes = s.scalars(select(Rating.note).join(Rater).where(Rater.name == "zipf")).all()
        assert all(n and "Zipf" in n for n in notes)
    # rerun: nothing to do; a different training set is a new rater
    assert run_rater(engine, loaded, "emb").job_id is None


def test_baseline_needs_enough_training_items(store, shared_data_module):
    from workbench.errors import WorkbenchError

    folder, engine = store
    loaded = make_study(folder, shared_data_module, {
        "emb": {"backend": "embedding", "train": "tiny", "gold": "train-glasgow", "items": "test-glasgow"},
    }, item_sets={"tiny": {"from": "train-glasgow", "sample": 5}})  # fmt: skip
    apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
    with pytest.raises(WorkbenchError, match="train 'tiny' has 5 items"):
        run_rater(engine, loaded, "emb")


# --------------------------------------------------------------------------- local model


LOCAL_PROMPT = (
    "Familiarity is how often you have seen, heard or used a word. Rate each word from 1 (very unfamiliar) "
    "to 7 (very familiar).\n\n{examples}Word: {item}\nRating:"
)


def test_local_gemma_rates_with_expected_values_and_few_shot_changes_them(store, shared_data_module):
    folder, engine = store
    common = {"backend": "local", "items": "pilot", "prompt": LOCAL_PROMPT, "batch_size": 16}
    loaded = make_study(folder, shared_data_module, {
        "gemma-zero": common,
        "gemma-few": {**common, "few_shot": {"items": "train-glasgow", "gold": "train-glasgow", "n": 8, "seed": 1,
                                             "format": "Word: {item}\nRating: {value}"}},
        "gemma-greedy": {**common, "readout": "greedy", "few_shot": {"items": "train-glasgow", "gold": "train-glasgow", "n": 8, "seed": 1,
                                                                      "format": "Word: {item}\nRating: {value}"}},
    }, item_sets={"pilot": {"from": "test-glasgow", "sample": 40, "seed": 7}})  # fmt: skip
    apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
    for name in ("gemma-zero", "gemma-few", "gemma-greedy"):
        report = run_rater(engine, loaded, name)
        assert report.status == "completed" and report.counts["rated"] + report.counts["unreadable"] == 40
    with Session(engine) as s:
        rows = s.execute(
            select(Rater.name, Item.text, Rating.value, Rating.distribution, Rating.mass, Rating.raw_answer)
            .join(Rater)
            .join(Item, Item.id == Rating.item_id)
            .where(Rater.kind == "llm")
        ).all()
        config = s.scalar(select(Rater.config).where(Rater.name == "gemma-few"))
        job = s.scalar(select(Job).join(Rater).where(Rater.name == "gemma-few"))
    assert config["weights"] and "Word: " in config["prompt"] and job.status == "completed"
    zero = {t: v for n, t, v, *_ in rows if n == "gemma-zero"}
    few = {t: v for n, t, v, *_ in rows if n == "gemma-few"}
    for name, _, value, dist, mass, _ in rows:
        if name == "gemma-greedy":
            continue
        assert 1 <= value <= 7 and 0 < mass <= 1
        assert sum(dist.values()) == pytest.approx(1, abs=1e-6) and set(dist) == {str(k) for k in range(1, 8)}
        assert value == pytest.approx(sum(int(k) * p for k, p in dist.items()), abs=1e-6)
    assert max(abs(zero[w] - few[w]) for w in zero) > 0.1  # examples move the ratings
    assert np.std(list(few.values())) > 0.005  # and they are not constant (a 270M base model is timid)
    greedy = [(v, a) for n, _, v, _, _, a in rows if n == "gemma-greedy"]
    assert all(a is not None for _, a in greedy) and sum(v is not None for v, _ in greedy) >= 30
