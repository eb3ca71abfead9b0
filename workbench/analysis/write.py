"""Write: a report's figures and files: HTML (figures embedded), Markdown (PNGs beside it) or JSON (no figures).

matplotlib, the renderer and the report's pydantic models are imported when
a figure or file is made, not when this module is. Plot file names are stable (the same raters give the
same names) and unique: a name that is not already a safe file name gets a
short hash of itself (`gpt a` and `gpt_a` become ``gpt_a-1b2c3d4e`` and
``gpt_a``), and names are lower-case, so they differ on case-insensitive
file systems too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.analysis.collect import DimensionData
    from workbench.analysis.report_model import Report

FORMATS = ("html", "md", "json")


def slug(text: str) -> str:
    """A file-name part for `text`: itself when it is lower-case letters, digits, ``_``, ``.`` and ``-``, else cleaned plus a hash."""
    clean = re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).strip("_.") or "x"
    return clean if clean == text else f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def plot_names(data: DimensionData) -> dict[str, str]:
    """plot key -> file name of every figure of one dimension that has something to draw.

    The heatmap always; per rater, scatter and residuals against the first
    gold dataset when the two share items and both have a linear map onto
    the value scale; the second gold dataset's scatter likewise; the
    scale-token mass of LLM raters that have one.
    """
    d = slug(data.dimension)
    names = {"heatmap": f"{d}-heatmap.png"}
    if data.gold:
        gold = data.gold[0]
        for r in data.raters:
            if _has_pairs(data, r, gold):
                names[f"scatter:{r}"] = f"{d}-scatter-{slug(r)}.png"
                names[f"residuals:{r}"] = f"{d}-residuals-{slug(r)}.png"
        if len(data.gold) > 1 and _has_pairs(data, data.gold[1], gold):
            names[f"scatter:{data.gold[1]}"] = f"{d}-scatter-{slug(data.gold[1])}.png"
        for r in data.raters:
            if data.kinds.get(r) == "llm" and data.mass[r].notna().any():
                names[f"mass:{r}"] = f"{d}-mass-{slug(r)}.png"
    return names


def _has_pairs(data: DimensionData, a: str, b: str) -> bool:
    return data.comparable(a, b) and bool(data.values[[a, b]].notna().all(axis=1).any())


def unique_plot_names(reports: Sequence) -> None:
    """Make file names unique across the dimensions of one report (in place): a repeated one gets -2, -3, ..."""
    seen: set[str] = set()
    for part in reports:
        for key, name in part.plots.items():
            stem, dot, ext = name.rpartition(".")
            candidate, k = name, 1
            while candidate in seen:
                k += 1
                candidate = f"{stem}-{k}{dot}{ext}"
            seen.add(candidate)
            part.plots[key] = candidate


def make_plots(report: Report, datas: list[DimensionData]) -> dict[str, bytes]:
    """file name -> PNG bytes, for every plot the report names (values on the report's value scale)."""
    from workbench.analysis import plots

    out: dict[str, bytes] = {}
    for part, data in zip(report.dimensions, datas, strict=True):
        out[part.plots["heatmap"]] = plots.heatmap(part.heatmap.labels, part.heatmap.rho)
        for key, name in part.plots.items():
            kind, _, rater = key.partition(":")
            if kind not in ("scatter", "residuals"):
                continue
            gold = data.gold[0]
            pair = data.scaled[[rater, gold]].dropna()
            x, y = pair[rater].to_numpy(), pair[gold].to_numpy()
            labels = {"rater": _label(data, rater), "gold": _label(data, gold)}
            if kind == "scatter":
                out[name] = plots.scatter(x, y, **labels, scale=data.target)
            else:
                out[name] = plots.residuals(x, y, **labels)
        if part.intervals and "coverage" in part.plots:
            out[part.plots["coverage"]] = plots.coverage(
                {row.rater: [(c.level, c.covered) for c in row.coverage] for row in part.intervals}
            )
        for err in part.errors:
            name = part.plots.get(f"mass:{err.rater}")
            if name and err.mass is not None:
                out[name] = plots.mass_histogram(err.mass.bins, err.mass.counts, rater=err.rater)
    return out


def _label(data: DimensionData, column: str) -> str:
    """A column's name, with its own scale when its values were mapped onto another for the figure."""
    m = data.maps.get(column)
    if m is None or m.own is None or not m.mapped or m.identity or data.target is None:
        return column
    return f"{column} ({m.own.low:g}-{m.own.high:g} → {data.target[0]:g}-{data.target[1]:g})"


def write_report(report: Report, datas: list[DimensionData], out: Path, fmt: str) -> list[Path]:
    """Write the report as html (one self-contained file), md (plus PNGs beside it) or json; returns the files.

    Each format lists the figures it wrote: JSON writes none, so its
    ``plots`` are empty; Markdown links exactly the PNG files written beside it.
    """
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}: use html, md or json.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        from workbench.numeric import json_safe

        data = report.model_dump(mode="json")
        for part in data["dimensions"]:
            part["plots"] = {}
        out.write_text(json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        return [out]
    from workbench.analysis import render

    images = make_plots(report, datas)
    if fmt == "html":
        out.write_text(render.render_html(report, images), encoding="utf-8")
        return [out]
    parts = [d.model_copy(update={"plots": {k: v for k, v in d.plots.items() if v in images}}) for d in report.dimensions]
    drawn = report.model_copy(update={"dimensions": parts})
    written = [out]
    out.write_text(render.render_markdown(drawn), encoding="utf-8")
    for name, data in images.items():
        (out.parent / name).write_bytes(data)
        written.append(out.parent / name)
    return written
