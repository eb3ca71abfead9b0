"""A fine-tune's lifecycle: prepare the training data, run (or resume) the job, register the tuned rater.

Each declared fine-tune has at most one *current* job in the store's ``jobs``
table (finetune/job.py), found by the fine-tune's name and the key of
everything that decides its result (trainer, model, prompt, training and
validation data, settings). The trainer its ``backend:`` names
(finetune/trainer.py; built-in: ``openai``, ``local``) trains; this module
never asks which one it has.

Only a succeeded job makes a rater: the fine-tune's name becomes an ``llm``
rater (an openai rater with the fine-tuned model id, or a local rater with the
adapter folder as its model) that rates the ``rate`` item set, which must not
share an item with the training set. The rater's configuration records which
items it was trained on (``trained_on``), so reports can say so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.finetune.job import (
    FinetuneReport,
    FinetuneRun,
    OnEvent,
    Prepared,
    StillRunning,
    current_job,
    job_report,
    new_job,
    update_job,
)
from workbench.finetune.lora import Example, check_examples
from workbench.finetune.splits import check_disjoint
from workbench.finetune.trainer import get_trainer
from workbench.jobs.runner import RaterRun, run_rater, run_rater_dry
from workbench.raters.backend import RaterOptions
from workbench.raters.config import resolve_rater
from workbench.store.engine import bump_generation
from workbench.store.itemsets import gold_ratings, item_texts, resolve_items
from workbench.store.models import Job, Rater


def check_name(name: str, finetunes: Mapping[str, Any], where: str) -> None:
    if name not in finetunes:
        known = ", ".join(finetunes) or "none"
        raise WorkbenchError(f"{where}: no fine-tune named {name!r} (the study's fine-tunes: {known}).{did_you_mean(name, finetunes)}")


def _gold(session: Session, dataset: str, dimension: str) -> dict[int, tuple[float, float | None]]:
    out = {i: (g.value, g.sd) for i, g in gold_ratings(session, dataset, dimension).items()}
    if not out:
        raise WorkbenchError(f"dataset {dataset!r} has no ratings on {dimension!r}.")
    return out


def _examples(session: Session, ids: list[int], gold: dict[int, tuple[float, float | None]]) -> list[Example]:
    texts = item_texts(session, ids)
    return sorted((Example(texts[i], gold[i][0], gold[i][1]) for i in ids if i in gold), key=lambda e: e.item)


def tuned_rater_spec(run: FinetuneRun, model: str | None = None) -> RaterOptions:
    """The rater a fine-tune makes (model: the fine-tuned model id or adapter folder; None: the base model)."""
    return get_trainer(run.spec.backend).tuned_rater(run, model)


def _tuned_run(run: FinetuneRun, model: str | None) -> RaterRun:
    return RaterRun(run.name, tuned_rater_spec(run, model), run.dimensions, run.base_dir)


def prepare(session: Session, run: FinetuneRun) -> Prepared:
    """Resolve a fine-tune against the store; every check that can fail before training runs here."""
    spec, name = run.spec, run.name
    rater_spec = tuned_rater_spec(run)
    resolved = resolve_rater(session, name, rater_spec, dimensions=list(run.dimensions), base_dir=run.base_dir)
    points = resolved.points
    gold = _gold(session, spec.gold, resolved.dimension)
    train_ids = resolve_items(session, spec.train)
    train = _examples(session, train_ids, gold)
    check_examples(train, points, where=f"training set {spec.train!r} (finetunes.{name})")
    validation: list[Example] = []
    if spec.validation:
        val_ids = resolve_items(session, spec.validation)
        check_disjoint(session, train_ids, val_ids, f"finetunes.{name}: train {spec.train!r} and validation {spec.validation!r}")
        validation = _examples(session, val_ids, gold)
        check_examples(validation, points, where=f"validation set {spec.validation!r} (finetunes.{name})")
    if spec.rate:
        check_disjoint(
            session, train_ids, resolve_items(session, spec.rate), f"finetunes.{name}: train {spec.train!r} and rate {spec.rate!r}"
        )
    settings = get_trainer(spec.backend).settings(spec, resolved)
    data = {
        "backend": spec.backend, "model": rater_spec.model_name, "prompt": resolved.prompt.text if resolved.prompt else None,
        "system": resolved.system, "dimension": resolved.dimension, "scale": list(resolved.scale),
        "train": [(e.item, e.mean, e.sd) for e in train], "validation": [(e.item, e.mean, e.sd) for e in validation],
        "settings": settings, "base_url": getattr(rater_spec, "base_url", None),
    }  # fmt: skip
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return Prepared(name, spec, resolved.dimension, points, resolved, train, validation, train_ids, key, settings)


# --------------------------------------------------------------------------- start, status, cancel


def start_finetune(
    engine: Engine,
    run: FinetuneRun,
    *,
    restart: bool = False,
    on_event: OnEvent | None = None,
    rate: bool = True,
    on_rate_progress: Callable[[int, int], None] | None = None,
) -> FinetuneReport:
    """Run the fine-tune, or resume its job; on success register its rater and rate the ``rate`` set.

    restart: start a new job even when the current one failed or was
    cancelled (a local one also drops its checkpoint and trains from scratch).
    """
    say = on_event or (lambda _m: None)
    name = run.name
    trainer = get_trainer(run.spec.backend)
    with Session(engine) as s:
        prep = prepare(s, run)
        job = current_job(s, name, prep.key)
        job_id, status, external = (job.id, job.status, job.external_id) if job else (None, None, None)
        error = job.error if job else None
    if status in ("failed", "cancelled") and not restart:
        return FinetuneReport(name, prep.spec.backend, status, job_id, external, None, error,
                              details={"hint": f"run `workbench finetune start {name} --restart` to try again"})  # fmt: skip
    trainer.check_ready()  # before any job is made: a missing package is one line, not a failed job
    if status in ("failed", "cancelled") or job_id is None:
        if restart:
            trainer.forget(run)
        job_id = new_job(engine, prep)
        status = "running"
        say(f"{name}: job {job_id} started ({prep.spec.backend}, {len(prep.train)} training items).")
    elif status == "running":
        say(f"{name}: resuming job {job_id}{' (' + external + ')' if external else ''}.")
    if status == "running":
        try:
            trainer.train(engine, run, prep, job_id, say)
        except KeyboardInterrupt:
            say(f"{name}: interrupted; job {job_id} stays running: run the command again to resume.")
            raise
        except StillRunning:
            raise
        except WorkbenchError as exc:
            update_job(engine, job_id, status="failed", error=str(exc))
            say(f"{name}: job {job_id} failed: {exc}")
    with Session(engine) as s:
        job = s.get(Job, job_id)
        report = job_report(job, prep.spec.backend)
    if report.status == "succeeded" and rate and prep.spec.rate:
        report.rating = rate_tuned(engine, run, report.model, prep, on_progress=on_rate_progress)
    return report


def rate_tuned(
    engine: Engine,
    run: FinetuneRun,
    model: str | None,
    prep: Prepared | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
):
    """Rate the ``rate`` set with the tuned rater; record which items it was trained on."""
    name = run.name
    report = run_rater(engine, _tuned_run(run, model), on_progress=on_progress)
    if prep is None:
        with Session(engine) as s:
            prep = prepare(s, run)
    with Session(engine) as s, s.begin():
        rater = s.scalar(select(Rater).where(Rater.name == name))
        if rater is not None:
            trained = {"finetune": name, "items": prep.spec.train, "n": len(prep.train), "gold": prep.spec.gold}
            if (rater.config or {}).get("trained_on") != trained:
                rater.config = {**(rater.config or {}), "trained_on": trained}  # not part of the identity hash
                bump_generation(s)
    return report


def finetune_status(session: Session, run: FinetuneRun) -> FinetuneReport:
    """The current job's state (and, for a local job, its progress) without touching anything."""
    spec, name = run.spec, run.name
    try:
        key = prepare(session, run).key
    except WorkbenchError:
        key = None
    job = current_job(session, name, key)
    if job is None:
        older = current_job(session, name) if key else None
        report = FinetuneReport(name, spec.backend, "not started")
        if older is not None:
            report.details = {"note": f"job {older.id} ({older.status}) was for other settings or data"}
        return report
    report = job_report(job, spec.backend)
    report.details = {**report.details, **get_trainer(spec.backend).status_details(report)}
    return report


def cancel_finetune(engine: Engine, run: FinetuneRun, on_event: OnEvent | None = None) -> FinetuneReport:
    """Cancel the running job (upstream too, for openai); a finished job is left as it is."""
    say = on_event or (lambda _m: None)
    name = run.name
    with Session(engine) as s:
        job = current_job(s, name)
        if job is None:
            raise WorkbenchError(f"fine-tune {name!r} has no job to cancel.")
        report = job_report(job, run.spec.backend)
    if report.status != "running":
        say(f"{name}: job {report.job_id} is {report.status}; nothing to cancel.")
        return report
    upstream = get_trainer(run.spec.backend).cancel_upstream(run, report)
    if upstream:
        update_job(engine, report.job_id, external_id=upstream)  # type: ignore[arg-type]
        report.external_id = upstream
    update_job(engine, report.job_id, status="cancelled", error="cancelled by the user")  # type: ignore[arg-type]
    say(f"{name}: job {report.job_id} cancelled.")
    report.status = "cancelled"
    return report


def tuned_rate_plan(session: Session, run: FinetuneRun, model: str | None):
    """The dry run of the tuned rater over its ``rate`` set (what apply's plan shows)."""
    return run_rater_dry(session, _tuned_run(run, model))
