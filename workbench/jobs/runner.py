"""Running a rater over the items it has not rated yet: plan, dry run, job lifecycle.

``run_rater`` resolves the rater against the store, finds the items with no
rating from this exact configuration, and hands them to its backend (see
raters/backend.py), committing as it goes. Run it again and it resumes where
it stopped. The runner never asks which backend it has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.jobs.writer import JobWriter
from workbench.raters.backend import RaterOptions, ResolvedRater, RunJob, StillWaiting
from workbench.raters.config import rater_row, resolve_rater
from workbench.redact import Redactor
from workbench.store.engine import bump_generation
from workbench.store.itemsets import item_texts, resolve_items
from workbench.store.models import Dimension, Job, Rater, Rating

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class RaterRun:
    """What a run needs: the rater's name and options, the study's dimensions, the folder its files are in."""

    name: str
    options: RaterOptions
    dimensions: tuple[str, ...]  # the study's dimensions (a rater with no dimension: needs exactly one)
    base_dir: Path  # prompt and instruction files are relative to it


@dataclass
class RunReport:
    """What a run did (or, for a dry run, would do)."""

    rater: str
    backend: str
    model: str | None
    target: int  # items in the target set
    already: int  # of which already rated by this configuration
    requested: int  # items this run rates
    dry_run: bool = False
    job_id: int | None = None
    status: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    estimated_cost: float | None = None
    estimated_tokens: tuple[int, int] | None = None
    requests: int = 0
    price_known: bool = True
    notes: list[str] = field(default_factory=list)  # what a dry run found out (the model name checked, ...)

    @property
    def failed(self) -> int:
        """Items that failed (after retries) in this run: the next run tries them again."""
        return int(self.counts.get("failed", 0) or 0)


ALL_ITEMS = "all"  # items: all: every item some published dataset rates on the rater's dimension
# a rater with no items: rates every gold item of its dimension; above this many, it must say items: all
DEFAULT_ITEMS_LIMIT = 1000


def check_default_items(rater: str, dimension: str, count: int) -> None:
    """Refuse a rater without ``items:`` whose default (every gold item of its dimension) is large: a local
    model would run for hours, a paid API would spend money nobody asked to spend."""
    if count > DEFAULT_ITEMS_LIMIT:
        raise WorkbenchError(
            f"raters.{rater}: no items: given, so it would rate all {count:,} items with a gold rating on {dimension!r} "
            f"(more than {DEFAULT_ITEMS_LIMIT:,}). Name what it rates (items: an item set, dataset or word list), "
            "or write items: all to rate them all."
        )


def default_items(session: Session, dimension: str) -> list[int]:
    """Every item some published dataset rates on the dimension."""
    q = (
        select(Rating.item_id)
        .join(Rater, Rater.id == Rating.rater_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .where(Rater.kind == "norm", Dimension.name == dimension, Rating.value.is_not(None))
        .distinct()
    )
    return sorted(session.scalars(q))


def rated_items(session: Session, rater_hash: str, dimension: str) -> set[int]:
    """Items the rater with this identity has a rating for (a value, or an answer with no value)."""
    q = (
        select(Rating.item_id)
        .join(Rater, Rater.id == Rating.rater_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .where(Rater.config_hash == rater_hash, Dimension.name == dimension, Rating.replicate == 0)
    )
    return set(session.scalars(q))


def _plan(session: Session, run: RaterRun, items: str | None, limit: int | None):
    resolved = resolve_rater(session, run.name, run.options, dimensions=list(run.dimensions), base_dir=run.base_dir)
    resolved.backend.check(resolved)
    set_name = items or resolved.spec.items
    if set_name and set_name != ALL_ITEMS:
        target = resolve_items(session, set_name)
    else:
        target = default_items(session, resolved.dimension)
        if not set_name:
            check_default_items(run.name, resolved.dimension, len(target))
    if not target:
        raise WorkbenchError(
            f"raters.{run.name}: no items to rate: name an item set with items:, or import a dataset rated on {resolved.dimension!r}."
        )
    done = rated_items(session, resolved.hash, resolved.dimension)
    todo = [i for i in target if i not in done]
    if limit is not None:
        todo = todo[:limit]
    return resolved, target, done, todo


def _start_job(engine: Engine, resolved: ResolvedRater, todo: int, target_name: str | None) -> tuple[int, int, int]:
    """Create (or find) the rater and open a job; returns (rater_id, dimension_id, job_id)."""
    with Session(engine) as s, s.begin():
        rater = rater_row(s, resolved)
        dim_id = s.scalar(select(Dimension.id).where(Dimension.name == resolved.dimension))
        # a job of this rater still marked running was killed: say so
        s.execute(
            update(Job)
            .where(Job.rater_id == rater.id, Job.status == "running", Job.external_id.is_(None))
            .values(status="interrupted", finished_at=dt.datetime.now(dt.UTC))
        )
        spec = resolved.spec
        how = spec.model_dump(include=set(spec.run_fields) - {"items", "api_key_env", "price"})
        job = Job(
            kind=f"rate:{spec.backend}",
            status="running",
            rater_id=rater.id,
            config={"items": target_name, "requested": todo, **how, **job_record(resolved)},
        )
        s.add(job)
        s.flush()
        bump_generation(s)
        return rater.id, dim_id, job.id


def job_record(resolved: ResolvedRater) -> dict[str, Any]:
    """What a rating job keeps of its rater for the methods section: the options as declared (few-shot source,
    prompt file, items; not where a key comes from) and the prompt as filled in, with ``{item}`` where the word goes."""
    declared = resolved.spec.model_dump(mode="json", exclude_none=True, exclude={"api_key_env"})
    out: dict[str, Any] = {"options": declared}
    if resolved.prompt is not None:
        out["prompt"] = resolved.prompt.text
    if resolved.system:
        out["system"] = resolved.system
    return out


def run_rater_dry(session: Session, run: RaterRun, *, items: str | None = None, limit: int | None = None,
                  check_server: bool = False) -> RunReport:  # fmt: skip
    """What rating would take: items to rate, requests, estimated tokens and cost. Stores nothing.

    check_server: also ask the rater's server whether it serves the model (GET /models, where the
    server lists them); nothing is rated.
    """
    resolved, target, done, todo = _plan(session, run, items, limit)
    spec = resolved.spec
    report = RunReport(run.name, spec.backend, spec.model_name, len(target), len(done & set(target)), len(todo), dry_run=True)
    if check_server:
        note = resolved.backend.check_server(resolved)
        if note:
            report.notes.append(note)
    estimate = resolved.backend.estimate(resolved, item_texts(session, todo))
    if estimate is not None:
        report.requests = estimate.requests
        report.estimated_tokens = (estimate.prompt_tokens, estimate.completion_tokens)
        report.estimated_cost = estimate.cost
        report.price_known = estimate.cost is not None
    return report


def run_rater(
    engine: Engine,
    run: RaterRun,
    *,
    items: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    check_server: bool = False,
    on_progress: Progress | None = None,
    backoff_base: float = 1.0,
    commit_every: int = 64,
) -> RunReport:
    """Rate every item of the target set the rater has not rated yet (or, dry, say what that would take)."""
    with Session(engine) as s:
        if dry_run:
            return run_rater_dry(s, run, items=items, limit=limit, check_server=check_server)
        resolved, target, done, todo = _plan(s, run, items, limit)
        texts = item_texts(s, todo)
    spec, backend = resolved.spec, resolved.backend
    report = RunReport(run.name, spec.backend, spec.model_name, len(target), len(done & set(target)), len(todo))
    if not todo and not backend.picks_up_waiting_work:
        return report
    rate = backend.price(resolved)
    rater_id, dim_id, job_id = _start_job(engine, resolved, len(todo), items or spec.items)
    report.job_id = job_id
    redact = Redactor(backend.secrets(resolved))  # the responses are redacted where they enter; this is the backstop

    def writer_for(job: int) -> JobWriter:
        return JobWriter(
            engine, job_id=job, rater_id=rater_id, dimension_id=dim_id, rate=rate, names=texts,
            commit_every=commit_every, redact=redact,
        )  # fmt: skip

    writer = writer_for(job_id)
    progress = (lambda done: on_progress(done, len(todo))) if on_progress else None
    job = RunJob(engine, job_id, writer, progress=progress, backoff_base=backoff_base, writer_for=writer_for)
    try:
        status = backend.run(resolved, texts, job)
    except BaseException as exc:  # KeyboardInterrupt included: keep what was rated, mark the job
        reason = str(exc) if isinstance(exc, WorkbenchError) else f"{exc.__class__.__name__}: {exc}"
        status = exc.status if isinstance(exc, StillWaiting) else "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        writer.finish(status, error=reason)
        raise
    writer.finish(status)
    report.status, report.counts, report.cost = status, dict(writer.counts, failures=writer.failures), writer.cost if rate else None
    note = low_mass_note(report.counts, getattr(spec, "min_mass", None), backend.low_mass_cause(resolved))
    if note:
        report.notes.append(note)
    return report


LOW_MASS_SHARE = 0.5
"""Share of answers under the rater's min_mass above which a run's summary names the likely cause."""


def low_mass_note(counts: dict[str, Any], min_mass: float | None, cause: str | None) -> str | None:
    """A line for the job's summary when most answers put little probability on the scale's tokens, naming the
    likely cause; None when most answers are fine (or the read-out measures no such probability)."""
    read, low = int(counts.get("mass_read") or 0), int(counts.get("mass_low") or 0)
    if not read or low <= LOW_MASS_SHARE * read:
        return None
    threshold = f"{min_mass:.0%}" if min_mass is not None else "half"
    line = f"{low} of {read} answers ({low / read:.0%}) put less than {threshold} of their probability on the scale's tokens"
    return f"{line}: {cause}." if cause else f"{line}."


__all__ = ["RaterRun", "RunReport", "low_mass_note", "run_rater", "run_rater_dry"]
