"""Validation reports from the store: numbers against scipy on real norms, the published figure, determinism."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from workbench.analysis import stats
from workbench.analysis.report import build_report, write_report
from workbench.analysis.report_model import Report
from workbench.errors import WorkbenchError
from workbench.ingest.load import import_file, upsert_items
from workbench.ingest.presets import preset_specs
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.store.models import Dimension, Job, Rater, Rating


@pytest.fixture
def store(engine, shared_data):
    """The toolbox paper's 2,545 words: Glasgow and MRC familiarity as gold, MRC again as an imported model rater."""
    path = shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"
    with Session(engine) as s, s.begin():
        import_file(s, path, preset_specs("glasgow_mrc", "toolbox"))
        spec = DatasetSpec("mrc-model", item=("Word",), ratings=(RatingColumns("familiarity", mean=("FAM_MRC",), scale=(1, 7)),),
                           rater_kind="model")  # fmt: skip
        import_file(s, path, [spec])
    return engine


def test_imported_ratings_reproduce_the_published_correlation(store):
    with Session(store) as s:
        report, _ = build_report(s, n_boot=200)
    (part,) = report.dimensions
    assert part.gold == ["toolbox-glasgow", "toolbox-mrc"] and part.raters == ["mrc-model"]
    row = next(r for r in part.table if r.gold == "toolbox-glasgow")
    assert row.n == 2545 and round(row.spearman, 2) == 0.80  # Conde et al. (2025): Glasgow vs MRC rho = 0.80
    (ceiling,) = part.ceiling
    assert ceiling.spearman == pytest.approx(row.spearman, abs=1e-12)
    same = next(r for r in part.table if r.gold == "toolbox-mrc")
    assert same.spearman == pytest.approx(1.0) and same.mae == pytest.approx(0.0)


def test_numbers_match_scipy_and_the_stats_module(store, shared_data):
    import pandas as pd

    df = pd.read_excel(shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx")
    x, y = df["FAM_MRC"].to_numpy(float), df["FAM_Glas"].to_numpy(float)
    with Session(store) as s:
        report, _ = build_report(s, gold=["toolbox-glasgow"], dimension="familiarity", n_boot=300, seed=5)
    row = report.dimensions[0].table[0]
    assert row.spearman == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert row.pearson == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
    assert row.mae == pytest.approx(np.mean(np.abs(x - y))) and row.bias == pytest.approx(np.mean(x - y))
    assert row.rmse == pytest.approx(np.sqrt(np.mean((x - y) ** 2))) and row.sd_ratio == pytest.approx(x.std() / y.std())
    # the CI is the stats module's bootstrap over the same items in the report's item order (sorted by word)
    order = np.argsort(df["Word"].to_numpy(str), kind="stable")
    ref = stats.agreement(x[order], y[order], n_boot=300, seed=5)
    assert row.spearman_ci == pytest.approx(ref.spearman_ci, abs=1e-12)
    assert row.spearman_ci[0] < row.spearman < row.spearman_ci[1]


def test_reports_are_deterministic_for_a_seed_and_the_json_validates(store, tmp_path):
    import jsonschema

    from workbench.analysis.report_model import SCHEMA_PATH

    outs = []
    for k in range(2):
        with Session(store) as s:
            report, datas = build_report(s, n_boot=200, seed=3)
        path = tmp_path / f"r{k}.json"
        write_report(report, datas, path, "json")
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    assert Report.model_validate(data).dimensions[0].heatmap.labels == ["toolbox-glasgow", "toolbox-mrc", "mrc-model"]
    with Session(store) as s:
        other, _ = build_report(s, n_boot=200, seed=4)
    assert other.dimensions[0].table[0].spearman_ci != report.dimensions[0].table[0].spearman_ci


def add_annotators(engine, words: list[str], truth: np.ndarray, k: int = 6, seed: int = 0) -> np.ndarray:
    """k simulated annotators (integer ratings 1-7 around the truth), stored as human raters."""
    rng = np.random.default_rng(seed)
    matrix = np.clip(np.rint(truth[:, None] + rng.normal(0, 1.0, (len(words), k))), 1, 7)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan  # some items not rated by some annotators
    with Session(engine) as s, s.begin():
        dim = s.scalar(select(Dimension.id).where(Dimension.name == "familiarity"))
        ids = upsert_items(s, words, "en")
        job = Job(kind="annotation", status="done")
        s.add(job)
        s.flush()
        for j in range(k):
            rater = Rater(name=f"annotator{j}", kind="human")
            s.add(rater)
            s.flush()
            rows = [{"item_id": int(i), "dimension_id": dim, "rater_id": rater.id, "replicate": 0, "value": float(v), "job_id": job.id}
                    for i, v in zip(ids, matrix[:, j], strict=True) if not np.isnan(v)]  # fmt: skip
            s.execute(insert(Rating), rows)
    return matrix


def test_human_reliability_from_individual_ratings(store, shared_data):
    import pandas as pd

    df = pd.read_excel(shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx").head(300)
    words = sorted(df["Word"].astype(str))
    truth = df.set_index("Word").loc[words, "FAM_Glas"].to_numpy(float)
    matrix = add_annotators(store, words, truth)
    with Session(store) as s:
        report, _ = build_report(s, n_boot=200)
    rel = report.dimensions[0].reliability
    assert rel.raters == [f"annotator{j}" for j in range(6)]
    ref_icc = stats.icc(matrix)
    assert rel.icc2_k == pytest.approx(ref_icc.icc2_k) and rel.icc_items == ref_icc.n_items
    assert rel.krippendorff_alpha == pytest.approx(stats.krippendorff_alpha_interval(matrix))
    assert 0.7 < rel.split_half < 1 and rel.split_half == pytest.approx(stats.split_half(matrix, n_splits=200).reliability)


def test_comparisons_errors_and_calibration(store, tmp_path):
    from workbench.store.itemsets import save_item_set

    with Session(store) as s, s.begin():
        save_item_set(s, "first", {"from": ["toolbox-glasgow"], "exclude": [], "sample": 1500, "seed": 42})
        save_item_set(s, "rest", {"from": ["toolbox-glasgow"], "exclude": ["first"], "sample": None, "seed": 0})
    with Session(store) as s:
        report, _ = build_report(s, gold=["toolbox-glasgow"], raters=["mrc-model", "toolbox-mrc"], n_boot=200,
                                 calibrate={"train": "first", "test": "rest"})  # fmt: skip
    part = report.dimensions[0]
    (cmp,) = part.comparisons
    assert cmp.difference == pytest.approx(0.0, abs=1e-12) and "no reliable difference" in cmp.verdict
    err = part.errors[0]
    assert len(err.largest) == 15 and abs(err.largest[0].residual) >= abs(err.largest[-1].residual)
    assert sum(b.n for b in err.by_length) == 2545 and sum(b.n for b in err.by_frequency) > 2000
    cal = part.calibration[0]
    assert cal.n_train == 1500 and cal.raw.n == 1045
    assert cal.calibrated.spearman == pytest.approx(cal.raw.spearman) and cal.calibrated.mae <= cal.raw.mae
    assert abs(cal.calibrated.bias) < abs(cal.raw.bias) + 0.05


def test_unknown_names_are_clear_errors(store):
    with Session(store) as s:
        with pytest.raises(WorkbenchError, match="no gold dataset 'nope' with ratings on 'familiarity'"):
            build_report(s, dimension="familiarity", gold=["nope"])
        with pytest.raises(WorkbenchError, match="no dimension 'valence' in the store"):
            build_report(s, dimension="valence")


def test_cli_import_as_rater_then_report_json(tmp_path, shared_data):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    path = shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"
    run = lambda *a: subprocess.run([sys.executable, "-m", "workbench.cli.main", *a, "--db", db], capture_output=True, text=True)  # noqa: E731
    assert run("import", str(path), "--preset", "glasgow_mrc", "--dataset", "toolbox").returncode == 0
    r = run("import", str(path), "--as-rater", "gpt-ish", "--kind", "llm", "--item-column", "Word", "--rating", "familiarity=FAM_MRC")
    assert r.returncode == 0, r.stderr
    bad = run("import", str(path), "--as-rater", "x", "--dataset", "y", "--item-column", "Word", "--rating", "familiarity=FAM_MRC")
    assert bad.returncode == 1 and "--dataset NAME for norms, or --as-rater NAME" in bad.stderr
    out = tmp_path / "rep.json"
    r = run("report", "--out", str(out), "--gold", "toolbox-glasgow", "--n-boot", "200")
    assert r.returncode == 0, r.stderr
    assert "gpt-ish ~ toolbox-glasgow: rho 0.801" in r.stdout
    data = json.loads(out.read_text())
    assert data["dimensions"][0]["table"][0]["rater_kind"] == "llm"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_html_report_end_to_end_in_headless_chromium(store, tmp_path):
    from tests.browser import Browser, find_chromium
    from workbench.analysis.render_format import format_number

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    with Session(store) as s:
        report, datas = build_report(s, n_boot=200)
    html, js = tmp_path / "report.html", tmp_path / "report.json"
    write_report(report, datas, html, "html")
    write_report(report, datas, js, "json")
    data = json.loads(js.read_text())

    def at(key):
        node = data
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    with Browser() as b:
        page = b.load(html)
        assert page.errors == [] and all(r.startswith(("file:", "data:")) for r in page.requests)
        cells = b.data_keys()
        images = b.images()
        png = b.screenshot()
    assert len(cells) > 50
    for key, text in cells:
        assert text == format_number(at(key), key), key
    assert len(images) == len(report.dimensions[0].plots) and all(i["naturalWidth"] > 0 for i in images)
    import io

    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png))
    assert pixels.std() > 0.05  # not blank


# --------------------------------------------------------------------------- scales, plot files, extreme values


def _scales_store(engine, tmp_path, n: int = 120):
    """concreteness on 1-5: brysbaert-like gold (1-5), glasgow-like (1-7, the same values mapped), age in years (open),
    a dataset whose scale was not recorded, a model rater on 1-5 with an offset, and a rater of other words only."""
    rng = np.random.default_rng(7)
    truth = rng.uniform(1, 5, n)
    words = [f"w{i:04d}" for i in range(n)]
    path = tmp_path / "scales.csv"
    cols = {
        "word": words,
        "b15": np.round(truth, 3),
        "g17": np.round(1 + (truth - 1) * 1.5, 3),  # the same judgements on 1-7
        "aoa": np.round(20 - 3 * truth + rng.normal(0, 0.5, n), 2),  # years
        "model": np.round(np.clip(truth + 0.3 + rng.normal(0, 0.4, n), 1, 5), 3),
        "noscale": np.round(truth * 10, 2),
    }
    with path.open("w") as f:
        f.write(",".join(cols) + "\n")
        for row in zip(*cols.values(), strict=True):
            f.write(",".join(str(v) for v in row) + "\n")
    other = tmp_path / "other.csv"
    other.write_text("word,v\n" + "".join(f"x{i},{1 + i % 5}\n" for i in range(20)))

    def rc(col, scale=None, **kw):
        return (RatingColumns("concreteness", mean=(col,), scale=scale, **kw),)

    with Session(engine) as s, s.begin():
        import_file(s, path, [DatasetSpec("brysbaert", item=("word",), ratings=rc("b15", (1, 5)))])
        import_file(s, path, [DatasetSpec("glasgow", item=("word",), ratings=rc("g17", (1, 7)))])
        import_file(s, path, [DatasetSpec("kuperman", item=("word",), ratings=rc("aoa", (0, 25), open_scale=True))])
        import_file(s, path, [DatasetSpec("model", item=("word",), ratings=rc("model", (1, 5)), rater_kind="model")])
        import_file(s, path, [DatasetSpec("unscaled", item=("word",), ratings=rc("noscale"))])
        import_file(s, other, [DatasetSpec("elsewhere", item=("word",), ratings=rc("v", (1, 5)), rater_kind="llm")])
    return truth


def test_datasets_on_other_scales_are_mapped_onto_the_dimension_scale(engine, tmp_path):
    _scales_store(engine, tmp_path)
    with Session(engine) as s:
        report, datas = build_report(s, n_boot=100)
    (part,) = report.dimensions
    ceiling = {(r.rater, r.gold): r for r in part.ceiling}
    same = ceiling[("glasgow", "brysbaert")]  # the same judgements on 1-7: no bias once on one scale
    assert same.spearman == pytest.approx(1.0, abs=1e-4) and abs(same.bias) < 0.002 and same.mae < 0.002
    assert part.scale == (1, 5) and part.value_scale == (1, 5)
    assert same.sd_ratio == pytest.approx(1.0, abs=0.002)
    years = ceiling[("kuperman", "brysbaert")]
    assert years.spearman < -0.9 and years.mae is None and years.bias is None and years.rmse is None and years.sd_ratio is None
    assert "correlations only" in years.note and "open scale" in years.note
    rows = {(r.rater, r.gold): r for r in part.table}
    on_glasgow = rows[("model", "glasgow")]
    assert on_glasgow.bias == pytest.approx(rows[("model", "brysbaert")].bias, abs=0.01) and 0.2 < on_glasgow.bias < 0.4
    unscaled = ceiling[("unscaled", "brysbaert")]
    assert unscaled.spearman > 0.99 and unscaled.mae is None and "scale not recorded" in unscaled.note
    scales = {c.name: c for c in part.scales}
    assert scales["glasgow"].scale == (1, 7) and scales["glasgow"].mapped and scales["glasgow"].factor == pytest.approx(4 / 6)
    assert scales["brysbaert"].factor == 1 and not scales["kuperman"].mapped and scales["kuperman"].open
    assert "glasgow (1-7)" in part.scale_note and "kuperman" in part.scale_note and "unscaled" in part.scale_note
    # errors and plots only where both sides are on the scale
    assert {e.rater for e in part.errors} == {"model"}
    assert "scatter:glasgow" in part.plots and not any(k.endswith(":kuperman") for k in part.plots)
    md = tmp_path / "r.md"
    write_report(report, datas, md, "md")
    text = md.read_text()
    assert text.index(part.scale_note[:40]) < text.index("| Rater | Kind | Gold |")


def test_json_and_markdown_list_only_the_figures_written(engine, tmp_path):
    _scales_store(engine, tmp_path)
    with Session(engine) as s:
        report, datas = build_report(s, n_boot=100)
    (part,) = report.dimensions
    assert part.raters == ["elsewhere", "model"]
    assert not any(k.endswith(":elsewhere") and not k.startswith("mass:") for k in part.plots)  # no items shared with gold
    out = tmp_path / "json" / "report.json"
    assert write_report(report, datas, out, "json") == [out]
    assert json.loads(out.read_text())["dimensions"][0]["plots"] == {} and list(out.parent.iterdir()) == [out]
    md = tmp_path / "md" / "report.md"
    written = write_report(report, datas, md, "md")
    listed = re.findall(r"\]\(([^)]+\.png)\)", md.read_text())
    assert sorted(listed) == sorted(p.name for p in written[1:]) and all((md.parent / n).stat().st_size > 0 for n in listed)


def test_plot_files_of_raters_with_similar_names_are_unique_and_stable(engine, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("word,gold,a,b,c\n" + "".join(f"w{i},{1 + i % 7},{1 + (i * 3) % 7},{1 + (i * 5) % 7},{1 + i % 6}\n" for i in range(30)))
    with Session(engine) as s, s.begin():
        import_file(s, path, [DatasetSpec("gold", item=("word",), ratings=(RatingColumns("f", mean=("gold",), scale=(1, 7)),))])
        for name, col in (("gpt a", "a"), ("gpt_a", "b"), ("GPT_A", "c")):
            import_file(
                s, path, [DatasetSpec(name, item=("word",), ratings=(RatingColumns("f", mean=(col,), scale=(1, 7)),), rater_kind="model")]
            )
    names = []
    for _ in range(2):
        with Session(engine) as s:
            report, datas = build_report(s, n_boot=100)
        names.append(report.dimensions[0].plots)
    assert names[0] == names[1]
    scatter = [names[0][f"scatter:{r}"] for r in ("gpt a", "gpt_a", "GPT_A")]
    assert len({n.lower() for n in scatter}) == 3 and scatter[1] == "f-scatter-gpt_a.png"
    written = write_report(report, datas, tmp_path / "out" / "r.md", "md")
    assert len(written) == 1 + len(names[0])


def test_extreme_values_imported_as_a_rater_are_noted_not_fatal(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    run = lambda *a: subprocess.run([sys.executable, "-m", "workbench.cli.main", *a, "--db", db], capture_output=True, text=True)  # noqa: E731
    gold = tmp_path / "gold.csv"
    gold.write_text("word,v\n" + "".join(f"w{i},{1 + i % 7}\n" for i in range(40)))
    wild = tmp_path / "wild.csv"
    wild.write_text("word,v\n" + "".join(f"w{i},{[1.7e308, -1.7e308, 3.0, 4.5][i % 4]}\n" for i in range(40)))
    # no scale anywhere: the dimension has none, so the values are not checked at import
    assert run("import", str(gold), "--dataset", "gold", "--item-column", "word", "--rating", "f=v").returncode == 0
    r = run("import", str(wild), "--as-rater", "wild", "--kind", "llm", "--item-column", "word", "--rating", "f=v")
    assert r.returncode == 0, r.stderr
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"rep.{fmt}"
        r = run("report", "--out", str(out), "--n-boot", "100")  # the format from the suffix
        assert r.returncode == 0 and "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    row = json.loads((tmp_path / "rep.json").read_text())["dimensions"][0]["table"][0]
    assert row["rater"] == "wild" and row["pearson"] is None and row["mae"] is None and "wild" in row["note"]
    assert "wild" in (tmp_path / "rep.html").read_text()


def test_importing_the_report_module_loads_no_heavy_library():
    """The CLI imports workbench.analysis.report at startup: numpy, pandas, scipy, matplotlib and pydantic wait for a report."""
    code = "import sys, workbench.analysis.report as r; print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'matplotlib', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
