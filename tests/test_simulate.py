"""The planner: simulated annotators drawn from a norm, strategies and budgets, `workbench annotate simulate`."""

from __future__ import annotations

import csv
import json

import numpy as np
import yaml

from tests.test_stack import N, gold_of, invoke, write_study
from workbench.analysis.planner import Annotators, Norm, Prior, simulate


def test_simulated_annotators_match_the_norms_mean_and_sd_on_the_scale_points() -> None:
    # (an SD below the binomial's, e.g. 0.8 at a mean of 2 on 1-7, cannot be matched: the draw is then binomial)
    norm = Norm(np.array([2.0, 4.0, 6.3]), np.array([1.1, 1.8, 0.9]), np.array([30, 30, 30]))
    people = Annotators(norm, (1.0, 7.0), 1.0, annotator_sd=0.0, pool=50, rng=np.random.default_rng(0))
    for w in range(3):
        x = people.draw(np.full(20000, w))
        assert set(np.unique(x)) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
        assert abs(x.mean() - norm.mean[w]) < 0.05 and abs(x.std() - norm.sd[w]) < 0.06, (w, x.mean(), x.std())
    # an annotator effect adds between-annotator spread
    shifted = Annotators(norm, (1.0, 7.0), 1.0, annotator_sd=0.8, pool=50, rng=np.random.default_rng(0))
    assert shifted.draw(np.full(20000, 1)).std() > norm.sd[1] + 0.05


def test_simulated_annotators_say_i_dont_know_at_the_norms_rate_and_those_answers_are_paid_for() -> None:
    norm = Norm(np.array([3.0, 5.0, 6.0]), np.array([1.4, 1.4, 1.0]), np.array([30, 30, 30]), known=np.array([0.6, 0.95, np.nan]))
    people = Annotators(norm, (1.0, 7.0), 1.0, annotator_sd=0.0, pool=50, rng=np.random.default_rng(0))
    for w, rate in enumerate([0.4, 0.05, 0.0]):
        x = people.draw(np.full(20000, w))
        assert abs(np.isnan(x).mean() - rate) < 0.01, (w, np.isnan(x).mean())
        rated = x[np.isfinite(x)]
        assert abs(rated.mean() - norm.mean[w]) < 0.05 and abs(rated.std() - norm.sd[w]) < 0.06
    rng = np.random.default_rng(4)
    true = rng.uniform(1.5, 6.5, 300)
    known = rng.uniform(0.5, 1.0, 300)
    norm = Norm(true, np.full(300, 1.2), np.full(300, 20), known=known)
    sd = np.full(300, 0.6)
    plan = simulate(norm, true, scale=(1, 7), prior=Prior(true + rng.normal(0, sd), sd), budgets=[0.1, 1.0], n_boot=50, seed=2)
    for r in plan.rows:  # the budget counts answers; a quarter of them (the mean unknown rate) are "I don't know"
        assert r.ratings == round(r.budget * 6000)
        assert abs(r.unknown / r.ratings - np.mean(1 - known)) < 0.03, (r.strategy, r.unknown, r.ratings)
    everyone_knows = simulate(Norm(true, np.full(300, 1.2), np.full(300, 20)), true, scale=(1, 7), budgets=[1.0], n_boot=50, seed=2)
    assert everyone_knows.rows[0].unknown == 0
    # fewer ratings behind each mean: the all-human replicate with "I don't know" is less valid at the same budget
    assert everyone_knows.rows[0].spearman > [r for r in plan.rows if r.strategy == "all-human" and r.budget == 1.0][0].spearman


def test_strategies_spend_the_budget_and_the_seed_decides_everything() -> None:
    rng = np.random.default_rng(3)
    true = rng.uniform(1.5, 6.5, 400)
    norm = Norm(np.clip(true + rng.normal(0, 0.2, 400), 1, 7), np.full(400, 1.2), np.full(400, 20))
    gold = true + rng.normal(0, 0.3, 400)
    sd = rng.uniform(0.2, 0.8, 400)
    prior = Prior(true + rng.normal(0, sd), sd)
    plan = simulate(norm, gold, scale=(1, 7), prior=prior, budgets=[0.05, 0.25, 1.0], n_boot=200, seed=1)
    assert [(r.strategy, r.budget) for r in plan.rows][:3] == [("all-human", 0.05), ("routed", 0.05), ("adaptive", 0.05)]
    for r in plan.rows:
        assert r.ratings == round(r.budget * 8000) and r.ci[0] <= r.spearman <= r.ci[1]
    by = {(r.strategy, r.budget): r.spearman for r in plan.rows}
    # with a good prior, the adaptive hybrid beats all-human at the same budget, and the machine alone
    assert by[("adaptive", 0.05)] > by[("all-human", 0.05)] and by[("adaptive", 0.25)] > plan.machine
    again = simulate(norm, gold, scale=(1, 7), prior=prior, budgets=[0.05, 0.25, 1.0], n_boot=200, seed=1)
    assert [r.spearman for r in again.rows] == [r.spearman for r in plan.rows]
    # no prior: all-human only
    assert {r.strategy for r in simulate(norm, gold, scale=(1, 7), budgets=[0.1], n_boot=100).rows} == {"all-human"}


def _study(tmp_path, db_url) -> str:
    study = write_study(tmp_path, db_url)
    rng = np.random.default_rng(5)
    with open(tmp_path / "norm.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["word", "mean", "sd", "n"])
        for i in range(N):
            w.writerow([f"w{i:03d}", round(min(max(gold_of(i) + rng.normal(0, 0.25), 1), 7), 3), 1.3, 25])
    data = yaml.safe_load(open(study))
    data["datasets"]["norm"] = {
        "file": "norm.csv",
        "item_column": "word",
        "ratings": {"familiarity": {"mean": "mean", "sd": "sd", "n": "n"}},
    }
    data["campaigns"] = {"pilot": {"items": "test", "raters_per_item": 5}}
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    invoke("apply", "--study", study)
    return study


def test_annotate_simulate_prints_the_planners_table_and_json(tmp_path, db_url):
    study = _study(tmp_path, db_url)
    args = ["annotate", "simulate", "pilot", "--norms", "norm", "--against", "gold", "--study", study, "--n-boot", "200"]
    out = invoke(*args, "--prior", "st", "--calibration", "train", "--format", "json").output
    sim = json.loads(out)
    assert sim["words"] == N - 150 and sim["norm_ratings"] == 25 * (N - 150) and len(sim["rows"]) == 15
    assert sim["machine"] is not None and sim["real_norm"] > 0.8
    assert json.loads(invoke(*args, "--prior", "st", "--calibration", "train", "--format", "json").output) == sim  # seeded
    table = invoke(*args, "--prior", "st", "--calibration", "train", "--budget", "0.1", "--budget", "1").output
    assert "real norm (its published means)" in table and "machine prior st alone" in table
    assert "simulated annotators re-sample the published means" in table
    assert len([ln for ln in table.splitlines() if ln.strip().startswith(("all-human", "routed", "adaptive"))]) == 6
    # without a prior, all-human only, and said
    out = invoke(*args, "--format", "json").output
    assert {r["strategy"] for r in json.loads(out)["rows"]} == {"all-human"}
    # a prior needs a calibration set, and not the campaign's own words
    assert "--prior needs --calibration" in invoke(*args, "--prior", "st", code=1).output
    err = invoke(*args, "--prior", "st", "--calibration", "gold", code=1).output
    assert "shares" in err and "with the items reported" in err
