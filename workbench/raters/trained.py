"""What the baselines share: an optional training set (an item set) with gold values (a dataset).

The training words and their gold values are read from the store when the
rater is resolved; their hash enters the rater's identity, so a different
training set is a different rater.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.names import NAME_PATTERN
from workbench.raters.backend import RaterBackend, RaterOptions, ResolvedRater
from workbench.store.itemsets import gold_values, item_texts, resolve_items

MIN_TRAINING_ITEMS = 10


class TrainedOptions(RaterOptions):
    """Options of a baseline fitted to gold values."""

    train: str | None = Field(None, pattern=NAME_PATTERN, description="item set the baseline is fitted on")
    gold: str | None = Field(None, pattern=NAME_PATTERN, description="dataset whose ratings the baseline is fitted to")

    @model_validator(mode="after")
    def _together(self):
        if bool(self.train) != bool(self.gold):
            raise ValueError("give train and gold together")
        return self


class TrainedBackend(RaterBackend):
    """A baseline: reads its training set when resolved. Subclasses set Options and implement run."""

    Options: ClassVar[type[RaterOptions]] = TrainedOptions
    kind = "model"

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        spec = rater.spec
        assert isinstance(spec, TrainedOptions)
        if not spec.train:
            return rater
        gold = gold_values(session, spec.gold, rater.dimension)
        ids = [i for i in resolve_items(session, spec.train) if i in gold]
        if len(ids) < MIN_TRAINING_ITEMS:
            raise WorkbenchError(
                f"raters.{rater.name}: train {spec.train!r} has {len(ids)} items with a {spec.gold!r} rating; "
                f"need at least {MIN_TRAINING_ITEMS}."
            )
        texts = item_texts(session, ids)
        train = sorted((texts[i], gold[i]) for i in ids)
        digest = hashlib.sha256(json.dumps(train).encode()).hexdigest()
        return replace(rater, train=train, identity=dict(rater.identity, train_data=digest))
