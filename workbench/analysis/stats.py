"""Statistics of validation reports: agreement with gold norms, comparisons, human reliability.

Pure numpy/scipy; no database. Every function is NaN-aware: a missing value
(NaN) removes the pair (or rating) it belongs to, as each docstring says, and
nothing here warns or raises on degenerate data (too few pairs, a constant
vector): the statistic is NaN and the result carries a `note` saying why.

Bootstrap resamples. A resample draws n item indices with replacement; row b
of ``bootstrap_indices(n, n_boot, seed)`` is resample b, drawn row by row
from ``np.random.default_rng(seed)``, so results depend on the seed only (not
on chunk sizes). A correlation over a resample depends on the resample only
through how often each item was drawn, its count ``w_j``; the vectorised code
computes it from the count matrix W [n_boot, n] (built in chunks of
resamples), which is exactly the correlation over the rows ``x[idx]``:

- Pearson as weighted sums, all raters at once with one matrix product
  ``W @ [m, x, y, x^2, y^2, xy]`` (m: the rater's presence mask);
- Spearman as the Pearson correlation of average ranks (ties get the mean of
  the ranks they span) recomputed in every resample. With the items sorted
  once by value and tie groups g, the resample gives group g the weight
  ``G_g`` (the sum of its items' counts) and the average rank
  ``C_g - (G_g - 1) / 2`` where ``C_g`` is the cumulative weight through g:
  a cumulative sum along each row, no per-resample sort. Ranks are
  half-integers and exact in float64.

Confidence intervals are percentile intervals of the bootstrap distribution
(Efron & Tibshirani 1993, ch. 13), ``numpy.quantile`` with linear
interpolation; a resample whose correlation is undefined (fewer than 3 pairs
or a constant side) is left out and counted in the note.

References: Steiger (1980), Psychological Bulletin 87, 245-251; Williams
(1959), JRSS B 21, 396-399; Shrout & Fleiss (1979), Psychological Bulletin
86, 420-428; McGraw & Wong (1996), Psychological Methods 1, 30-46;
Krippendorff (2011), "Computing Krippendorff's alpha-reliability";
Spearman (1910) and Brown (1910), British Journal of Psychology 3.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

from workbench.numeric import MIN_PAIRS, json_safe, least_squares, pearson

Method = Literal["spearman", "pearson"]

WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))
MAX_LEFT_OUT = 0.05  # share of resamples with an undefined statistic above which an interval is undefined
CHUNK_BYTES = 16 * 2**20  # bootstrap work arrays [chunk, n] of about this size (100 resamples of 40,000 items)


# --------------------------------------------------------------------------- results


class _Result:
    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (NaN and infinities become None, tuples become lists)."""
        return json_safe(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Agreement(_Result):
    """One rater against gold on the items both rated.

    spearman/pearson: correlations over the n complete pairs, each with a
    percentile bootstrap interval at level `ci` over `n_boot` resamples of
    items; mae = mean|x - y|, rmse = sqrt(mean (x - y)^2), bias = mean(x - y)
    (positive: the rater rates higher than gold), sd_ratio = sd(x) / sd(y)
    (below 1: the rater compresses the scale).
    """

    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    pearson: float
    pearson_ci: tuple[float, float]
    mae: float
    rmse: float
    bias: float
    sd_ratio: float
    n_boot: int
    ci: float
    rater: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CorrelationDifference(_Result):
    """r_a - r_b for one correlation type, with Williams' t, Steiger's z and a paired bootstrap interval."""

    method: Method
    r_a: float
    r_b: float
    r_ab: float
    difference: float
    difference_ci: tuple[float, float]
    williams_t: float
    williams_p: float
    steiger_z: float
    steiger_p: float
    df: int


@dataclass(frozen=True)
class DependentComparison(_Result):
    """Does rater A agree with gold more than rater B, on the same items? See `compare_dependent`."""

    n: int
    names: tuple[str, str]
    spearman: CorrelationDifference
    pearson: CorrelationDifference
    verdict: str
    n_boot: int
    ci: float
    note: str | None = None


@dataclass(frozen=True)
class SplitHalf(_Result):
    """Split-half reliability of item means over random splits of the raters; see `split_half`.

    reliability: mean over splits of the Spearman-Brown corrected 2r / (1 + r),
    with its percentile interval; r_halves: mean uncorrected r; n_items: the
    fewest items usable in a split; coverage: mean share of items usable.
    """

    reliability: float
    reliability_interval: tuple[float, float]
    r_halves: float
    n_items: int
    n_raters: int
    n_splits: int
    coverage: float
    note: str | None = None


@dataclass(frozen=True)
class ICC(_Result):
    """Intraclass correlations (Shrout & Fleiss 1979; McGraw & Wong 1996) on complete items."""

    icc2_1: float
    icc2_k: float
    icc3_1: float
    icc3_k: float
    n_items: int
    n_raters: int
    n_dropped: int
    note: str | None = None


@dataclass(frozen=True)
class Calibration(_Result):
    """The least-squares line gold ~ intercept + slope * rater, fitted on n training pairs."""

    intercept: float
    slope: float
    n: int

    def apply(self, x: ArrayLike) -> np.ndarray:
        """intercept + slope * x (NaN stays NaN)."""
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Band(_Result):
    """Residuals whose covariate lies in [low, high): n, mean residual and mean absolute residual."""

    low: float
    high: float
    n: int
    mean_residual: float
    mae: float


# --------------------------------------------------------------------------- small helpers


def _vector(a: ArrayLike) -> np.ndarray:
    v = np.asarray(a, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {v.shape}")
    return v


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho: Pearson r of average ranks (ties share the mean of their ranks)."""
    return pearson(sps.rankdata(x), sps.rankdata(y))


def _percentile_ci(samples: np.ndarray, ci: float) -> np.ndarray:
    """Percentile interval per column of [n_boot, k] samples, NaN samples left out; [2, k].

    NaN (undefined) where more than MAX_LEFT_OUT of a column's samples are
    NaN: the samples left are then a biased subset (a near-constant rater's
    resamples that happened to draw its odd value), not the distribution.
    """
    lo_q, hi_q = (1 - ci) / 2, (1 + ci) / 2
    out = np.full((2, samples.shape[1]), np.nan)
    for j in range(samples.shape[1]):
        s = samples[:, j]
        s = s[~np.isnan(s)]
        if len(s) and not _too_many_left_out(len(samples) - len(s), len(samples)):
            out[:, j] = np.quantile(s, [lo_q, hi_q])
    return out


def _too_many_left_out(left_out: int, total: int) -> bool:
    return left_out > MAX_LEFT_OUT * total


def _left_out_note(left_out: int, total: int, what: str = "resamples", why: str = "had an undefined correlation") -> str:
    """The note on resamples (or splits) left out; says when there are too many for an interval."""
    if _too_many_left_out(left_out, total):
        return f"{left_out} of {total} {what} {why} (more than {MAX_LEFT_OUT:.0%}): interval undefined"
    return f"{left_out} of {total} {what} {why} and were left out"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# --------------------------------------------------------------------------- bootstrap core


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """The resamples every function here uses: [n_boot, n] item indices drawn with replacement.

    Row b is ``rng.integers(0, n, size=n)``, the b-th draw of
    ``rng = np.random.default_rng(seed)``; `agreement`, `agreement_many` and
    `compare_dependent` use the same rows (over their complete items, in
    input order), so a per-resample loop over this matrix reproduces them.
    """
    return _draw_rows(np.random.default_rng(seed), n, n_boot)


def _draw_rows(rng: np.random.Generator, n: int, rows: int) -> np.ndarray:
    out = np.empty((rows, n), dtype=np.int64)
    for i in range(rows):
        out[i] = rng.integers(0, n, size=n)
    return out


def _index_chunks(n: int, n_boot: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """The rows of ``bootstrap_indices(n, n_boot, seed)``, `chunk` at a time."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        yield _draw_rows(rng, n, min(chunk, n_boot - start))


def _counts(idx: np.ndarray, n: int, dtype: type[np.floating]) -> np.ndarray:
    """How often each item was drawn in each resample: [B, n] counts from [B, n] indices."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(dtype)


def _exact_dtype(n: int) -> type[np.floating]:
    """float32 when counts, their cumulative sums and half-integer ranks (all <= n) are exact in it, else float64."""
    return np.float32 if 2 * n < 2**24 else np.float64


@dataclass(frozen=True)
class _TieGroups:
    """Items sorted by value and cut into tie groups (NaNs sort last, each its own group)."""

    order: np.ndarray  # item indices in ascending order of value
    ends: np.ndarray  # position in `order` of the last item of each group
    group: np.ndarray  # the group of each item, in item order

    @classmethod
    def of(cls, v: np.ndarray) -> _TieGroups:
        order = np.argsort(v, kind="stable")
        s = v[order]
        starts = np.r_[True, s[1:] != s[:-1]]
        ends = np.r_[np.flatnonzero(starts)[1:] - 1, len(v) - 1]
        group = np.empty(len(v), dtype=np.intp)
        group[order] = np.cumsum(starts) - 1
        return cls(order, ends, group)

    def centred_ranks(self, w: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Average rank minus the mean rank (total + 1) / 2, per resample and group; and the group weights.

        w: [B, n] counts (zero for items left out); total: [B, 1] their row
        sums. With C_g the cumulative weight through group g and G_g its
        weight, g spans ranks C_g - G_g + 1 .. C_g: average C_g - (G_g - 1) / 2,
        centred (2 C_g - G_g - total) / 2.
        """
        through = np.cumsum(np.take(w, self.order, axis=1), axis=1)
        if len(self.ends) < w.shape[1]:  # ties
            through = np.take(through, self.ends, axis=1)
        weight = through.copy()
        weight[:, 1:] -= through[:, :-1]
        centred = through * 2
        centred -= weight
        centred -= total
        centred *= 0.5
        return centred, weight


def _sum_of_products(*arrays: np.ndarray) -> np.ndarray:
    """Row sums of the elementwise product, accumulated in float64: [B]."""
    return np.einsum(",".join(["bj"] * len(arrays)) + "->b", *arrays, dtype=np.float64)


def _rank_correlation(w: np.ndarray, total: np.ndarray, x: _TieGroups, y: _TieGroups, y_ranks: np.ndarray | None) -> np.ndarray:
    """Spearman rho per resample from counts w [B, n]: the weighted Pearson r of centred ranks.

    rho = sum_j w_j rx_j ry_j / sqrt(sum_j w_j rx_j^2 sum_j w_j ry_j^2); NaN
    for resamples with under 3 draws or a constant side. y_ranks: y's centred
    ranks at the items, when shared by all raters.
    """
    rx, gx = x.centred_ranks(w, total)
    ry, gy = y.centred_ranks(w, total)
    if y_ranks is None:
        y_ranks = np.take(ry, y.group, axis=1)
    sxx, syy = _sum_of_products(gx, rx, rx), _sum_of_products(gy, ry, ry)
    sxy = _sum_of_products(w, np.take(rx, x.group, axis=1), y_ranks)
    ok = (total[:, 0] >= MIN_PAIRS) & (sxx > 0) & (syy > 0)
    return np.where(ok, sxy / np.sqrt(np.where(ok, sxx * syy, 1.0)), np.nan)


def _pearson_moments(x: np.ndarray, y: np.ndarray, present: np.ndarray) -> np.ndarray:
    """[6R, n]: per rater the mask m and m x, m y, m x^2, m y^2, m x y (x, y centred on their means)."""
    masks = present.astype(np.float64)
    means = np.where(present, x, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    xc = np.where(present, x - means, 0.0)
    yc = (y - y.mean())[:, None] * masks
    return np.ascontiguousarray(np.concatenate([masks, xc, yc, xc * xc, yc * yc, xc * yc], axis=1).T)


def _moment_correlation(s: np.ndarray) -> np.ndarray:
    """Pearson r from weighted sums s [B, 6, R] (n, sx, sy, sxx, syy, sxy): cov / sqrt(var_x var_y)."""
    nb, sx, sy, sxx, syy, sxy = (s[:, i] for i in range(6))
    cov, vx, vy = sxy - sx * sy / nb, sxx - sx * sx / nb, syy - sy * sy / nb
    return np.clip(cov / np.sqrt(vx * vy), -1.0, 1.0)


def _boot_correlations(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spearman and Pearson correlation of each column of x with y in every resample: two [n_boot, R].

    x: [n, R] with NaN where a rater has no value; y: [n] complete. In each
    resample a rater's correlation is over its drawn items that it rated
    (counted with multiplicity); NaN if under 3 such draws or either side
    constant. Resamples are processed `chunk` at a time (default: work arrays
    of about CHUNK_BYTES). Counts and ranks are float32 where that is exact;
    sums of products accumulate in float64. The weighted sums use einsum, not
    a BLAS matmul: multithreaded OpenBLAS stalled on these short-and-wide
    products on a busy 2-core machine (30 s instead of 0.1 s per 1,000 resamples).
    """
    n, n_raters = x.shape
    present = ~np.isnan(x)
    complete = bool(present.all())
    dtype = _exact_dtype(n)
    masks = present.astype(dtype)
    with np.errstate(all="ignore"):  # values near the float limit overflow: their Pearson r is NaN
        moments = _pearson_moments(x, y, present)  # [6R, n]
    x_groups, y_groups = [_TieGroups.of(x[:, k]) for k in range(n_raters)], _TieGroups.of(y)
    chunk = chunk or max(1, CHUNK_BYTES // (np.dtype(dtype).itemsize * max(n, 1)))

    def chunk_correlations(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):  # per thread: numpy's error state is thread-local (overflow: values near the float limit)
            return _chunk(idx)

    def _chunk(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = _counts(idx, n, dtype)
        s = np.einsum("bj,kj->bk", w, moments).reshape(len(w), 6, n_raters)
        totals = s[:, 0].astype(dtype)  # draws of rated items, exact
        y_ranks = None
        if complete:
            ry, _ = y_groups.centred_ranks(w, totals[:, :1])
            y_ranks = np.take(ry, y_groups.group, axis=1)
        rho_c = np.empty((len(idx), n_raters))
        for k in range(n_raters):
            wk = w if complete else w * masks[:, k]
            rho_c[:, k] = _rank_correlation(wk, totals[:, k : k + 1], x_groups[k], y_groups, y_ranks)
        return rho_c, np.where(np.isnan(rho_c), np.nan, _moment_correlation(s))

    # chunks are drawn in order (the resamples do not depend on threads) and computed on
    # WORKERS threads: numpy's take, cumsum and einsum release the GIL on arrays this size
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        pending: list = []
        for idx in _index_chunks(n, n_boot, seed, chunk):  # at most 2 x WORKERS chunks in memory
            pending.append(pool.submit(chunk_correlations, idx))
            if len(pending) >= 2 * WORKERS:
                parts.append(pending.pop(0).result())
        parts += [f.result() for f in pending]
    rho = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, n_raters))
    r = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, n_raters))
    return rho, r


# --------------------------------------------------------------------------- agreement


def errors(x: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """The scale-dependent figures of complete pairs (rater x, gold y on the same scale).

    mae = mean|x - y|, rmse = sqrt(mean (x - y)^2), bias = mean(x - y),
    sd_ratio = sd(x) / sd(y) (any ddof: it cancels); NaN where undefined (no
    pairs, constant gold, or sums that overflow).
    """
    xv, yv = _vector(x), _vector(y)
    n = len(xv)
    with np.errstate(all="ignore"):
        err = xv - yv
        sd_y = float(np.std(yv)) if n else math.nan
        out = {
            "mae": float(np.abs(err).mean()) if n else math.nan,
            "rmse": float(np.sqrt((err * err).mean())) if n else math.nan,
            "bias": float(err.mean()) if n else math.nan,
            "sd_ratio": float(np.std(xv)) / sd_y if n >= 2 and sd_y > 0 else math.nan,
        }
    return {k: v if math.isfinite(v) else math.nan for k, v in out.items()}


def _describe(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """Point statistics of complete pairs and the notes on what is undefined."""
    n = len(x)
    notes = []
    with np.errstate(all="ignore"):
        constant_x, constant_y = bool(np.ptp(x) == 0) if n else True, bool(np.ptp(y) == 0) if n else True
    if n < MIN_PAIRS:
        notes.append(f"{n} complete pair{'s' if n != 1 else ''}: correlations need at least {MIN_PAIRS}")
    elif constant_x or constant_y:
        notes.append(f"{'rater' if constant_x else 'gold'} values are constant: correlations undefined")
    return {"spearman": _spearman(x, y), "pearson": pearson(x, y), **errors(x, y)}, notes


def _agreements(x: np.ndarray, y: np.ndarray, names: Sequence[str | None], n_boot: int, seed: int, ci: float) -> list[Agreement]:
    """The shared body of `agreement` and `agreement_many`: x [n, R] with NaNs, y [n] complete."""
    present = ~np.isnan(x)
    described = [_describe(x[present[:, k], k], y[present[:, k]]) for k in range(x.shape[1])]
    rho = r = np.full((n_boot, x.shape[1]), np.nan)
    if n_boot > 0 and any(not notes for _, notes in described):
        rho, r = _boot_correlations(x, y, n_boot, seed)
    rho_ci, r_ci = _percentile_ci(rho, ci), _percentile_ci(r, ci)
    out = []
    for k, (point, notes) in enumerate(described):
        left_out = int(np.isnan(rho[:, k]).sum())
        if not notes and left_out:
            notes.append(_left_out_note(left_out, n_boot))
        if not notes and math.isnan(point["pearson"]):
            notes.append("Pearson r undefined: the values are too large to compute with")
        out.append(
            Agreement(
                n=int(present[:, k].sum()),
                spearman=point["spearman"],
                spearman_ci=(float(rho_ci[0, k]), float(rho_ci[1, k])),
                pearson=point["pearson"],
                pearson_ci=(float(r_ci[0, k]), float(r_ci[1, k])),
                mae=point["mae"],
                rmse=point["rmse"],
                bias=point["bias"],
                sd_ratio=point["sd_ratio"],
                n_boot=n_boot,
                ci=ci,
                rater=names[k],
                note="; ".join(notes) or None,
            )
        )
    return out


def agreement(x: ArrayLike, y: ArrayLike, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Agreement:
    """How well a rater's values x agree with gold values y on the same items.

    Pairs where either value is missing (NaN) are dropped; the rest, in input
    order, are the n items. Returns n, Spearman rho and Pearson r with
    percentile bootstrap intervals (resamples: rows of
    ``bootstrap_indices(n, n_boot, seed)``), MAE, RMSE, bias = mean(x - y)
    and sd_ratio = sd(x) / sd(y) (any ddof: it cancels). Under 3 pairs or a
    constant side give NaN correlations and intervals and a note.
    """
    xv, yv = _vector(x), _vector(y)
    if len(xv) != len(yv):
        raise ValueError(f"x and y differ in length: {len(xv)} and {len(yv)}")
    keep = ~(np.isnan(xv) | np.isnan(yv))
    return _agreements(xv[keep, None], yv[keep], [None], n_boot, seed, ci)[0]


def agreement_many(
    X: ArrayLike, y: ArrayLike, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95, names: Sequence[str] | None = None
) -> list[Agreement]:
    """`agreement` for every column (rater) of X [n_items, n_raters] against gold y, one per column.

    Items without gold, or without any rater value, are dropped; the others,
    in input order, are resampled once (rows of ``bootstrap_indices``) for all
    raters, so the raters' bootstrap distributions are paired. Within each
    resample a rater's correlations are over the drawn items it rated: pairs
    with a missing rater value are dropped. With a single column, or no
    missing rater values, each result equals `agreement(X[:, k], y)` (to the
    last bit or two of the Pearson interval: sums run in another order). Names
    come from `names`, else from the columns of a DataFrame, else None.
    """
    if names is None and isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
    xm, yv = np.asarray(X, dtype=np.float64), _vector(y)
    if xm.ndim != 2 or xm.shape[0] != len(yv):
        raise ValueError(f"X must be [n_items, n_raters] with n_items = len(y) = {len(yv)}, got shape {xm.shape}")
    if names is not None and len(names) != xm.shape[1]:
        raise ValueError(f"{len(names)} names for {xm.shape[1]} raters")
    keep = ~np.isnan(yv) & ~np.isnan(xm).all(axis=1)
    return _agreements(xm[keep], yv[keep], list(names) if names is not None else [None] * xm.shape[1], n_boot, seed, ci)


# --------------------------------------------------------------------------- dependent correlations


def williams_t(r_ay: float, r_by: float, r_ab: float, n: int) -> tuple[float, float]:
    """Williams' (1959) t for H0: rho_ay = rho_by, two correlations sharing y (Steiger 1980, eq. 7).

    t = (r_ay - r_by) sqrt( (n-1)(1+r_ab) / (2 (n-1)/(n-3) |R| + rbar^2 (1-r_ab)^3) ),
    |R| = 1 - r_ay^2 - r_by^2 - r_ab^2 + 2 r_ay r_by r_ab, rbar = (r_ay + r_by)/2,
    df = n - 3; returns (t, two-sided p). Equal correlations give (0, 1).
    """
    if n < 4 or any(map(math.isnan, (r_ay, r_by, r_ab))):
        return math.nan, math.nan
    if r_ay == r_by:
        return 0.0, 1.0
    det = 1 - r_ay**2 - r_by**2 - r_ab**2 + 2 * r_ay * r_by * r_ab
    rbar = (r_ay + r_by) / 2
    denom = 2 * (n - 1) / (n - 3) * det + rbar**2 * (1 - r_ab) ** 3
    if denom <= 0:
        return math.nan, math.nan
    t = (r_ay - r_by) * math.sqrt((n - 1) * (1 + r_ab) / denom)
    return t, float(2 * sps.t.sf(abs(t), n - 3))


def steiger_z(r_ay: float, r_by: float, r_ab: float, n: int) -> tuple[float, float]:
    """Steiger's (1980, eq. 14-15) z for H0: rho_ay = rho_by, on Fisher's z with the pooled rbar.

    z = (atanh r_ay - atanh r_by) sqrt(n-3) / sqrt(2 - 2 c), with
    c = psi / (1 - rbar^2)^2 and psi = r_ab (1 - 2 rbar^2) - rbar^2 (1 - 2 rbar^2 - r_ab^2) / 2;
    returns (z, two-sided normal p). Equal correlations give (0, 1).
    """
    if n < 4 or any(map(math.isnan, (r_ay, r_by, r_ab))) or max(abs(r_ay), abs(r_by)) >= 1:
        return math.nan, math.nan
    if r_ay == r_by:
        return 0.0, 1.0
    rbar2 = ((r_ay + r_by) / 2) ** 2
    psi = r_ab * (1 - 2 * rbar2) - 0.5 * rbar2 * (1 - 2 * rbar2 - r_ab**2)
    c = psi / (1 - rbar2) ** 2
    if c >= 1:
        return math.nan, math.nan
    z = (math.atanh(r_ay) - math.atanh(r_by)) * math.sqrt(n - 3) / math.sqrt(2 - 2 * c)
    return z, float(2 * sps.norm.sf(abs(z)))


def _difference(method: Method, r_a: float, r_b: float, r_ab: float, n: int, boot: np.ndarray, ci: float) -> CorrelationDifference:
    t, tp = williams_t(r_a, r_b, r_ab, n)
    z, zp = steiger_z(r_a, r_b, r_ab, n)
    lo, hi = _percentile_ci(boot[:, None], ci)[:, 0]
    return CorrelationDifference(method, r_a, r_b, r_ab, r_a - r_b, (float(lo), float(hi)), t, tp, z, zp, max(n - 3, 0))


def _verdict(d: CorrelationDifference, names: tuple[str, str], ci: float, notes: list[str]) -> str:
    """One sentence: who wins, by how much, and whether the interval and the test agree that it is reliable."""
    a, b = names
    lo, hi = d.difference_ci
    if any(map(math.isnan, (d.difference, lo, hi, d.williams_t))):
        why = notes[0] if notes else f"the {d.method} difference, its bootstrap interval or Williams' t is undefined"
        return f"cannot compare {a} and {b}: {why}"
    interval_says, test_says = lo > 0 or hi < 0, d.williams_p < 1 - ci
    reliable = interval_says and test_says
    sign = -1 if reliable and d.difference < 0 else 1  # a winner's lead is reported as positive
    lo, hi = sorted((sign * lo, sign * hi))
    figures = (
        f"{d.method.capitalize()} difference {sign * d.difference:.3f}, {ci * 100:g}% CI {lo:.3f} to {hi:.3f}, "
        f"Williams t = {sign * d.williams_t:.1f}, {_p_text(d.williams_p)}"
    )
    if reliable:
        first, second = (a, b) if sign > 0 else (b, a)
        return f"{first} correlates more strongly with gold than {second} ({figures})"
    if interval_says or test_says:
        return f"no reliable difference between {a} and {b}: the bootstrap interval and Williams' test disagree ({a} - {b}: {figures})"
    return f"no reliable difference between {a} and {b} in their correlation with gold ({a} - {b}: {figures})"


def _comparison_notes(a: np.ndarray, b: np.ndarray, g: np.ndarray, names: tuple[str, str]) -> list[str]:
    if len(g) < 4:
        return [f"{len(g)} complete items: comparing dependent correlations needs at least 4"]
    return [f"{label} values are constant" for label, v in ((names[0], a), (names[1], b), ("gold", g)) if np.ptp(v) == 0]


def compare_dependent(
    x_a: ArrayLike,
    x_b: ArrayLike,
    y: ArrayLike,
    *,
    names: tuple[str, str] = ("A", "B"),
    method: Method = "spearman",
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> DependentComparison:
    """Does rater A correlate more strongly with gold y than rater B, on the same items?

    Items where any of x_a, x_b, y is missing are dropped; the rest, in input
    order, are the n items. For Pearson and for Spearman: r_a = r(x_a, y),
    r_b = r(x_b, y), r_ab = r(x_a, x_b); Williams' t (df = n - 3) and
    Steiger's z for two dependent correlations sharing y, and a percentile
    interval of r_a - r_b over paired bootstrap resamples (the same items
    drawn for both raters; rows of ``bootstrap_indices(n, n_boot, seed)``).
    On ranks (Spearman) the two tests are approximations: they assume
    bivariate normality, which ranks lack. The verdict, on `method`, calls a
    difference reliable when the interval excludes 0 and Williams' p < 1 - ci,
    and says so when the two disagree. Under 4 items or a constant vector
    give NaN statistics, a note and a "cannot compare" verdict.
    """
    a, b, g = _vector(x_a), _vector(x_b), _vector(y)
    if not len(a) == len(b) == len(g):
        raise ValueError(f"x_a, x_b and y differ in length: {len(a)}, {len(b)}, {len(g)}")
    keep = ~(np.isnan(a) | np.isnan(b) | np.isnan(g))
    a, b, g = a[keep], b[keep], g[keep]
    n, names = len(g), (str(names[0]), str(names[1]))
    notes = _comparison_notes(a, b, g, names)
    boot = {"spearman": np.full(n_boot, np.nan), "pearson": np.full(n_boot, np.nan)}
    if not notes and n_boot > 0:
        rho, r = _boot_correlations(np.c_[a, b], g, n_boot, seed)
        boot = {"spearman": rho[:, 0] - rho[:, 1], "pearson": r[:, 0] - r[:, 1]}
        left_out = int(np.isnan(boot["spearman"]).sum())
        if left_out:
            notes.append(_left_out_note(left_out, n_boot))
    correlate = {"spearman": _spearman, "pearson": pearson}
    diffs = {m: _difference(m, f(a, g), f(b, g), f(a, b), n, boot[m], ci) for m, f in correlate.items()}  # type: ignore[arg-type]
    return DependentComparison(
        n=n,
        names=names,
        spearman=diffs["spearman"],
        pearson=diffs["pearson"],
        verdict=_verdict(diffs[method], names, ci, notes),
        n_boot=n_boot,
        ci=ci,
        note="; ".join(notes) or None,
    )


# --------------------------------------------------------------------------- human reliability


def rating_matrix(long: pd.DataFrame, item: str = "item", rater: str = "rater", value: str = "value") -> pd.DataFrame:
    """A long table of individual ratings (item, rater, value) as an items x raters matrix, NaN where missing.

    Raises ValueError if a rater rated an item twice (average such repeats first if that is meant).
    """
    if long.duplicated([item, rater]).any():
        raise ValueError(f"some ({item}, {rater}) pairs occur more than once")
    return long.pivot(index=item, columns=rater, values=value).astype(np.float64)


def _matrix(matrix: ArrayLike) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected an items x raters matrix, got shape {m.shape}")
    return m


def _columnwise_pearson(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pearson r of a[:, s] and b[:, s] over the rows where valid[:, s]; NaN if undefined. [S]."""
    n = valid.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        da = np.where(valid, a - np.where(valid, a, 0).sum(axis=0) / n, 0.0)
        db = np.where(valid, b - np.where(valid, b, 0).sum(axis=0) / n, 0.0)
        saa, sbb = (da * da).sum(axis=0), (db * db).sum(axis=0)
        r = (da * db).sum(axis=0) / np.sqrt(saa * sbb)
    return np.where((n >= MIN_PAIRS) & (saa > 0) & (sbb > 0), np.clip(r, -1, 1), np.nan)


def split_half(matrix: ArrayLike, n_splits: int = 100, seed: int = 0, ci: float = 0.95) -> SplitHalf:
    """Split-half reliability of the item means of an items x raters matrix (NaN: not rated).

    Each split is ``rng.permutation(k)`` of the k raters (rng =
    ``np.random.default_rng(seed)``): the first k // 2 form half A, the rest
    half B. Item means of each half are correlated (Pearson, over the items
    with at least one rating in both halves) and corrected with
    Spearman-Brown, rel = 2 r / (1 + r), the reliability of the mean of all
    raters (for odd k the halves differ by one rater; the factor 2 is kept).
    Returns the mean corrected value over splits, its percentile interval at
    level `ci`, the mean uncorrected r, and coverage: the mean share of items
    usable per split (n_items: the fewest usable items in any split).
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    m = _matrix(matrix)
    n, k = m.shape
    if k < 2 or n < MIN_PAIRS:
        note = f"{k} rater{'s' if k != 1 else ''} and {n} items: split-half needs 2 raters and {MIN_PAIRS} items"
        return SplitHalf(math.nan, (math.nan, math.nan), math.nan, 0, k, n_splits, 0.0, note)
    rng = np.random.default_rng(seed)
    half_a = np.zeros((k, n_splits))
    for s in range(n_splits):
        half_a[rng.permutation(k)[: k // 2], s] = 1.0
    rated = ~np.isnan(m)
    values = np.where(rated, m, 0.0)
    sum_a, count_a = values @ half_a, rated @ half_a
    sum_b, count_b = values.sum(axis=1)[:, None] - sum_a, rated.sum(axis=1)[:, None] - count_a
    valid = (count_a > 0) & (count_b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = _columnwise_pearson(sum_a / count_a, sum_b / count_b, valid)
        rel = 2 * r / (1 + r)
    defined = ~np.isnan(rel)
    note = None if defined.all() else _left_out_note(int((~defined).sum()), n_splits, "splits", "gave no correlation")
    lo, hi = _percentile_ci(rel[:, None], ci)[:, 0]
    return SplitHalf(
        reliability=float(rel[defined].mean()) if defined.any() else math.nan,
        reliability_interval=(float(lo), float(hi)),
        r_halves=float(r[defined].mean()) if defined.any() else math.nan,
        n_items=int(valid.sum(axis=0).min()),
        n_raters=k,
        n_splits=n_splits,
        coverage=float(valid.mean()),
        note=note,
    )


def icc(matrix: ArrayLike) -> ICC:
    """Intraclass correlations of an items x raters matrix; items with any missing rating are dropped.

    Two-way ANOVA on the complete items (n items, k raters): MSR (items),
    MSC (raters), MSE (residual). Two-way random, absolute agreement:
    ICC(2,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n) and
    ICC(2,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n); two-way, consistency:
    ICC(3,1) = (MSR - MSE) / (MSR + (k-1) MSE) and ICC(3,k) = (MSR - MSE) / MSR
    (Shrout & Fleiss 1979; McGraw & Wong 1996 call them ICC(A,1), ICC(A,k),
    ICC(C,1), ICC(C,k), as pingouin does). The k forms are the reliability of
    the mean of the k raters.
    """
    m = _matrix(matrix)
    complete = ~np.isnan(m).any(axis=1)
    data = m[complete]
    n, k = data.shape
    dropped = int((~complete).sum())
    notes = [f"dropped {dropped} item{'s' if dropped != 1 else ''} with missing ratings (ICC needs complete data)"] if dropped else []
    if n < 2 or k < 2:
        notes.append(f"{n} complete items and {k} raters: ICC needs at least 2 of each")
        return ICC(math.nan, math.nan, math.nan, math.nan, n, k, dropped, "; ".join(notes))
    d = data - data.mean()
    row, col = d.mean(axis=1), d.mean(axis=0)
    ss_rows, ss_cols = k * float(row @ row), n * float(col @ col)
    ss_err = float((d * d).sum()) - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    if msr == 0:
        notes.append("items do not differ: ICC undefined")
        return ICC(math.nan, math.nan, math.nan, math.nan, n, k, dropped, "; ".join(notes))
    return ICC(
        icc2_1=(msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
        icc2_k=(msr - mse) / (msr + (msc - mse) / n),
        icc3_1=(msr - mse) / (msr + (k - 1) * mse),
        icc3_k=(msr - mse) / msr,
        n_items=n,
        n_raters=k,
        n_dropped=dropped,
        note="; ".join(notes) or None,
    )


def krippendorff_alpha_interval(matrix: ArrayLike) -> float:
    """Krippendorff's alpha, interval metric, of an items x raters matrix with NaN for missing ratings.

    alpha = 1 - D_o / D_e over the pairable values (items with at least 2
    ratings; N of them in all): with m_u ratings of item u,
    D_o = (1/N) sum_u sum_{i != j in u} (v_i - v_j)^2 / (m_u - 1) and
    D_e = sum_{i != j, all pairable} (v_i - v_j)^2 / (N (N - 1)), using
    sum_{i != j} (v_i - v_j)^2 = 2 (m sum v^2 - (sum v)^2) (Krippendorff 2011).
    NaN when no item is pairable or all pairable values are equal (where the
    `krippendorff` package raises). Note: that package takes the transpose
    (raters x items).
    """
    m = _matrix(matrix)
    rated = ~np.isnan(m)
    pairable = rated.sum(axis=1) >= 2
    if not pairable.any():
        return math.nan
    v = np.where(rated, m, 0.0)[pairable]
    counts = rated[pairable].sum(axis=1)
    v = np.where(rated[pairable], v - v.sum() / counts.sum(), 0.0)
    s1, s2 = v.sum(axis=1), (v * v).sum(axis=1)
    total = counts.sum()
    observed = (2 * (counts * s2 - s1 * s1) / (counts - 1)).sum() / total
    expected = 2 * (total * s2.sum() - s1.sum() ** 2) / (total * (total - 1))
    return float(1 - observed / expected) if expected > 0 else math.nan


# --------------------------------------------------------------------------- calibration and residuals


def calibrate(train_x: ArrayLike, train_y: ArrayLike) -> Calibration:
    """Least-squares line from rater values to gold: slope = cov(x, y) / var(x), intercept = mean(y) - slope mean(x).

    Pairs with a missing value are dropped. Raises ValueError with under 2
    pairs or constant x (no line is defined).
    """
    x, y = _vector(train_x), _vector(train_y)
    if len(x) != len(y):
        raise ValueError(f"train_x and train_y differ in length: {len(x)} and {len(y)}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    line = least_squares(x, y)
    if line is None:
        raise ValueError("cannot calibrate: need at least 2 complete pairs and rater values that vary")
    return Calibration(intercept=line[0], slope=line[1], n=len(x))


def residual_bands(residuals: ArrayLike, covariate: ArrayLike, bands: Sequence[float]) -> list[Band]:
    """Residuals grouped by bands of a covariate (e.g. word frequency, word length).

    `bands` are increasing edges e_0 < e_1 < ... < e_m: band i holds the
    covariate values in [e_i, e_{i+1}), the last band also e_m (as
    numpy.histogram); use +-inf for open ends. Pairs with a missing value and
    covariates outside [e_0, e_m] are left out. Per band: n, mean residual and
    MAE = mean |residual| (NaN for an empty band).
    """
    res, cov = _vector(residuals), _vector(covariate)
    if len(res) != len(cov):
        raise ValueError(f"residuals and covariate differ in length: {len(res)} and {len(cov)}")
    edges = np.asarray(bands, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bands must be at least 2 strictly increasing edges")
    keep = ~(np.isnan(res) | np.isnan(cov)) & (cov >= edges[0]) & (cov <= edges[-1])
    res, cov = res[keep], cov[keep]
    which = np.minimum(np.searchsorted(edges, cov, side="right") - 1, len(edges) - 2)
    nb = len(edges) - 1
    n = np.bincount(which, minlength=nb)
    total = np.bincount(which, weights=res, minlength=nb)
    absolute = np.bincount(which, weights=np.abs(res), minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean, mae = total / n, absolute / n
    return [Band(float(edges[i]), float(edges[i + 1]), int(n[i]), float(mean[i]), float(mae[i])) for i in range(nb)]
