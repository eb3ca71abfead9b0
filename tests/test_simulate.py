"""The planner: simulated annotators drawn from a norm, strategies and budgets, `workbench annotate simulate`."""

from __future__ import annotations

import csv
import json

import numpy as np
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.test_stack import N, gold_of, invoke, write_study
from workbench.analysis.planner import Annotators, Norm, Prior, simulate
from workbench.store import connect
from workbench.store.models import Item, Rater, Rating


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
    # a prior more valid than the real norm against the gold: said, since human ratings then buy little
    assert plan.machine < plan.real_norm and not any("more valid against this gold than the real norm" in n for n in plan.notes)
    sharp = simulate(norm, gold, scale=(1, 7), prior=Prior(gold + rng.normal(0, 0.05, 400), np.full(400, 0.1)), budgets=[0.1], n_boot=50)
    assert sharp.machine > sharp.real_norm and any("more valid against this gold than the real norm" in n for n in sharp.notes)


def _study(tmp_path, db_url, nine: bool = False) -> str:
    """nine: the norm is on a 1-9 scale (the study's dimension is 1-7)."""
    study = write_study(tmp_path, db_url)
    rng = np.random.default_rng(5)
    with open(tmp_path / "norm.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["word", "mean", "sd", "n"])
        for i in range(N):
            mean, sd = min(max(gold_of(i) + rng.normal(0, 0.25), 1), 7), 1.3
            if nine:
                mean, sd = 1 + (mean - 1) * 8 / 6, sd * 8 / 6
            w.writerow([f"w{i:03d}", round(mean, 3), sd, 25])
    data = yaml.safe_load(open(study))
    data["datasets"]["norm"] = {
        "file": "norm.csv",
        "item_column": "word",
        "ratings": {"familiarity": {"mean": "mean", "sd": "sd", "n": "n"} | ({"scale": [1, 9]} if nine else {})},
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
    png = tmp_path / "plan.png"
    table = invoke(*args, "--prior", "st", "--calibration", "train", "--budget", "0.1", "--budget", "1", "--plot", str(png)).output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000 and f"Wrote {png.resolve()}" in table
    assert "is a folder" in invoke(*args, "--plot", str(tmp_path), code=1).output
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


def test_simulated_annotators_rate_on_the_norms_own_scale(tmp_path, db_url):
    """A norm on 1-9 in a study whose dimension is 1-7: the annotators draw on 1-9 (on 1-7 every word above 7 would
    pile up on the top point), so the simulated all-human study is as valid as with the same norm on 1-7."""
    args = ["annotate", "simulate", "pilot", "--norms", "norm", "--against", "gold", "--n-boot", "100", "--budget", "1", "--format", "json"]
    (tmp_path / "seven").mkdir()
    (tmp_path / "nine").mkdir()
    seven = json.loads(invoke(*args, "--study", _study(tmp_path / "seven", db_url)).output)
    nine = json.loads(invoke(*args, "--study", _study(tmp_path / "nine", db_url, nine=True)).output)
    assert abs(nine["real_norm"] - seven["real_norm"]) < 1e-9
    assert nine["scale"] == [1, 9] and seven["scale"] == [1, 7]
    assert abs(nine["rows"][0]["spearman"] - seven["rows"][0]["spearman"]) < 0.02, (nine["rows"], seven["rows"])


def test_a_norm_that_counts_who_did_not_know_a_word_sets_the_simulated_dont_know_rate(tmp_path, db_url):
    """Brysbaert et al. (2014) count, per word, the people who did not know it ("Unknown"): the import keeps the share
    who knew it (as a campaign's pull does), and the planner's annotators say "I don't know" at that rate."""
    rng = np.random.default_rng(2)
    words = [f"w{i:03d}" for i in range(120)]
    conc = {w: round(1.2 + (i * 37 % 97) / 97 * 3.6, 2) for i, w in enumerate(words)}
    unknown = {w: i % 10 for i, w in enumerate(words)}  # of 30 people
    with open(tmp_path / "brysbaert.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Word", "Bigram", "Conc.M", "Conc.SD", "Unknown", "Total", "Percent_known", "SUBTLEX", "Dom_Pos"])
        for word in words:
            w.writerow([word, 0, conc[word], 0.9, unknown[word], 30, round(1 - unknown[word] / 30, 2), 100, "Noun"])
    (tmp_path / "gold.csv").write_text("word,c\n" + "".join(f"{w},{min(max(conc[w] + rng.normal(0, 0.3), 1), 5):.3f}\n" for w in words))
    study = {
        "study": "idk", "database": db_url, "dimensions": {"concreteness": {"scale": [1, 5]}},
        "datasets": {"brysbaert": {"file": "brysbaert.csv", "preset": "brysbaert2014"},
                     "gold": {"file": "gold.csv", "item_column": "word", "ratings": {"concreteness": "c"}}},
        "campaigns": {"pilot": {"items": "gold", "raters_per_item": 5}},
    }  # fmt: skip
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    path = str(tmp_path / "study.yaml")
    invoke("apply", "--study", path)
    engine = connect(db_url)
    with Session(engine) as s:
        q = select(Item.text, Rating.n, Rating.distribution).join(Item, Item.id == Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
        stored = {t: (n, d) for t, n, d in s.execute(q.where(Rater.name == "brysbaert"))}
    engine.dispose()
    assert stored["w003"] == (27, {"known": 0.9, "n_unknown": 3}) and stored["w010"] == (30, {"known": 1.0, "n_unknown": 0})
    args = ["annotate", "simulate", "pilot", "--norms", "brysbaert", "--against", "gold", "--study", path, "--n-boot", "100"]
    plan = json.loads(invoke(*args, "--budget", "1", "--format", "json").output)
    (row,) = plan["rows"]
    assert row["ratings"] == plan["norm_ratings"] == sum(30 - u for u in unknown.values())
    assert abs(row["unknown"] / row["ratings"] - np.mean([u / 30 for u in unknown.values()])) < 0.02, row
    table = invoke(*args, "--budget", "1").output
    assert "don't-know" in table and "Simulated annotators say \"I don't know\" at brysbaert's own rate" in table
