"""What language-model raters share: a prompt with few-shot examples, a read-out, generation options.

:class:`LLMOptions` are the options every language-model backend takes;
:class:`SamplingOptions` add the ones a server samples with (temperature, top
logprobs, several answers). :class:`LLMBackend` fills the prompt against the
store (dimension, scale, labels, instructions, few-shot examples drawn from an
item set with their gold values) and puts the filled text, not the template,
into the rater's identity.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.files import read_text_or_file
from workbench.names import NAME_PATTERN
from workbench.raters.backend import RaterBackend, RaterOptions, ResolvedRater
from workbench.raters.prompts import DEFAULT_TEMPLATE, fill_template, format_examples
from workbench.store.itemsets import (
    gold_values,
    item_texts,
    resolve_items,
    sample_items,
)
from workbench.store.models import Dimension

Readouts = Literal["expected", "greedy", "parsed", "samples"]


class FewShotSpec(BaseModel):
    """Few-shot examples: items from a set, shown with their gold values."""

    model_config = ConfigDict(extra="forbid")

    items: str = Field(pattern=NAME_PATTERN, description="item set or dataset the examples are drawn from")
    gold: str = Field(pattern=NAME_PATTERN, description="dataset whose ratings are shown as the examples' answers")
    n: int = Field(5, ge=1, le=200, description="number of examples")
    seed: int = Field(0, description="seed of the draw")
    format: str = Field(
        'Word: "{item}"\nRating: {value}',
        description="how one example is written; {item} and {value} are filled in",
    )
    round: bool = Field(True, description="round gold values to the nearest scale point (so answers are scale tokens)")


class LLMOptions(RaterOptions):
    """Options of every language-model backend."""

    model: str | None = Field(None, description="the model")
    prompt: str | None = Field(
        None,
        description="prompt template, a file relative to the study or the text; fills {item}, {examples}, "
        "{dimension}, {scale_min}, {scale_max}, {labels}, {instructions}",
    )
    few_shot: FewShotSpec | None = None
    readout: Readouts = Field("expected", description="how the answer becomes a rating")
    max_tokens: int | None = Field(
        None, ge=1, le=4096,
        description="tokens to generate per answer; default: what the read-out reads (1 for expected, which reads "
        "the first token's logprobs; 5 for greedy, parsed and samples, which read the answer text)",
    )  # fmt: skip
    min_mass: float = Field(0.5, ge=0, le=1, description="flag items with less probability mass on scale tokens")

    derived_fields: ClassVar[frozenset[str]] = frozenset({"prompt", "few_shot"})


class SamplingOptions(LLMOptions):
    """Options of a backend that samples from a server: temperature, top logprobs, several answers."""

    temperature: float | None = Field(None, ge=0, le=2, description="default 0, or 1 for the samples read-out")
    top_logprobs: int = Field(20, ge=1, le=20, description="alternatives per answer token (expected read-out)")
    samples: int = Field(10, ge=2, le=128, description="answers per item for the samples read-out")


IDENTITY_MAX_TOKENS = 5  # the max_tokens a rater's identity records when none is given (the old default)


def effective_max_tokens(spec: Any) -> int:
    """The tokens asked for: as given, else what the read-out reads (the expected read-out: the first token)."""
    if spec.max_tokens is not None:
        return spec.max_tokens
    return 1 if spec.readout == "expected" else 5


def effective_temperature(spec: Any) -> float:
    """The temperature asked for: as given, else 1 for the samples read-out and 0 otherwise."""
    if spec.temperature is not None:
        return spec.temperature
    return 1.0 if spec.readout == "samples" else 0.0


def _examples(session: Session, spec: LLMOptions, dimension: str) -> list[tuple[str, float]]:
    fs = spec.few_shot
    assert fs is not None
    gold = gold_values(session, fs.gold, dimension)
    pool = [i for i in resolve_items(session, fs.items) if i in gold]
    if len(pool) < fs.n:
        raise WorkbenchError(f"few_shot: {fs.items!r} has only {len(pool)} items with a {fs.gold!r} rating; fewer than n = {fs.n}.")
    chosen = sample_items(session, pool, fs.n, fs.seed)
    texts = item_texts(session, chosen)
    return [(texts[i], gold[i]) for i in chosen]


class LLMBackend(RaterBackend):
    """A language model rating from a filled prompt. Subclasses set Options and implement run."""

    Options: ClassVar[type[RaterOptions]] = LLMOptions
    kind = "llm"

    def low_mass_cause(self, rater: ResolvedRater) -> str | None:
        """The prompt is sent as text: a prompt that ends right after "Rating:" leaves the space to the model."""
        text = rater.prompt.text if rater.prompt is not None else ""
        if text[-1:].isspace():
            return "the model does not answer this prompt with a scale point: show it examples (few_shot) or change the prompt"
        last_line = text.rsplit("\n", 1)[-1][-30:]
        return (
            f"the prompt ends with {last_line!r}, without the space before the answer: tokenizers such as Gemma's "
            "write that space as a token of its own, so the first token of the answer is the space, not the number. "
            "End the prompt (and the few-shot examples' format) with 'Rating: ' and a space"
        )

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        spec = rater.spec
        assert isinstance(spec, LLMOptions)
        lo, hi, step = rater.identity["scale"]
        dim = session.scalar(select(Dimension).where(Dimension.name == rater.dimension))  # resolve_rater checked it
        examples = _examples(session, spec, rater.dimension) if spec.few_shot else []
        template = read_text_or_file(spec.prompt, base_dir) or DEFAULT_TEMPLATE
        if examples and "{examples}" not in template:
            raise WorkbenchError(f"raters.{rater.name}: few_shot is set but the prompt has no {{examples}} field.")
        prompt = fill_template(
            template,
            where=f"raters.{rater.name}.prompt",
            dimension=rater.dimension,
            scale=(lo, hi),
            labels=dim.labels,
            instructions=read_text_or_file(dim.instructions, base_dir),
            examples=format_examples(examples, spec.few_shot.format, round_to=step if spec.few_shot.round else None)
            if spec.few_shot
            else "",
        )
        identity = dict(rater.identity)
        if spec.readout != "samples":
            identity.pop("samples", None)
        if spec.readout != "expected":
            identity.pop("top_logprobs", None)
        # max_tokens enters the identity as it did before its default followed the read-out (5 unless given),
        # so a rater made before keeps its identity and its (paid-for) ratings; the expected read-out now
        # asks for 1 token, which carries the same first-token logprobs
        identity["max_tokens"] = spec.max_tokens if spec.max_tokens is not None else IDENTITY_MAX_TOKENS
        if isinstance(spec, SamplingOptions):
            identity["temperature"] = effective_temperature(spec)
        identity["prompt"] = prompt.text
        return replace(rater, identity=identity, prompt=prompt)
