"""Calibrated intervals for a machine rater: split-conformal prediction, normalised by the rater's own uncertainty.

A rater's value for a word is mapped onto the gold scale and given a
predictive interval that covers the gold value with the asked probability,
whatever the rater is. The method (normalised split-conformal regression,
Papadopoulos et al. 2008; the quantile step is crepes' ``ConformalRegressor``):

1. On calibration items (with gold values, never the items reported):
   a least-squares line from the rater's value onto gold, and a difficulty
   model sigma(signals) = a + b . signals (floored at a fifth of the mean
   |residual|), fitted to |residual| by least squares.
   The signals are the rater's uncertainty: the spread (sd) of its
   distribution over the scale points, 1 - its probability mass on scale
   tokens, and the sd of several raters' values (disagreement); signals a
   rater does not have are left out, and with none sigma is 1 (plain
   split-conformal).
2. Both are cross-fitted (5 folds): the score |gold - line| / sigma of a
   calibration item comes from a line and a sigma fitted without it.
3. For a level c, the interval of a new word is line +/- q_c * sigma, where
   q_c is the conformal quantile of the calibration scores: the
   ceil((n + 1) c)-th smallest. It needs at least ``min_calibration(c)``
   calibration items (19 for 95%); fewer is an error naming the minimum.

Intervals are clipped to the dimension's scale. Coverage holds for words
exchangeable with the calibration words: a calibration set drawn from the
same population as the reported words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

SIGNALS = ("spread", "unsure_mass", "disagreement")
DEFAULT_LEVELS = (0.8, 0.9, 0.95)
FOLDS = 5


def _crepes():
    try:
        from crepes import ConformalRegressor
    except ImportError:
        raise WorkbenchError("calibrated intervals need crepes: run `pip install workbench[hybrid]`.") from None
    return ConformalRegressor


def min_calibration(level: float) -> int:
    """The fewest calibration items split-conformal needs for an interval at this level (19 for 0.95)."""
    if not 0 < level < 1:
        raise WorkbenchError(f"coverage level {level}: give a probability between 0 and 1, such as 0.9.")
    n = 1
    while int((1 - _nudged(level)) * (n + 1)) - 1 < 0:  # crepes' own rule, so the check and the quantile agree
        n += 1
    return n


def _nudged(level: float) -> float:
    """The level crepes is given: a hair lower, so 1 - 0.8 = 0.19999999999999996 does not cost an item."""
    return level - 1e-12


def check_calibration(n: int, levels: Sequence[float], what: str = "the calibration set") -> None:
    """Too few calibration items for a level is an error naming the minimum."""
    for level in sorted(levels, reverse=True):
        need = min_calibration(level)
        if n < need:
            raise WorkbenchError(
                f"{what} has {n} items with gold values; an interval at {level:.0%} coverage needs at least {need}: "
                "add calibration items or ask for a lower coverage."
            )


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 2 or float(np.var(x)) == 0.0:
        return float(np.mean(y) - np.mean(x)) if len(x) else 0.0, 1.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


@dataclass
class Difficulty:
    """sigma(signals) = max(a + b . standardised signals, floor); signals missing for a word count as their mean."""

    names: list[str]
    means: list[float]
    sds: list[float]
    coef: list[float]  # intercept first
    floor: float = 1e-6

    def __call__(self, signals: np.ndarray) -> np.ndarray:
        if not self.names:
            return np.full(len(signals), max(self.coef[0], self.floor))
        X = np.asarray(signals, dtype=float)
        X = np.where(np.isfinite(X), X, np.asarray(self.means))
        Z = (X - np.asarray(self.means)) / np.asarray(self.sds)
        return np.maximum(self.coef[0] + Z @ np.asarray(self.coef[1:]), self.floor)


def _fit_difficulty(names: list[str], signals: np.ndarray, residuals: np.ndarray) -> Difficulty:
    target = np.abs(residuals)
    floor = max(float(np.mean(target)) * 0.2, 1e-6)
    keep, means, sds = [], [], []
    for j, name in enumerate(names):
        col = signals[:, j]
        ok = np.isfinite(col)
        if ok.sum() >= 3 and float(np.std(col[ok])) > 0:
            keep.append(j)
            means.append(float(np.mean(col[ok])))
            sds.append(float(np.std(col[ok])))
    if not keep:
        return Difficulty([], [], [], [max(float(np.mean(target)), floor)], floor)
    X = signals[:, keep]
    X = np.where(np.isfinite(X), X, np.asarray(means))
    Z = (X - np.asarray(means)) / np.asarray(sds)
    A = np.column_stack([np.ones(len(Z)), Z])
    # a light ridge keeps the few coefficients stable on small calibration sets
    penalty = np.eye(A.shape[1]) * 1.0
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(A.T @ A + penalty, A.T @ target)
    return Difficulty([names[j] for j in keep], means, sds, [float(c) for c in coef], floor)


@dataclass
class ConformalModel:
    """A fitted calibration: the line onto gold, the difficulty model and the conformal scores (JSON round-trips)."""

    intercept: float
    slope: float
    difficulty: Difficulty
    scores: list[float]  # |gold - line| / sigma of the calibration items, cross-fitted
    scale: tuple[float, float] | None = None
    n: int = 0
    signals: list[str] = field(default_factory=list)

    def point(self, values: Sequence[float]) -> np.ndarray:
        out = self.intercept + self.slope * np.asarray(values, dtype=float)
        return np.clip(out, *self.scale) if self.scale else out

    def quantile(self, level: float) -> float:
        check_calibration(len(self.scores), [level])
        regressor = _crepes()()
        regressor.fit(residuals=np.asarray(self.scores), sigmas=np.ones(len(self.scores)))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo_hi = regressor.predict_int(np.zeros(1), sigmas=np.ones(1), confidence=_nudged(level))
        return float(lo_hi[0, 1])

    def sigma(self, signals: np.ndarray | None, n: int) -> np.ndarray:
        if signals is None or not self.difficulty.names:
            return self.difficulty(np.zeros((n, 0)))
        idx = [self.signals.index(s) for s in self.difficulty.names]
        return self.difficulty(np.asarray(signals, dtype=float)[:, idx])

    def interval(self, values: Sequence[float], signals: np.ndarray | None, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, low, high) for each value at this coverage level."""
        x = np.asarray(values, dtype=float)
        raw = self.intercept + self.slope * x
        half = self.quantile(level) * self.sigma(signals, len(x))
        lo, hi = raw - half, raw + half
        if self.scale:
            raw, lo, hi = (np.clip(a, *self.scale) for a in (raw, lo, hi))
        return raw, lo, hi

    def predictive_sd(self, values: Sequence[float], signals: np.ndarray | None) -> np.ndarray:
        """A normal sd matching the conformal 68% half-width (the prior's sd in a hybrid)."""
        x = np.asarray(values, dtype=float)
        q = float(np.quantile(self.scores, 0.6827)) if self.scores else 1.0
        return q * self.sigma(signals, len(x))

    def to_dict(self) -> dict[str, Any]:
        d = self.difficulty
        return {
            "method": "normalised split-conformal (crepes), line and difficulty cross-fitted in 5 folds",
            "intercept": self.intercept, "slope": self.slope, "n": self.n, "signals": self.signals,
            "difficulty": {"names": d.names, "means": d.means, "sds": d.sds, "coef": d.coef, "floor": d.floor},
            "scores": self.scores, "scale": list(self.scale) if self.scale else None,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformalModel:
        diff = d["difficulty"]
        return cls(d["intercept"], d["slope"], Difficulty(diff["names"], diff["means"], diff["sds"], diff["coef"], diff.get("floor", 1e-6)),
                   list(d["scores"]), tuple(d["scale"]) if d.get("scale") else None, d.get("n", len(d["scores"])),
                   list(d.get("signals", [])))  # fmt: skip


def fit_conformal(
    values: Sequence[float],
    gold: Sequence[float],
    signals: np.ndarray | None = None,
    *,
    signal_names: Sequence[str] = (),
    levels: Sequence[float] = DEFAULT_LEVELS,
    scale: tuple[float, float] | None = None,
    seed: int = 0,
    what: str = "the calibration set",
) -> ConformalModel:
    """Calibrate a rater on items with gold values: values and gold pair up; signals is items x signal_names."""
    x = np.asarray(values, dtype=float)
    y = np.asarray(gold, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise WorkbenchError("fit_conformal: values and gold must be two flat sequences of the same length.")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    names = list(signal_names)
    S = np.zeros((len(ok), 0)) if signals is None else np.asarray(signals, dtype=float).reshape(len(ok), len(names))
    S = S[ok]
    check_calibration(len(x), levels, what)
    n = len(x)
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    scores = np.empty(n)
    for k in range(FOLDS):
        held, rest = folds == k, folds != k
        if not held.any():
            continue
        a, b = _line(x[rest], y[rest])
        diff = _fit_difficulty(names, S[rest], y[rest] - (a + b * x[rest]))
        sig = diff(S[held][:, [names.index(s) for s in diff.names]]) if diff.names else diff(np.zeros((held.sum(), 0)))
        scores[held] = np.abs(y[held] - (a + b * x[held])) / sig
    a, b = _line(x, y)
    diff = _fit_difficulty(names, S, y - (a + b * x))
    return ConformalModel(a, b, diff, [float(s) for s in scores], scale, n, names)


@dataclass
class Coverage:
    """How often the intervals held the gold value on held-out items."""

    level: float
    n: int
    covered: float  # share of items whose gold value lies in the interval
    mean_width: float

    @property
    def gap(self) -> float:
        return self.covered - self.level


def coverage(model: ConformalModel, values: Sequence[float], gold: Sequence[float], signals: np.ndarray | None,
             levels: Sequence[float] = DEFAULT_LEVELS) -> list[Coverage]:  # fmt: skip
    """Achieved coverage and mean width at each level on items that were not calibration items."""
    x = np.asarray(values, dtype=float)
    y = np.asarray(gold, dtype=float)
    out = []
    for level in levels:
        _, lo, hi = model.interval(x, signals, level)
        inside = (y >= lo - 1e-9) & (y <= hi + 1e-9)
        out.append(Coverage(level, len(y), float(np.mean(inside)) if len(y) else math.nan, float(np.mean(hi - lo)) if len(y) else math.nan))
    return out
