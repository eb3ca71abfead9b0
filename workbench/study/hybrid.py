"""Hybrid datasets declared in the study: read the prior and the humans from the store, combine, store as a dataset.

    hybrids:
      fam-hybrid:
        prior: stack          # a machine rater, calibrated on ...
        calibration: ft.train # ... these words' ...
        gold: glasgow         # ... gold values (never the hybrid's own words)
        humans: pilot         # a campaign (its annotators' ratings, excluded annotators left out), or a dataset
        items: ft.test        # the hybrid's words
        level: 0.9

The hybrid is a dataset (named like the entry) with a norm rater of the same
name: per word the posterior estimate (value), its sd, the number of human
ratings (n) and the source (note: human, machine or both); the interval, the
human weight, the prior and its sd are kept in the dataset's details and
written by `workbench export --dataset NAME`. The method is
workbench/analysis/hybrid.py's. `apply` rebuilds it when its inputs changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from workbench.analysis.hybrid import HYBRID_COLUMNS, Humans, HybridResult, combine, fingerprint, from_ratings
from workbench.analysis.intervals import calibrate_rater
from workbench.errors import WorkbenchError
from workbench.store.engine import bump_generation
from workbench.store.itemsets import resolve_items
from workbench.store.models import Campaign, Dataset, Dimension, Rater, Rating


def human_ratings(session: Session, source: str, dimension: str, *, campaigns: Sequence[str] = ()) -> tuple[dict[int, Humans], str]:
    """A campaign's (or a dataset's) human ratings per word, and what they are, in words.

    campaigns: the campaigns the study declares; one of them with nothing stored yet has no ratings (yet)."""
    dim = session.scalar(select(Dimension.id).where(Dimension.name == dimension))
    names = campaign_names(session, source)
    if names:
        raters = [r for r in session.scalars(select(Rater).where(Rater.kind == "human"))
                  if r.config and r.config.get("campaign") in names and not r.config.get("excluded")]  # fmt: skip
        return _individual(session, [r.id for r in raters], dim), f"campaign {source!r}: {len(raters)} annotators (excluded ones left out)"
    ds = session.scalar(select(Dataset).where(Dataset.name == source))
    if ds is None and source in campaigns:
        return {}, f"campaign {source!r}: no ratings pulled yet"
    if ds is None:
        raise WorkbenchError(f"hybrid humans: no campaign or dataset named {source!r} in the store.")
    people = list(session.scalars(select(Rater.id).where(Rater.dataset_id == ds.id, Rater.kind == "human")))
    if people:
        return _individual(session, people, dim), f"dataset {source!r}: {len(people)} raters' individual ratings"
    norm = list(session.scalars(select(Rater.id).where(Rater.dataset_id == ds.id, Rater.kind == "norm")))
    q = select(Rating.item_id, Rating.value, Rating.sd, Rating.n).where(
        Rating.rater_id.in_(norm), Rating.dimension_id == dim, Rating.value.is_not(None)
    )
    out: dict[int, Humans] = {}
    for item, value, sd, n in session.execute(q):
        if n is None or n < 1:
            raise WorkbenchError(
                f"hybrid humans: dataset {source!r} has no number of raters (n) for some words: a hybrid weighs human "
                "means by their n; import the dataset with its n column."
            )
        out[item] = Humans(int(n), float(value), None if sd is None or n < 2 else float(sd) ** 2)
    return out, f"dataset {source!r}: means, SDs and ns"


def campaign_names(session: Session, source: str) -> set[str]:
    """The campaign ``source`` and its rounds (an adaptive campaign's ``source.roundN``), as stored."""
    import re

    pattern = re.compile(rf"^{re.escape(source)}(\.round\d+)?$")
    return {n for n in session.scalars(select(Campaign.name).where(Campaign.name.like(f"{source}%"))) if pattern.match(n)}


def _individual(session: Session, rater_ids: list[int], dim: int | None) -> dict[int, Humans]:
    if not rater_ids:
        return {}
    q = select(Rating.item_id, Rating.value).where(Rating.rater_id.in_(rater_ids), Rating.dimension_id == dim, Rating.value.is_not(None))
    ratings: dict[int, list[float]] = {}
    for item, value in session.execute(q):
        ratings.setdefault(item, []).append(float(value))
    return from_ratings(ratings)


def compute_hybrid(session: Session, spec: Any, dimension: str, *, campaigns: Sequence[str] = ()) -> tuple[HybridResult, dict[str, Any]]:
    """The hybrid's words and what it was made from (the details the dataset keeps)."""
    items = resolve_items(session, spec.items)
    model, sig, cal_ids = calibrate_rater(
        session, spec.prior, gold=spec.gold, calibration=spec.calibration, dimension=dimension, reported=items,
        levels=[spec.level], disagreement=spec.disagreement,
    )  # fmt: skip
    ids = [i for i in items if i in sig.values]
    prior: dict[int, tuple[float, float, float, float]] = {}
    if ids:
        values = [sig.values[i] for i in ids]
        signals = sig.matrix(ids)
        point, lo, hi = model.interval(values, signals, spec.level)
        tau = model.predictive_sd(values, signals)
        prior = {i: (float(p), float(t), float(a), float(b)) for i, p, t, a, b in zip(ids, point, tau, lo, hi, strict=True)}
    humans, what = human_ratings(session, spec.humans, dimension, campaigns=campaigns)
    humans = {i: h for i, h in humans.items() if i in set(items)}
    dim = session.scalar(select(Dimension).where(Dimension.name == dimension))
    scale = (float(dim.scale_min), float(dim.scale_max)) if dim and dim.scale_min is not None else None
    result = combine(items, prior, humans, level=spec.level, scale=scale)
    details = {
        "method": "precision weighting of a normal prior (the conformally calibrated machine rater) and the human mean; "
        f"per-word human variance shrunk toward the pooled one (nu0 = 4); intervals at {spec.level:.0%}",
        "spec": spec.model_dump(mode="json"), "humans": what, "calibration_items": len(cal_ids),
        "pooled_human_sd": result.pooled_sd, "prior_calibration": model.to_dict(), "notes": result.notes,
        "counts": result.counts(),
    }  # fmt: skip
    return result, details


def _fingerprint(session: Session, spec: Any, dimension: str) -> str:
    """What the hybrid is made from: the spec, the prior's and the humans' ratings, the gold of the calibration words."""
    dim = session.scalar(select(Dimension.id).where(Dimension.name == dimension))
    prior = session.scalar(select(Rater).where(Rater.name == spec.prior))
    q = select(Rating.rater_id, Rating.item_id, Rating.value).where(Rating.dimension_id == dim, Rating.replicate == 0)
    ids = {prior.id} if prior else set()
    names = campaign_names(session, spec.humans)
    if names:
        ids |= {r.id for r in session.scalars(select(Rater).where(Rater.kind == "human")) if r.config and r.config.get("campaign") in names
                and not r.config.get("excluded")}  # fmt: skip
    for name in (spec.humans, spec.gold):
        ds = session.scalar(select(Dataset).where(Dataset.name == name))
        if ds is not None:
            ids |= set(session.scalars(select(Rater.id).where(Rater.dataset_id == ds.id)))
    rows = sorted((r, i, v) for r, i, v in session.execute(q.where(Rating.rater_id.in_(ids or {-1}))))
    members = {s: resolve_items(session, s) for s in (spec.items, spec.calibration) if _exists(session, s)}
    return fingerprint(spec.model_dump(mode="json"), dimension, rows, members)


def _exists(session: Session, name: str) -> bool:
    try:
        resolve_items(session, name)
    except WorkbenchError:
        return False
    return True


def hybrid_action(session: Session, name: str, spec: Any, dimension: str) -> str:
    ds = session.scalar(select(Dataset).where(Dataset.name == name))
    if ds is None:
        return "create"
    return "unchanged" if ds.import_key == _fingerprint(session, spec, dimension) else "update"


def save_hybrid(session: Session, name: str, spec: Any, dimension: str, *, campaigns: Sequence[str] = ()) -> HybridResult:
    """Compute the hybrid and store it as the dataset ``name`` (replacing an earlier one). The caller owns the transaction."""
    ds = session.scalar(select(Dataset).where(Dataset.name == name))
    if ds is not None and not (ds.details or {}).get("hybrid"):
        raise WorkbenchError(f"hybrids.{name}: a dataset of that name is in the store and is not a hybrid: give the hybrid another name.")
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is not None and (ds is None or rater.dataset_id != ds.id):
        raise WorkbenchError(f"hybrids.{name}: a rater of that name is in the store: give the hybrid another name.")
    result, details = compute_hybrid(session, spec, dimension, campaigns=campaigns)
    key = _fingerprint(session, spec, dimension)
    words = {
        str(i): [w.low, w.high, w.human_weight, w.source, w.prior, w.prior_sd, w.human_mean] for i, w in result.words.items()
    }  # fmt: skip
    details["words"] = words
    details["columns"] = list(HYBRID_COLUMNS)
    if ds is None:
        ds = Dataset(name=name, language="en")
        session.add(ds)
    ds.details = {"hybrid": details}
    ds.import_key = key
    ds.citation = f"hybrid of {spec.prior} (machine prior) and {spec.humans} (human ratings)"
    session.flush()
    if rater is None:
        rater = Rater(name=name, kind="norm", dataset_id=ds.id, config={"hybrid": name})
        session.add(rater)
        session.flush()
    dim_id = session.scalar(select(Dimension.id).where(Dimension.name == dimension))
    session.execute(delete(Rating).where(Rating.rater_id == rater.id, Rating.dimension_id == dim_id))
    session.add_all(
        Rating(item_id=i, dimension_id=dim_id, rater_id=rater.id, replicate=0, value=w.value, sd=w.sd, n=w.n_human,
               note=w.source if w.note is None else f"{w.source}: {w.note}")
        for i, w in result.words.items()
    )  # fmt: skip
    bump_generation(session)
    return result


__all__ = ["compute_hybrid", "hybrid_action", "human_ratings", "save_hybrid"]
