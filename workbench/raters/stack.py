"""A stacked machine estimate: one model over several raters' values and uncertainty signals, cross-fitted.

Features, per word: each component rater's value; where the rater has them
on the training words, the spread (sd) of its distribution over the scale
points and 1 - its probability mass on scale tokens; and the sd of the
components' values (their disagreement). The model is ridge regression
(standardised features, penalty chosen by leave-one-out; see
:class:`workbench.raters.baselines.Ridge`) fitted to the gold values of the
training words.

Cross-fitting: a training word's value comes from the model fitted on the
other folds (it never saw the word); every other word gets the model fitted
on all training words. So a stack's values on its training words are honest
out-of-sample estimates, fit to calibrate intervals on.

Note that the components' own values on the training words must be honest
too: a fine-tune that trained on a word rates it better than it would a new
word, and a stack fitted on such values over-trusts it. Give the stack
components that did not see its training words (or out-of-fold values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

MIN_STACK_TRAINING = 20


@dataclass
class Component:
    """One rater's columns: values, and optional spread and unsure mass (NaN where a word has none)."""

    values: np.ndarray
    spread: np.ndarray | None = None
    unsure_mass: np.ndarray | None = None


def feature_matrix(components: Mapping[str, Component], use: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(names, items x features). ``use``: the feature names to keep (those chosen on the training words)."""
    names: list[str] = []
    cols: list[np.ndarray] = []
    for rater, comp in components.items():
        names.append(f"{rater}:value")
        cols.append(np.asarray(comp.values, dtype=float))
        for signal in ("spread", "unsure_mass"):
            col = getattr(comp, signal)
            if col is not None:
                names.append(f"{rater}:{signal}")
                cols.append(np.asarray(col, dtype=float))
    if len(components) > 1:
        names.append("disagreement")
        cols.append(np.std(np.column_stack([np.asarray(c.values, dtype=float) for c in components.values()]), axis=1))
    X = np.column_stack(cols) if cols else np.zeros((0, 0))
    if use is not None:
        missing = [n for n in use if n not in names]
        if missing:
            raise WorkbenchError(f"stack: the features {', '.join(missing)} are missing for these words.")
        X = X[:, [names.index(n) for n in use]]
        names = list(use)
    return names, X


def usable_features(names: list[str], X: np.ndarray) -> list[str]:
    """The features with a value for every training word and some variation (signals a rater lacks drop out)."""
    keep = []
    for j, name in enumerate(names):
        col = X[:, j]
        if np.isfinite(col).all() and float(np.std(col)) > 0:
            keep.append(name)
        elif name.endswith(":value"):
            raise WorkbenchError(f"stack: rater {name.split(':')[0]!r} has no value (or one value) for some training words.")
    return keep


@dataclass
class StackModel:
    features: list[str]
    coef: list[float]
    intercept: float
    alpha: float
    clip: tuple[float, float] | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.intercept + np.asarray(X, dtype=float) @ np.asarray(self.coef)
        return np.clip(out, *self.clip) if self.clip else out

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "coef": self.coef, "intercept": self.intercept, "alpha": self.alpha,
                "clip": list(self.clip) if self.clip else None}  # fmt: skip


def fit_stack(names: list[str], X: np.ndarray, y: np.ndarray, *, clip: tuple[float, float] | None = None) -> StackModel:
    from workbench.raters.baselines import Ridge

    ridge = Ridge().fit(X, y)
    return StackModel(list(names), [float(c) for c in ridge.coef_], float(ridge.intercept_), float(ridge.alpha_), clip)


def cross_fit(
    names: list[str], X_train: np.ndarray, y_train: np.ndarray, *, folds: int = 5, seed: int = 0,
    clip: tuple[float, float] | None = None,
) -> tuple[np.ndarray, StackModel, list[StackModel]]:  # fmt: skip
    """Out-of-fold predictions for the training words, the model on all of them, and the fold models."""
    n = len(y_train)
    if n < MIN_STACK_TRAINING:
        raise WorkbenchError(f"stack: {n} training words with gold and every component's value; need at least {MIN_STACK_TRAINING}.")
    fold = np.random.default_rng(seed).permutation(n) % folds
    oof = np.empty(n)
    models = []
    for k in range(folds):
        held = fold == k
        m = fit_stack(names, X_train[~held], y_train[~held], clip=clip)
        oof[held] = m.predict(X_train[held])
        models.append(m)
    return oof, fit_stack(names, X_train, y_train, clip=clip), models


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % folds
