"""backend: wordfreq — log word frequency (Zipf), mapped onto the scale when given a training set.

The smallest backend: copy this module to add one (see "Adding a backend" in the README).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from workbench.raters.backend import (
    Outcome,
    RaterOptions,
    ResolvedRater,
    RunJob,
    in_chunks,
    register_backend,
)
from workbench.raters.readout import Readout
from workbench.raters.trained import TrainedBackend, TrainedOptions


class WordFreqOptions(TrainedOptions):
    """Options of the wordfreq baseline."""

    language: str = Field("en", description="language of the items")


@register_backend("wordfreq")
class WordFrequency(TrainedBackend):
    """Zipf frequency from the wordfreq package; with train and gold, a least-squares line onto the scale."""

    Options: ClassVar[type[RaterOptions]] = WordFreqOptions

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        from workbench.raters import baselines

        language = rater.spec.language
        fitted = None
        if rater.train:
            words, values = zip(*rater.train, strict=True)
            fitted = baselines.fit_frequency_baseline(words, values, language=language, clip=rater.scale)
        for ids, words in in_chunks(texts, 2048):
            unknown = set(baselines.unknown_words(words, language=language))
            if fitted is not None:
                values, note = fitted.predict(words), None
            else:
                values = baselines.word_frequency(words, language=language)
                note = "Zipf frequency, not on the rating scale (give the rater train and gold to map it)"
            for item_id, word, value in zip(ids, words, values, strict=True):
                reason = f"unknown to wordfreq ({language})" if word in unknown else note
                readout = Readout(value=float(value), reason=reason)
                job.writer.add(Outcome(item_id, readout))
            job.report()
        return "completed"
