"""A fine-tune's record in the store, shared by the lifecycle (finetune/run.py) and every trainer.

Each declared fine-tune has at most one *current* job in the store's ``jobs``
table (kind ``finetune:TRAINER``), found by the fine-tune's name and the key of
everything that decides its result. Its status is ``running``, ``succeeded``,
``failed`` or ``cancelled``; ``external_id`` is what the trainer follows (the
OpenAI job id, the adapter folder), so a killed workbench picks the same job
up; ``error`` holds the reason of a failure. This module knows nothing of any
trainer: the trainers and the lifecycle import it, it imports neither.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.finetune.lora import Example
from workbench.finetune.spec import FinetuneSpec
from workbench.raters.backend import RaterOptions, ResolvedRater
from workbench.store.engine import bump_generation
from workbench.store.models import Job

OnEvent = Callable[[str], None]
STATES_DONE = ("succeeded", "failed", "cancelled")


class StillRunning(WorkbenchError):
    """The job could not be followed (the server is unreachable): it stays running, the next start resumes it."""


@dataclass(frozen=True)
class FinetuneRun:
    """What a fine-tune needs from its study: its entry, the study's raters (its base among them),
    dimensions and folder."""

    name: str
    spec: FinetuneSpec
    raters: Mapping[str, RaterOptions]
    dimensions: tuple[str, ...]
    base_dir: Path
    where: str = "study.yaml"  # the study file, for messages


@dataclass
class Prepared:
    """What a fine-tune trains on and how its rater will look."""

    name: str
    spec: FinetuneSpec
    dimension: str
    points: tuple[float, ...]
    rater: ResolvedRater  # the tuned rater's resolved config, on the base model (its prompt, system, read-out)
    train: list[Example]
    validation: list[Example]
    train_ids: list[int]
    key: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinetuneReport:
    name: str
    backend: str
    status: str  # running | succeeded | failed | cancelled | not started
    job_id: int | None = None
    external_id: str | None = None
    model: str | None = None  # the fine-tuned model id, or the adapter folder
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    rating: Any = None  # the RunReport of the tuned rater's rating, when it rated


def finetune_dir(run: FinetuneRun) -> Path:
    """Where a fine-tune keeps its files: a local one its adapter, settings, log and checkpoints."""
    return run.base_dir / ".workbench" / "finetunes" / run.name


def current_job(session: Session, name: str, key: str | None = None) -> Job | None:
    """The latest job of this fine-tune (with this key, when given)."""
    jobs = session.scalars(select(Job).where(Job.kind.like("finetune:%")).order_by(Job.id.desc())).all()
    for job in jobs:
        cfg = job.config or {}
        if cfg.get("finetune") == name and (key is None or cfg.get("key") == key):
            return job
    return None


def new_job(engine: Engine, prep: Prepared, extra: dict[str, Any] | None = None) -> int:
    with Session(engine) as s, s.begin():
        job = Job(kind=f"finetune:{prep.spec.backend}", status="running",
                  config={"finetune": prep.name, "key": prep.key, "train": prep.spec.train, "train_items": len(prep.train),
                          "validation": prep.spec.validation, "gold": prep.spec.gold, "settings": prep.settings,
                          "model": prep.rater.spec.model_name, **(extra or {})})  # fmt: skip
        s.add(job)
        s.flush()
        bump_generation(s)
        return job.id


def update_job(
    engine: Engine,
    job_id: int,
    *,
    status: str | None = None,
    error: str | None = None,
    external_id: str | None = None,
    config: dict[str, Any] | None = None,
) -> None:
    with Session(engine) as s, s.begin():
        job = s.get(Job, job_id)
        assert job is not None
        if status:
            job.status = status
            if status in STATES_DONE:
                job.finished_at = dt.datetime.now(dt.UTC)
        if error is not None:
            job.error = error
        if external_id is not None:
            job.external_id = external_id
        if config:
            job.config = {**(job.config or {}), **config}
        bump_generation(s)


def job_status(engine: Engine, job_id: int) -> str:
    """The job's status as the store has it now (`workbench finetune cancel` from another shell sets cancelled)."""
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.status


def job_report(job: Job, backend: str) -> FinetuneReport:
    cfg = job.config or {}
    return FinetuneReport(cfg.get("finetune", "?"), backend, job.status, job.id, job.external_id,
                          cfg.get("result_model"), job.error, cfg)  # fmt: skip
