"""Hybrid norms: a calibrated machine prior and human ratings, combined word by word.

The method (precision weighting of a normal prior and the human mean):

- Prior. The machine rater's value, mapped onto the gold scale by its
  conformal calibration (:mod:`workbench.analysis.conformal`), is the prior
  mean mu; its sd tau is the calibration's predictive sd for that word (the
  68% conformal half-width, so it follows the rater's uncertainty signals).
- Humans. A word's n human ratings have mean m and variance s^2. The per-word
  variance is shrunk toward the pooled one (the ratings' within-word
  variance over all words with two or more ratings):
  s~^2 = ((n - 1) s^2 + nu0 sigma_pool^2) / (n - 1 + nu0), nu0 = 4 (a word
  with one rating gets sigma_pool^2). The human mean's variance is s~^2 / n.
  A dataset of means, SDs and ns counts as n ratings with that mean and SD.
- Posterior. Precisions add: 1/v = 1/tau^2 + n/s~^2; the estimate is
  w m + (1 - w) mu with human weight w = (n/s~^2) v; its sd is sqrt(v), its
  interval estimate +/- z sqrt(v) at the asked level (clipped to the scale).
  A word with no human rating keeps the prior and its conformal interval
  (source "machine"); a word the prior has no value for gets the human mean
  alone (source "human", said in the note); with both, "both".

Everything is computed from the store (the prior's ratings, the calibration
set's gold, the human ratings), so the same store gives the same hybrid.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

HYBRID_COLUMNS = ("low", "high", "human_weight", "source", "prior", "prior_sd", "human_mean")  # per word, beside value, sd, n
NU0 = 4.0  # prior degrees of freedom of the per-word human variance (shrinkage toward the pooled variance)


@dataclass
class Humans:
    """A word's human ratings: their number, mean and variance (variance None for a single rating)."""

    n: int
    mean: float
    var: float | None


@dataclass
class HybridWord:
    value: float
    sd: float
    low: float
    high: float
    n_human: int
    human_weight: float
    source: str  # human | machine | both
    prior: float | None = None
    prior_sd: float | None = None
    human_mean: float | None = None
    note: str | None = None


@dataclass
class HybridResult:
    words: dict[int, HybridWord]
    pooled_sd: float | None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"human": 0, "machine": 0, "both": 0}
        for w in self.words.values():
            out[w.source] += 1
        return out


def from_ratings(ratings: Mapping[int, Sequence[float]]) -> dict[int, Humans]:
    """Individual ratings per word -> Humans."""
    out = {}
    for item, values in ratings.items():
        v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
        if len(v):
            out[item] = Humans(len(v), float(v.mean()), float(v.var(ddof=1)) if len(v) > 1 else None)
    return out


def pooled_variance(humans: Mapping[int, Humans]) -> float | None:
    num = sum((h.n - 1) * h.var for h in humans.values() if h.var is not None and h.n > 1)
    den = sum(h.n - 1 for h in humans.values() if h.var is not None and h.n > 1)
    return num / den if den > 0 else None


def combine(
    items: Sequence[int],
    prior: Mapping[int, tuple[float, float, float, float]],  # item -> (mean, sd, low, high) at the level
    humans: Mapping[int, Humans],
    *,
    level: float,
    scale: tuple[float, float] | None = None,
    pooled_var: float | None = None,
) -> HybridResult:
    """The posterior of every item (see the module's docstring)."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    pooled = pooled_var if pooled_var is not None else pooled_variance(humans)
    words: dict[int, HybridWord] = {}
    notes = []
    no_prior = 0

    def clip(a: float) -> float:
        return min(max(a, scale[0]), scale[1]) if scale else a

    for item in items:
        p = prior.get(item)
        h = humans.get(item)
        if h is not None:
            if pooled is None and h.var is None:
                raise WorkbenchError("hybrid: no word has two or more human ratings, so the human variance cannot be estimated.")
            if h.var is None:
                var = pooled
            elif pooled is None:
                var = h.var
            else:
                var = ((h.n - 1) * h.var + NU0 * pooled) / (h.n - 1 + NU0)
            var = max(float(var), 1e-9)
            prec_h = h.n / var
        if p is None and h is None:
            continue
        if h is None:
            mu, tau, lo, hi = p
            words[item] = HybridWord(mu, tau, lo, hi, 0, 0.0, "machine", prior=mu, prior_sd=tau)
        elif p is None:
            no_prior += 1
            sd = math.sqrt(1 / prec_h)
            words[item] = HybridWord(h.mean, sd, clip(h.mean - z * sd), clip(h.mean + z * sd), h.n, 1.0, "human", human_mean=h.mean,
                                     note="the prior has no value for this word: human ratings only")  # fmt: skip
        else:
            mu, tau, _, _ = p
            prec_p = 1 / max(tau, 1e-9) ** 2
            v = 1 / (prec_p + prec_h)
            w = prec_h * v
            est = w * h.mean + (1 - w) * mu
            sd = math.sqrt(v)
            words[item] = HybridWord(est, sd, clip(est - z * sd), clip(est + z * sd), h.n, w, "both", prior=mu, prior_sd=tau,
                                     human_mean=h.mean)  # fmt: skip
    if no_prior:
        notes.append(f"{no_prior} words have no value from the prior: they rest on human ratings only.")
    pooled_sd = math.sqrt(pooled) if pooled is not None else None
    taus = [p[1] for i, p in prior.items() if i in words]
    if pooled_sd is not None and taus and pooled_sd > float(np.median(taus)):
        notes.append(
            f"one human rating (pooled sd {pooled_sd:.2f}) is less precise than the machine prior (median sd {float(np.median(taus)):.2f}): "
            "the annotators disagree more than the model errs; a word needs several ratings before the humans outweigh the prior."
        )
    return HybridResult(words, pooled_sd, notes)


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def hybrid_columns(details: dict[str, Any], item_id: int) -> dict[str, Any]:
    """The extra export columns of one word of a hybrid dataset (its details["hybrid"])."""
    row = details.get("words", {}).get(str(item_id))
    if row is None:
        return dict.fromkeys(HYBRID_COLUMNS)
    return dict(zip(HYBRID_COLUMNS, row, strict=True))
