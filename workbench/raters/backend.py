"""The one shape every rater backend has, and the registry that finds a backend by name.

A backend is one class, registered under the name a study file uses::

    @register_backend("wordfreq")
    class WordFrequency(RaterBackend):
        Options = WordFreqOptions      # what a rater entry may say (extra="forbid")
        kind = "model"                 # the store's rater kind: "llm" or "model"

        def run(self, rater, texts, job): ...

The job runner never asks which backend it has: it calls the methods below.
Only ``Options`` and ``run`` are required; the rest have defaults that do
nothing. The built-in backends are the modules of ``workbench.raters.backends``
(imported on the first look-up), then the plugins of the entry-point group
``workbench.backends`` (workbench/plugins.py); a backend defined anywhere else
registers itself when its module is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import WorkbenchError
from workbench.names import NAME_PATTERN
from workbench.plugins import BACKENDS, Registry

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from workbench.raters.pricing import Rate
    from workbench.raters.prompts import Prompt
    from workbench.raters.readout import Readout

Name = str


class RaterOptions(BaseModel):
    """What every rater entry may say, whatever its backend. A backend's Options extend this."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(description="the backend that rates: see `workbench validate` or the README for the list")
    dimension: str | None = Field(None, pattern=NAME_PATTERN, description="the dimension rated (default: the study's only dimension)")
    items: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="item set, dataset or word list to rate, or all: every item with a gold rating on the dimension "
        "(the default, refused above 1,000 items unless written out)",
    )

    @property
    def model_name(self) -> str | None:
        """The model this rater uses, for messages (None for a backend without one)."""
        model = getattr(self, "model", None)
        return str(model) if model is not None else None

    # options that say how a job runs, not what it rates: kept out of the rater's identity, recorded on the job
    run_fields: ClassVar[frozenset[str]] = frozenset({"items"})
    # options that enter the identity through what they produce (a filled prompt, a training set's hash)
    derived_fields: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class ResolvedRater:
    """A rater ready to run: its identity, its prompt and how to run it."""

    name: str
    spec: RaterOptions  # the backend's Options
    dimension: str
    points: tuple[float, ...]
    identity: dict[str, Any]
    prompt: Prompt | None = None
    system: str | None = None
    # baselines: training words and their gold values
    train: list[tuple[str, float]] = field(default_factory=list)

    @property
    def backend(self) -> RaterBackend:
        return get_backend(self.spec.backend)

    @property
    def kind(self) -> str:
        return self.backend.kind

    @property
    def hash(self) -> str:
        return identity_hash(self.identity)

    @property
    def scale(self) -> tuple[float, float]:
        return (float(min(self.points)), float(max(self.points)))


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Outcome:
    """What became of one item: a read-out (possibly with no value), or a failure after retries."""

    item_id: int
    readout: Readout | None
    error: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replicate: int = 0


class Writer(Protocol):
    """Where a backend's outcomes go (the job writer commits them in small batches)."""

    rater_id: int
    dimension_id: int

    def add(self, outcome: Outcome) -> None: ...

    def finish(self, status: str, error: str | None = None) -> None: ...

    @property
    def counts(self) -> dict[str, Any]: ...

    @property
    def done(self) -> int: ...


class StillWaiting(WorkbenchError):
    """Work sent upstream (a batch) could not be followed: the server stayed away or refused the key. The job
    is left with ``status`` (``submitted``: the next run picks the work up instead of paying for it again)."""

    def __init__(self, message: str, status: str = "submitted") -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RunJob:
    """The job a backend's ``run`` works for: where results go, and what the runner was asked."""

    engine: Engine
    job_id: int
    writer: Writer
    progress: Callable[[int], None] | None = None  # called with the number of items done so far
    backoff_base: float = 1.0  # seconds of the first retry's backoff (tests make it small)
    # a writer for another job of the same rater (a batch left waiting by an earlier run)
    writer_for: Callable[[int], Writer] | None = None

    def report(self) -> None:
        if self.progress:
            self.progress(self.writer.done)


@dataclass
class Estimate:
    """A dry run's estimate: requests, tokens and (when the price is known) cost."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None


class RaterBackend:
    """One way of rating items. Subclass it, set ``Options``, implement ``run`` and register it."""

    name: ClassVar[str] = ""  # set by @register_backend
    Options: ClassVar[type[RaterOptions]] = RaterOptions
    kind: ClassVar[str] = "model"  # the store's rater kind: "llm" (a language model) or "model" (any other predictor)
    # True when a run with no items left may still have work: a batch an earlier run left waiting
    picks_up_waiting_work: ClassVar[bool] = False
    # True when each request may cost money (a hosted API): `workbench plan` shows the estimated cost
    bills: ClassVar[bool] = False
    # True when the backend rates from other raters' ratings (a stack): apply runs it after the other raters
    # and the fine-tunes
    rates_from_raters: ClassVar[bool] = False

    def weights_fingerprint(self, options: Any) -> str | None:
        """A cheap identity of the weights the backend rates with (enters the rater identity); None: no local weights."""
        return None

    def resolve(self, session: Session, rater: ResolvedRater, *, base_dir: Path) -> ResolvedRater:
        """Complete a rater against the store (prompt, examples, training data) and add to its identity."""
        return rater

    def check(self, rater: ResolvedRater) -> None:
        """Refuse, before anything is sent or stored, a configuration this backend cannot rate."""

    def price(self, rater: ResolvedRater) -> Rate | None:
        """Price per token, for the job's cost; None when the backend costs nothing (or the price is unknown)."""
        return None

    def estimate(self, rater: ResolvedRater, texts: dict[int, str]) -> Estimate | None:
        """What rating these items would take (dry run); None when there is nothing to pay for."""
        return None

    def check_server(self, rater: ResolvedRater) -> str | None:
        """Ask the server whether it can rate with this configuration (a dry run's check of the model name):
        a line saying what was found, or None when there is no server; raises WorkbenchError when it cannot."""
        return None

    def secrets(self, rater: ResolvedRater) -> list[str]:
        """Values that must never reach the store (an API key): the job writer blanks them out."""
        return []

    def low_mass_cause(self, rater: ResolvedRater) -> str | None:
        """The likely reason when most answers put little probability on the scale's tokens (the job's summary
        names it); None when the backend reads no such probability."""
        return None

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        """Rate the items (id -> text), handing each outcome to ``job.writer``; returns the job's final status."""
        raise NotImplementedError


def in_chunks(texts: dict[int, str], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """(ids, texts) in chunks of ``size``, in order: for backends that rate many items per call."""
    ids = list(texts)
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield part, [texts[i] for i in part]


_BACKENDS: Registry[type[RaterBackend]] = Registry("backend", "Backends", RaterBackend, "workbench.raters.backends", BACKENDS)


def register_backend(name: str) -> Callable[[type[RaterBackend]], type[RaterBackend]]:
    """Class decorator: make a backend available to study files as ``backend: NAME``."""
    return _BACKENDS.register(name, "register_backend")


def backend_names() -> list[str]:
    """Every registered backend's name, built-in ones first."""
    return _BACKENDS.names()


def backend_class(name: str) -> type[RaterBackend]:
    """The backend registered under ``name``; a WorkbenchError (with a suggestion) when there is none."""
    return _BACKENDS.get(name)


def get_backend(name: str) -> RaterBackend:
    """An instance of the backend registered under ``name``."""
    return backend_class(name)()
