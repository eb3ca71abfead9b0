"""Running one of a study's raters: find it by name, hand the job runner what the run needs."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.jobs.runner import Progress, RaterRun, RunReport
from workbench.jobs.runner import run_rater as run_job
from workbench.jobs.runner import run_rater_dry as dry_run_job
from workbench.raters.config import ResolvedRater, resolve_rater
from workbench.study.load import LoadedStudy


def rater_run(loaded: LoadedStudy, name: str) -> RaterRun:
    """The study's rater ``name``, with the dimensions and folder it is resolved against."""
    study = loaded.study
    if name not in study.raters:
        known = ", ".join(study.raters) or "none"
        raise WorkbenchError(
            f"{loaded.path}: no rater named {name!r} (the study's raters: {known}).{did_you_mean(name, study.raters)}"
        )
    return RaterRun(name, study.raters[name], tuple(study.dimensions), loaded.base_dir)


def run_rater(engine: Engine, loaded: LoadedStudy, name: str, *, items: str | None = None, limit: int | None = None,
              dry_run: bool = False, on_progress: Progress | None = None, backoff_base: float = 1.0,
              commit_every: int = 64) -> RunReport:
    """Rate every item the study's rater ``name`` has not rated yet (or, dry, say what that would take)."""
    return run_job(
        engine, rater_run(loaded, name), items=items, limit=limit, dry_run=dry_run, on_progress=on_progress,
        backoff_base=backoff_base, commit_every=commit_every,
    )  # fmt: skip


def run_rater_dry(session: Session, loaded: LoadedStudy, name: str, *, items: str | None = None,
                  limit: int | None = None) -> RunReport:
    """What rating with the study's rater ``name`` would take; sends and stores nothing."""
    return dry_run_job(session, rater_run(loaded, name), items=items, limit=limit)


def resolve(session: Session, loaded: LoadedStudy, name: str) -> ResolvedRater:
    """The study's rater ``name`` resolved against the store: its identity, its filled prompt."""
    run = rater_run(loaded, name)
    return resolve_rater(session, run.name, run.options, dimensions=list(run.dimensions), base_dir=run.base_dir)
