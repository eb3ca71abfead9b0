"""Raters that run in this process: the local open-weight model and the baselines.

Items go through in chunks; each chunk's ratings are handed to the writer,
which commits them, so an interrupted run keeps every finished chunk.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.jobs.writer import JobWriter, Outcome
from workbench.raters.config import ResolvedRater
from workbench.raters.readout import Readout, greedy_from_answer, parsed_from_answer

CHUNK = 64


def _chunks(texts: dict[int, str], size: int):
    ids = list(texts)
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield part, [texts[i] for i in part]


def run_local(resolved: ResolvedRater, texts: dict[int, str], writer: JobWriter,
              progress: Callable[[int], None] | None) -> str:
    """Rate with the local model: expected values from the full next-token distribution, or greedy answers."""
    from workbench.raters.local import LocalModel

    spec = resolved.spec
    if spec.readout == "samples":
        from workbench.errors import WorkbenchError

        raise WorkbenchError(f"raters.{resolved.name}: the local backend reads expected values exactly; use readout expected, greedy or parsed.")
    model = LocalModel.load(spec.model)
    assert resolved.prompt is not None
    prefix, _ = resolved.prompt.split("")
    # SentencePiece writes " 5" as "▁" + "5": read the number after "Rating: ", as the examples show it
    space = "" if resolved.prompt.text[-1:].isspace() or spec.readout != "expected" else " "
    for ids, words in _chunks(texts, max(CHUNK, spec.batch_size)):
        suffixes = [resolved.prompt.split(w)[1] + space for w in words]
        if spec.readout == "expected":
            readouts = model.rate_expected(prefix, suffixes, resolved.points, min_mass=spec.min_mass, batch_size=spec.batch_size)
        else:
            answers = model.generate_greedy(prefix, suffixes, max_new_tokens=spec.max_tokens, batch_size=spec.batch_size)
            read = greedy_from_answer if spec.readout == "greedy" else parsed_from_answer
            readouts = [read(a, resolved.points) for a in answers]
        for item_id, readout in zip(ids, readouts, strict=True):
            writer.add(Outcome(item_id, readout))
        if progress:
            progress(writer.done)
    return "completed"


def run_baseline(resolved: ResolvedRater, texts: dict[int, str], writer: JobWriter,
                 progress: Callable[[int], None] | None) -> str:
    """Rate with a baseline: log word frequency (mapped onto the scale when trained), or ridge on embeddings."""
    from workbench.raters import baselines

    spec = resolved.spec
    words = [w for w, _ in resolved.train]
    values = [v for _, v in resolved.train]
    if spec.backend == "embedding":
        fitted = baselines.fit_embedding_baseline(words, values, model=spec.model or "all-MiniLM-L6-v2", alpha=spec.alpha, clip=resolved.scale)
    elif resolved.train:
        fitted = baselines.fit_frequency_baseline(words, values, language=spec.language, clip=resolved.scale)
    else:
        fitted = None
    for ids, chunk in _chunks(texts, 2048):
        unknown = set(baselines.unknown_words(chunk, language=spec.language)) if spec.backend == "wordfreq" else set()
        if fitted is not None:
            predictions = fitted.predict(chunk)
            note = None
        else:
            predictions = baselines.word_frequency(chunk, language=spec.language)
            note = "Zipf frequency, not on the rating scale (give the rater train and gold to map it)"
        for item_id, word, value in zip(ids, chunk, predictions, strict=True):
            why = f"unknown to wordfreq ({spec.language})" if word in unknown else note
            writer.add(Outcome(item_id, Readout(float(value), None, None, False, None, why)))
        if progress:
            progress(writer.done)
    return "completed"
