"""Each dataset's and rater's own scale, and the linear map that puts its values on the dimension's scale.

A dimension can hold datasets on different scales: Brysbaert's concreteness
is 1-5 and Glasgow's 1-7; Kuperman's age of acquisition is in years, Glasgow's
on 1-7. Correlations do not care, but MAE, RMSE, bias, the SD ratio, the
residuals and the plots compare values, so the report first puts every
column on the dimension's scale ``[a, b]`` with the linear map from its own
scale ``[lo, hi]``: ``v' = a + (v - lo) (b - a) / (hi - lo)``.

No linear map is meaningful, and a column gets correlations only, when its
scale is not known (nothing recorded at import), is open (years: the bounds
only bound the values), or its values lie far outside it (more than the
scale's width beyond either end: not ratings on that scale). Values a little
outside the scale (a regression baseline overshooting) are mapped and noted.

numpy only; no database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Bounds = tuple[float, float]
TOLERANCE = 1e-9  # relative to the scale's width: values this close to an end are on the scale


@dataclass(frozen=True)
class OwnScale:
    """A column's scale as recorded where it came from (an import's details, a rater's configuration)."""

    low: float | None
    high: float | None
    open: bool = False  # a measure (years) that the bounds only limit, not a rating scale
    source: str = ""  # where it was recorded, for the report

    @property
    def bounded(self) -> bool:
        lo, hi = self.low, self.high
        return lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and lo < hi and not self.open


@dataclass(frozen=True)
class ScaleMap:
    """How one column enters the scale-dependent figures: ``offset + factor * value``, or not at all (factor None)."""

    column: str
    own: OwnScale | None
    factor: float | None
    offset: float | None
    reason: str | None = None  # why there is no map (correlations only)
    outside: int = 0  # values outside the own scale (mapped anyway when near it)
    note: str | None = None  # said on every row of this column

    @property
    def mapped(self) -> bool:
        return self.factor is not None

    @property
    def identity(self) -> bool:
        return self.factor == 1.0 and self.offset == 0.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The values on the dimension's scale (as they are when the map is the identity or there is none)."""
        if self.factor is None or self.offset is None or self.identity:
            return values
        return self.offset + self.factor * values


def text(bounds: Sequence[float | None] | None) -> str:
    """A scale as "1-7" (or "unknown")."""
    if bounds is None or any(b is None for b in bounds):
        return "unknown"
    lo, hi = bounds
    return f"{lo:g}-{hi:g}"


def target_scale(dimension: Sequence[float | None], gold: Sequence[OwnScale | None]) -> Bounds | None:
    """The scale every column is put on: the dimension's, else the first gold dataset's bounded scale."""
    lo, hi = dimension
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and lo < hi:
        return float(lo), float(hi)
    for own in gold:
        if own is not None and own.bounded:
            return float(own.low), float(own.high)  # type: ignore[arg-type]
    return None


def plan(column: str, own: OwnScale | None, values: np.ndarray, target: Bounds | None) -> ScaleMap:
    """The map of one column onto `target`, from its own scale and a look at its values (NaN: missing)."""
    if own is None or own.low is None or own.high is None:
        return ScaleMap(column, own, None, None, f"{column}: scale not recorded (import it with --scale DIM=MIN:MAX)")
    if own.open:
        why = f"{column}: an open scale (a measure such as years, {text((own.low, own.high))} only bounds it)"
        return ScaleMap(column, own, None, None, why)
    if not own.bounded:
        return ScaleMap(column, own, None, None, f"{column}: scale {text((own.low, own.high))} is not a usable range")
    if target is None:
        return ScaleMap(column, own, None, None, "the dimension has no scale")
    lo, hi = float(own.low), float(own.high)  # type: ignore[arg-type]
    width = hi - lo
    v = values[~np.isnan(values)]
    tol = TOLERANCE * width
    outside = (v < lo - tol) | (v > hi + tol)
    n_out = int(outside.sum())
    if n_out and (np.any(v < lo - width) or np.any(v > hi + width) or not np.all(np.isfinite(v))):
        far = v[outside]
        return ScaleMap(
            column, own, None, None,
            f"{column}: {n_out} value{'s' if n_out != 1 else ''} far outside its scale {text((lo, hi))} "
            f"(from {far.min():.4g} to {far.max():.4g})", outside=n_out,
        )  # fmt: skip
    a, b = target
    factor = (b - a) / width
    offset = a - lo * factor
    if lo == a and hi == b:
        factor, offset = 1.0, 0.0
    note = None
    if n_out:
        far = v[outside]
        note = (
            f"{column}: {n_out} value{'s' if n_out != 1 else ''} outside its scale {text((lo, hi))} "
            f"(from {far.min():.4g} to {far.max():.4g})"
        )
    return ScaleMap(column, own, factor, offset, None, n_out, note)


def summary(maps: Mapping[str, ScaleMap], target: Bounds | None) -> str | None:
    """The sentence above the table: which columns were mapped onto which scale, which get correlations only."""
    parts = []
    moved = [m for m in maps.values() if m.mapped and not m.identity]
    if moved and target is not None:
        listed = ", ".join(f"{m.column} ({text((m.own.low, m.own.high))})" for m in moved if m.own is not None)
        parts.append(
            f"MAE, RMSE, bias, SD ratio, residuals and plots put every value on the scale {text(target)}: {listed} mapped linearly."
        )
    alone = [m for m in maps.values() if not m.mapped]
    if alone:
        parts.append(
            "Correlations only (no linear map onto the scale is meaningful) for " + "; ".join(m.reason or m.column for m in alone) + "."
        )
    return " ".join(parts) or None
