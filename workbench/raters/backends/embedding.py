"""backend: embedding — ridge regression from sentence embeddings to the gold values of a training set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy.orm import Session

from workbench.names import NAME_PATTERN
from workbench.raters.backend import (
    Outcome,
    RaterOptions,
    ResolvedRater,
    RunJob,
    in_chunks,
    register_backend,
)
from workbench.raters.baselines import DEFAULT_EMBEDDING_MODEL
from workbench.raters.readout import Readout
from workbench.raters.trained import TrainedBackend, TrainedOptions


class EmbeddingOptions(TrainedOptions):
    """Options of the embedding baseline: a training set is required."""

    train: str = Field(pattern=NAME_PATTERN, description="item set the baseline is fitted on")  # type: ignore[assignment]
    gold: str = Field(pattern=NAME_PATTERN, description="dataset whose ratings the baseline is fitted to")  # type: ignore[assignment]
    model: str = Field(DEFAULT_EMBEDDING_MODEL, description="a packaged sentence-embedding model")
    alpha: float | None = Field(None, gt=0, description="ridge penalty; default chosen by cross-validation")


@register_backend("embedding")
class EmbeddingBaseline(TrainedBackend):
    """Sentence embeddings of each item, and a ridge regression fitted on the training items."""

    Options: ClassVar[type[RaterOptions]] = EmbeddingOptions

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        rater = super().resolve(session, rater, base_dir=base_dir)
        # kept from when every backend took every option (language defaulted to "en"), so an embedding
        # rater made before keeps its identity and its ratings
        return replace(rater, identity={**rater.identity, "language": "en"})

    def weights_fingerprint(self, options: Any) -> str:
        from workbench.raters.baselines import embedding_fingerprint

        return embedding_fingerprint(options.model)

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        from workbench.raters import baselines

        spec = rater.spec
        words, values = zip(*rater.train, strict=True)
        fitted = baselines.fit_embedding_baseline(words, values, model=spec.model, alpha=spec.alpha, clip=rater.scale)
        for ids, chunk in in_chunks(texts, 2048):
            for item_id, value in zip(ids, fitted.predict(chunk), strict=True):
                readout = Readout(value=float(value))
                job.writer.add(Outcome(item_id, readout))
            job.report()
        return "completed"
