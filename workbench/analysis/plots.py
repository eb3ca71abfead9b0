"""Figures of validation reports, as PNG bytes.

Every function draws on its own ``matplotlib.figure.Figure`` with the Agg
canvas: pyplot is never imported, no backend is switched and no figure is
registered anywhere, so importing or calling this module leaves a caller's
matplotlib state (an interactive backend, open figures, rcParams) as it was.
The style is matplotlib's defaults plus `_STYLE`, applied in a
``style.context`` that restores rcParams afterwards, so a caller's style
sheet does not leak into report figures either.

Output is deterministic: fixed size and dpi, no timestamps or software tag in
the PNG metadata, so the same data give the same bytes (with the same
matplotlib and FreeType).

Conventions (as `workbench.analysis.stats.agreement`): ``x`` are the rater's
values, ``y`` the gold values on the same items; residual = x - y, positive
when the rater rates higher than gold. Pairs with a missing value (NaN or
None) are dropped. Gold is on the horizontal axis throughout.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import stats as sps

from workbench.numeric import least_squares

__all__ = ["DPI", "HEXBIN_ABOVE", "heatmap", "mass_histogram", "residuals", "scatter"]

DPI = 110
HEXBIN_ABOVE = 2000  # more pairs than this: hexbin density instead of points
_METADATA = {"Software": None}  # Agg writes no date; drop the version tag too

_INK = "#222222"
_MUTED = "#666666"
_POINTS = "#2b6cb0"
_FIT = "#c05621"
_IDENTITY = "#555555"
_NAN_CELL = "#c8c8c8"

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.edgecolor": "#888888",
    "axes.labelcolor": _INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "svg.hashsalt": "workbench",
    "path.simplify": True,
}


# --------------------------------------------------------------------------- helpers


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=_METADATA, facecolor="white")
    return buf.getvalue()


def _pairs(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Complete (x, y) pairs as float arrays; None counts as missing."""
    xv = np.asarray(x, dtype=np.float64).ravel()  # numpy reads None as NaN
    yv = np.asarray(y, dtype=np.float64).ravel()
    if len(xv) != len(yv):
        raise ValueError(f"x and y differ in length: {len(xv)} and {len(yv)}")
    keep = np.isfinite(xv) & np.isfinite(yv)
    return xv[keep], yv[keep]


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(sps.spearmanr(x, y).statistic)


def _short(label: str, limit: int = 32) -> str:
    label = " ".join(str(label).split())
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _limits(values: Sequence[np.ndarray], scale: Sequence[float | None] | None) -> tuple[float, float] | None:
    """Axis limits: the scale where given (each end on its own), else the data range; 4% padding."""
    data = np.concatenate([v for v in values if len(v)]) if any(len(v) for v in values) else np.array([])
    lo = hi = None
    if scale is not None:
        lo, hi = (None if s is None or not math.isfinite(s) else float(s) for s in scale)
    if lo is None:
        lo = float(data.min()) if len(data) else None
    if hi is None:
        hi = float(data.max()) if len(data) else None
    if lo is None or hi is None:
        return None
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def _point_alpha(n: int) -> float:
    return float(min(0.8, max(0.15, 150.0 / max(n, 1))))


def _draw_cloud(ax, gx: np.ndarray, vy: np.ndarray, fig: Figure, extent: tuple[float, float, float, float] | None) -> None:
    """Points (with alpha) or, above HEXBIN_ABOVE pairs, a hexbin density with a colour bar."""
    if len(gx) > HEXBIN_ABOVE:
        hb = ax.hexbin(gx, vy, gridsize=45, cmap="Blues", mincnt=1, bins="log", linewidths=0.2, extent=extent)
        cb = fig.colorbar(hb, ax=ax, shrink=0.85, pad=0.01)
        cb.set_label("items per hexagon (log scale)", fontsize=8)
        cb.ax.tick_params(labelsize=8)
    elif len(gx):
        ax.scatter(gx, vy, s=12, color=_POINTS, alpha=_point_alpha(len(gx)), linewidths=0, rasterized=False)


def _title(ax, rater: str, gold: str, n: int, rho: float) -> None:
    rho_text = "n/a" if math.isnan(rho) else f"{rho:.3f}"
    ax.set_title(f"{_short(rater)} vs {_short(gold)}\nn = {n:,}, Spearman ρ = {rho_text}", color=_INK)


# --------------------------------------------------------------------------- figures


def scatter(x: ArrayLike, y: ArrayLike, *, rater: str, gold: str, scale: Sequence[float | None] | None = None) -> bytes:
    """The rater's values (vertical) against gold (horizontal) on the items both rated.

    Points with alpha, or a hexbin density above `HEXBIN_ABOVE` pairs; the
    identity line y = x (dashed) and the least-squares line rater ~ gold.
    `scale` (low, high), either end may be None, fixes both axes to the
    rating scale; without it the axes span the data. Title: n and Spearman rho.
    """
    xv, yv = _pairs(x, y)
    n = len(xv)
    rho = _spearman(xv, yv)
    with mpl.style.context(["default", _STYLE]):
        fig = _figure(5.6, 4.9)
        ax = fig.add_subplot()
        lim = _limits([xv, yv], scale)
        extent = (lim[0], lim[1], lim[0], lim[1]) if lim else None
        _draw_cloud(ax, yv, xv, fig, extent)
        if lim:
            ax.plot(lim, lim, ls="--", lw=1, color=_IDENTITY, label="identity (rater = gold)", zorder=3)
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal", adjustable="box")
        line = least_squares(yv, xv)
        if line is not None:
            intercept, slope = line
            gx = np.array(lim if lim else (yv.min(), yv.max()))
            ax.plot(
                gx,
                intercept + slope * gx,
                lw=1.8,
                color=_FIT,
                zorder=4,
                label=f"least squares: rater = {intercept:.2f} + {slope:.2f} × gold",
            )
        if n == 0:
            ax.text(0.5, 0.5, "no items rated by both", transform=ax.transAxes, ha="center", va="center", color=_MUTED)
        ax.set_xlabel(f"gold: {_short(gold, 48)}")
        ax.set_ylabel(f"rater: {_short(rater, 48)}")
        ax.grid(True, color="#e6e6e6", lw=0.6, zorder=0)
        ax.set_axisbelow(True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", frameon=True, framealpha=0.85, edgecolor="none", facecolor="white")
        _title(ax, rater, gold, n, rho)
        return _png(fig)


def _binned_means(g: np.ndarray, r: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean residual per quantile bin of gold (equal counts), at the bin's mean gold value."""
    if len(g) < 2:
        return np.array([]), np.array([])
    edges = np.unique(np.quantile(g, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return np.array([g.mean()]), np.array([r.mean()])
    which = np.clip(np.searchsorted(edges, g, side="right") - 1, 0, len(edges) - 2)
    count = np.bincount(which, minlength=len(edges) - 1)
    ok = count > 0
    centre = np.bincount(which, weights=g, minlength=len(edges) - 1)[ok] / count[ok]
    mean = np.bincount(which, weights=r, minlength=len(edges) - 1)[ok] / count[ok]
    return centre, mean


def residuals(x: ArrayLike, y: ArrayLike, *, rater: str, gold: str) -> bytes:
    """Residuals x - y (vertical) against gold (horizontal), a zero line and binned means.

    The running mean is the mean residual in quantile bins of gold (equal
    item counts; about 30 items a bin, 4 to 20 bins), drawn at each bin's
    mean gold value: a slope means the rater compresses or stretches the
    scale, an offset means bias.
    """
    xv, yv = _pairs(x, y)
    res = xv - yv
    n = len(res)
    with mpl.style.context(["default", _STYLE]):
        fig = _figure(5.6, 4.2)
        ax = fig.add_subplot()
        _draw_cloud(ax, yv, res, fig, None)
        ax.axhline(0, color=_IDENTITY, lw=1, ls="--", label="no error", zorder=3)
        centre, mean = _binned_means(yv, res, int(min(20, max(4, n // 30))))
        if len(centre):
            ax.plot(centre, mean, "-o", color=_FIT, lw=1.8, ms=3.5, zorder=4, label="mean residual (binned by gold)")
        if n == 0:
            ax.text(0.5, 0.5, "no items rated by both", transform=ax.transAxes, ha="center", va="center", color=_MUTED)
        ax.set_xlabel(f"gold: {_short(gold, 48)}")
        ax.set_ylabel("residual: rater − gold")
        ax.grid(True, color="#e6e6e6", lw=0.6, zorder=0)
        ax.set_axisbelow(True)
        ax.legend(loc="best", frameon=True, framealpha=0.85, edgecolor="none", facecolor="white")
        bias = f", bias = {res.mean():+.3f}" if n else ""
        ax.set_title(f"Residuals: {_short(rater)} vs {_short(gold)}\nn = {n:,}{bias}", color=_INK)
        return _png(fig)


def _cell_text(v: float) -> str:
    """A correlation in two decimals without the leading zero (APA style): .83, -.12, 1.00."""
    text = f"{v:.2f}"
    if text in ("-0.00", "0.00"):
        return ".00"
    return text.replace("0.", ".", 1) if abs(v) < 1 else text


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "white" if luminance < 0.5 else _INK


def heatmap(labels: Sequence[str], rho: Sequence[Sequence[float | None]], *, gold: Sequence[str] = (), title: str | None = None) -> bytes:
    """Spearman rho between every two raters and gold sets, one annotated cell each.

        Diverging colour map RdBu_r fixed to [-1, 1] (a reversed scale shows up
        red-blue at once); missing cells (None/NaN: too few shared items) are
        grey with "n/a". Cells carry rho to two decimals without the leading
        zero. Labels named in `gold` are bold and marked "(gold)", with a dark
    rule between gold and rater blocks. Figure and
        fonts scale with the number of labels; readable up to about 20; labels
        longer than 28 characters are cut with an ellipsis.
    """
    k = len(labels)
    m = np.array([[math.nan if v is None else float(v) for v in row] for row in rho], dtype=np.float64).reshape(k, k)
    gold_set = set(gold)
    names = [_short(lab, 28) + (" (gold)" if lab in gold_set else "") for lab in labels]
    cell = 0.62 if k <= 8 else 0.5 if k <= 14 else 0.44
    longest = max((len(s) for s in names), default=4)
    margin = min(3.2, 0.5 + 0.065 * longest)
    side = max(2.0, cell * k)
    annot = 10 if k <= 8 else 8.5 if k <= 14 else 7
    tick = 10 if k <= 10 else 8.5 if k <= 16 else 7.5
    with mpl.style.context(["default", _STYLE]):
        fig = _figure(side + margin + 1.3, side + margin + 0.7)
        ax = fig.add_subplot()
        cmap = mpl.colormaps["RdBu_r"].with_extremes(bad=_NAN_CELL)
        if k == 0:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no raters", transform=ax.transAxes, ha="center", va="center", color=_MUTED)
            return _png(fig)
        img = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest", aspect="equal")
        for i in range(k):
            for j in range(k):
                v = m[i, j]
                if math.isnan(v):
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=annot - 1, color=_MUTED)
                else:
                    ax.text(j, i, _cell_text(v), ha="center", va="center", fontsize=annot, color=_text_colour(cmap((v + 1) / 2)))
        ax.set_xticks(range(k), names, rotation=45, ha="right", rotation_mode="anchor", fontsize=tick)
        ax.set_yticks(range(k), names, fontsize=tick)
        for ticklabels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for lab, raw in zip(ticklabels, labels, strict=True):
                if raw in gold_set:
                    lab.set_fontweight("bold")
        ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        for b in range(1, k):  # a dark rule where the gold block ends or starts
            if (labels[b - 1] in gold_set) != (labels[b] in gold_set):
                ax.axhline(b - 0.5, color=_INK, lw=1.6)
                ax.axvline(b - 0.5, color=_INK, lw=1.6)
        ax.tick_params(which="minor", length=0)
        ax.tick_params(which="major", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        cb = fig.colorbar(img, ax=ax, shrink=min(0.9, 0.4 + 0.05 * k), pad=0.02, ticks=[-1, -0.5, 0, 0.5, 1])
        cb.set_label("Spearman ρ", fontsize=9)
        cb.ax.tick_params(labelsize=8)
        cb.outline.set_visible(False)
        ax.set_title(title or "Spearman ρ on the items both rated", color=_INK)
        return _png(fig)


def mass_histogram(bins: Sequence[float], counts: Sequence[int], *, rater: str, threshold: float | None = None) -> bytes:
    """Items by the probability an LLM rater put on the scale's tokens (histogram from edges and counts).

    `bins` are the len(counts) + 1 edges; `threshold`, if given, is drawn as
    the rater's min_mass cut-off.
    """
    edges = np.asarray(bins, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if len(edges) != len(c) + 1:
        raise ValueError(f"{len(edges)} bin edges for {len(c)} counts: need one more edge than counts")
    with mpl.style.context(["default", _STYLE]):
        fig = _figure(5.6, 3.4)
        ax = fig.add_subplot()
        if len(c):
            ax.stairs(c, edges, fill=True, color=to_rgb(_POINTS) + (0.75,), edgecolor=_POINTS)
            ax.set_xlim(edges[0], edges[-1])
        if threshold is not None:
            ax.axvline(threshold, color=_FIT, lw=1.5, ls="--", label=f"min_mass = {threshold:g}")
            ax.legend(loc="upper left")
        ax.set_xlabel("probability mass on scale tokens")
        ax.set_ylabel("items")
        ax.grid(True, axis="y", color="#e6e6e6", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_title(f"Scale-token mass: {_short(rater)}\nn = {int(c.sum()):,}", color=_INK)
        return _png(fig)


def coverage(rows: dict[str, list[tuple[float, float | None]]]) -> bytes:
    """Achieved against nominal coverage of each rater's calibrated intervals; the diagonal is exact coverage."""
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot()
    levels = sorted({lv for pts in rows.values() for lv, _ in pts})
    lo = min(levels + [c for pts in rows.values() for _, c in pts if c is not None]) - 0.05
    ax.plot([lo, 1], [lo, 1], color="#999999", lw=1, ls="--", label="nominal")
    for rater, pts in rows.items():
        xs = [lv for lv, c in pts if c is not None]
        ys = [c for _, c in pts if c is not None]
        ax.plot(xs, ys, marker="o", lw=1.5, label=_short(rater))
    ax.set_xlim(lo, 1)
    ax.set_ylim(lo, 1)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("achieved coverage (reported items)")
    ax.set_title("Calibrated intervals", loc="left")
    ax.legend(loc="lower right")
    png = _png(fig)
    return png


def planner(
    rows: list[tuple[str, int, float, float, float]], *, real_norm: float | None = None, machine: float | None = None,
    norm_ratings: int | None = None, title: str = "Validity against ratings spent",
) -> bytes:  # fmt: skip
    """The planner's validity (Spearman with its interval) against human ratings spent, one line per strategy, with the
    real norm's and the machine prior's own validity as horizontal lines. rows: (strategy, ratings, rho, low, high)."""
    fig = _figure(5.6, 4.0)
    ax = fig.add_subplot()
    for strategy in dict.fromkeys(r[0] for r in rows):
        pts = sorted((r[1], r[2], r[3], r[4]) for r in rows if r[0] == strategy)
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], marker="o", lw=1.5, label=strategy)
        ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15)
    if real_norm is not None:
        ax.axhline(real_norm, color=_IDENTITY, lw=1, ls="--", label=f"real norm {real_norm:.3f}")
    if machine is not None:
        ax.axhline(machine, color=_FIT, lw=1, ls=":", label=f"machine prior alone {machine:.3f}")
    if norm_ratings:
        ax.axvline(norm_ratings, color="#999999", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    spent = sorted({r[1] for r in rows if r[1] > 0})
    ax.set_xticks(spent, [f"{x:,}" for x in spent], fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("human ratings spent")
    ax.set_ylabel("Spearman against the gold")
    ax.set_title(title, loc="left")
    ax.grid(True, color="#e6e6e6", lw=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)
