"""A rater's full configuration, resolved against the store, and its identity.

The identity of a rater is the hash of everything that decides its ratings:
backend, model (and for a local model the weights' fingerprint), server, the
filled prompt with its few-shot examples, read-out and generation parameters,
the scale; for a baseline, its training items and their gold values. The same
identity resumes; any change makes a new rater, and the old one is kept under
``NAME@HASH`` with its ratings.

How a job runs (concurrency, timeouts, retries, batch sizes) and where the key
comes from are not part of the identity.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.raters.prompts import DEFAULT_TEMPLATE, Prompt, fill_template, format_examples
from workbench.raters.readout import scale_points
from workbench.store.itemsets import gold_values, item_texts, resolve_items, sample_items
from workbench.store.models import Dimension, Rater
from workbench.study.models import RaterSpec

LLM_BACKENDS = ("openai", "openai-batch", "local")
RUN_FIELDS = ("concurrency", "timeout", "max_retries", "batch_size", "poll_seconds", "api_key_env", "items", "price")


@dataclass(frozen=True)
class ResolvedRater:
    """A rater ready to run: its identity, its prompt and how to run it."""

    name: str
    spec: RaterSpec
    dimension: str
    points: tuple[float, ...]
    identity: dict[str, Any]
    prompt: Prompt | None = None
    system: str | None = None
    # baselines: training words and their gold values
    train: list[tuple[str, float]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "llm" if self.spec.backend in LLM_BACKENDS else "model"

    @property
    def hash(self) -> str:
        return identity_hash(self.identity)

    @property
    def scale(self) -> tuple[float, float]:
        return (float(min(self.points)), float(max(self.points)))


def effective_temperature(spec: RaterSpec) -> float:
    """The temperature asked for: as given, else 1 for the samples read-out and 0 otherwise."""
    if spec.temperature is not None:
        return spec.temperature
    return 1.0 if spec.readout == "samples" else 0.0


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read_text_or_file(value: str | None, base_dir: Path) -> str | None:
    """A study value that is either a file (relative to the study) or the text itself."""
    if value is None:
        return None
    if "\n" not in value and len(value) < 300:
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if path.suffix and path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\n")  # the file's last newline is not part of the prompt
    return value


def _dimension(session: Session, name: str) -> Dimension:
    dim = session.scalar(select(Dimension).where(Dimension.name == name))
    if dim is None:
        raise WorkbenchError(f"dimension {name!r} is not in the store: declare it in the study and run `workbench apply`.")
    if dim.scale_min is None or dim.scale_max is None:
        raise WorkbenchError(f"dimension {name!r} has no scale: give it one in the study (scale: [1, 7]).")
    return dim


def _examples(session: Session, spec: RaterSpec, dimension: str, step: float) -> list[tuple[str, float]]:
    fs = spec.few_shot
    assert fs is not None
    gold = gold_values(session, fs.gold, dimension)
    pool = [i for i in resolve_items(session, fs.items) if i in gold]
    if len(pool) < fs.n:
        raise WorkbenchError(
            f"few_shot: {fs.items!r} has only {len(pool)} items with a {fs.gold!r} rating; fewer than n = {fs.n}."
        )
    chosen = sample_items(session, pool, fs.n, fs.seed)
    texts = item_texts(session, chosen)
    return [(texts[i], gold[i]) for i in chosen]


def resolve_rater(session: Session, name: str, spec: RaterSpec, *, study_dimensions: list[str], base_dir: Path,
                  weights_fingerprint: str | None = None) -> ResolvedRater:
    """Resolve a study's rater against the store: dimension, prompt, examples, training data, identity."""
    dim_name = spec.dimension
    if dim_name is None:
        if len(study_dimensions) != 1:
            raise WorkbenchError(f"raters.{name}: the study has {len(study_dimensions)} dimensions: say which one with dimension:.")
        dim_name = study_dimensions[0]
    dim = _dimension(session, dim_name)
    step = dim.scale_step or 1.0
    points = scale_points(dim.scale_min, dim.scale_max, step)
    identity: dict[str, Any] = {
        "backend": spec.backend,
        "dimension": dim_name,
        "scale": [dim.scale_min, dim.scale_max, step],
    }
    identity.update(spec.model_dump(exclude=set(RUN_FIELDS) | {"backend", "dimension", "prompt", "system", "few_shot"}, exclude_none=True))
    prompt = system = None
    train: list[tuple[str, float]] = []
    if spec.backend in LLM_BACKENDS:
        for baseline_only in ("train", "gold", "alpha", "language"):
            identity.pop(baseline_only, None)
        examples = _examples(session, spec, dim_name, step) if spec.few_shot else []
        template = read_text_or_file(spec.prompt, base_dir) or DEFAULT_TEMPLATE
        if examples and "{examples}" not in template:
            raise WorkbenchError(f"raters.{name}: few_shot is set but the prompt has no {{examples}} field.")
        prompt = fill_template(
            template,
            where=f"raters.{name}.prompt",
            dimension=dim_name,
            scale=(dim.scale_min, dim.scale_max),
            labels=dim.labels,
            instructions=read_text_or_file(dim.instructions, base_dir),
            examples=format_examples(examples, spec.few_shot.format, round_to=step if spec.few_shot.round else None)
            if spec.few_shot
            else "",
        )
        system = read_text_or_file(spec.system, base_dir)
        if spec.readout != "samples":
            identity.pop("samples", None)
        if spec.readout != "expected":
            identity.pop("top_logprobs", None)
        identity["temperature"] = effective_temperature(spec)
        identity["prompt"] = prompt.text
        identity["system"] = system
        if spec.backend == "local":
            identity["model"] = spec.model or "gemma3-270m"
            identity["weights"] = weights_fingerprint
    else:
        for llm_only in ("readout", "temperature", "max_tokens", "top_logprobs", "samples", "min_mass", "base_url"):
            identity.pop(llm_only, None)
        if spec.backend == "embedding":
            identity["model"] = spec.model or "all-MiniLM-L6-v2"
            identity["weights"] = weights_fingerprint
        if spec.train:
            gold = gold_values(session, spec.gold, dim_name)
            ids = [i for i in resolve_items(session, spec.train) if i in gold]
            if len(ids) < 10:
                raise WorkbenchError(f"raters.{name}: train {spec.train!r} has {len(ids)} items with a {spec.gold!r} rating; need at least 10.")
            texts = item_texts(session, ids)
            train = sorted((texts[i], gold[i]) for i in ids)
            identity["train_data"] = hashlib.sha256(json.dumps(train).encode()).hexdigest()
    return ResolvedRater(name, spec, dim_name, tuple(points), identity, prompt, system, train)


def rater_row(session: Session, resolved: ResolvedRater) -> Rater:
    """The store's rater for this identity: the existing one (resume), or a new one.

    When the name is taken by a different configuration, that rater is renamed
    NAME@HASH8 (its ratings kept) and a new one takes the name.
    """
    digest = resolved.hash
    current = session.scalar(select(Rater).where(Rater.name == resolved.name))
    if current is not None:
        if current.config_hash == digest:
            return current
        if current.kind in ("norm", "human"):
            raise WorkbenchError(f"rater name {resolved.name!r} is taken by a {current.kind} rater: give the rater another name.")
        current.name = f"{resolved.name}@{(current.config_hash or 'unknown')[:8]}"
        session.flush()
    archived = session.scalar(select(Rater).where(Rater.config_hash == digest, Rater.name.like(f"{resolved.name}@%")))
    if archived is not None:  # back to an earlier configuration: it resumes under its name
        archived.name = resolved.name
        session.flush()
        return archived
    rater = Rater(name=resolved.name, kind=resolved.kind, config=resolved.identity, config_hash=digest)
    session.add(rater)
    session.flush()
    return rater
