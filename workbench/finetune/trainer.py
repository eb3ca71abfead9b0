"""The one shape every fine-tune trainer has, and the registry that finds a trainer by name.

A trainer is one class, registered under the name a study's fine-tune uses
(``finetunes.NAME.backend``)::

    @register_trainer("local")
    class LocalTrainer(Trainer):
        rater_backend = "local"                # the backend of the rater the fine-tune makes
        base_backends = ("local",)             # the backends of the raters it may start from

        def train(self, engine, run, prep, job_id, say): ...

The fine-tune lifecycle (finetune/run.py) never asks which trainer it has: it
calls the methods below. Only ``train`` is required. The built-in trainers are
the modules of ``workbench.finetune.trainers`` (imported on the first look-up),
then the plugins of the entry-point group ``workbench.trainers``
(workbench/plugins.py); a trainer defined anywhere else registers itself when
its module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import Engine

from workbench.errors import WorkbenchError
from workbench.finetune.job import FinetuneReport, FinetuneRun, OnEvent, Prepared
from workbench.finetune.spec import FinetuneSpec
from workbench.plugins import TRAINERS, Registry
from workbench.raters.backend import RaterOptions, ResolvedRater, backend_class


class Trainer:
    """One way of fine-tuning a rater. Subclass it, implement ``train`` and register it."""

    name: ClassVar[str] = ""  # set by @register_trainer
    rater_backend: ClassVar[str] = ""  # the backend of the tuned rater (and of its base, when not in base_backends)
    base_backends: ClassVar[tuple[str, ...]] = ()  # the backends a base rater may have (default: rater_backend)
    default_model: ClassVar[str | None] = None  # the model tuned when neither the fine-tune nor its base names one

    def check_spec(self, spec: FinetuneSpec) -> None:
        """Refuse, while the study file is validated, an entry this trainer cannot run (raise ValueError)."""

    def tuned_rater(self, run: FinetuneRun, model: str | None = None) -> RaterOptions:
        """The rater the fine-tune makes (model: the fine-tuned model id or adapter folder; None: the base model)."""
        spec, name = run.spec, run.name
        base = run.raters.get(spec.base) if spec.base else None
        if spec.base and base is None:
            raise WorkbenchError(f"finetunes.{name}.base: no rater named {spec.base!r} in the study.")
        wanted = self.base_backends or (self.rater_backend,)
        if base is not None and base.backend not in wanted:
            raise WorkbenchError(
                f"finetunes.{name}: a {spec.backend} fine-tune starts from a {spec.backend} rater; {spec.base!r} is {base.backend}."
            )
        fields: dict[str, Any] = base.model_dump(exclude_none=True, exclude={"few_shot", "items"}) if base else {}
        fields["backend"] = self.rater_backend
        self.rater_fields(spec, fields)
        if spec.dimension:
            fields["dimension"] = spec.dimension
        fields["model"] = model or spec.model or fields.get("model") or self.default_model
        if spec.rate:
            fields["items"] = spec.rate
        options_model = backend_class(fields["backend"]).Options
        fields = {k: v for k, v in fields.items() if k in options_model.model_fields}
        return options_model.model_validate(fields)

    def rater_fields(self, spec: FinetuneSpec, fields: dict[str, Any]) -> None:
        """Set the tuned rater's prompt and read-out in ``fields`` (its base rater's options, or empty)."""
        if spec.prompt:
            fields["prompt"] = spec.prompt
        fields["readout"] = spec.readout or "expected"

    def settings(self, spec: FinetuneSpec, rater: ResolvedRater) -> dict[str, Any]:
        """The training settings that decide the result: they enter the job's key and its record."""
        return {}

    def check_ready(self) -> None:
        """Refuse, before any job is made, to train without what training needs (a missing package: one line)."""

    def forget(self, run: FinetuneRun) -> None:
        """Drop what an earlier job left behind (a restart trains from scratch)."""

    def train(self, engine: Engine, run: FinetuneRun, prep: Prepared, job_id: int, say: OnEvent) -> None:
        """Train (or resume) the job ``job_id``; record its end with ``update_job`` (status and ``result_model``).
        A WorkbenchError fails the job; StillRunning leaves it running for the next start."""
        raise NotImplementedError

    def status_details(self, report: FinetuneReport) -> dict[str, Any]:
        """What `workbench finetune status` adds to the job's record (a local job's progress)."""
        return {}

    def cancel_upstream(self, run: FinetuneRun, report: FinetuneReport) -> str | None:
        """Cancel the job where it runs, when that is elsewhere; returns the upstream id when one was found
        that the record did not have."""
        return None


_TRAINERS: Registry[type[Trainer]] = Registry("trainer", "Trainers", Trainer, "workbench.finetune.trainers", TRAINERS)


def register_trainer(name: str) -> Callable[[type[Trainer]], type[Trainer]]:
    """Class decorator: make a trainer available to study files as ``finetunes.NAME.backend: name``."""
    return _TRAINERS.register(name, "register_trainer")


def trainer_names() -> list[str]:
    """Every registered trainer's name, built-in ones first."""
    return _TRAINERS.names()


def builtin_trainer_names() -> list[str]:
    """The trainers this package defines (the checked-in schema lists these)."""
    return [cls.name for cls in _TRAINERS.classes() if cls.__module__.startswith("workbench.finetune.trainers.")]


def trainer_class(name: str) -> type[Trainer]:
    """The trainer registered under ``name``; a WorkbenchError (with a suggestion) when there is none."""
    return _TRAINERS.get(name)


def get_trainer(name: str) -> Trainer:
    """An instance of the trainer registered under ``name``."""
    return trainer_class(name)()
