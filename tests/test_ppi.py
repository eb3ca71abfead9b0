"""Prediction-powered statistics over many machine values and a few human ones (ppi-python), in the report."""

from __future__ import annotations

import json

import numpy as np
import yaml

from tests.test_stack import N, gold_of, invoke, write_study
from workbench.analysis.ppi import ppi_correlation, ppi_mean


def _world(seed: int, n: int = 4000, labelled: int = 300):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)  # another variable every word has (frequency, say)
    y = 4 + 0.5 * x + rng.normal(0, 0.8, n)  # the human norm
    yhat = y + 0.4 + rng.normal(0, 0.3, n)  # a biased machine
    lab = np.zeros(n, bool)
    lab[rng.choice(n, labelled, replace=False)] = True
    return x, y, yhat, lab


def test_ppi_covers_the_truth_where_the_naive_interval_does_not() -> None:
    hits = {"naive": 0, "ppi": 0}
    widths = {"classical": [], "ppi": []}
    for seed in range(30):
        x, y, yhat, lab = _world(seed)
        r = ppi_mean(y[lab], yhat[lab], yhat[~lab])
        truth = y.mean()
        hits["naive"] += r.naive.low <= truth <= r.naive.high
        hits["ppi"] += r.ppi.low <= truth <= r.ppi.high
        widths["classical"].append(r.classical.high - r.classical.low)
        widths["ppi"].append(r.ppi.high - r.ppi.low)
    assert hits["naive"] == 0 and hits["ppi"] >= 26  # the biased machine's interval never holds the human mean
    assert np.mean(widths["ppi"]) < 0.6 * np.mean(widths["classical"])  # and PPI is much narrower than humans alone
    x, y, yhat, lab = _world(1)
    r = ppi_correlation(y[lab], yhat[lab], x[lab], yhat[~lab], x[~lab], n_resamples=300, seed=0)
    truth = np.corrcoef(x, y)[0, 1]
    assert r.ppi.low <= truth <= r.ppi.high and r.n_labeled == 300 and r.n_unlabeled == 3700
    again = ppi_correlation(y[lab], yhat[lab], x[lab], yhat[~lab], x[~lab], n_resamples=300, seed=0)
    assert (again.ppi.low, again.ppi.high) == (r.ppi.low, r.ppi.high)  # seeded


def test_report_shows_ppi_beside_the_naive_and_classical_intervals(tmp_path, db_url):
    study = write_study(tmp_path, db_url)
    (tmp_path / "few.csv").write_text("word,fam\n" + "".join(f"w{i:03d},{gold_of(i)}\n" for i in range(0, N, 6)), encoding="utf-8")
    data = yaml.safe_load(open(study))
    data["datasets"]["few"] = {"file": "few.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}
    data["reports"] = {"main": {"gold": ["few"], "raters": ["st", "a"], "formats": ["json", "md"],
                                "ppi": {"machine": "st", "with": ["a"]}}}  # fmt: skip
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    invoke("apply", "--study", study)
    rows = json.loads((tmp_path / "reports" / "main.json").read_text())["dimensions"][0]["ppi"]
    assert [(r["statistic"], r["other"]) for r in rows] == [("mean", None), ("correlation", "a")]
    for r in rows:
        assert r["n_labeled"] == 40 and r["n_unlabeled"] == N - 40 and r["machine"] == "st" and r["humans"] == "few"
        lo, hi = r["ppi"]["value_interval"]
        assert lo < r["ppi"]["value"] < hi
    assert "### Statistics over machine and human values" in (tmp_path / "reports" / "main.md").read_text()
    out = invoke("report", "--study", study, "--gold", "few", "--rater", "st", "--rater", "a", "--ppi", "st", "--ppi-with", "a",
                 "--out", str(tmp_path / "r.json")).output  # fmt: skip
    assert "mean (40 human-rated, 200 machine only): naive" in out and "correlation with a" in out
    err = invoke("report", "--study", study, "--gold", "few", "--rater", "a", "--ppi", "st", "--format", "json",
                 "--out", str(tmp_path / "x.json"), code=1).output  # fmt: skip
    assert "the machine rater 'st' is not in this report" in err
