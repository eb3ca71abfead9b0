"""The stack backend: named raters' values and signals combined by a model fitted on gold training words, cross-fitted.

The components are two backends defined here (real backends, registered like any other): one reads each
word's gold value with noise whose sd it reports as its distribution's spread, the other with a bias.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import numpy as np
import pytest
import yaml
from pydantic import Field
from scipy.stats import spearmanr
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.raters.backend import Outcome, RaterBackend, RaterOptions, register_backend
from workbench.raters.readout import Readout
from workbench.store import connect
from workbench.store.models import Item, Job, Rater, Rating

N = 240


def gold_of(i: int) -> float:
    return round(1.2 + (i * 37 % 97) / 97 * 5.6, 3)


class NoisyOptions(RaterOptions):
    noise: float = 1.0
    bias: float = 0.0
    seed: int = 0
    only: int | None = Field(None, description="rate only the first N words")
    run_fields: ClassVar[frozenset[str]] = RaterOptions.run_fields | {"only"}


@register_backend("noisy-gold")
class NoisyGold(RaterBackend):
    """Reads the word's gold value (its number in the test's formula) with noise; reports the noise as a spread."""

    Options = NoisyOptions
    kind = "model"

    def run(self, rater, texts, job):
        spec = rater.spec
        for item_id, word in texts.items():
            i = int(word[1:])
            if spec.only is not None and i >= spec.only:
                continue
            rng = np.random.default_rng([spec.seed, i])
            sd = spec.noise * (0.3 + 1.4 * ((i * 13) % 10) / 10)  # the word's own noise, from 0.3 to 1.7 times noise
            value = gold_of(i) + spec.bias + rng.normal(0, sd)
            # a two-point distribution with that sd around the value
            dist = {"1": 0.5, "7": 0.5} if sd >= 3 else None
            lo, hi = value - sd, value + sd
            dist = {f"{lo:.6f}": 0.5, f"{hi:.6f}": 0.5} if dist is None else dist
            job.writer.add(Outcome(item_id, Readout(value=value, distribution=dist, mass=0.9)))
        job.report()
        return "completed"


def write_study(folder, db_url: str, *, gold_override: dict[int, float] | None = None, stack: dict | None = None) -> str:
    golds = {i: gold_of(i) for i in range(N)} | (gold_override or {})
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"w{i:03d},{golds[i]}\n" for i in range(N)), encoding="utf-8")
    study = {
        "study": "stack",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7]}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "item_sets": {"train": {"from": "gold", "sample": 150, "seed": 1}, "test": {"from": "gold", "exclude": "train"}},
        "raters": {
            "a": {"backend": "noisy-gold", "noise": 0.6, "seed": 1},
            "b": {"backend": "noisy-gold", "noise": 0.6, "bias": 0.5, "seed": 2},
            "st": {"backend": "stack", "raters": ["a", "b"], "train": "train", "gold": "gold"} | (stack or {}),
        },
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return str(path)


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def values(engine, rater: str) -> dict[str, float]:
    with Session(engine) as s:
        q = select(Item.text, Rating.value).join(Rating, Rating.item_id == Item.id).join(Rater, Rater.id == Rating.rater_id)
        return {t: v for t, v in s.execute(q.where(Rater.name == rater, Rating.value.is_not(None)))}


def test_stack_beats_its_components_and_is_a_rater_like_any_other(tmp_path, db_url):
    study = write_study(tmp_path, db_url)
    out = invoke("apply", "--study", study).output
    assert re.search(r"st \(stack\): job \d+ completed: 240 rated", out)
    engine = connect(db_url)
    st, a, b = values(engine, "st"), values(engine, "a"), values(engine, "b")
    with Session(engine) as s:
        from workbench.store.itemsets import resolve_items

        test_words = {s.get(Item, i).text for i in resolve_items(s, "test")}
        rater = s.scalar(select(Rater).where(Rater.name == "st"))
        comps = {r.name: r.config_hash for r in s.scalars(select(Rater).where(Rater.name.in_(["a", "b"])))}
        job = s.scalar(select(Job).where(Job.rater_id == rater.id))
    words = sorted(test_words)
    gold = [gold_of(int(w[1:])) for w in words]

    def rho(v):
        return spearmanr([v[w] for w in words], gold)[0]

    # the stack averages the two and removes b's bias: better than either alone
    assert rho(st) > max(rho(a), rho(b)) + 0.01
    assert abs(np.mean([st[w] for w in words]) - np.mean(gold)) < 0.3  # on the gold scale (b's bias is gone)
    # identity: the components' identities and the training data; provenance: the fitted model on the job
    assert rater.kind == "model" and rater.config["components"] == comps and len(rater.config["train_data"]) == 64
    fitted = job.config["stack"]
    assert fitted["training_words"] == 150 and len(fitted["folds"]) == 5
    assert "a:value" in fitted["model"]["features"] and "a:spread" in fitted["model"]["features"]
    assert "Nothing to do" in invoke("apply", "--study", study).output
    # the report and the export know it like any other rater
    invoke("report", "--study", study, "--format", "json", "--items", "test", "--out", str(tmp_path / "r.json"))
    rows = {r["rater"]: r for r in json.loads((tmp_path / "r.json").read_text())["dimensions"][0]["table"]}
    assert rows["st"]["n"] == len(words) and rows["st"]["spearman"] == pytest.approx(rho(st), abs=1e-6)
    invoke("export", "--study", study, "--rater", "st", "--out", str(tmp_path / "st.csv"))
    assert len((tmp_path / "st.csv").read_text().splitlines()) == N + 1
    engine.dispose()


def test_no_training_word_is_rated_by_a_model_that_saw_it(tmp_path, db_url):
    """Change one training word's gold to an outlier: its own stack value stays exactly the same (the model that
    rated it never saw its gold), while words of other folds move (their models did see it)."""
    engine = connect(db_url)
    invoke("apply", "--study", write_study(tmp_path, db_url))
    before = values(engine, "st")
    with Session(engine) as s:
        from workbench.store.itemsets import resolve_items

        train = sorted(s.get(Item, i).text for i in resolve_items(s, "train"))
    target = train[7]
    invoke("apply", "--study", write_study(tmp_path, db_url, gold_override={int(target[1:]): 7.0 if gold_of(int(target[1:])) < 4 else 1.0}))
    after = values(engine, "st")
    assert after[target] == pytest.approx(before[target], abs=1e-9)
    moved = [w for w in train if abs(after[w] - before[w]) > 1e-6]
    assert len(moved) >= 30  # the other folds' words (and the test words) were rated by models that saw the change
    engine.dispose()


def test_a_component_without_values_fails_those_words_and_an_unknown_one_is_named(tmp_path, db_url):
    study = write_study(tmp_path, db_url)
    data = yaml.safe_load(open(study))
    data["raters"]["c"] = {"backend": "noisy-gold", "noise": 0.5, "seed": 3, "only": 230}
    data["raters"]["st"] = {"backend": "stack", "raters": ["a", "c"], "train": "train", "gold": "gold"}
    data["raters"] = {k: data["raters"][k] for k in ("a", "b", "c", "st")}
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    out = invoke("apply", "--study", study, code=2)
    assert "10 failed" in out.output
    engine = connect(db_url)
    with Session(engine) as s:
        job = s.scalar(select(Job).join(Rater, Rater.id == Job.rater_id).where(Rater.name == "st"))
    assert "no value from c for this word" in str(job.counts)
    data["raters"]["st"]["raters"] = ["a", "nosuch"]
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    err = invoke("rate", "st", "--study", study, code=1).output
    assert "component 'nosuch' is not a rater in the store" in err
    engine.dispose()


def test_report_gives_each_rater_calibrated_intervals_on_held_out_items(tmp_path, db_url):
    study = write_study(tmp_path, db_url)
    invoke("apply", "--study", study)
    out = invoke("report", "--study", study, "--items", "test", "--intervals", "train",
                 "--out", str(tmp_path / "r.json")).output  # fmt: skip
    assert re.search(r"intervals st \(calibrated on train, n 150\): 80% -> 0\.\d+", out)
    rows = {r["rater"]: r for r in json.loads((tmp_path / "r.json").read_text())["dimensions"][0]["intervals"]}
    assert set(rows) == {"a", "b", "st"}
    for row in rows.values():
        assert row["n"] == N - 150 and row["n_calibration"] == 150
        assert [c["level"] for c in row["coverage"]] == [0.8, 0.9, 0.95]
        for c in row["coverage"]:  # 90 held-out words: coverage within sampling error of nominal
            assert abs(c["covered"] - c["level"]) < 0.12, row
        widths = [c["mean_width"] for c in row["coverage"]]
        assert widths == sorted(widths) and widths[0] > 0
    assert "spread" in rows["a"]["signals"]
    # the HTML and Markdown reports show the section and the coverage plot
    invoke("report", "--study", study, "--items", "test", "--intervals", "train", "--out", str(tmp_path / "r.md"))
    md = (tmp_path / "r.md").read_text()
    assert "### Calibrated intervals" in md and "familiarity-coverage.png" in md and (tmp_path / "familiarity-coverage.png").is_file()
    # calibrating on reported items is an error; so is a calibration set too small for the coverage asked
    err = invoke("report", "--study", study, "--format", "json", "--intervals", "train", "--out", str(tmp_path / "x.json"), code=1).output
    assert "calibration set 'train' shares 150 items with the items reported" in err
    data = yaml.safe_load(open(study))
    data["item_sets"]["tiny"] = {"from": "train", "sample": 12, "seed": 0}
    data["reports"] = {"main": {"items": "test", "intervals": {"calibration": "tiny"}, "formats": ["json"]}}
    open(study, "w").write(yaml.safe_dump(data, sort_keys=False))
    err = invoke("apply", "--study", study, code=1).output
    assert "has 12 items with gold values; an interval at 95% coverage needs at least 19" in err
