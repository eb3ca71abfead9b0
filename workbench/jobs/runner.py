"""Running a rater over the items it has not rated yet: plan, dry run, job lifecycle, dispatch by backend.

``run_rater`` resolves the rater against the store, finds the items with no
rating from this exact configuration, and rates them with its backend,
committing as it goes. Run it again and it resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.jobs.writer import JobWriter
from workbench.raters.config import ResolvedRater, rater_row, resolve_rater
from workbench.raters.pricing import estimate_tokens, price_of
from workbench.store.engine import bump_generation
from workbench.store.itemsets import item_texts, resolve_items
from workbench.store.models import Dimension, Job, Rater, Rating
from workbench.study.load import LoadedStudy

Progress = Callable[[int, int], None]  # (done, total)


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
    error: str | None = None


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


def weights_fingerprint(backend: str, model: str | None) -> str | None:
    """A cheap identity of the weights a local model or embedding baseline uses."""
    if backend == "local":
        from workbench.raters.local import weights_fingerprint as local_fp

        return local_fp(model)
    if backend == "embedding":
        from workbench.raters.baselines import embedding_fingerprint

        return embedding_fingerprint(model or "all-MiniLM-L6-v2")
    return None


def resolve(session: Session, loaded: LoadedStudy, name: str) -> ResolvedRater:
    study = loaded.study
    if name not in study.raters:
        known = ", ".join(study.raters) or "none"
        raise WorkbenchError(f"{loaded.path}: no rater named {name!r} (the study's raters: {known}).")
    spec = study.raters[name]
    return resolve_rater(
        session, name, spec,
        study_dimensions=list(study.dimensions),
        base_dir=loaded.base_dir,
        weights_fingerprint=weights_fingerprint(spec.backend, spec.model),
    )  # fmt: skip


def _plan(session: Session, loaded: LoadedStudy, name: str, items: str | None, limit: int | None):
    resolved = resolve(session, loaded, name)
    if resolved.spec.backend in ("openai", "openai-batch"):
        from workbench.raters.openai_chat import check_readout

        check_readout(resolved)
    set_name = items or resolved.spec.items
    target = resolve_items(session, set_name) if set_name else default_items(session, resolved.dimension)
    if not target:
        raise WorkbenchError(f"raters.{name}: no items to rate: name an item set with items:, or import a dataset rated on {resolved.dimension!r}.")
    done = rated_items(session, resolved.hash, resolved.dimension)
    todo = [i for i in target if i not in done]
    if limit is not None:
        todo = todo[:limit]
    return resolved, target, done, todo


def _estimate(resolved: ResolvedRater, texts: dict[int, str], report: RunReport) -> None:
    spec = resolved.spec
    if spec.backend not in ("openai", "openai-batch"):
        return
    from workbench.raters.openai_chat import request_body

    prompt_tokens = sum(
        sum(estimate_tokens(m["content"]) for m in request_body(resolved, text)["messages"]) for text in texts.values()
    )
    per_answer = spec.max_tokens * (spec.samples if spec.readout == "samples" else 1)
    completion_tokens = per_answer * len(texts)
    report.requests = len(texts)
    report.estimated_tokens = (prompt_tokens, completion_tokens)
    rate = price_of(spec.model or "", override=spec.price, batch=spec.backend == "openai-batch")
    report.price_known = rate is not None
    if rate is not None:
        report.estimated_cost = rate.cost(prompt_tokens, completion_tokens)


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
        job = Job(
            kind=f"rate:{spec.backend}",
            status="running",
            rater_id=rater.id,
            config={
                "items": target_name,
                "requested": todo,
                "concurrency": spec.concurrency,
                "timeout": spec.timeout,
                "max_retries": spec.max_retries,
                "batch_size": spec.batch_size,
            },
        )
        s.add(job)
        s.flush()
        bump_generation(s)
        return rater.id, dim_id, job.id


def run_rater_dry(session: Session, loaded: LoadedStudy, name: str, *, items: str | None = None,
                  limit: int | None = None) -> RunReport:
    """What rating would take: items to rate, requests, estimated tokens and cost. Sends and stores nothing."""
    resolved, target, done, todo = _plan(session, loaded, name, items, limit)
    spec = resolved.spec
    report = RunReport(name, spec.backend, spec.model, len(target), len(done & set(target)), len(todo), dry_run=True)
    _estimate(resolved, item_texts(session, todo), report)
    return report


def run_rater(
    engine: Engine,
    loaded: LoadedStudy,
    name: str,
    *,
    items: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    on_progress: Progress | None = None,
    backoff_base: float = 1.0,
    commit_every: int = 64,
) -> RunReport:
    """Rate every item of the target set the rater has not rated yet (or, dry, say what that would take)."""
    with Session(engine) as s:
        if dry_run:
            return run_rater_dry(s, loaded, name, items=items, limit=limit)
        resolved, target, done, todo = _plan(s, loaded, name, items, limit)
        texts = item_texts(s, todo)
    spec = resolved.spec
    report = RunReport(name, spec.backend, spec.model, len(target), len(done & set(target)), len(todo))
    if not todo and spec.backend != "openai-batch":
        return report
    rate = price_of(spec.model or "", override=spec.price, batch=spec.backend == "openai-batch") if spec.backend.startswith("openai") else None
    rater_id, dim_id, job_id = _start_job(engine, resolved, len(todo), items or spec.items)
    report.job_id = job_id
    redact = _redactor(resolved)
    writer = JobWriter(
        engine, job_id=job_id, rater_id=rater_id, dimension_id=dim_id, rate=rate, names=texts,
        commit_every=commit_every, redact=redact,
    )  # fmt: skip
    progress = (lambda done: on_progress(done, len(todo))) if on_progress else None
    try:
        status = _dispatch(engine, resolved, texts, writer, job_id, progress, backoff_base)
    except BaseException as exc:  # KeyboardInterrupt included: keep what was rated, mark the job
        reason = str(exc) if isinstance(exc, WorkbenchError) else f"{exc.__class__.__name__}: {exc}"
        writer.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=reason)
        raise
    writer.finish(status)
    report.status, report.counts, report.cost = status, dict(writer.counts, failures=writer.failures), writer.cost if rate else None
    return report


def _redactor(resolved: ResolvedRater) -> Callable[[str], str]:
    import os

    key = os.environ.get(resolved.spec.api_key_env) if resolved.spec.backend.startswith("openai") else None
    if not key:
        return lambda text: text
    return lambda text: text.replace(key, "***")


def _dispatch(engine: Engine, resolved: ResolvedRater, texts: dict[int, str], writer: JobWriter, job_id: int,
              progress: Callable[[int], None] | None, backoff_base: float) -> str:
    backend = resolved.spec.backend
    if backend == "openai":
        return _run_chat(resolved, texts, writer, progress, backoff_base)
    if backend == "openai-batch":
        from workbench.jobs.batch import run_batch

        return run_batch(engine, resolved, texts, writer, job_id, progress)
    if backend == "local":
        from workbench.jobs.inprocess import run_local

        return run_local(resolved, texts, writer, progress)
    from workbench.jobs.inprocess import run_baseline

    return run_baseline(resolved, texts, writer, progress)


def _run_chat(resolved: ResolvedRater, texts: dict[int, str], writer: JobWriter,
              progress: Callable[[int], None] | None, backoff_base: float) -> str:
    from workbench.jobs.chat import ChatClient, RetryPolicy, rate_all
    from workbench.raters.openai_chat import api_key

    spec = resolved.spec
    policy = RetryPolicy(max_retries=spec.max_retries, timeout=spec.timeout, backoff_base=backoff_base)
    key = api_key(resolved)

    async def main() -> None:
        async with ChatClient(spec.base_url, key, concurrency=spec.concurrency) as client:
            await rate_all(client, resolved, list(texts.items()), writer, policy, concurrency=spec.concurrency, on_progress=progress)

    asyncio.run(main())
    return "completed" if writer.counts["failed"] == 0 else "partial"


__all__ = ["RunReport", "run_rater", "run_rater_dry"]
