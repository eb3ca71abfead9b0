"""A rater's calibrated intervals from the store: its values and uncertainty signals, gold on a calibration set.

:func:`calibrate_rater` reads what :mod:`workbench.analysis.conformal` needs
(the rater's values, the spread of its distributions, its mass on scale
tokens, the sd of several raters' values) and fits a
:class:`~workbench.analysis.conformal.ConformalModel` on the calibration
items; :func:`rater_coverage` measures it on other items with gold. The
calibration items must not be the items reported: an overlap is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.analysis.conformal import DEFAULT_LEVELS, ConformalModel, Coverage, coverage, fit_conformal
from workbench.errors import WorkbenchError
from workbench.store.itemsets import gold_values, resolve_items
from workbench.store.models import Dimension, Rater, Rating
from workbench.store.uncertainty import spread


@dataclass
class RaterSignals:
    """item id -> value, and item id -> signals (spread, 1 - mass, disagreement; NaN where missing)."""

    values: dict[int, float]
    signals: dict[int, list[float]]
    names: list[str]

    def matrix(self, ids: Sequence[int]) -> np.ndarray:
        return np.array([self.signals.get(i, [np.nan] * len(self.names)) for i in ids], dtype=float).reshape(len(ids), len(self.names))


def _rater(session: Session, name: str) -> Rater:
    row = session.scalar(select(Rater).where(Rater.name == name))
    if row is None:
        known = session.scalars(select(Rater.name).where(Rater.kind.in_(("llm", "model"))))
        from workbench.errors import did_you_mean

        raise WorkbenchError(f"no rater {name!r} in the store: run it first (`workbench rate {name}`).{did_you_mean(name, known)}")
    return row


def _dimension_id(session: Session, dimension: str) -> int:
    dim = session.scalar(select(Dimension.id).where(Dimension.name == dimension))
    if dim is None:
        raise WorkbenchError(f"dimension {dimension!r} is not in the store: declare it in the study and run `workbench apply`.")
    return dim


def rater_signals(session: Session, rater: str, dimension: str, *, disagreement: Sequence[str] = ()) -> RaterSignals:
    """The rater's values (replicate 0) and its uncertainty signals on the dimension."""
    row = _rater(session, rater)
    dim = _dimension_id(session, dimension)
    q = select(Rating.item_id, Rating.value, Rating.distribution, Rating.mass).where(
        Rating.rater_id == row.id, Rating.dimension_id == dim, Rating.replicate == 0, Rating.value.is_not(None)
    )
    values: dict[int, float] = {}
    raw: dict[int, tuple[float | None, float | None]] = {}
    for item, value, dist, mass in session.execute(q):
        values[item] = float(value)
        raw[item] = (spread(dist), None if mass is None else 1.0 - float(mass))
    others: dict[int, list[float]] = {}
    for name in disagreement:
        other = _rater(session, name)
        q = select(Rating.item_id, Rating.value).where(
            Rating.rater_id == other.id, Rating.dimension_id == dim, Rating.replicate == 0, Rating.value.is_not(None)
        )
        for item, value in session.execute(q):
            others.setdefault(item, []).append(float(value))
    names = ["spread", "unsure_mass"] + (["disagreement"] if disagreement else [])
    signals: dict[int, list[float]] = {}
    for item in values:
        s, m = raw[item]
        row_ = [np.nan if s is None else s, np.nan if m is None else m]
        if disagreement:
            vs = [values[item], *others.get(item, [])]
            row_.append(float(np.std(vs)) if len(vs) == len(disagreement) + 1 else np.nan)
        signals[item] = row_
    return RaterSignals(values, signals, names)


def _scale(session: Session, dimension: str) -> tuple[float, float] | None:
    dim = session.scalar(select(Dimension).where(Dimension.name == dimension))
    if dim is None or dim.scale_min is None or dim.scale_max is None:
        return None
    return (float(dim.scale_min), float(dim.scale_max))


def calibrate_rater(
    session: Session,
    rater: str,
    *,
    gold: str,
    calibration: str,
    dimension: str,
    reported: Sequence[int] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    disagreement: Sequence[str] = (),
    seed: int = 0,
) -> tuple[ConformalModel, RaterSignals, list[int]]:
    """Fit the rater's conformal calibration on the calibration items (their gold from ``gold``).

    reported: the items the intervals are for; any of them in the calibration set is an error.
    Returns the model, the rater's signals and the calibration item ids used.
    """
    cal_items = resolve_items(session, calibration)
    if reported is not None:
        overlap = sorted(set(cal_items) & set(reported))
        if overlap:
            raise WorkbenchError(
                f"calibration set {calibration!r} shares {len(overlap)} items with the items reported: calibrate on items "
                "that are not reported (e.g. the train part of a split, reporting the test part)."
            )
    sig = rater_signals(session, rater, dimension, disagreement=disagreement)
    gold_v = gold_values(session, gold, dimension)
    ids = [i for i in cal_items if i in gold_v and i in sig.values]
    model = fit_conformal(
        [sig.values[i] for i in ids], [gold_v[i] for i in ids], sig.matrix(ids), signal_names=sig.names, levels=levels,
        scale=_scale(session, dimension), seed=seed,
        what=f"calibration set {calibration!r} (items with a {gold!r} value and a {rater!r} value)",
    )  # fmt: skip
    return model, sig, ids


def rater_coverage(
    session: Session, model: ConformalModel, sig: RaterSignals, *, gold: str, dimension: str, items: Sequence[int],
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> list[Coverage]:  # fmt: skip
    """Achieved coverage and mean width on the given (held-out) items that have a gold and a rater value."""
    gold_v = gold_values(session, gold, dimension)
    ids = [i for i in items if i in gold_v and i in sig.values]
    return coverage(model, [sig.values[i] for i in ids], [gold_v[i] for i in ids], sig.matrix(ids), levels)
