"""Prediction-powered inference over norms: many machine values plus a few human ones, with honest intervals.

A study uses norms as predictors: the mean of a word class, the correlation
of familiarity with frequency over 20,000 words, of which a few hundred have
human ratings. Three intervals for the same statistic:

``naive``
    every word's machine value taken as if it were the human value (the
    all-machine interval: narrow, and wrong by the machine's bias);
``classical``
    the human-rated words alone (valid, wide);
``ppi``
    prediction-powered inference (ppi-python, Angelopoulos et al. 2023,
    the machine values of all words, corrected by the machine's error on the
    human-rated words. The mean uses ``ppi_mean_ci`` (PPI++ power tuning);
    the correlation with another variable the prediction-powered bootstrap
    (``ppboot``, percentile, no power tuning).

PPI is valid when the human-rated words are a random sample of the words
the statistic is over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.errors import WorkbenchError


def _ppi():
    try:
        import ppi_py
    except ImportError:
        raise WorkbenchError("prediction-powered inference needs ppi-python: run `pip install workbench[hybrid]`.") from None
    return ppi_py


@dataclass
class Estimate:
    value: float
    low: float
    high: float


@dataclass
class PPIResult:
    statistic: str  # mean | correlation
    n_labeled: int
    n_unlabeled: int
    naive: Estimate
    classical: Estimate
    ppi: Estimate


def _mean_ci(x: np.ndarray, level: float) -> Estimate:
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    m = float(np.mean(x))
    se = float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return Estimate(m, m - z * se, m + z * se)


def _corr_ci(x: np.ndarray, y: np.ndarray, level: float) -> Estimate:
    from scipy.stats import norm

    r = float(np.corrcoef(x, y)[0, 1])
    z = float(norm.ppf(0.5 + level / 2))
    if len(x) < 4 or abs(r) >= 1:
        return Estimate(r, math.nan, math.nan)
    f, se = math.atanh(r), 1 / math.sqrt(len(x) - 3)
    return Estimate(r, math.tanh(f - z * se), math.tanh(f + z * se))


def _check(y: np.ndarray, yhat: np.ndarray, yhat_u: np.ndarray) -> None:
    if len(y) != len(yhat):
        raise WorkbenchError("ppi: the human values and the machine values of the labelled words must pair up.")
    if len(y) < 10:
        raise WorkbenchError(f"ppi: {len(y)} words have both a human and a machine value; prediction-powered inference needs at least 10.")
    if len(yhat_u) < 1:
        raise WorkbenchError("ppi: every word has a human value: there is nothing for the machine to add (use the human values).")


def ppi_mean(y: np.ndarray, yhat: np.ndarray, yhat_unlabeled: np.ndarray, *, level: float = 0.95) -> PPIResult:
    """The mean of the norm over all words: human values y on the labelled words, machine values everywhere."""
    y, yhat, yu = (np.asarray(a, dtype=float) for a in (y, yhat, yhat_unlabeled))
    _check(y, yhat, yu)
    ppi_py = _ppi()
    lo, hi = ppi_py.ppi_mean_ci(y, yhat, yu, alpha=1 - level)
    est = ppi_py.ppi_mean_pointestimate(y, yhat, yu)
    return PPIResult("mean", len(y), len(yu), _mean_ci(np.concatenate([yhat, yu]), level), _mean_ci(y, level),
                     Estimate(float(np.ravel(est)[0]), float(np.ravel(lo)[0]), float(np.ravel(hi)[0])))  # fmt: skip


def ppi_correlation(
    y: np.ndarray, yhat: np.ndarray, x: np.ndarray, yhat_unlabeled: np.ndarray, x_unlabeled: np.ndarray, *, level: float = 0.95,
    n_resamples: int = 1000, seed: int = 0,
) -> PPIResult:  # fmt: skip
    """Pearson correlation of the norm with another variable x (known for every word)."""
    y, yhat, x, yu, xu = (np.asarray(a, dtype=float) for a in (y, yhat, x, yhat_unlabeled, x_unlabeled))
    _check(y, yhat, yu)
    ppi_py = _ppi()

    def corr(xx, yy):
        return float(np.corrcoef(np.ravel(xx), np.ravel(yy))[0, 1])

    state = np.random.get_state()  # ppi-python draws from numpy's global generator: seed it, then put it back
    try:
        np.random.seed(seed)
        # lam = 1 (no power tuning), so the interval and the point estimate are the same estimator's: the correlation
        # over all machine values, corrected by the machine's error on the labelled words
        lo, hi = ppi_py.ppboot(corr, y, yhat, yu, X=x, X_unlabeled=xu, lam=1.0, n_resamples=n_resamples, alpha=1 - level)
        est = corr(xu, yu) + corr(x, y) - corr(x, yhat)
    finally:
        np.random.set_state(state)
    naive = _corr_ci(np.concatenate([x, xu]), np.concatenate([yhat, yu]), level)
    return PPIResult("correlation", len(y), len(yu), naive, _corr_ci(x, y, level), Estimate(est, float(lo), float(hi)))
