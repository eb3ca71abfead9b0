"""The local backend: an open-weight model in this process (Gemma 3 270M by default), exact distributions.

The model reads every vocabulary token's probability, so the expected
read-out is exact (not a top-20). Items go through in chunks; each chunk's
ratings reach the writer, which commits them, so an interrupted run keeps
every finished chunk. The model itself is in raters/local/model.py, its files
in raters/local/files.py. Registered in raters/backends/local.py.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from workbench.raters.backend import RaterOptions, ResolvedRater, RunJob, in_chunks
from workbench.raters.llm import LLMBackend, LLMOptions, effective_max_tokens
from workbench.raters.local.files import DEFAULT_MODEL, is_adapter
from workbench.raters.readout import greedy_from_answer, parsed_from_answer

ITEMS_PER_CALL = 64  # items handed to the model at once (at least batch_size); the writer commits after each call


class LocalOptions(LLMOptions):
    """Options of the local backend."""

    model: str = Field(DEFAULT_MODEL, description=f"{DEFAULT_MODEL} (the packaged GGUF), a .gguf file or a model folder")  # type: ignore[assignment]
    readout: Literal["expected", "greedy", "parsed"] = Field(  # type: ignore[assignment]
        "expected", description="expected (exact, from the full next-token distribution), greedy or parsed"
    )
    batch_size: int = Field(32, ge=1, le=1024, description="items per forward pass")

    run_fields: ClassVar[frozenset[str]] = RaterOptions.run_fields | {"batch_size"}


class LocalBackend(LLMBackend):
    """A model in torch in this process: options, identity (an adapter folder relative to the study), run."""

    Options: ClassVar[type[RaterOptions]] = LocalOptions

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        rater = super().resolve(session, rater, base_dir=base_dir)
        # the identity keeps the values these options had when every backend took every option, so a
        # local rater made before keeps its identity (and its ratings): no system prompt, greedy decoding
        legacy: dict[str, Any] = {"system": None, "temperature": 0.0}
        if rater.spec.readout == "expected":
            legacy["top_logprobs"] = 20
        identity = {**rater.identity, **legacy}
        if is_adapter(rater.spec.model):
            # a tuned model is its folder relative to the study (its weights are in identity["weights"]: the
            # base's and the adapter's fingerprints), so a study moved or cloned elsewhere keeps its ratings
            identity["model"] = (
                "adapter:" + Path(os.path.relpath(Path(rater.spec.model).expanduser().resolve(), base_dir.resolve())).as_posix()
            )
        return replace(rater, identity=identity)

    def low_mass_cause(self, rater: ResolvedRater) -> str | None:
        # run() ends the prompt with the space before the number itself: the prompt's ending is not the cause
        return "the model does not answer this prompt with a scale point: show it examples (few_shot) or change the prompt"

    def weights_fingerprint(self, options: Any) -> str:
        from workbench.raters.local.files import weights_fingerprint

        return weights_fingerprint(options.model)

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        from workbench.raters.backend import Outcome
        from workbench.raters.local.adapter import load_model

        spec = rater.spec
        model = load_model(spec.model)
        assert rater.prompt is not None
        prefix, _ = rater.prompt.split("")
        # SentencePiece writes " 5" as "▁" + "5": read the number after "Rating: ", as the examples show it
        space = "" if rater.prompt.text[-1:].isspace() or spec.readout != "expected" else " "
        for ids, words in in_chunks(texts, max(ITEMS_PER_CALL, spec.batch_size)):
            suffixes = [rater.prompt.split(w)[1] + space for w in words]
            started = time.perf_counter()
            if spec.readout == "expected":
                readouts = model.rate_expected(prefix, suffixes, rater.points, min_mass=spec.min_mass, batch_size=spec.batch_size)
            else:
                answers = model.generate_greedy(prefix, suffixes, max_new_tokens=effective_max_tokens(spec), batch_size=spec.batch_size)
                read = greedy_from_answer if spec.readout == "greedy" else parsed_from_answer
                readouts = [read(a, rater.points) for a in answers]
            each_ms = (time.perf_counter() - started) * 1000 / max(len(words), 1)
            for item_id, word, suffix, readout in zip(ids, words, suffixes, readouts, strict=True):
                job.writer.add(Outcome(item_id, readout, calls=[local_call(model, spec, prefix + suffix, word, readout, each_ms)]))
            job.report()
        return "completed"


def local_call(model: Any, spec: LocalOptions, text: str, word: str, readout: Any, latency_ms: float) -> dict[str, Any]:
    """The call log row of one item: the exact text the model read, and what it answered.

    The model reads a batch at once, so the latency is the batch's time shared
    out over its items. ``response`` holds the model's name and weights
    fingerprint (the local model's version), the answer and the distribution.
    """
    request = {"model": spec.model, "readout": spec.readout, "prompt": text, "item": word}
    if spec.readout != "expected":
        request["max_tokens"] = effective_max_tokens(spec)
    response = {"model": model.name, "weights": model.fingerprint, "answer": readout.answer, "value": readout.value,
                "mass": readout.mass, "distribution": readout.distribution}  # fmt: skip
    return {
        "attempt": 1, "status": "ok", "request": request, "response": json.dumps(response, ensure_ascii=False),
        "latency_ms": round(latency_ms, 3),
    }  # fmt: skip
