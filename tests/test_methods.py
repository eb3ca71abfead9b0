"""The methods section a reviewer asks for, generated from the store; coverage of words without gold;
`workbench rater show`; CITATION.cff.

One real study: published familiarity norms (the Glasgow words of tests/data) with citation and licence,
six rare words nobody has normed, a second declared dimension that only one norm rates, the local Gemma
3 270M model with few-shot examples, and the word-frequency baseline on the rare words.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import DATA
from workbench import __version__
from workbench.analysis.report import build_report, write_report
from workbench.cli.main import app
from workbench.store import connect
from workbench.store.models import Call, Job, Rater
from workbench.study.apply import apply_study
from workbench.study.load import load_study

pytest.importorskip("torch", reason="the local extra is not installed: pip install -e .[local]")

RARE = ["apricity", "defenestrate", "petrichor", "quokka", "sesquipedalian", "zugzwang"]
CITATION = "Scott, Keitel, Becirspahic, Yao & Sereno (2019). The Glasgow Norms. Behavior Research Methods 51, 1258-1270."
PROMPT = (
    "Familiarity is how often you have seen, heard or used a word. Rate each word from 1 (very unfamiliar) "
    "to 7 (very familiar).\n\n{examples}Word: {item}\nRating:"
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("methods")
    glasgow = pd.read_excel(DATA / "glasgow_mrc" / "test_1045.xlsx").head(30)
    assert not set(RARE) & set(glasgow["Word"])
    glasgow[["Word", "FAM_Glas"]].to_csv(folder / "norms.csv", index=False)
    pd.DataFrame({"Word": RARE, "AUX": [1, 2, 3, 4, 5, 1]}).to_csv(folder / "rare.csv", index=False)
    spec = {
        "study": "famnorms",
        "title": "Familiarity of rare English words",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {
            "familiarity": {
                "scale": [1, 7],
                "step": 1,
                "labels": {1: "very unfamiliar", 7: "very familiar"},
                "instructions": "Rate how familiar each word is to you.",
            },
            "aux": {"scale": [1, 5], "step": 1},
        },  # fmt: skip
        "datasets": {
            "norms": {
                "file": "norms.csv",
                "item_column": "Word",
                "ratings": {"familiarity": "FAM_Glas"},
                "citation": CITATION,
                "licence": "CC BY 4.0",
                "url": "https://doi.org/10.3758/s13428-018-1099-3",
            },
            "rare": {"file": "rare.csv", "item_column": "Word", "ratings": {"aux": "AUX"}},
        },  # fmt: skip
        "item_sets": {"pilot": {"from": "norms", "sample": 12, "seed": 3}},
        "raters": {
            "gemma": {
                "backend": "local",
                "dimension": "familiarity",
                "items": "pilot",
                "prompt": PROMPT,
                "batch_size": 16,
                "few_shot": {"items": "norms", "gold": "norms", "n": 3, "seed": 1, "format": "Word: {item}\nRating: {value}"},
            },
            "frequency": {"backend": "wordfreq", "dimension": "familiarity", "items": "rare"},
        },  # fmt: skip
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_study(path)
    engine = connect(loaded.study.database)
    apply_study(engine, loaded)
    yield folder, loaded, engine
    engine.dispose()


@pytest.fixture(scope="module")
def report(study):
    folder, loaded, engine = study
    with Session(engine) as s:
        rep, datas = build_report(s, dimensions=list(loaded.study.dimensions), n_boot=200)
    return rep, datas


def test_the_local_models_job_keeps_its_prompt_options_and_calls(study):
    _, _, engine = study
    with Session(engine) as s:
        rater = s.scalar(select(Rater).where(Rater.name == "gemma"))
        job = s.scalar(select(Job).where(Job.rater_id == rater.id))
        calls = s.scalars(select(Call).where(Call.job_id == job.id)).all()
    assert job.config["prompt"] == rater.config["prompt"] and "{item}" in job.config["prompt"]
    assert job.config["options"]["few_shot"]["gold"] == "norms" and job.config["options"]["prompt"] == PROMPT
    assert len(calls) == 12 and job.counts["calls"] == 12
    for call in calls:
        word = call.request["item"]
        assert call.status == "ok" and call.request["prompt"].endswith(f"Word: {word}\nRating: ")
        assert call.request["prompt"].startswith("Familiarity is how often")
        body = json.loads(call.response)
        assert body["weights"] == rater.config["weights"] and abs(sum(body["distribution"].values()) - 1) < 1e-6


def test_methods_name_the_study_datasets_raters_and_prompt(report):
    rep, _ = report
    m = rep.methods
    assert m.study == "famnorms" and m.title == "Familiarity of rare English words"
    assert m.workbench == __version__ and re.fullmatch(r"\d{4}-\d\d-\d\d", m.date)
    assert [d.name for d in m.dimensions] == ["familiarity"] and m.dimensions[0].instructions == "Rate how familiar each word is to you."
    norms = next(d for d in m.datasets if d.name == "norms")
    assert (norms.citation, norms.licence, norms.role, norms.items) == (CITATION, "CC BY 4.0", "gold", 30)
    assert norms.url == "https://doi.org/10.3758/s13428-018-1099-3" and len(norms.checksum) == 64
    gemma = next(r for r in m.raters if r.name == "gemma")
    assert (gemma.backend, gemma.kind, gemma.readout, gemma.dimension) == ("local", "llm", "expected", "familiarity")
    assert gemma.model and gemma.weights and gemma.model_version  # the model's name, from its calls
    assert gemma.prompt.endswith(f"Word: {gemma.example_word}\nRating:") and "{item}" not in gemma.prompt
    assert gemma.prompt.count("Rating: ") == 3  # the three few-shot examples, filled in
    assert gemma.few_shot == "3 examples drawn from norms (seed 1), with their norms values as answers"
    assert (gemma.rated, gemma.jobs, gemma.calls) == (12, 1, 12)
    freq = next(r for r in m.raters if r.name == "frequency")
    assert freq.kind == "model" and freq.prompt is None and freq.rated == 6


def test_only_dimensions_with_something_to_compare_and_coverage_of_words_without_gold(report):
    rep, _ = report
    (dim,) = rep.dimensions  # aux: declared, one norm, no rater: nothing to compare, left out
    assert dim.dimension == "familiarity" and dim.ceiling == []
    c = dim.coverage
    assert (c.items, c.with_gold, c.without_gold) == (36, 30, 6) and c.raters == ["frequency", "gemma"]
    assert [row.item for row in c.rows] == RARE
    assert c.rated == [6, 0] and all(row.values[1] is None and 0 <= row.values[0] for row in c.rows)


def test_html_markdown_and_json_carry_the_methods(report, tmp_path):
    import jsonschema

    from workbench.analysis.report_model import SCHEMA_PATH

    rep, datas = report
    write_report(rep, datas, tmp_path / "r.json", "json")
    data = json.loads((tmp_path / "r.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    raters, datasets = ({r["name"]: r for r in data["methods"][k]} for k in ("raters", "datasets"))
    assert "Word: " in raters["gemma"]["prompt"] and datasets["norms"]["citation"] == CITATION
    write_report(rep, datas, tmp_path / "r.md", "md")
    md = (tmp_path / "r.md").read_text()
    assert "## Methods" in md and "CC BY 4.0" in md and "Prompt, filled in for" in md and "No rows" not in md
    assert "Only one gold dataset (norms)" in md and "### Coverage" in md and "zugzwang" in md
    write_report(rep, datas, tmp_path / "r.html", "html")
    page = (tmp_path / "r.html").read_text()
    assert 'id="methods"' in page and "No rows" not in page and "Human ceiling: gold against gold" not in page
    assert page.index('id="methods"') < page.index('id="dim-0"')


def test_the_methods_come_from_the_store_alone(study, tmp_path, monkeypatch):
    folder, loaded, _ = study
    monkeypatch.chdir(tmp_path)  # no study file here: only the store
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["report", "--db", loaded.study.database, "--dimension", "familiarity", "-o", str(out),
                                      "--n-boot", "100"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 words without gold" in result.output and "zugzwang" in result.output and "1 dimensions" not in result.output
    m = json.loads(out.read_text())["methods"]
    assert m["study"] == "famnorms" and m["date"] == "2026-01-01"
    assert {r["name"] for r in m["raters"]} == {"gemma", "frequency"}


def test_rater_show_prints_the_configuration_and_the_prompt_for_a_word(study):
    folder, loaded, engine = study
    args = ["rater", "show", "gemma", "--study", str(loaded.path), "--word", "lighthouse"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "local" in result.output and "Prompt for 'lighthouse':" in result.output and "  Word: lighthouse" in result.output
    assert "in the store as gemma: 12 ratings, 1 jobs, 12 calls" in result.output
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    with Session(engine) as s:
        stored = s.scalar(select(Rater).where(Rater.name == "gemma"))
        assert shown["hash"] == stored.config_hash and shown["identity"] == stored.config
        assert shown["prompt"] == stored.config["prompt"].replace("{item}", "lighthouse")
    assert shown["options"]["few_shot"]["n"] == 3 and shown["store"]["ratings"] == 12
    # a baseline has no prompt; an unknown name is one clear line
    result = CliRunner().invoke(app, ["rater", "show", "frequency", "--study", str(loaded.path)])
    assert result.exit_code == 0 and "No prompt" in result.output
    result = CliRunner().invoke(app, ["rater", "show", "gemmma", "--study", str(loaded.path)])
    assert result.exit_code == 1 and "no rater named 'gemmma'" in result.output and "gemma" in result.output


def test_citation_cff_is_valid_cff_1_2_0_and_names_this_version():
    import jsonschema

    root = DATA.parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    cff = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in cff.items()}
    jsonschema.validate(cff, json.loads((DATA / "cff" / "schema-1.2.0.json").read_text()))
    assert cff["cff-version"] == "1.2.0" and cff["version"] == __version__
