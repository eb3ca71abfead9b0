"""Small numeric helpers every layer shares: JSON-safe floats, Pearson's r, the least-squares line.

numpy only (no scipy, pandas or matplotlib), so any module may import this
one without slowing the CLI's start. None of them warns on degenerate input:
what cannot be computed is NaN (or None), as each docstring says.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

MIN_PAIRS = 3  # correlations over fewer pairs are reported as NaN


def json_safe(value: Any) -> Any:
    """`value` with NaN and +-infinity as None, tuples as lists and numpy scalars as Python numbers, recursively.

    What comes out is what ``json.dumps(..., allow_nan=False)`` writes (JSON
    has no NaN or Infinity).
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def pearson(x: ArrayLike, y: ArrayLike, *, min_pairs: int = MIN_PAIRS) -> float:
    """Pearson r = sum(dx dy) / sqrt(sum dx^2 sum dy^2), d the deviation from the mean, clipped to [-1, 1].

    x and y are complete pairs (no NaN). NaN when there are fewer than
    `min_pairs` pairs, a side is constant, or the sums overflow (values near
    the float limit).
    """
    xv, yv = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xv) < min_pairs or len(xv) != len(yv):
        return math.nan
    with np.errstate(all="ignore"):
        dx, dy = xv - xv.mean(), yv - yv.mean()
        sxy, sxx, syy = float(dx @ dy), float(dx @ dx), float(dy @ dy)
    if not (math.isfinite(sxy) and math.isfinite(sxx) and math.isfinite(syy)) or sxx == 0 or syy == 0:
        return math.nan
    denominator = math.sqrt(sxx * syy)
    if not math.isfinite(denominator) or denominator == 0:
        return math.nan
    return float(np.clip(sxy / denominator, -1.0, 1.0))


def least_squares(x: ArrayLike, y: ArrayLike) -> tuple[float, float] | None:
    """The least-squares line y = intercept + slope * x over complete pairs, as (intercept, slope).

    slope = sum(dx dy) / sum(dx^2), intercept = mean(y) - slope * mean(x).
    None when no line is defined: under 2 pairs, constant x, or sums that
    overflow (values near the float limit), so callers never meet numpy's
    "SVD did not converge".
    """
    xv, yv = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xv) < 2 or len(xv) != len(yv):
        return None
    with np.errstate(all="ignore"):
        mx, my = float(xv.mean()), float(yv.mean())
        dx = xv - mx
        sxx = float(dx @ dx)
        if not math.isfinite(sxx) or sxx == 0:
            return None
        slope = float(dx @ (yv - my)) / sxx
        intercept = my - slope * mx
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        return None
    return intercept, slope
