"""Hybrid datasets: a calibrated machine prior and human ratings, combined word by word, stored as a dataset."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.test_stack import N, gold_of, invoke, write_study
from workbench.analysis.hybrid import Humans, combine, pooled_variance
from workbench.store import connect
from workbench.store.models import Dataset, Item, Rater, Rating


def test_precision_weighting_by_hand() -> None:
    """Prior N(4, 0.5^2); humans mean 5 from 4 ratings of variance 1 (pooled variance 1): w = 16 / (16 + 4)."""
    humans = {1: Humans(4, 5.0, 1.0), 2: Humans(9, 2.0, 1.0), 3: Humans(1, 6.0, None)}
    assert pooled_variance(humans) == pytest.approx(1.0)
    prior = {1: (4.0, 0.5, 3.2, 4.8), 2: (3.0, 0.5, 2.2, 3.8), 4: (5.0, 0.4, 4.3, 5.7)}
    res = combine([1, 2, 3, 4, 5], prior, humans, level=0.9, scale=(1, 7))
    w = res.words[1]
    assert w.human_weight == pytest.approx(4 / (4 + 4)) and w.value == pytest.approx(4.5) and w.sd == pytest.approx((1 / 8) ** 0.5)
    assert w.source == "both" and w.n_human == 4
    assert res.words[2].human_weight == pytest.approx(9 / 13)
    assert res.words[3].source == "human" and res.words[3].sd == pytest.approx(1.0) and "no value" in res.words[3].note
    assert res.words[4].source == "machine" and (res.words[4].low, res.words[4].high) == (4.3, 5.7)  # the conformal interval
    assert 5 not in res.words
    assert res.words[1].low == pytest.approx(4.5 - 1.6449 * (1 / 8) ** 0.5, abs=1e-3)
    assert any("no value from the prior" in n for n in res.notes)
    # per-word variances are shrunk toward the pooled one: a word whose raters agree exactly still has some
    res = combine([1], {}, {1: Humans(3, 4.0, 0.0), 2: Humans(30, 4.0, 2.0)}, level=0.9)
    assert res.words[1].sd ** 2 == pytest.approx((0 + 4 * pooled_variance({1: Humans(3, 4.0, 0.0), 2: Humans(30, 4.0, 2.0)})) / 6 / 3)


def test_annotators_noisier_than_the_model_are_reported() -> None:
    humans = {i: Humans(3, 4.0, 4.0) for i in range(10)}
    prior = {i: (4.0, 0.3, 3.5, 4.5) for i in range(10)}
    res = combine(list(range(10)), prior, humans, level=0.9)
    assert any("annotators disagree more than the model errs" in n for n in res.notes)


def _people(folder, words: list[str], seed: int = 0, sd: float = 1.2) -> None:
    """A human norm file with mean, SD and n per word: n from 1 to 12, means near gold with sd 1.2 / sqrt(n)."""
    rng = np.random.default_rng(seed)
    with open(folder / "people.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["word", "mean", "sd", "n"])
        for k, word in enumerate(words):
            n = 1 + k % 12
            mean = min(max(gold_of(int(word[1:])) + rng.normal(0, 1.2 / n**0.5), 1.0), 7.0)
            w.writerow([word, round(mean, 3), "" if n == 1 else sd, n])


def _hybrid_study(tmp_path, db_url, **hybrid) -> str:
    study = write_study(tmp_path, db_url)
    data = yaml.safe_load(open(study))
    _people(tmp_path, [f"w{i:03d}" for i in range(0, N, 2)])  # half the words have human ratings
    data["datasets"]["people"] = {"file": "people.csv", "item_column": "word",
                                  "ratings": {"familiarity": {"mean": "mean", "sd": "sd", "n": "n"}}}  # fmt: skip
    data["raters"]["c"] = {"backend": "noisy-gold", "noise": 0.5, "seed": 3, "only": N - 20}
    data["hybrids"] = {"h": {"prior": "st", "calibration": "train", "gold": "gold", "humans": "people", "items": "test"} | hybrid}
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    return study


def test_a_hybrid_dataset_from_a_stack_and_a_human_norm(tmp_path, db_url):
    study = _hybrid_study(tmp_path, db_url)
    out = invoke("apply", "--study", study).output
    assert "hybrid h: created (90 words: " in out
    engine = connect(db_url)
    with Session(engine) as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "h"))
        rows = s.execute(select(Item.text, Rating.value, Rating.sd, Rating.n, Rating.note).join(Item, Item.id == Rating.item_id)
                         .join(Rater, Rater.id == Rating.rater_id).where(Rater.name == "h")).all()  # fmt: skip
        details = ds.details["hybrid"]
        from workbench.study.hybrid import compute_hybrid
        from workbench.study.load import load_study

        spec = load_study(study).study.hybrids["h"]
        again, _ = compute_hybrid(s, spec, "familiarity")
    assert len(rows) == N - 150 and details["counts"]["both"] + details["counts"]["machine"] == N - 150
    by_word = {t: (v, sd, n, note) for t, v, sd, n, note in rows}
    # reproducible from the store alone: computing again gives the stored values
    with Session(engine) as s:
        ids = {s.get(Item, i).text: i for i in again.words}
    for t, (v, sd, n, note) in by_word.items():
        assert again.words[ids[t]].value == pytest.approx(v) and again.words[ids[t]].sd == pytest.approx(sd)
    # words with more human ratings lean more on the humans; a word with humans is surer than the prior alone
    both = [(n, json.loads(json.dumps(details["words"][str(ids[t])]))) for t, (v, sd, n, note) in by_word.items() if note == "both"]
    weights = {}
    for n, (low, high, weight, source, prior, prior_sd, human_mean) in both:
        weights.setdefault(n, []).append(weight)
        assert source == "both" and 0 < weight < 1 and high > low
    assert np.mean(weights[min(weights)]) < np.mean(weights[max(weights)])
    # on the words with both, the hybrid is closer to gold than the human means, and surer than either source
    gold = {t: gold_of(int(t[1:])) for t in by_word}
    both_words = [t for t in by_word if by_word[t][3] == "both"]
    extra = {t: details["words"][str(ids[t])] for t in both_words}
    err_h = np.mean([abs(by_word[t][0] - gold[t]) for t in both_words])
    err_humans = np.mean([abs(extra[t][6] - gold[t]) for t in both_words])
    assert err_h < 0.8 * err_humans
    for t in both_words:
        sd, n = by_word[t][1], by_word[t][2]
        assert sd < extra[t][5] and sd < 1.2 / n**0.5
    # usable as gold in a report, exportable with its columns
    invoke("report", "--study", study, "--format", "json", "--gold", "h", "--out", str(tmp_path / "r.json"))
    table = json.loads((tmp_path / "r.json").read_text())["dimensions"][0]["table"]
    assert {r["gold"] for r in table} == {"h"} and {r["rater"]: r["n"] for r in table}["st"] == N - 150
    invoke("export", "--study", study, "--dataset", "h", "--out", str(tmp_path / "h.csv"))
    header = (tmp_path / "h.csv").read_text().splitlines()[0]
    assert header == "item,language,dimension,rater,value,sd,n,replicate,mass,note,low,high,human_weight,source,prior,prior_sd,human_mean"
    assert "hybrid h" not in invoke("apply", "--study", study).output  # unchanged inputs: not rebuilt
    _people(tmp_path, [f"w{i:03d}" for i in range(0, N, 2)], seed=1)  # new human ratings: the hybrid follows them
    assert "hybrid h: updated (90 words: " in invoke("apply", "--study", study).output
    engine.dispose()


def test_a_prior_without_values_for_some_words_leaves_them_to_the_humans(tmp_path, db_url):
    study = _hybrid_study(tmp_path, db_url, prior="c")
    out = invoke("apply", "--study", study).output
    assert "words have no value from the prior: they rest on human ratings only" in out
    engine = connect(db_url)
    with Session(engine) as s:
        notes = s.scalars(select(Rating.note).join(Rater, Rater.id == Rating.rater_id).where(Rater.name == "h")).all()
    assert any(n.startswith("human: the prior has no value for this word") for n in notes)
    engine.dispose()


def test_annotators_who_disagree_more_than_the_model_errs_are_reported_by_apply_and_kept_with_the_hybrid(tmp_path, db_url):
    """A large annotator effect (people's SD 3.2 on 1-7 against a prior good to ~0.5): apply says so, the hybrid's
    details keep the note, and the humans get a small weight on words with few ratings."""
    study = _hybrid_study(tmp_path, db_url)
    _people(tmp_path, [f"w{i:03d}" for i in range(0, N, 2)], sd=3.2)
    out = invoke("apply", "--study", study).output
    assert "the annotators disagree more than the model errs" in out and "pooled sd 3.2" in out
    engine = connect(db_url)
    with Session(engine) as s:
        details = s.scalar(select(Dataset.details).where(Dataset.name == "h"))["hybrid"]
        ns = dict(s.execute(select(Rating.item_id, Rating.n).join(Rater, Rater.id == Rating.rater_id).where(Rater.name == "h")).all())
    assert any("the annotators disagree more than the model errs" in n for n in details["notes"])
    assert details["pooled_human_sd"] == pytest.approx(3.2, abs=0.05)
    weights = [details["words"][str(i)][2] for i, n in ns.items() if n == 2]
    assert weights and max(weights) < 0.5  # two such ratings still weigh less than the prior
    engine.dispose()


def test_calibrating_on_the_hybrids_own_words_is_an_error(tmp_path, db_url):
    study = _hybrid_study(tmp_path, db_url, items="gold")
    err = invoke("apply", "--study", study, code=1).output
    assert "calibration set 'train' shares 150 items with the items reported" in err
