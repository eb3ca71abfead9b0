"""Rendering validation reports: HTML checked in headless Chromium, Markdown, plots, number formatting.

The report is built from real numbers: the Glasgow and MRC familiarity norms
(2,545 words) as gold, two synthetic LLM raters ("prompt A" close to gold,
"prompt B" noisier and compressed), synthetic individual human ratings for
reliability, and one item named like an XSS payload. A second, degenerate
dimension carries the nulls.
"""

from __future__ import annotations

import html
import io
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tests.browser import Browser, find_chromium
from workbench.analysis import plots, stats
from workbench.analysis.render import render_html, render_markdown
from workbench.analysis.render_format import MISSING, format_number
from workbench.analysis.report_model import (
    AgreementRow,
    CalibrationRow,
    Comparison,
    DimensionReport,
    Disagreement,
    ErrorAnalysis,
    Heatmap,
    MassSummary,
    Reliability,
    Report,
    ResidualBand,
)

DATA = Path(__file__).resolve().parent / "data" / "glasgow_mrc"
NASTY = '<script>alert("x")</script> & co'
N_BOOT = 200
A, B = "gemma-3-270m · prompt A", "gemma-3-270m · prompt B"


# --------------------------------------------------------------------------- the report


def _none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _row(x: np.ndarray, y: np.ndarray, rater: str, kind: str, gold: str) -> AgreementRow:
    a = stats.agreement(x, y, n_boot=N_BOOT, seed=0)
    return AgreementRow(
        rater=rater,
        rater_kind=kind,
        gold=gold,
        n=a.n,
        spearman=_none(a.spearman),
        spearman_ci=(_none(a.spearman_ci[0]), _none(a.spearman_ci[1])),
        pearson=_none(a.pearson),
        pearson_ci=(_none(a.pearson_ci[0]), _none(a.pearson_ci[1])),
        mae=_none(a.mae),
        rmse=_none(a.rmse),
        bias=_none(a.bias),
        sd_ratio=_none(a.sd_ratio),
        note=a.note,
    )


def _bands(res: np.ndarray, cov: np.ndarray, edges: list[float], label) -> list[ResidualBand]:
    return [
        ResidualBand(band=label(b.low, b.high), low=b.low, high=b.high, n=b.n, mean_residual=_none(b.mean_residual), mae=_none(b.mae))
        for b in stats.residual_bands(res, cov, edges)
    ]


def _zipf(words: pd.Series) -> np.ndarray:
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # a stand-in that still varies with the word
        return np.array([7.0 - 0.4 * len(w) for w in words])
    return np.array([zipf_frequency(w, "en") for w in words])


def build_report() -> tuple[Report, dict[str, tuple[str, Any]]]:
    """The report and, per plot file, how to draw it: (plot function name, kwargs)."""
    df = pd.read_excel(DATA / "glasgow_mrc_familiarity.xlsx")
    df["Word"] = df["Word"].astype(str)
    rng = np.random.default_rng(7)
    glas, mrc = df["FAM_Glas"].to_numpy(float), df["FAM_MRC"].to_numpy(float)
    n = len(df)
    llm_a = np.clip(0.85 * glas + 1.2 + rng.normal(0, 0.55, n), 1, 7)
    llm_b = np.clip(0.5 * glas + 2.6 + rng.normal(0, 0.8, n), 1, 7)
    mass = rng.beta(9, 2, n)
    llm_a[mass < 0.45] = np.nan  # below min_mass: no rating
    nasty = int(np.nanargmin(np.where(np.isnan(llm_a), np.inf, glas)))  # the least familiar rated word ...
    df.loc[nasty, "Word"] = NASTY
    llm_a[nasty] = 7.0  # ... rated maximally familiar: the largest disagreement
    answers = np.array([f"Rating: {round(v)}" if not math.isnan(v) else "I cannot rate this word." for v in llm_a], dtype=object)
    answers[nasty] = 'Definitely 7 <b>very</b> familiar | "quoted" & `ticked`\nsecond line'

    gold = {"FAM_Glas": glas, "FAM_MRC": mrc}
    raters = {A: llm_a, B: llm_b}
    table = [_row(x, y, r, "llm", g) for r, x in raters.items() for g, y in gold.items()]
    ceiling = [_row(mrc, glas, "FAM_MRC", "norm", "FAM_Glas"), _row(glas, mrc, "FAM_Glas", "norm", "FAM_MRC")]

    # human reliability from synthetic individual ratings: 300 words x 12 raters, 1-7, 10% missing
    human = np.clip(np.round(glas[:300, None] + rng.normal(0, 1.0, (300, 12))), 1, 7)
    human[rng.random(human.shape) < 0.1] = np.nan
    sh, icc = stats.split_half(human, n_splits=50, seed=0), stats.icc(human)
    reliability = Reliability(
        raters=[f"P{i:02d}" for i in range(1, 13)],
        n_items=sh.n_items,
        split_half=_none(sh.reliability),
        split_half_interval=(_none(sh.reliability_interval[0]), _none(sh.reliability_interval[1])),
        n_splits=sh.n_splits,
        icc2_1=_none(icc.icc2_1),
        icc2_k=_none(icc.icc2_k),
        icc3_k=_none(icc.icc3_k),
        icc_items=icc.n_items,
        krippendorff_alpha=_none(stats.krippendorff_alpha_interval(human)),
        note=icc.note,
    )

    comparisons = []
    for g, y in gold.items():
        c = stats.compare_dependent(llm_a, llm_b, y, names=(A, B), n_boot=N_BOOT, seed=0)
        s = c.spearman
        comparisons.append(
            Comparison(
                rater_a=A,
                rater_b=B,
                gold=g,
                n=c.n,
                spearman_a=s.r_a,
                spearman_b=s.r_b,
                difference=s.difference,
                difference_ci=s.difference_ci,
                williams_t=s.williams_t,
                williams_p=s.williams_p,
                verdict=c.verdict,
            )
        )

    res = llm_a - glas
    order = np.argsort(-np.nan_to_num(np.abs(res), nan=-1))[:10]
    largest = [
        Disagreement(item=df["Word"][i], value=llm_a[i], gold_value=glas[i], residual=res[i], answer=answers[i], mass=mass[i])
        for i in order
    ]
    lengths = df["Word"].str.len().to_numpy(float)
    counts, edges = np.histogram(mass, bins=np.linspace(0, 1, 21))
    errors = [
        ErrorAnalysis(
            rater=A,
            gold="FAM_Glas",
            largest=largest,
            by_frequency=_bands(res, _zipf(df["Word"]), [0, 2, 3, 4, 5, 6, 8], lambda lo, hi: f"Zipf {lo:g}–{hi:g}"),
            by_length=_bands(
                res,
                lengths,
                [1, 4, 6, 8, 11, 30, math.inf],
                lambda lo, hi: f"{lo:g}+ letters" if math.isinf(hi) else f"{lo:g}–{hi - 1:g} letters",
            ),
            mass=MassSummary(
                n=n, median=float(np.median(mass)), low_mass=int((mass < 0.45).sum()), bins=edges.tolist(), counts=counts.tolist()
            ),
        )
    ]

    train = set(pd.read_excel(DATA / "train_1500.xlsx")["Word"].astype(str))
    test = set(pd.read_excel(DATA / "test_1045.xlsx")["Word"].astype(str))
    is_train, is_test = df["Word"].isin(train).to_numpy(), df["Word"].isin(test).to_numpy()
    calibration = []
    for r, x in raters.items():
        cal = stats.calibrate(x[is_train], glas[is_train])
        calibration.append(
            CalibrationRow(
                rater=r,
                gold="FAM_Glas",
                train="train_1500",
                test="test_1045",
                intercept=cal.intercept,
                slope=cal.slope,
                n_train=cal.n,
                raw=_row(x[is_test], glas[is_test], r, "llm", "FAM_Glas"),
                calibrated=_row(cal.apply(x[is_test]), glas[is_test], f"{r} (calibrated)", "llm", "FAM_Glas"),
            )
        )

    pilot = np.full(n, np.nan)
    pilot[[0, 1]] = [3.0, 5.0]  # two words only: no correlation with anything
    columns = {**gold, **raters, "pilot panel": pilot}
    labels = list(columns)
    rho = [[None] * len(labels) for _ in labels]
    shared = [[0] * len(labels) for _ in labels]
    for i, li in enumerate(labels):
        for j, lj in enumerate(labels):
            keep = ~(np.isnan(columns[li]) | np.isnan(columns[lj]))
            shared[i][j] = int(keep.sum())
            if keep.sum() >= 3:
                rho[i][j] = float(sps.spearmanr(columns[li][keep], columns[lj][keep]).statistic)

    figure_specs: dict[str, tuple[str, Any]] = {
        "familiarity_heatmap.png": ("heatmap", {"labels": labels, "rho": rho, "gold": list(gold)}),
        "familiarity_scatter_a_glas.png": ("scatter", {"x": llm_a, "y": glas, "rater": A, "gold": "FAM_Glas", "scale": (1, 7)}),
        "familiarity_scatter_b_mrc.png": ("scatter", {"x": llm_b[:800], "y": mrc[:800], "rater": B, "gold": "FAM_MRC", "scale": (1, 7)}),
        "familiarity_residuals_a_glas.png": ("residuals", {"x": llm_a, "y": glas, "rater": A, "gold": "FAM_Glas"}),
        "familiarity mass A.png": ("mass_histogram", {"bins": edges.tolist(), "counts": counts.tolist(), "rater": A, "threshold": 0.45}),
    }
    familiarity = DimensionReport(
        dimension="familiarity",
        scale=(1, 7),
        gold=list(gold),
        raters=list(raters),
        table=table,
        ceiling=ceiling,
        reliability=reliability,
        comparisons=comparisons,
        errors=errors,
        calibration=calibration,
        heatmap=Heatmap(labels=labels, rho=rho, n=shared),
        plots={
            "heatmap": "familiarity_heatmap.png",
            f"scatter: {A} vs FAM_Glas": "familiarity_scatter_a_glas.png",
            f"scatter: {B} vs FAM_MRC (first 800 words)": "familiarity_scatter_b_mrc.png",
            f"residuals: {A} vs FAM_Glas": "familiarity_residuals_a_glas.png",
            f"scale-token mass: {A}": "familiarity mass A.png",
        },
    )
    degenerate = stats.agreement([4.0, 4.0], [3.0, 5.0], n_boot=N_BOOT)
    pilot_dim = DimensionReport(
        dimension="imageability (pilot)",
        scale=(1, None),
        gold=["pilot gold"],
        raters=["constant rater"],
        table=[
            AgreementRow(
                rater="constant rater",
                rater_kind="model",
                gold="pilot gold",
                n=degenerate.n,
                spearman=None,
                spearman_ci=(None, None),
                pearson=None,
                pearson_ci=(None, None),
                mae=degenerate.mae,
                rmse=degenerate.rmse,
                bias=degenerate.bias,
                sd_ratio=degenerate.sd_ratio,
                note=degenerate.note,
            )
        ],
        ceiling=[],
        heatmap=Heatmap(labels=["pilot gold", "constant rater"], rho=[[1.0, None], [None, None]], n=[[2, 2], [2, 2]]),
    )
    report = Report(
        title="Familiarity: gemma-3-270m against the Glasgow and MRC norms",
        workbench="0.1.0",
        seed=0,
        n_boot=N_BOOT,
        ci=0.95,
        items=None,
        dimensions=[familiarity, pilot_dim],
    )
    return report, figure_specs


def draw(specs: dict[str, tuple[str, Any]]) -> dict[str, bytes]:
    return {name: getattr(plots, fn)(**kwargs) for name, (fn, kwargs) in specs.items()}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built() -> tuple[Report, dict[str, tuple[str, Any]]]:
    return build_report()


@pytest.fixture(scope="module")
def report(built) -> Report:
    return built[0]


@pytest.fixture(scope="module")
def figures(built) -> dict[str, bytes]:
    return draw(built[1])


@pytest.fixture(scope="module")
def page_html(report, figures) -> str:
    return render_html(report, figures)


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("chromium not found: set $CHROMIUM or install it (Debian: apt-get install -y chromium)")
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def loaded(browser, page_html, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(page_html, encoding="utf-8")
    return browser.load(path)


# --------------------------------------------------------------------------- JSON paths


def _is_interval(field: str) -> bool:
    return field.endswith(("_ci", "_interval")) or field in ("scale", "value_scale")


def numeric_leaves(node: Any, path: str = "", field: str = "") -> dict[str, Any]:
    """Path -> value of every number (intervals as one value) in the JSON dump, nulls of number fields excluded."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out |= numeric_leaves(v, f"{path}.{k}" if path else k, k)
        return out
    if isinstance(node, list):
        if _is_interval(field):
            return {path: node}
        out = {}
        for i, v in enumerate(node):
            out |= numeric_leaves(v, f"{path}.{i}", field)
        return out
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return {path: node}
    return {}


def resolve(dump: Any, key: str) -> Any:
    node = dump
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# --------------------------------------------------------------------------- tests


def test_format_number_rules():
    assert format_number(0.74249, "dimensions.0.table.2.spearman") == "0.742"
    assert format_number(None, "spearman") == MISSING == "–"
    assert format_number(math.nan, "mae") == "–"
    assert format_number([0.78051, 0.8234], "dimensions.0.table.0.spearman_ci") == "[0.781, 0.823]"
    assert format_number([None, 0.8], "pearson_ci") == "[–, 0.800]"
    assert format_number([None, None], "pearson_ci") == "–"
    assert format_number(2545, "n") == "2,545"
    assert format_number(12, "dimensions.0.heatmap.n.1.2") == "12"
    assert format_number(0.2441, "bias") == "+0.244"
    assert format_number(-0.0001, "bias") == "0.000"
    assert format_number(-0.0001, "mae") == "0.000"
    assert format_number([-0.05, 0.012], "difference_ci") == "[-0.050, +0.012]"
    assert format_number(0.0004, "williams_p") == "< 0.001"
    assert format_number(0.0312, "williams_p") == "0.031"
    assert format_number(3.5, "low") == "3.5"
    assert format_number(math.inf, "high") == "∞"
    assert format_number(0.05, "dimensions.0.errors.0.mass.bins.1") == "0.05"
    assert format_number([1.0, None], "scale") == "[1, –]"
    assert format_number(0.95, "ci") == "95%"
    assert format_number(0.9, "ci") == "90%"


def test_html_in_chromium(browser, loaded, report, figures, page_html):
    # no console errors, no uncaught exceptions, no dialogs, nothing fetched but the page and its data URIs
    assert loaded.errors == [], "\n".join(map(str, loaded.errors))
    assert loaded.dialogs == []
    external = [u for u in loaded.requests if not u.startswith(("data:", "file:"))]
    assert external == []
    assert browser.evaluate("document.scripts.length") == 0

    # every figure decoded
    images = browser.images()
    assert len(images) == len(figures) == sum(len(d.plots) for d in report.dimensions)
    for img in images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["src"].startswith("data:image/png;base64,")

    # every number cell shows format_number of the JSON value at its key; every number has a cell
    dump = report.model_dump(mode="json")
    cells = browser.data_keys()
    keys = [k for k, _ in cells]
    assert len(keys) == len(set(keys)), "duplicate data-key"
    for key, text in cells:
        assert text == format_number(resolve(dump, key), key), key
    missing = set(numeric_leaves(dump)) - set(keys)
    assert missing == set()
    for key in ("dimensions.1.table.0.spearman", "dimensions.1.table.0.pearson_ci", "dimensions.1.heatmap.rho.1.1"):
        assert dict(cells)[key] == MISSING
    assert dict(cells)["dimensions.0.table.0.n"] == f"{report.dimensions[0].table[0].n:,}"

    # the page renders: a full-page screenshot that is neither blank nor uniform
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG")
    from PIL import Image

    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    height, width, _ = shot.shape
    assert width == 1280 and height > 3000, shot.shape
    not_white = (shot < 245).any(axis=2).mean()
    assert 0.03 < not_white < 0.9, not_white
    assert shot.std() > 20


def test_escaping(browser, loaded, page_html, report):
    assert "<script" not in page_html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page_html
    assert loaded.dialogs == []
    texts = browser.evaluate("Array.from(document.querySelectorAll('td'), e => e.textContent)")
    assert NASTY in texts
    answer = report.dimensions[0].errors[0].largest[0].answer
    assert answer in texts  # the raw answer, newline and markup included, shown as text
    assert browser.evaluate("document.querySelectorAll('b').length") == 0

    md = render_markdown(report)
    assert "<script" not in md.lower() and "<b>" not in md
    assert '&lt;script&gt;alert("x")&lt;/script&gt; &amp; co' in md  # GitHub shows the entities as text


def test_deterministic(built, report, figures, page_html):
    again = draw(built[1])
    for name, data in figures.items():
        assert data.startswith(b"\x89PNG")
        assert again[name] == data, name
    assert render_html(report, again) == page_html
    assert render_markdown(report) == render_markdown(report)


def test_markdown(report):
    md = render_markdown(report)
    dim = report.dimensions[0]
    assert md.startswith(f"# {report.title}\n")
    assert "| Rater | Kind | Gold | n | Spearman ρ | 95% CI | Pearson r | 95% CI | MAE | RMSE | Bias | SD ratio |" in md
    assert "### Human ceiling: gold against gold" in md
    for i, row in enumerate(dim.table):
        fields = ("n", "spearman", "spearman_ci", "pearson", "pearson_ci", "mae", "rmse", "bias", "sd_ratio")
        cells = [format_number(getattr(row, f), f"dimensions.0.table.{i}.{f}") for f in fields]
        assert " | ".join(cells) in md, row.rater
    for c in dim.comparisons:
        gold = c.gold.replace("_", "\\_")  # the rater names have no other Markdown specials
        assert f"- *against {gold}:* {html.escape(c.verdict, quote=False)}\n" in md
    assert "![heatmap](familiarity_heatmap.png)" in md
    assert "(familiarity%20mass%20A.png)" in md
    assert len(re.findall(r"!\[[^\]]*\]\([^)]+\.png\)", md)) == len(dim.plots)
    # every table row has as many cells as its header
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        lines = block.strip("\n").split("\n")
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, lines[:3]


def test_plots_leave_matplotlib_alone():
    # rcParams["backend"] itself would import pyplot to resolve the default backend: leave it out
    code = (
        "import sys, matplotlib; rc = matplotlib.rcParams; rc['font.size'] = 17;"
        "snap = lambda: {k: rc[k] for k in rc if k != 'backend'}; before = snap();"
        "import workbench.analysis.plots as p;"
        "p.heatmap(['a','b'], [[1, .5], [.5, None]]); p.scatter([1,2,3], [1,2,4], rater='r', gold='g');"
        "assert 'matplotlib.pyplot' not in sys.modules; assert snap() == before; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_plots_small_and_empty_inputs():
    for data in (
        plots.scatter([], [], rater="r", gold="g"),
        plots.scatter([1.0, None, 3.0], [2.0, 2.0, None], rater="r", gold="g", scale=(1, 7)),
        plots.residuals([1.0], [2.0], rater="r", gold="g"),
        plots.heatmap([], []),
        plots.heatmap(["only"], [[None]]),
        plots.mass_histogram([0, 0.5, 1], [3, 7], rater="r"),
    ):
        assert data.startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        plots.mass_histogram([0, 1], [1, 2], rater="r")
