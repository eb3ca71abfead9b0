"""Collect: one dimension's ratings from the store (a Session) into an items x raters table.

Beside the values it gathers what the numbers need: each column's kind, the
raw answers and scale-token mass of LLM raters, individual human ratings,
and each column's own scale (from the import's details or the rater's
configuration) with its linear map onto the dimension's scale
(:mod:`workbench.analysis.scales`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.analysis import scales
from workbench.analysis.scales import OwnScale, ScaleMap
from workbench.errors import WorkbenchError
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dataset, Dimension, Item, Rater, Rating


@dataclass
class DimensionData:
    """One dimension's ratings: values[item, rater] (NaN: not rated), plus the evidence."""

    dimension: str
    scale: tuple[float | None, float | None]
    gold: list[str]
    raters: list[str]
    kinds: dict[str, str]
    values: pd.DataFrame  # index: item text, columns: gold + raters, each on its own scale
    answers: pd.DataFrame  # same shape, raw answers of llm raters
    mass: pd.DataFrame  # same shape, probability on scale tokens
    min_mass: dict[str, float]
    humans: pd.DataFrame | None = None  # items x human annotators
    item_ids: dict[str, int] = field(default_factory=dict)
    maps: dict[str, ScaleMap] = field(default_factory=dict)  # column -> its map onto `target`
    target: tuple[float, float] | None = None  # the scale the scale-dependent figures use
    excluded: dict[str, str] = field(default_factory=dict)  # human annotators a campaign's rules excluded: the reason
    trained: dict[str, dict] = field(default_factory=dict)  # rater -> {items, n, gold, overlap}: what it was trained on

    @cached_property
    def scaled(self) -> pd.DataFrame:
        """`values` with every column that has a linear map put on the target scale (others as they are)."""
        out = self.values.copy()
        for c in out.columns:
            m = self.maps.get(c)
            if m is not None and m.mapped and not m.identity:
                out[c] = m.apply(out[c].to_numpy())
        return out

    def comparable(self, a: str, b: str) -> bool:
        """Whether the scale-dependent figures (errors, bias, SD ratio, residuals, plots) of a against b mean anything."""
        ma, mb = self.maps.get(a), self.maps.get(b)
        return ma is not None and mb is not None and ma.mapped and mb.mapped

    def scale_notes(self, *columns: str) -> list[str]:
        """What to say on a row of these columns: why it has correlations only, values outside a scale."""
        out = []
        for c in dict.fromkeys(columns):
            m = self.maps.get(c)
            if m is None:
                continue
            if not m.mapped:
                out.append(f"correlations only: {m.reason}")
            elif m.note:
                out.append(m.note)
        return out


def dimensions(session: Session, dimension: str | None) -> list[Dimension]:
    """The dimension asked for (an error naming the known ones if there is none), or all of them."""
    if dimension:
        dim = session.scalar(select(Dimension).where(Dimension.name == dimension))
        if dim is None:
            known = ", ".join(session.scalars(select(Dimension.name).order_by(Dimension.name))) or "none"
            raise WorkbenchError(f"no dimension {dimension!r} in the store (it has: {known}).")
        return [dim]
    return list(session.scalars(select(Dimension).order_by(Dimension.name)))


def collect(
    session: Session, dim: Dimension, *, gold: list[str] | None, raters: list[str] | None, items: str | None
) -> DimensionData | None:
    """The ratings of one dimension, or None when it has no gold and no rater to report on."""
    q = (
        select(Item.id, Item.text, Rater.name, Rater.kind, Rating.value, Rating.raw_answer, Rating.mass)
        .join(Rating, Rating.item_id == Item.id)
        .join(Rater, Rater.id == Rating.rater_id)
        .where(Rating.dimension_id == dim.id, Rating.replicate == 0)
    )
    if items:
        wanted = set(resolve_items(session, items))
    rows = [r for r in session.execute(q) if not items or r[0] in wanted]
    if not rows:
        return None
    long = pd.DataFrame(rows, columns=["item_id", "item", "rater", "kind", "value", "answer", "mass"])
    kinds = dict(zip(long["rater"], long["kind"], strict=False))
    gold_names = _pick(gold, sorted(n for n, k in kinds.items() if k == "norm"), kinds, "gold dataset", dim.name)
    rater_names = _pick(raters, sorted(n for n, k in kinds.items() if k in ("llm", "model") and "@" not in n), kinds, "rater", dim.name)
    humans = long[long["kind"] == "human"]
    cols = gold_names + [r for r in rater_names if r not in gold_names]
    chosen = long[long["rater"].isin(cols)]
    values = chosen.pivot_table(index="item", columns="rater", values="value", aggfunc="first").reindex(columns=cols)
    values = values.sort_index().astype(float)
    answers = chosen.pivot(index="item", columns="rater", values="answer").reindex(index=values.index, columns=cols)
    mass = chosen.pivot(index="item", columns="rater", values="mass").reindex(index=values.index, columns=cols)
    configs, own = _provenance(session, dim, cols)
    min_mass = {r: float((configs.get(r) or {}).get("min_mass", 0.5)) for r in rater_names}
    excluded = _excluded_annotators(session, set(humans["rater"]))
    humans = humans[~humans["rater"].isin(excluded)]
    human_matrix = None
    if humans["rater"].nunique() >= 2:
        human_matrix = humans.pivot_table(index="item", columns="rater", values="value", aggfunc="first")
    target = scales.target_scale((dim.scale_min, dim.scale_max), [own.get(g) for g in gold_names])
    maps = {c: scales.plan(c, own.get(c), values[c].to_numpy(), target) for c in cols}
    data = DimensionData(
        dim.name, (dim.scale_min, dim.scale_max), gold_names, [r for r in rater_names if r not in gold_names],
        {c: kinds[c] for c in cols}, values, answers, mass.astype(float), min_mass, human_matrix,
        dict(zip(long["item"], long["item_id"], strict=False)), maps, target,
    )  # fmt: skip
    data.excluded = excluded
    data.trained = _trained_on(session, configs, data)
    return data


def _trained_on(session: Session, configs: dict[str, dict], data: DimensionData) -> dict[str, dict]:
    """What each rater was trained on (a fine-tune's trained_on, a baseline's train/gold) and how many reported items that covers."""
    from workbench.errors import WorkbenchError
    from workbench.store.itemsets import resolve_items

    out: dict[str, dict] = {}
    for name in data.raters:
        config = configs.get(name) or {}
        info = config.get("trained_on") or ({"items": config["train"], "gold": config.get("gold")} if config.get("train") else None)
        if not info:
            continue
        try:
            members = set(resolve_items(session, info["items"]))
        except WorkbenchError:  # the set is gone from the store
            members = set()
        rated = {data.item_ids[i] for i in data.values.index[data.values[name].notna()] if i in data.item_ids}
        out[name] = {"items": info["items"], "n": info.get("n", len(members) or None), "gold": info.get("gold"),
                     "overlap": len(rated & members)}  # fmt: skip
    return out


def _excluded_annotators(session: Session, names: set[str]) -> dict[str, str]:
    """Human raters a campaign's exclusion rules left out (workbench annotate pull): name -> the reason."""
    if not names:
        return {}
    q = select(Rater.name, Rater.config).where(Rater.kind == "human", Rater.name.in_(sorted(names)))
    return {n: c["excluded"] for n, c in session.execute(q) if c and c.get("excluded")}


def _pick(asked: list[str] | None, default: list[str], kinds: dict[str, str], what: str, dimension: str) -> list[str]:
    if asked is None:
        return default
    missing = [n for n in asked if n not in kinds]
    if missing:
        raise WorkbenchError(f"no {what} {missing[0]!r} with ratings on {dimension!r}: see `workbench status`.")
    return list(dict.fromkeys(asked))


def _provenance(session: Session, dim: Dimension, names: list[str]) -> tuple[dict[str, dict], dict[str, OwnScale | None]]:
    """Each rater's configuration, and its own scale on this dimension as recorded in the store."""
    q = select(Rater.name, Rater.config, Dataset.details).outerjoin(Dataset, Dataset.id == Rater.dataset_id).where(Rater.name.in_(names))
    rows = {name: (config or {}, details) for name, config, details in session.execute(q)}
    configs = {n: c for n, (c, _) in rows.items()}
    own: dict[str, OwnScale | None] = {}
    for name in names:
        config, details = rows.get(name, ({}, None))
        own[name] = _imported_scale(details, dim.name, f"dataset {name}") or _imported_scale(
            {"dimensions": config.get("columns")}, dim.name, f"rater {name}"
        )
        if own[name] is None and isinstance(config.get("scale"), list) and len(config["scale"]) >= 2:
            own[name] = OwnScale(_number(config["scale"][0]), _number(config["scale"][1]), source=f"rater {name}")
            trained_on = config.get("gold") if config.get("train") else None
            if trained_on:  # a baseline predicts its gold dataset's values, on that dataset's scale
                gold = session.scalar(select(Dataset.details).where(Dataset.name == trained_on))
                own[name] = _imported_scale(gold, dim.name, f"dataset {trained_on}") or own[name]
    return configs, own


def _imported_scale(details: Any, dimension: str, source: str) -> OwnScale | None:
    """The scale an import recorded for one dimension (datasets.details / an imported rater's config), if any."""
    if not isinstance(details, dict) or not isinstance(details.get("dimensions"), dict):
        return None
    entry = details["dimensions"].get(dimension)
    if not isinstance(entry, dict):
        return None
    scale = entry.get("stored_scale")  # after any rescale: the scale of the stored values
    if not isinstance(scale, list) or len(scale) != 2:
        return None
    return OwnScale(_number(scale[0]), _number(scale[1]), open=bool(entry.get("open_scale")), source=source)


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def known_raters(session: Session, dim: Dimension, names: list[str]) -> list[str]:
    """Of the names asked for across dimensions, those that rate this one."""
    q = select(Rater.name).join(Rating, Rating.rater_id == Rater.id).where(Rating.dimension_id == dim.id).distinct()
    have = set(session.scalars(q))
    return [n for n in names if n in have]
