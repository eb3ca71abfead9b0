"""backend: stack — one model over named raters' values and uncertainty signals, fitted on gold training words.

    raters:
      stack:
        backend: stack
        raters: [lora, embedding, frequency]   # raters already in the store, on the same dimension
        train: ft.train                        # the training words ...
        gold: glasgow                          # ... and the gold they are fitted to

The stack is a rater like any other. Its identity holds its components'
identities and a hash of the training words' gold and component values, so a
component rated anew (or a different training set) makes a new stack. Its
training words are rated by cross-fitting (workbench/raters/stack.py): no
training word gets a value from a model that saw it. The job's configuration
records the fitted coefficients. A word some component has no value for
fails (the next run tries it again, once that component has rated it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.names import NAME_PATTERN
from workbench.raters.backend import Outcome, RaterOptions, ResolvedRater, RunJob, register_backend
from workbench.raters.readout import Readout
from workbench.raters.stack import Component, cross_fit, feature_matrix, fold_of, usable_features
from workbench.raters.trained import TrainedBackend
from workbench.store.itemsets import gold_values, item_texts, resolve_items
from workbench.store.models import Dimension, Job, Rater, Rating
from workbench.store.uncertainty import spread


class StackOptions(RaterOptions):
    """Options of a stack: the component raters, the training words and their gold."""

    raters: list[str] = Field(min_length=1, max_length=50, description="the raters combined (each rated first)")
    train: str = Field(pattern=NAME_PATTERN, description="item set the stack is fitted on")
    gold: str = Field(pattern=NAME_PATTERN, description="dataset whose ratings the stack is fitted to")
    folds: int = Field(5, ge=2, le=50, description="folds of the cross-fitting on the training words")
    seed: int = Field(0, description="seed of the fold assignment")

    @field_validator("raters")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("name each rater once")
        return v


def _columns(session: Session, raters: list[str], dimension: str, items: list[int]) -> tuple[dict[str, Component], np.ndarray]:
    """The components' columns for these items, and a mask of the items every component has a value for."""
    dim = session.scalar(select(Dimension.id).where(Dimension.name == dimension))
    comps: dict[str, Component] = {}
    have = np.ones(len(items), dtype=bool)
    pos = {item: k for k, item in enumerate(items)}
    for name in raters:
        row = session.scalar(select(Rater).where(Rater.name == name))
        values = np.full(len(items), np.nan)
        spreads = np.full(len(items), np.nan)
        unsure = np.full(len(items), np.nan)
        if row is not None:
            q = select(Rating.item_id, Rating.value, Rating.distribution, Rating.mass).where(
                Rating.rater_id == row.id, Rating.dimension_id == dim, Rating.replicate == 0, Rating.value.is_not(None)
            )
            for item, value, dist, mass in session.execute(q):
                k = pos.get(item)
                if k is None:
                    continue
                values[k] = float(value)
                s = spread(dist)
                spreads[k] = np.nan if s is None else s
                unsure[k] = np.nan if mass is None else 1.0 - float(mass)
        have &= np.isfinite(values)
        comps[name] = Component(values, spreads if np.isfinite(spreads).any() else None, unsure if np.isfinite(unsure).any() else None)
    return comps, have


@register_backend("stack")
class Stack(TrainedBackend):
    """Ridge regression over the component raters' values and signals, cross-fitted on the training words."""

    Options: ClassVar[type[RaterOptions]] = StackOptions
    rates_from_raters = True

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        from dataclasses import replace

        spec = rater.spec
        assert isinstance(spec, StackOptions)
        if rater.name in spec.raters:
            raise WorkbenchError(f"raters.{rater.name}: a stack cannot take itself as a component.")
        hashes = {}
        for name in spec.raters:
            row = session.scalar(select(Rater).where(Rater.name == name))
            if row is None or row.kind not in ("llm", "model"):
                raise WorkbenchError(
                    f"raters.{rater.name}: component {name!r} is not a rater in the store: rate it first (`workbench rate {name}`)."
                )
            hashes[name] = row.config_hash
        gold = gold_values(session, spec.gold, rater.dimension)
        ids = [i for i in resolve_items(session, spec.train) if i in gold]
        comps, have = _columns(session, spec.raters, rater.dimension, ids)
        ids = [i for i, ok in zip(ids, have, strict=True) if ok]
        texts = item_texts(session, ids)
        # the digest: which words, their gold, and what each component said about them
        kept = [k for k, ok in enumerate(have) if ok]
        rows = sorted((texts[i], gold[i], [float(comps[n].values[k]) for n in spec.raters]) for i, k in zip(ids, kept, strict=True))
        digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
        return replace(rater, train=[(t, g) for t, g, _ in rows], identity=dict(rater.identity, components=hashes, train_data=digest))

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        spec = rater.spec
        with Session(job.engine) as s:
            gold = gold_values(s, spec.gold, rater.dimension)
            train_ids = [i for i in resolve_items(s, spec.train) if i in gold]
            comps, have = _columns(s, spec.raters, rater.dimension, train_ids)
            train_ids = [i for i, ok in zip(train_ids, have, strict=True) if ok]
            for c in comps.values():
                for attr in ("values", "spread", "unsure_mass"):
                    col = getattr(c, attr)
                    if col is not None:
                        setattr(c, attr, col[have])
            names, X = feature_matrix(comps)
            use = usable_features(names, X)
            names, X = feature_matrix(comps, use)
            y = np.array([gold[i] for i in train_ids])
            # the training words in text order, so the folds do not depend on the ids the store gave them
            train_texts = item_texts(s, train_ids)
            order = sorted(range(len(train_ids)), key=lambda k: train_texts[train_ids[k]])
            train_ids = [train_ids[k] for k in order]
            X, y = X[order], y[order]
            oof, model, fold_models = cross_fit(names, X, y, folds=spec.folds, seed=spec.seed, clip=rater.scale)
            fold = fold_of(len(y), spec.folds, spec.seed)
            targets = list(texts)
            tcomps, thave = _columns(s, spec.raters, rater.dimension, targets)
        _, T = feature_matrix(tcomps, use)
        means = np.nanmean(X, axis=0)
        T = np.where(np.isfinite(T), T, means)  # a signal missing for a word: the training words' mean
        train_pos = {item: k for k, item in enumerate(train_ids)}
        preds = model.predict(T)
        for k, item in enumerate(targets):
            if not thave[k]:
                lacking = [n for n in spec.raters if not np.isfinite(tcomps[n].values[k])]
                job.writer.add(
                    Outcome(item, None, error=f"no value from {', '.join(lacking)} for this word: rate it, then run the stack again")
                )
                continue
            t = train_pos.get(item)
            if t is not None:
                value = float(oof[t])
                reason = f"training word: cross-fitted (fold {int(fold[t]) + 1} of {spec.folds})"
            else:
                value, reason = float(preds[k]), None
            job.writer.add(Outcome(item, Readout(value=value, reason=reason)))
        job.report()
        with Session(job.engine) as s, s.begin():
            row = s.get(Job, job.job_id)
            config = dict(row.config or {}) if row else {}
            config["stack"] = {
                "model": model.to_dict(), "training_words": len(y), "folds": [m.to_dict() for m in fold_models],
                "out_of_fold_spearman": _spearman(oof, y),
            }  # fmt: skip
            s.execute(update(Job).where(Job.id == job.job_id).values(config=config))
        return "completed"


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    rho = spearmanr(a, b)[0]
    return None if not np.isfinite(rho) else round(float(rho), 4)
