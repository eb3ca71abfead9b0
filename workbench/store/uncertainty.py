"""Item sets chosen by uncertainty: people rate first the words the models are least sure about.

``spread``: the standard deviation of an LLM rater's probability distribution over the scale points
(the expected read-out keeps it); ``mass``: the least probability on scale tokens; ``disagreement``:
the standard deviation of several raters' values for the word. The item set keeps the top N of the
candidates (``store/itemsets.py``, ties by the word's text).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store.models import Rater, Rating


def _ratings(session: Session, rater: str, candidates: set[int]) -> list[tuple[int, float | None, dict | None, float | None]]:
    row = session.scalar(select(Rater).where(Rater.name == rater))
    if row is None:
        raise WorkbenchError(f"uncertainty: no rater {rater!r} in the store: run it first (`workbench rate {rater}`).")
    q = select(Rating.item_id, Rating.value, Rating.distribution, Rating.mass).where(Rating.rater_id == row.id, Rating.replicate == 0)
    return [r for r in session.execute(q) if r[0] in candidates]


def spread(distribution: dict[str, Any] | None) -> float | None:
    """The standard deviation of a distribution over scale points ({"1": p1, "2": p2, ...})."""
    if not distribution:
        return None
    try:
        pts = [(float(k), float(v)) for k, v in distribution.items()]
    except (TypeError, ValueError):
        return None
    total = sum(p for _, p in pts)
    if total <= 0:
        return None
    mean = sum(x * p for x, p in pts) / total
    return math.sqrt(sum(p * (x - mean) ** 2 for x, p in pts) / total)


def scores(session: Session, candidates: list[int], spec: dict[str, Any]) -> dict[int, float]:
    """item id -> how unsure the models are about it (higher: less sure)."""
    wanted = set(candidates)
    by, raters = spec["by"], spec["raters"]
    out: dict[int, float] = {}
    if by == "spread":
        for item, _v, dist, _m in _ratings(session, raters[0], wanted):
            s = spread(dist)
            if s is not None:
                out[item] = max(out.get(item, 0.0), s)
        what = "distributions (the expected read-out keeps them)"
    elif by == "mass":
        for item, _v, _d, mass in _ratings(session, raters[0], wanted):
            if mass is not None:
                out[item] = max(out.get(item, -1.0), 1.0 - float(mass))
        what = "probability mass on scale tokens"
    else:
        values: dict[int, list[float]] = {}
        for name in raters:
            for item, v, _d, _m in _ratings(session, name, wanted):
                if v is not None:
                    values.setdefault(item, []).append(float(v))
        for item, vs in values.items():
            if len(vs) == len(raters):
                mean = sum(vs) / len(vs)
                out[item] = math.sqrt(sum((v - mean) ** 2 for v in vs) / len(vs))
        what = f"values from all of {', '.join(raters)}"
    if not out:
        raise WorkbenchError(f"uncertainty: none of the {len(candidates)} candidate items has {what}: rate them first.")
    return out
