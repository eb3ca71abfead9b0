"""The planner: replay a norming campaign with simulated annotators to say how many ratings a study needs.

Simulated annotators rate each word from an existing norm's per-word mean and
SD: an integer on the scale points from a beta-binomial with that mean and SD
(the beta-binomial's overdispersion matched to the SD; a binomial when the SD
is below the binomial's), each annotator shifted by an annotator effect
(normal, sd ``annotator_sd`` scale points, on the latent mean). Where the
norm says how often its people did not know a word (its share of answers that
were ratings, ``known``: a campaign's pulled norms carry it), a simulated
annotator answers "I don't know" at that rate: the answer is paid for (it
counts against the budget, as in a real campaign) but gives no rating.
Strategies,
each at each budget (human ratings in all):

``all-human``
    every word gets the same number of ratings (budget / words, spread
    evenly); the estimate is the human mean.
``routed``
    human ratings go to the words whose machine prior is least sure (widest
    prior sd), ``per_word`` ratings each, until the budget is spent; the
    estimate is the human mean there and the prior elsewhere (CoAnnotating's
    routing by model uncertainty).
``adaptive``
    the adaptive hybrid: rounds; the first sends a seeded calibration sample
    plus the least sure words; each round after gives one rating to each of
    the words whose posterior sd is largest; the estimate is the precision-
    weighted posterior (workbench/analysis/hybrid.py), with the human variance
    estimated from the simulated ratings so far.

Validity is the Spearman correlation of the estimates with an independent
gold (``against``), with a seeded percentile bootstrap interval over words.
Simulated annotators re-sample the published means, so their mean over n
ratings carries the published means' own error plus fresh noise: a simulated
all-human replicate is less valid than the real norm it was drawn from.
Strategies are compared within the simulation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.analysis.hybrid import NU0
from workbench.errors import WorkbenchError

STRATEGIES = ("all-human", "routed", "adaptive")
DEFAULT_BUDGETS = (0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Norm:
    """Per word: the norm's mean, SD and number of ratings (the simulated annotators' source), and optionally the share
    of its people's answers that were ratings rather than "I don't know" (NaN or None: everyone knew the word)."""

    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    known: np.ndarray | None = None

    def unknown_rate(self) -> np.ndarray:
        if self.known is None:
            return np.zeros(len(self.mean))
        return np.clip(1.0 - np.nan_to_num(np.asarray(self.known, dtype=float), nan=1.0), 0.0, 1.0)


@dataclass
class Prior:
    """Per word: the calibrated machine estimate and its sd (NaN where the prior has no value)."""

    mean: np.ndarray
    sd: np.ndarray


@dataclass
class Row:
    strategy: str
    budget: float  # share of the norm's own number of ratings
    ratings: int  # answers paid for, "I don't know" included
    words_rated: int
    spearman: float
    ci: tuple[float, float]
    unknown: int = 0  # of the answers, "I don't know"


@dataclass
class Plan:
    rows: list[Row]
    words: int
    norm_ratings: int
    real_norm: float | None  # the norm's own Spearman against gold
    real_norm_ci: tuple[float, float] | None
    machine: float | None
    machine_ci: tuple[float, float] | None
    notes: list[str] = field(default_factory=list)
    scale: tuple[float, float] | None = None  # the scale the simulated annotators rate on


class Annotators:
    """Draws integer ratings on the scale points for given words, from a seeded pool of annotators."""

    def __init__(self, norm: Norm, scale: tuple[float, float], step: float, *, annotator_sd: float, pool: int, rng: np.random.Generator):
        self.lo, self.hi = scale
        self.step = step
        self.k = int(round((self.hi - self.lo) / step))
        if self.k < 1:
            raise WorkbenchError("simulate: the scale has fewer than two points.")
        self.norm = norm
        self.rng = rng
        self.effects = rng.normal(0.0, annotator_sd, pool)
        self.pool = pool
        self.unknown = norm.unknown_rate()

    def draw(self, words: np.ndarray) -> np.ndarray:
        """One answer for each word in ``words`` (repeats allowed), each from a random annotator of the pool: a rating,
        or NaN for "I don't know" (at the norm's rate for the word)."""
        if len(words) == 0:
            return np.zeros(0)
        who = self.rng.integers(0, self.pool, len(words))
        mean = self.norm.mean[words] + self.effects[who]
        p = np.clip((mean - self.lo) / (self.hi - self.lo), 1e-3, 1 - 1e-3)
        var_x = (self.norm.sd[words] / self.step) ** 2
        binom_var = self.k * p * (1 - p)
        rho = np.clip((var_x / binom_var - 1) / max(self.k - 1, 1), 1e-6, 0.99)
        ab = 1 / rho - 1
        q = self.rng.beta(p * ab, (1 - p) * ab)
        x = self.rng.binomial(self.k, q)
        out = self.lo + self.step * x
        if self.unknown.any():
            out = np.where(self.rng.random(len(words)) < self.unknown[words], np.nan, out)
        return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    rx, ry = rankdata(x[ok]), rankdata(y[ok])
    return float(np.corrcoef(rx, ry)[0, 1])


def boot_ci(x: np.ndarray, y: np.ndarray, *, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import rankdata

    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.choice(ok, len(ok))
        rx, ry = rankdata(x[idx]), rankdata(y[idx])
        stats.append(np.corrcoef(rx, ry)[0, 1])
    a = (1 - level) / 2
    return float(np.nanquantile(stats, a)), float(np.nanquantile(stats, 1 - a))


class _Ratings:
    """Simulated answers per word so far: answers paid for, and of the ratings among them count, sum, sum of squares."""

    def __init__(self, n_words: int):
        self.answers = np.zeros(n_words, dtype=int)
        self.n = np.zeros(n_words, dtype=int)
        self.s = np.zeros(n_words)
        self.ss = np.zeros(n_words)

    def add(self, words: np.ndarray, values: np.ndarray) -> None:
        np.add.at(self.answers, words, 1)
        rated = np.isfinite(values)
        words, values = words[rated], values[rated]
        np.add.at(self.n, words, 1)
        np.add.at(self.s, words, values)
        np.add.at(self.ss, words, values**2)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.s / np.maximum(self.n, 1), np.nan)

    def pooled_var(self) -> float | None:
        many = self.n > 1
        if not many.any():
            return None
        within = self.ss[many] - self.s[many] ** 2 / self.n[many]
        return float(within.sum() / (self.n[many] - 1).sum())

    def posterior(self, prior: Prior, fallback_var: float) -> tuple[np.ndarray, np.ndarray]:
        pooled = self.pooled_var() or fallback_var
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            var_i = np.where(n > 1, (self.ss - self.s**2 / np.maximum(n, 1)) / np.maximum(n - 1, 1), pooled)
        var = np.where(n > 1, ((n - 1) * var_i + NU0 * pooled) / (n - 1 + NU0), pooled)
        prec_h = np.where(n > 0, n / np.maximum(var, 1e-9), 0.0)
        has_p = np.isfinite(prior.mean)
        prec_p = np.where(has_p, 1 / np.maximum(np.nan_to_num(prior.sd, nan=1.0), 1e-9) ** 2, 0.0)
        v = 1 / np.maximum(prec_p + prec_h, 1e-12)
        hm = np.nan_to_num(self.mean())
        est = (prec_h * hm + prec_p * np.nan_to_num(prior.mean)) * v
        est = np.where((prec_p + prec_h) > 0, est, np.nan)
        return est, np.sqrt(v)


def _spread(budget: int, n_words: int, rng: np.random.Generator) -> np.ndarray:
    """Which word each of ``budget`` ratings goes to, spread as evenly as possible (random words get the extra)."""
    full, extra = divmod(budget, n_words)
    words = np.repeat(np.arange(n_words), full)
    return np.concatenate([words, rng.choice(n_words, extra, replace=False)]).astype(int)


def simulate(
    norm: Norm,
    gold: np.ndarray,
    *,
    scale: tuple[float, float],
    step: float = 1.0,
    prior: Prior | None = None,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    strategies: Sequence[str] = STRATEGIES,
    annotator_sd: float = 0.3,
    per_word: int = 3,
    rounds: int = 5,
    calibration_share: float = 0.02,
    n_boot: int = 1000,
    seed: int = 0,
    list_size: int = 100,
) -> Plan:
    """Every strategy at every budget (a share of the norm's own number of ratings)."""
    n_words = len(gold)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise WorkbenchError(f"simulate: unknown strategy {unknown[0]!r}: use {', '.join(STRATEGIES)}.")
    if prior is None and any(s != "all-human" for s in strategies):
        strategies = ["all-human"]
    total = int(np.nansum(norm.n))
    if total <= 0:
        raise WorkbenchError("simulate: the norm has no number of ratings per word (n): give --k, the ratings per word to plan for.")
    rows = []
    for b_i, budget in enumerate(budgets):
        spend = max(int(round(budget * total)), 1)
        for s_i, strategy in enumerate(strategies):
            rng = np.random.default_rng([seed, b_i, s_i])
            pool = max(spend // list_size, 5)
            people = Annotators(norm, scale, step, annotator_sd=annotator_sd, pool=pool, rng=rng)
            r = _Ratings(n_words)
            if strategy == "all-human":
                words = _spread(spend, n_words, rng)
                r.add(words, people.draw(words))
                est = r.mean()
            elif strategy == "routed":
                order = np.argsort(-np.nan_to_num(prior.sd, nan=np.inf), kind="stable")
                k = max(per_word, 1)
                n_routed = min(spend // k, n_words)
                words = np.repeat(order[:n_routed], k)
                leftover = spend - len(words)
                if leftover > 0:  # more budget than the routed words can take: spread the rest evenly
                    words = np.concatenate([words, _spread(leftover, n_words, rng)])
                r.add(words, people.draw(words))
                est = np.where(r.n > 0, r.mean(), prior.mean)
            else:
                fallback = float(np.nanmean(norm.sd**2))
                spent = 0
                first = min(max(int(calibration_share * n_words), 1), spend)
                calib = rng.choice(n_words, first, replace=False)
                r.add(calib, people.draw(calib))
                spent += first
                per_round = max((spend - spent) // max(rounds, 1), 1)
                while spent < spend:
                    take = min(per_round, spend - spent)
                    _, sd = r.posterior(prior, fallback)
                    # the words whose posterior is widest get one rating each (several rounds' worth when take > words)
                    words = np.argsort(-sd, kind="stable")[: min(take, n_words)]
                    if take > n_words:
                        words = np.concatenate([words, _spread(take - n_words, n_words, rng)])
                    r.add(words, people.draw(words))
                    spent += len(words)
                est, _ = r.posterior(prior, fallback)
            rho = spearman(est, gold)
            rows.append(Row(strategy, float(budget), int(r.answers.sum()), int((r.n > 0).sum()), rho,
                            boot_ci(est, gold, n_boot=n_boot, seed=seed), int(r.answers.sum() - r.n.sum())))  # fmt: skip
    real = spearman(norm.mean, gold)
    machine = spearman(prior.mean, gold) if prior is not None else None
    notes = [
        "Simulated annotators re-sample the norm's published means, so a simulated all-human study at 100% carries the "
        "published means' own error plus fresh rating noise: it is less valid than the real norm. Compare strategies "
        "within the simulation."
    ]
    if machine is not None and real is not None and machine > real:
        notes.append(
            f"The machine prior alone ({machine:.3f}) is more valid against this gold than the real norm ({real:.3f}): simulated "
            "ratings converge to the norm's published means, so more of them move a hybrid towards the norm, not past the "
            "prior; here human ratings buy little validity."
        )
    return Plan(rows, n_words, total, real, boot_ci(norm.mean, gold, n_boot=n_boot, seed=seed), machine,
                boot_ci(prior.mean, gold, n_boot=n_boot, seed=seed) if prior is not None else None, notes,
                (float(scale[0]), float(scale[1])))  # fmt: skip
