"""Validation reports as one self-contained HTML page or as GitHub Markdown.

Both render a `Report` (workbench.analysis.report_model) and show every
number through `format_number`, so the page, the Markdown and the JSON agree.

HTML (`render_html`): one file, inline CSS, figures as base64 data URIs, no
JavaScript, no external requests (a Content-Security-Policy forbids both).
Every cell that shows a number carries ``data-key``: the dotted path of that
number in ``report.model_dump(mode="json")``, list indices included, e.g.
``data-key="dimensions.0.table.2.spearman"`` or
``data-key="dimensions.0.heatmap.rho.1.3"``; its text is
``format_number(value, key)``. Each key appears once. Every number of the
report has a cell (histogram edges, counts and the heatmap matrices sit in
collapsed <details>).

Markdown (`render_markdown`): the same tables and verdicts; figures are image
links to the file names in ``DimensionReport.plots``, which the caller
writes beside the .md file.

Number formatting (`format_number`, decided by the field name) is in
workbench/analysis/render_format.py, with the cell helpers both renderers
share.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workbench.analysis.render_format import MISSING, _e, _md, _md_table, _missing, _num, _txt, format_number
from workbench.analysis.render_methods import ceiling_note, coverage_html, coverage_markdown, methods_html, methods_markdown, no_gold_note
from workbench.analysis.report_model import (
    AgreementRow,
    CalibrationRow,
    Comparison,
    DimensionReport,
    ErrorAnalysis,
    Heatmap,
    IntervalRow,
    MassSummary,
    PPIRow,
    Reliability,
    Report,
    ResidualBand,
    TrainedOn,
)

__all__ = ["render_html", "render_markdown"]


def _ci_label(ci: float) -> str:
    return f"{format_number(ci, 'ci')} CI"


def _bar_style(value: float | None) -> str:
    if _missing(value) or value <= 0:
        return ""
    return f"--bar:{min(value, 1.0) * 100:.1f}%"


_CSS = """
:root { --ink:#1f2328; --muted:#59636e; --rule:#d1d9e0; --soft:#f6f8fa; --accent:#0b5cad;
  --bar:0%; --barc:#dbe9f8; --ceil:#fff4d6; --ceilbar:#f5d58a; --warn:#9a6700; }
* { box-sizing:border-box; }
html { -webkit-text-size-adjust:100%; }
body { margin:0; color:var(--ink); background:#fff;
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif; }
main { max-width:1240px; margin:0 auto; padding:28px 32px 48px; }
h1 { font-size:1.75rem; line-height:1.25; margin:0 0 .3rem; }
h2 { font-size:1.4rem; margin:2.6rem 0 .4rem; padding-bottom:.3rem; border-bottom:2px solid var(--ink); }
h3 { font-size:1.1rem; margin:1.8rem 0 .5rem; }
h4 { font-size:.98rem; margin:1.2rem 0 .4rem; color:var(--muted); }
p { margin:.4rem 0 .8rem; }
.meta, .lead { color:var(--muted); }
.meta span + span::before { content:"·"; margin:0 .5em; color:var(--rule); }
nav.toc { margin:1rem 0 0; font-size:.95rem; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:1.2em; }
.scroll { overflow-x:auto; margin:.3rem 0 1rem; }
table { border-collapse:collapse; font-size:.88rem; font-variant-numeric:tabular-nums; }
caption { caption-side:top; text-align:left; color:var(--muted); font-size:.85rem; padding:0 0 .35rem; }
th, td { padding:.28rem .6rem; border-bottom:1px solid var(--rule); vertical-align:top; text-align:left; }
thead th { border-bottom:2px solid var(--ink); font-weight:600; white-space:nowrap; background:#fff; }
tbody tr:nth-child(even) { background:var(--soft); }
td.num { text-align:right; white-space:nowrap; }
td.ci { color:var(--muted); font-size:.92em; }
td.bar { background-image:linear-gradient(90deg, var(--barc) var(--bar), transparent var(--bar)); }
td.name { font-weight:600; }
td.note { color:var(--warn); font-size:.92em; min-width:14em; }
td.answer { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.92em;
  white-space:pre-wrap; overflow-wrap:anywhere; max-width:30em; }
.kind { display:inline-block; padding:0 .45em; border-radius:1em; font-size:.85em; background:#eef1f4; color:var(--muted); }
.kind-llm, .kind-model { background:#e6effa; color:#0b4a8b; }
.kind-norm, .kind-human { background:#fbefd5; color:#7a4d00; }
section.ceiling { background:var(--ceil); border-left:4px solid #d4a72c; padding:.6rem 1rem .2rem; margin:1rem 0; }
section.ceiling h3 { margin-top:.2rem; }
section.ceiling table tbody tr:nth-child(even) { background:rgba(255,255,255,.45); }
section.ceiling td.bar { --barc:var(--ceilbar); }
.verdict .against { font-weight:600; margin-right:.3em; }
.verdict { margin:.3rem 0; padding:.45rem .8rem; border-left:3px solid var(--accent); background:var(--soft); }
.pair { display:flex; flex-wrap:wrap; gap:0 2rem; }
.calib { margin:1rem 0 1.4rem; }
.calib p { margin:.2rem 0; }
details { margin:.4rem 0 1rem; }
details > summary { cursor:pointer; color:var(--accent); }
table.matrix td.num { min-width:3.6em; }
table.matrix th[scope=row] { white-space:nowrap; }
.figures { display:grid; grid-template-columns:repeat(auto-fill, minmax(440px, 1fr)); gap:1.4rem; margin-top:.8rem; }
figure { margin:0; break-inside:avoid; }
figure.wide { grid-column:1 / -1; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; border:1px solid var(--rule); }
figure.wide img { max-width:min(100%, 980px); }
figcaption { color:var(--muted); font-size:.85rem; text-align:center; margin-top:.3rem; }
.missing { color:var(--warn); }
footer { margin-top:3rem; padding-top:.8rem; border-top:1px solid var(--rule); color:var(--muted); font-size:.82rem; }
footer dt { font-weight:600; color:var(--ink); }
footer dd { margin:0 0 .3rem 0; }
@media (max-width:720px) { main { padding:16px; } .figures { grid-template-columns:1fr; } }
@media print {
  @page { margin:14mm 12mm; }
  body { font-size:10pt; }
  h1 { font-size:18pt; } h2 { font-size:14pt; } h3 { font-size:11.5pt; } h4 { font-size:10pt; }
  main { max-width:none; padding:0; }
  h2 { break-before:page; } section.dimension:first-of-type h2 { break-before:auto; }
  h2, h3, h4 { break-after:avoid; }
  table, figure, .verdict, section.ceiling { break-inside:avoid; }
  .scroll { overflow:visible; }
  table { font-size:7.5pt; }
  th, td { padding:.15em .35em; }
  td.name { min-width:8em; }
  td.note { min-width:8em; }
  nav.toc { display:none; }
  details > summary { display:none; }
  details::details-content { content-visibility:visible; display:block; }
  * { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

Column = tuple[str, Callable[[str, Any], str]]  # header HTML, (key, row) -> <td>


def _table(columns: Sequence[Column], rows: Sequence[tuple[str, Any]], *, caption: str | None = None, cls: str = "") -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h, _ in columns)
    body = "".join("<tr>" + "".join(cell(key, row) for _, cell in columns) + "</tr>" for key, row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<div class="scroll"><table{cls_attr}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _field_cell(name: str, cls: str = "num") -> Callable[[str, Any], str]:
    return lambda key, row: _num(getattr(row, name), f"{key}.{name}", cls)


def _kind_badge(kind: str) -> str:
    k = re.sub(r"[^a-z]", "", kind.lower())
    return f'<td><span class="kind kind-{k}">{_e(kind)}</span></td>'


def _agreement_columns(ci: float, *, who: bool = True, stage: Sequence[str] | None = None, bars: bool = True) -> list[Column]:
    cols: list[Column] = []
    if stage is not None:
        cols.append(("Stage", lambda key, row: _txt(stage[int(key.rsplit(".", 1)[1] == "calibrated")], "name")))
    if who:
        cols += [
            ("Rater", lambda key, row: _txt(row.rater, "name")),
            ("Kind", lambda key, row: _kind_badge(row.rater_kind)),
            ("Gold", lambda key, row: _txt(row.gold)),
        ]
    ci_head = _e(_ci_label(ci))
    spearman_cell: Callable[[str, Any], str]
    if bars:
        spearman_cell = lambda key, row: _num(row.spearman, f"{key}.spearman", "num bar", _bar_style(row.spearman))  # noqa: E731
    else:
        spearman_cell = _field_cell("spearman")
    cols += [
        ("n", _field_cell("n")),
        ("Spearman ρ", spearman_cell),
        (ci_head, _field_cell("spearman_ci", "num ci")),
        ("Pearson r", _field_cell("pearson")),
        (ci_head, _field_cell("pearson_ci", "num ci")),
        ('<abbr title="mean absolute error">MAE</abbr>', _field_cell("mae")),
        ('<abbr title="root mean squared error">RMSE</abbr>', _field_cell("rmse")),
        ('<abbr title="mean of rater − gold: positive when the rater rates higher">Bias</abbr>', _field_cell("bias")),
        ('<abbr title="sd(rater) / sd(gold): below 1 the rater compresses the scale">SD ratio</abbr>', _field_cell("sd_ratio")),
    ]
    return cols


def _with_notes(cols: list[Column], rows: Sequence[AgreementRow]) -> list[Column]:
    if any(r.note for r in rows):
        cols = [*cols, ("Note", lambda key, row: _txt(row.note or "", "note"))]
    return cols


def _agreement_html(rows: Sequence[AgreementRow], base: str, ci: float, caption: str) -> str:
    if not rows:
        return '<p class="lead">No rows.</p>'
    cols = _with_notes(_agreement_columns(ci), rows)
    return _table(cols, [(f"{base}.{i}", r) for i, r in enumerate(rows)], caption=caption)


def _reliability_html(rel: Reliability, base: str) -> str:
    items: list[tuple[str, str, Any]] = [
        ("Items", "n_items", rel.n_items),
        ("Split-half reliability (Spearman-Brown)", "split_half", rel.split_half),
        ("Split-half interval over splits", "split_half_interval", rel.split_half_interval),
        ("Random splits", "n_splits", rel.n_splits),
        ("ICC(2,1): absolute agreement, one rater", "icc2_1", rel.icc2_1),
        ("ICC(2,k): absolute agreement, mean of k raters", "icc2_k", rel.icc2_k),
        ("ICC(3,k): consistency, mean of k raters", "icc3_k", rel.icc3_k),
        ("Complete items used by the ICCs", "icc_items", rel.icc_items),
        ("Krippendorff's α (interval)", "krippendorff_alpha", rel.krippendorff_alpha),
    ]
    body = "".join(f'<tr><th scope="row">{_e(label)}</th>{_num(v, f"{base}.{f}")}</tr>' for label, f, v in items)
    out = [
        "<h3>Reliability of the human raters</h3>",
        f'<p class="lead">{len(rel.raters)} raters: {_e(", ".join(rel.raters))}</p>',
        f'<div class="scroll"><table><tbody>{body}</tbody></table></div>',
    ]
    if rel.note:
        out.append(f'<p class="missing">{_e(rel.note)}</p>')
    if rel.excluded:
        listed = "; ".join(f"{name}: {why}" for name, why in sorted(rel.excluded.items()))
        out.append(f'<p class="missing">Excluded by the campaign\'s rules (kept in the store): {_e(listed)}</p>')
    return "".join(out)


def _comparisons_html(comps: Sequence[Comparison], base: str, ci: float) -> str:
    out = ["<h3>Comparisons</h3>"]
    out += [f'<p class="verdict"><span class="against">against {_e(c.gold)}:</span> {_e(c.verdict)}</p>' for c in comps]
    cols: list[Column] = [
        ("Rater A", lambda key, c: _txt(c.rater_a, "name")),
        ("Rater B", lambda key, c: _txt(c.rater_b, "name")),
        ("Gold", lambda key, c: _txt(c.gold)),
        ("n", _field_cell("n")),
        ("ρ A", _field_cell("spearman_a")),
        ("ρ B", _field_cell("spearman_b")),
        ("Δρ (A − B)", _field_cell("difference")),
        (_e(f"{_ci_label(ci)} (paired bootstrap)"), _field_cell("difference_ci", "num ci")),
        ("Williams t", _field_cell("williams_t")),
        ("p", _field_cell("williams_p")),
    ]
    out.append(_table(cols, [(f"{base}.{i}", c) for i, c in enumerate(comps)]))
    return "".join(out)


def _bands_html(bands: Sequence[ResidualBand], base: str, title: str) -> str:
    cols: list[Column] = [
        ("Band", lambda key, b: _txt(b.band, "name")),
        ("From", _field_cell("low")),
        ("To", _field_cell("high")),
        ("n", _field_cell("n")),
        ("Mean residual", _field_cell("mean_residual")),
        ("MAE", _field_cell("mae")),
    ]
    return f"<div><h4>{_e(title)}</h4>" + _table(cols, [(f"{base}.{i}", b) for i, b in enumerate(bands)]) + "</div>"


def _mass_html(mass: MassSummary, base: str) -> str:
    summary = (
        f'<table><tbody><tr><th scope="row">Items</th>{_num(mass.n, base + ".n")}</tr>'
        f'<tr><th scope="row">Median mass</th>{_num(mass.median, base + ".median")}</tr>'
        f'<tr><th scope="row">Items under min_mass</th>{_num(mass.low_mass, base + ".low_mass")}</tr></tbody></table>'
    )
    edges = "".join(f"<tr>{_num(b, f'{base}.bins.{i}')}</tr>" for i, b in enumerate(mass.bins))
    counts = "".join(f"<tr>{_num(c, f'{base}.counts.{i}')}</tr>" for i, c in enumerate(mass.counts))
    hist = (
        '<details><summary>Histogram bins and counts</summary><div class="pair">'
        f'<div class="scroll"><table><thead><tr><th scope="col">Bin edges</th></tr></thead><tbody>{edges}</tbody></table></div>'
        f'<div class="scroll"><table><thead><tr><th scope="col">Items per bin</th></tr></thead><tbody>{counts}</tbody></table></div>'
        "</div></details>"
    )
    return f'<h4>Probability mass on scale tokens</h4><div class="scroll">{summary}</div>{hist}'


def _errors_html(ea: ErrorAnalysis, base: str) -> str:
    out = [f"<h4>{_e(ea.rater)} vs {_e(ea.gold)}: largest disagreements</h4>"]
    if ea.largest:
        cols: list[Column] = [
            ("#", lambda key, d: f'<td class="num">{int(key.rsplit(".", 1)[1]) + 1}</td>'),
            ("Item", lambda key, d: _txt(d.item, "name")),
            ("Rater", _field_cell("value")),
            ("Gold", _field_cell("gold_value")),
            ("Residual", _field_cell("residual")),
            ("Mass", _field_cell("mass")),
            ("Raw answer", lambda key, d: _txt(d.answer if d.answer is not None else MISSING, "answer")),
        ]
        out.append(_table(cols, [(f"{base}.largest.{i}", d) for i, d in enumerate(ea.largest)]))
    else:
        out.append('<p class="lead">No items.</p>')
    bands = []
    if ea.by_frequency:
        bands.append(_bands_html(ea.by_frequency, f"{base}.by_frequency", "Residuals by word frequency (Zipf)"))
    if ea.by_length:
        bands.append(_bands_html(ea.by_length, f"{base}.by_length", "Residuals by word length (characters)"))
    if bands:
        out.append('<div class="pair">' + "".join(bands) + "</div>")
    if ea.mass is not None:
        out.append(_mass_html(ea.mass, f"{base}.mass"))
    return "".join(out)


def _calibration_html(rows: Sequence[CalibrationRow], base: str, ci: float) -> str:
    out = [
        "<h3>Calibration</h3>",
        '<p class="lead">A line gold = a + b × rater fitted on the train items and applied to the test items: '
        "correlations stay, errors shrink when the rater is biased or compresses the scale.</p>",
    ]
    for i, c in enumerate(rows):
        key = f"{base}.{i}"
        fit = (
            f'<table><tbody><tr><th scope="row">Intercept a</th>{_num(c.intercept, key + ".intercept")}'
            f'<th scope="row">Slope b</th>{_num(c.slope, key + ".slope")}'
            f'<th scope="row">Train items</th>{_num(c.n_train, key + ".n_train")}</tr></tbody></table>'
        )
        cols = _with_notes(_agreement_columns(ci, who=False, stage=["raw", "calibrated"], bars=False), [c.raw, c.calibrated])
        out.append(
            f'<div class="calib"><h4>{_e(c.rater)} → {_e(c.gold)}: fitted on {_e(c.train)}, tested on {_e(c.test)}</h4>'
            f'<div class="scroll">{fit}</div>' + _table(cols, [(f"{key}.raw", c.raw), (f"{key}.calibrated", c.calibrated)]) + "</div>"
        )
    return "".join(out)


INTERVALS_LEAD = (
    "Split-conformal intervals: a line onto gold and a width that follows the rater's uncertainty signals, "
    "fitted on the calibration items (never the reported ones); the share of reported items whose gold value "
    "lies inside its interval, against the nominal level."
)


def _intervals_html(rows: Sequence[IntervalRow], base: str) -> str:
    out = ["<h3>Calibrated intervals</h3>", f'<p class="lead">{_e(INTERVALS_LEAD)}</p>']
    body = []
    for i, r in enumerate(rows):
        key = f"{base}.{i}"
        for j, c in enumerate(r.coverage):
            k = f"{key}.coverage.{j}"
            body.append(
                f"<tr><td>{_e(r.rater)}</td><td>{_e(r.gold)}</td><td>{_e(r.calibration)}</td>"
                + (_num(r.n_calibration, key + ".n_calibration") + _num(r.n, key + ".n") if j == 0 else "<td></td><td></td>")
                + f"<td>{_e(', '.join(r.signals) or 'none')}</td>"
                + _num(c.level, k + ".level")
                + _num(c.covered, k + ".covered")
                + _num(c.mean_width, k + ".mean_width")
                + "</tr>"
            )
    head = "".join(f'<th scope="col">{h}</th>' for h in
                   ("Rater", "Gold", "Calibrated on", "Calibration items", "Reported items", "Signals", "Nominal", "Covered", "Mean width"))  # fmt: skip
    out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    return "".join(out)


PPI_LEAD = (
    "A statistic over all the report's words: naive takes every machine value as a human one; classical uses the "
    "human-rated words alone; prediction-powered (ppi-python) uses all machine values, corrected by the machine's error "
    "on the human-rated words (valid when those are a random sample of the words)."
)


def _ppi_label(r: PPIRow) -> str:
    return f"mean of {r.humans}" if r.statistic == "mean" else f"correlation of {r.humans} with {r.other}"


def _ppi_html(rows: Sequence[PPIRow], base: str) -> str:
    out = ["<h3>Statistics over machine and human values</h3>", f'<p class="lead">{_e(PPI_LEAD)}</p>']
    body = []
    for i, r in enumerate(rows):
        key = f"{base}.{i}"
        cells = "".join(
            _num(getattr(r, part).value, f"{key}.{part}.value") + _num(getattr(r, part).value_interval, f"{key}.{part}.value_interval")
            for part in ("naive", "classical", "ppi")
        )
        body.append(f"<tr><td>{_e(_ppi_label(r))}</td><td>{_e(r.machine)}</td>" + _num(r.n_labeled, key + ".n_labeled")
                    + _num(r.n_unlabeled, key + ".n_unlabeled") + cells + "</tr>")  # fmt: skip
    heads = ("Statistic", "Machine", "Human-rated", "Machine only", "Naive", "Interval", "Classical", "Interval", "PPI", "Interval")
    head = "".join(f'<th scope="col">{h}</th>' for h in heads)
    out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    return "".join(out)


def _md_ppi(rows: Sequence[PPIRow], base: str) -> str:
    lines = ["### Statistics over machine and human values\n", PPI_LEAD + "\n"]
    table = []
    for i, r in enumerate(rows):
        key = f"{base}.{i}"
        row = [
            _md(_ppi_label(r)),
            _md(r.machine),
            format_number(r.n_labeled, key + ".n_labeled"),
            format_number(r.n_unlabeled, key + ".n_unlabeled"),
        ]
        for part in ("naive", "classical", "ppi"):
            e = getattr(r, part)
            row += [format_number(e.value, f"{key}.{part}.value"), format_number(e.value_interval, f"{key}.{part}.value_interval")]
        table.append(row)
    heads = ["Statistic", "Machine", "Human-rated", "Machine only", "Naive", "Interval", "Classical", "Interval", "PPI", "Interval"]
    lines.append(_md_table(heads, table, [False, False] + [True] * 8))
    return "\n".join(lines)


def _md_intervals(rows: Sequence[IntervalRow], base: str) -> str:
    lines = ["### Calibrated intervals\n", INTERVALS_LEAD + "\n"]
    table = []
    for i, r in enumerate(rows):
        key = f"{base}.{i}"
        for j, c in enumerate(r.coverage):
            k = f"{key}.coverage.{j}"
            first = j == 0
            table.append([
                _md(r.rater), _md(r.gold), _md(r.calibration),
                format_number(r.n_calibration, key + ".n_calibration") if first else "",
                format_number(r.n, key + ".n") if first else "", _md(", ".join(r.signals) or "none"),
                format_number(c.level, k + ".level"), format_number(c.covered, k + ".covered"),
                format_number(c.mean_width, k + ".mean_width"),
            ])  # fmt: skip
    headers = ["Rater", "Gold", "Calibrated on", "Calibration items", "Reported items", "Signals", "Nominal", "Covered", "Mean width"]
    lines.append(_md_table(headers, table, [False, False, False, True, True, False, True, True, True]))
    return "\n".join(lines)


def _scales_html(dim: DimensionReport, base: str) -> str:
    """The note on scales above the agreement table, and each column's own scale (collapsed)."""
    out = []
    if dim.scale_note:
        out.append(f'<p class="lead scale-note">{_e(dim.scale_note)}</p>')
    if dim.scales:
        cols: list[Column] = [
            ("Gold or rater", lambda key, c: _txt(c.name, "name")),
            ("Own scale", _field_cell("scale")),
            ("Mapped", lambda key, c: _txt("yes" if c.mapped else "no: correlations only")),
            ("Factor", _field_cell("factor")),
            ("Offset", _field_cell("offset")),
            ("Values outside", _field_cell("outside")),
            ("Note", lambda key, c: _txt(c.note or "", "note")),
        ]
        rows = [(f"{base}.scales.{i}", c) for i, c in enumerate(dim.scales)]
        caption = "Value on the report's scale = offset + factor × own value."
        table = _table(cols, rows, caption=caption)
        out.append(f"<details><summary>Scales of the gold datasets and raters</summary>{table}</details>")
    return "".join(out)


def _diverging(v: float) -> str:
    """RdBu-like background for rho in [-1, 1]: blue (negative), white (0), red (positive)."""
    v = max(-1.0, min(1.0, v))
    end = (178, 24, 43) if v > 0 else (33, 102, 172)
    t = abs(v) * 0.85
    r, g, b = (round(255 + (e - 255) * t) for e in end)
    ink = "#fff" if t > 0.55 else "#1f2328"
    return f"background:rgb({r},{g},{b});color:{ink}"


def _heatmap_html(hm: Heatmap, base: str) -> str:
    if not hm.labels:
        return ""
    head = '<th scope="col"></th>' + "".join(f'<th scope="col">{_e(lab)}</th>' for lab in hm.labels)

    def matrix(name: str, values: Sequence[Sequence[Any]], colour: bool) -> str:
        rows = []
        for i, lab in enumerate(hm.labels):
            cells = []
            for j, v in enumerate(values[i]):
                style = _diverging(v) if colour and not _missing(v) else ""
                cells.append(_num(v, f"{base}.{name}.{i}.{j}", "num", style))
            rows.append(f'<tr><th scope="row">{_e(lab)}</th>{"".join(cells)}</tr>')
        return f'<div class="scroll"><table class="matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'

    return (
        "<details><summary>Correlation matrix (Spearman ρ and shared items) as numbers</summary>"
        "<h4>Spearman ρ</h4>" + matrix("rho", hm.rho, True) + "<h4>Items both rated</h4>" + matrix("n", hm.n, False) + "</details>"
    )


_MIME = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def _mime(file_name: str) -> str:
    suffix = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return _MIME.get(suffix, "image/png")


def _png_size(data: bytes) -> str:
    """width/height attributes from a PNG header (so the layout does not jump while images decode); "" otherwise."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return ""
    return f' width="{int.from_bytes(data[16:20], "big")}" height="{int.from_bytes(data[20:24], "big")}"'


def _figures_html(dim: DimensionReport, plots: Mapping[str, bytes]) -> str:
    if not dim.plots:
        return ""
    figs = []
    for name, file_name in dim.plots.items():
        cls = ' class="wide"' if "heatmap" in name.lower() else ""
        data = plots.get(file_name, plots.get(name))
        if data is None:
            body = f'<p class="missing">Figure file {_e(file_name)} is missing.</p>'
        else:
            uri = f"data:{_mime(file_name)};base64,{base64.b64encode(data).decode('ascii')}"
            body = f'<img src="{uri}" alt="{_e(name)}"{_png_size(data)}>'
        figs.append(f'<figure{cls}>{body}<figcaption>{_e(name)} <span class="meta">({_e(file_name)})</span></figcaption></figure>')
    return '<h3>Figures</h3><div class="figures">' + "".join(figs) + "</div>"


def _dimension_html(dim: DimensionReport, d: int, ci: float, plots: Mapping[str, bytes]) -> str:
    base = f"dimensions.{d}"
    out = [
        f'<section class="dimension" id="dim-{d}">',
        f"<h2>{_e(dim.dimension)}</h2>",
        '<p class="meta">'
        f'<span>scale <span data-key="{base}.scale">{_e(format_number(dim.scale, base + ".scale"))}</span></span>'
        f"<span>gold: {_e(', '.join(dim.gold) or MISSING)}</span>"
        f"<span>raters: {_e(', '.join(dim.raters) or MISSING)}</span>"
        + (
            f'<span>values on <span data-key="{base}.value_scale">{_e(format_number(dim.value_scale, base + ".value_scale"))}</span></span>'
            if dim.value_scale is not None
            else ""
        )
        + "</p>",
        "<h3>Agreement with the human norms</h3>",
        _scales_html(dim, base),
        _agreement_html(dim.table, f"{base}.table", ci, "Every rater against every gold dataset, on the items both rated.")
        if dim.gold
        else f'<p class="missing">{_e(no_gold_note(dim))}</p>',
        *([f'<p class="lead trained">{_e(trained_text(dim.trained))}</p>'] if dim.trained else []),
    ]
    if dim.ceiling:
        out += [
            '<section class="ceiling"><h3>Human ceiling: gold against gold</h3>',
            _agreement_html(
                dim.ceiling,
                f"{base}.ceiling",
                ci,
                "How well one published norm agrees with another. A rater that reaches these values agrees with a norm as well as another human norm does.",
            ),
            "</section>",
        ]
    elif ceiling_note(dim):
        out.append(f'<p class="lead ceiling-note">{_e(ceiling_note(dim))}</p>')
    out.append(coverage_html(dim, base))
    if dim.reliability is not None:
        out.append(_reliability_html(dim.reliability, f"{base}.reliability"))
    if dim.comparisons:
        out.append(_comparisons_html(dim.comparisons, f"{base}.comparisons", ci))
    if dim.errors:
        out.append("<h3>Error analysis</h3>")
        out += [_errors_html(ea, f"{base}.errors.{i}") for i, ea in enumerate(dim.errors)]
    if dim.calibration:
        out.append(_calibration_html(dim.calibration, f"{base}.calibration", ci))
    if dim.intervals:
        out.append(_intervals_html(dim.intervals, f"{base}.intervals"))
    if dim.ppi:
        out.append(_ppi_html(dim.ppi, f"{base}.ppi"))
    out.append("<h3>Correlations between all raters and norms</h3>")
    out.append(_heatmap_html(dim.heatmap, f"{base}.heatmap"))
    out.append(_figures_html(dim, plots))
    out.append("</section>")
    return "".join(out)


_FOOTER = (
    "<footer><dl>"
    "<dt>Numbers</dt><dd>Three decimals; signed quantities (bias, residuals, differences, t) carry a sign; "
    "p below 0.001 shows as “&lt; 0.001”; “–” marks a value that could not be computed "
    "(too few items, a constant rater).</dd>"
    "<dt>Intervals</dt><dd>Percentile bootstrap intervals over items, [low, high].</dd>"
    "<dt>Errors</dt><dd>Residual = rater − gold. MAE: mean |residual|; RMSE: root mean squared residual; "
    "bias: mean residual (positive: the rater rates higher); SD ratio: sd(rater) / sd(gold), "
    "below 1 the rater compresses the scale.</dd>"
    "</dl></footer>"
)


def render_html(report: Report, plots: Mapping[str, bytes] | None = None) -> str:
    """The report as one self-contained HTML page.

    `plots` maps plot file names (the values of DimensionReport.plots) to
    their bytes (a plot's name is tried too); a plot without bytes shows as
    a "missing" note instead of a broken image.
    """
    plots = plots or {}
    items = report.items if report.items is not None else "all items"
    toc = ""
    if len(report.dimensions) > 1 or report.methods is not None:
        links = ['<a href="#methods">Methods</a>'] if report.methods is not None else []
        links += [f'<a href="#dim-{i}">{_e(d.dimension)}</a>' for i, d in enumerate(report.dimensions)]
        toc = '<nav class="toc">' + "".join(links) + "</nav>"
    head = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        '<meta name="generator" content="workbench">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head>\n"
    )
    meta = (
        '<p class="meta">'
        f"<span>workbench {_e(report.workbench)}</span>"
        f'<span>seed <span data-key="seed">{_e(format_number(report.seed, "seed"))}</span></span>'
        f'<span><span data-key="n_boot">{_e(format_number(report.n_boot, "n_boot"))}</span> bootstrap resamples</span>'
        f'<span><span data-key="ci">{_e(format_number(report.ci, "ci"))}</span> intervals</span>'
        f"<span>items: {_e(items)}</span></p>"
    )
    body = "".join(_dimension_html(dim, d, report.ci, plots) for d, dim in enumerate(report.dimensions))
    methods = methods_html(report.methods) if report.methods is not None else ""
    return f"{head}<body><main><header><h1>{_e(report.title)}</h1>{meta}{toc}</header>\n{methods}\n{body}\n{_FOOTER}</main></body></html>\n"


# --------------------------------------------------------------------------- Markdown


def _md_agreement(rows: Sequence[AgreementRow], base: str, ci: float, stage: Sequence[str] | None = None) -> str:
    if not rows:
        return "No rows.\n"
    ci_head = _ci_label(ci)
    fields = ["n", "spearman", "spearman_ci", "pearson", "pearson_ci", "mae", "rmse", "bias", "sd_ratio"]
    headers = ["n", "Spearman ρ", ci_head, "Pearson r", ci_head, "MAE", "RMSE", "Bias", "SD ratio"]
    lead = ["Stage"] if stage is not None else ["Rater", "Kind", "Gold"]
    notes = any(r.note for r in rows)
    out = []
    for i, r in enumerate(rows):
        key = f"{base}.{'calibrated' if i else 'raw'}" if stage is not None else f"{base}.{i}"
        who = [stage[i]] if stage is not None else [f"**{_md(r.rater)}**", _md(r.rater_kind), _md(r.gold)]
        out.append(who + [format_number(getattr(r, f), f"{key}.{f}") for f in fields] + ([_md(r.note or "")] if notes else []))
    return _md_table(
        lead + headers + (["Note"] if notes else []),
        out,
        [False] * len(lead) + [True] * len(fields) + ([False] if notes else []),
    )


def _md_scales(dim: DimensionReport, base: str) -> list[str]:
    out = []
    if dim.scale_note:
        out.append(f"> {_md(dim.scale_note)}\n")
    if dim.scales:
        rows = [
            [_md(c.name), format_number(c.scale, f"{base}.scales.{i}.scale"), "yes" if c.mapped else "no: correlations only"]
            + [format_number(getattr(c, f), f"{base}.scales.{i}.{f}") for f in ("factor", "offset", "outside")]
            + [_md(c.note or "")]
            for i, c in enumerate(dim.scales)
        ]
        out.append(
            _md_table(
                ["Gold or rater", "Own scale", "Mapped", "Factor", "Offset", "Values outside", "Note"],
                rows,
                [False, True, False, True, True, True, False],
            )
        )
    return out


_COMPARISON_FIELDS = ("n", "spearman_a", "spearman_b", "difference", "difference_ci", "williams_t", "williams_p")


def trained_text(trained: Sequence[TrainedOn]) -> str:
    """Which items each trained rater saw, and whether the reported items include them."""
    parts = []
    for t in trained:
        n = f"{t.n:,} items" if t.n else "items"
        gold = f" of {t.gold}" if t.gold else ""
        warn = (f"; {t.overlap:,} of the items it is reported on were training items: its figures there overstate it"
                if t.overlap else "; none of the items it is reported on")  # fmt: skip
        parts.append(f"{t.rater} was trained on {t.items} ({n}{gold}){warn}")
    return "Trained raters: " + ". ".join(parts) + "."


def _md_dimension(dim: DimensionReport, d: int, ci: float) -> str:
    base = f"dimensions.{d}"
    out = [
        f"## {_md(dim.dimension)}\n",
        f"Scale {format_number(dim.scale, base + '.scale')} · gold: {_md(', '.join(dim.gold) or MISSING)} · raters: {_md(', '.join(dim.raters) or MISSING)}\n",
        "### Agreement with the human norms\n",
        *_md_scales(dim, base),
        _md_agreement(dim.table, f"{base}.table", ci) if dim.gold else f"{_md(no_gold_note(dim))}\n",
        *([f"> {_md(trained_text(dim.trained))}\n"] if dim.trained else []),
    ]
    if dim.ceiling:
        out += [
            "### Human ceiling: gold against gold\n",
            "> How well one published norm agrees with another: a rater that reaches these values agrees with a norm as well as another human norm does.\n",
            _md_agreement(dim.ceiling, f"{base}.ceiling", ci),
        ]
    elif ceiling_note(dim):
        out.append(f"> {_md(ceiling_note(dim))}\n")
    out.append(coverage_markdown(dim, base))
    rel = dim.reliability
    if rel is not None:
        k = f"{base}.reliability"
        rows = [
            ["Items", format_number(rel.n_items, k + ".n_items")],
            ["Split-half reliability (Spearman-Brown)", format_number(rel.split_half, k + ".split_half")],
            ["Split-half interval over splits", format_number(rel.split_half_interval, k + ".split_half_interval")],
            ["Random splits", format_number(rel.n_splits, k + ".n_splits")],
            ["ICC(2,1)", format_number(rel.icc2_1, k + ".icc2_1")],
            ["ICC(2,k)", format_number(rel.icc2_k, k + ".icc2_k")],
            ["ICC(3,k)", format_number(rel.icc3_k, k + ".icc3_k")],
            ["Complete items used by the ICCs", format_number(rel.icc_items, k + ".icc_items")],
            ["Krippendorff's α (interval)", format_number(rel.krippendorff_alpha, k + ".krippendorff_alpha")],
        ]
        out += ["### Reliability of the human raters\n", f"{len(rel.raters)} raters: {_md(', '.join(rel.raters))}\n"]
        out.append(_md_table(["Statistic", "Value"], rows, [False, True]))
        if rel.note:
            out.append(f"{_md(rel.note)}\n")
        if rel.excluded:
            listed = "; ".join(f"{name}: {why}" for name, why in sorted(rel.excluded.items()))
            out.append(f"Excluded by the campaign's rules (kept in the store): {_md(listed)}\n")
    if dim.comparisons:
        out.append("### Comparisons\n")
        out.append("".join(f"- *against {_md(c.gold)}:* {_md(c.verdict)}\n" for c in dim.comparisons))
        rows = []
        for i, c in enumerate(dim.comparisons):
            k = f"{base}.comparisons.{i}"
            rows.append(
                [_md(c.rater_a), _md(c.rater_b), _md(c.gold)] + [format_number(getattr(c, f), f"{k}.{f}") for f in _COMPARISON_FIELDS]
            )
        out.append(
            "\n"
            + _md_table(
                ["Rater A", "Rater B", "Gold", "n", "ρ A", "ρ B", "Δρ (A − B)", f"{_ci_label(ci)} (paired bootstrap)", "Williams t", "p"],
                rows,
                [False] * 3 + [True] * 7,
            )
        )
    if dim.errors:
        out.append("### Error analysis\n")
        for i, ea in enumerate(dim.errors):
            k = f"{base}.errors.{i}"
            out.append(f"#### {_md(ea.rater)} vs {_md(ea.gold)}: largest disagreements\n")
            rows = [
                [str(j + 1), _md(dd.item)]
                + [format_number(getattr(dd, f), f"{k}.largest.{j}.{f}") for f in ("value", "gold_value", "residual", "mass")]
                + [f"<code>{_md(dd.answer)}</code>" if dd.answer else MISSING]
                for j, dd in enumerate(ea.largest)
            ]
            out.append(
                _md_table(
                    ["#", "Item", "Rater", "Gold", "Residual", "Mass", "Raw answer"], rows, [True, False, True, True, True, True, False]
                )
            )
            for name, bands, title in (
                ("by_frequency", ea.by_frequency, "word frequency (Zipf)"),
                ("by_length", ea.by_length, "word length (characters)"),
            ):
                if not bands:
                    continue
                rows = [
                    [_md(b.band)]
                    + [format_number(getattr(b, f), f"{k}.{name}.{j}.{f}") for f in ("low", "high", "n", "mean_residual", "mae")]
                    for j, b in enumerate(bands)
                ]
                out.append(
                    f"\nResiduals by {title}:\n\n"
                    + _md_table(["Band", "From", "To", "n", "Mean residual", "MAE"], rows, [False] + [True] * 5)
                )
            if ea.mass is not None:
                m = ea.mass
                out.append(
                    f"\nProbability mass on scale tokens: {format_number(m.n, k + '.mass.n')} items, "
                    f"median {format_number(m.median, k + '.mass.median')}, "
                    f"{format_number(m.low_mass, k + '.mass.low_mass')} under min_mass.\n"
                )
            out.append("")
    if dim.calibration:
        out.append("### Calibration\n")
        out.append("A line gold = a + b × rater fitted on the train items and applied to the test items.\n")
        for i, c in enumerate(dim.calibration):
            k = f"{base}.calibration.{i}"
            out.append(
                f"#### {_md(c.rater)} → {_md(c.gold)}: fitted on {_md(c.train)}, tested on {_md(c.test)}\n\n"
                f"a = {format_number(c.intercept, k + '.intercept')}, b = {format_number(c.slope, k + '.slope')}, "
                f"{format_number(c.n_train, k + '.n_train')} train items.\n"
            )
            out.append(_md_agreement([c.raw, c.calibrated], k, ci, stage=["raw", "calibrated"]))
    if dim.intervals:
        out.append(_md_intervals(dim.intervals, f"{base}.intervals"))
    if dim.ppi:
        out.append(_md_ppi(dim.ppi, f"{base}.ppi"))
    hm = dim.heatmap
    if hm.labels:
        out.append("### Correlations between all raters and norms (Spearman ρ)\n")
        rows = [
            [f"**{_md(lab)}**"] + [format_number(v, f"{base}.heatmap.rho.{i}.{j}") for j, v in enumerate(hm.rho[i])]
            for i, lab in enumerate(hm.labels)
        ]
        out.append(_md_table([""] + [_md(lab) for lab in hm.labels], rows, [False] + [True] * len(hm.labels)))
    if dim.plots:
        out.append("### Figures\n")
        out.append("".join(f"![{_md(name)}]({urllib.parse.quote(file_name)})\n\n" for name, file_name in dim.plots.items()))
    return "\n".join(out)


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown; figures link to the plot file names, expected beside the .md file."""
    items = _md(report.items) if report.items is not None else "all items"
    head = (
        f"# {_md(report.title)}\n\n"
        f"workbench {_md(report.workbench)} · seed {format_number(report.seed, 'seed')} · "
        f"{format_number(report.n_boot, 'n_boot')} bootstrap resamples · {format_number(report.ci, 'ci')} intervals · items: {items}\n"
    )
    body = "\n".join(_md_dimension(dim, d, report.ci) for d, dim in enumerate(report.dimensions))
    if report.methods is not None:
        body = methods_markdown(report.methods) + "\n" + body
    foot = (
        "\n---\n\nNumbers: three decimals; signed quantities carry a sign; p below 0.001 shows as < 0.001; "
        "– marks a value that could not be computed. Intervals: percentile bootstrap over items. "
        "Residual = rater − gold.\n"
    )
    return re.sub(r"\n{3,}", "\n\n", head + "\n" + body + foot)
