"""A fine-tune's lifecycle: prepare the training data, run (or resume) the job, register the tuned rater.

Each declared fine-tune has at most one *current* job in the store's ``jobs``
table (kind ``finetune:local`` or ``finetune:openai``), found by the
fine-tune's name and the key of everything that decides its result (backend,
model, prompt, training and validation data, settings). Its status is
``running``, ``succeeded``, ``failed`` or ``cancelled``; ``external_id`` is the
OpenAI job id or the adapter folder, so a killed workbench picks the same job
up; ``error`` holds the reason of a failure.

Only a succeeded job makes a rater: the fine-tune's name becomes an ``llm``
rater (an openai rater with the fine-tuned model id, or a local rater with the
adapter folder as its model) that rates the ``rate`` item set, which must not
share an item with the training set. The rater's configuration records which
items it was trained on (``trained_on``), so reports can say so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.finetune.lora import Example, LoraSettings, check_examples
from workbench.finetune.spec import FinetuneSpec
from workbench.finetune.splits import check_disjoint
from workbench.jobs.runner import RaterRun, run_rater, run_rater_dry
from workbench.raters.backend import RaterOptions, backend_class
from workbench.raters.config import ResolvedRater, resolve_rater
from workbench.raters.local.files import DEFAULT_MODEL
from workbench.store.engine import bump_generation
from workbench.store.itemsets import item_texts, resolve_items
from workbench.store.models import Dataset, Dimension, Job, Rater, Rating

OnEvent = Callable[[str], None]
LOCAL_PROMPT = "Word: {item}\nRating: "
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


def check_name(name: str, finetunes: Mapping[str, Any], where: str) -> None:
    if name not in finetunes:
        known = ", ".join(finetunes) or "none"
        raise WorkbenchError(f"{where}: no fine-tune named {name!r} (the study's fine-tunes: {known}).{did_you_mean(name, finetunes)}")


def _gold(session: Session, dataset: str, dimension: str) -> dict[int, tuple[float, float | None]]:
    ds = session.scalar(select(Dataset).where(Dataset.name == dataset))
    if ds is None:
        raise WorkbenchError(f"no dataset named {dataset!r} in the store: import it first.")
    q = (
        select(Rating.item_id, Rating.value, Rating.sd)
        .join(Rater, Rater.id == Rating.rater_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .where(Rater.dataset_id == ds.id, Dimension.name == dimension, Rating.value.is_not(None))
    )
    out = {i: (float(v), None if sd is None else float(sd)) for i, v, sd in session.execute(q)}
    if not out:
        raise WorkbenchError(f"dataset {dataset!r} has no ratings on {dimension!r}.")
    return out


def _examples(session: Session, ids: list[int], gold: dict[int, tuple[float, float | None]]) -> list[Example]:
    texts = item_texts(session, ids)
    return sorted((Example(texts[i], gold[i][0], gold[i][1]) for i in ids if i in gold), key=lambda e: e.item)


def tuned_rater_spec(run: FinetuneRun, model: str | None = None) -> RaterOptions:
    """The rater a fine-tune makes (model: the fine-tuned model id or adapter folder; None: the base model)."""
    spec, name = run.spec, run.name
    base = run.raters.get(spec.base) if spec.base else None
    if spec.base and base is None:
        raise WorkbenchError(f"finetunes.{name}.base: no rater named {spec.base!r} in the study.")
    wanted = ("openai", "openai-batch") if spec.backend == "openai" else ("local",)
    if base is not None and base.backend not in wanted:
        raise WorkbenchError(
            f"finetunes.{name}: a {spec.backend} fine-tune starts from a {spec.backend} rater; {spec.base!r} is {base.backend}."
        )
    fields: dict[str, Any] = base.model_dump(exclude_none=True, exclude={"few_shot", "items"}) if base else {}
    fields["backend"] = "openai" if spec.backend == "openai" else "local"
    if spec.backend == "local":
        fields["prompt"] = spec.prompt or (fields.get("prompt") or LOCAL_PROMPT)
        fields["readout"] = "expected"
    else:
        if spec.prompt:
            fields["prompt"] = spec.prompt
        fields["readout"] = spec.readout or "expected"
    if spec.dimension:
        fields["dimension"] = spec.dimension
    default = DEFAULT_MODEL if spec.backend == "local" else None
    fields["model"] = model or spec.model or fields.get("model") or default
    if spec.rate:
        fields["items"] = spec.rate
    options_model = backend_class(fields["backend"]).Options
    fields = {k: v for k, v in fields.items() if k in options_model.model_fields}
    return options_model.model_validate(fields)


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
    settings: dict[str, Any]
    if spec.backend == "local":
        settings = local_settings(spec, resolved).key()
    else:
        settings = spec.openai.model_dump(exclude_none=True)
    data = {
        "backend": spec.backend, "model": rater_spec.model, "prompt": resolved.prompt.text if resolved.prompt else None,
        "system": resolved.system, "dimension": resolved.dimension, "scale": list(resolved.scale),
        "train": [(e.item, e.mean, e.sd) for e in train], "validation": [(e.item, e.mean, e.sd) for e in validation],
        "settings": settings, "base_url": getattr(rater_spec, "base_url", None),
    }  # fmt: skip
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return Prepared(name, spec, resolved.dimension, points, resolved, train, validation, train_ids, key, settings)


def local_settings(spec: FinetuneSpec, resolved: ResolvedRater) -> LoraSettings:
    assert resolved.prompt is not None
    text = resolved.prompt.text
    # the local backend reads the number after "Rating: ": train on exactly the prompt it will rate with
    prompt = text if text[-1:].isspace() else text + " "
    t = spec.local
    return LoraSettings(objective=t.objective, prompt=prompt, r=t.r, alpha=t.alpha, dropout=t.dropout,
                        learning_rate=t.learning_rate, epochs=t.epochs, batch_size=t.batch_size, label_sd=t.label_sd,
                        seed=t.seed, base_model=resolved.spec.model or DEFAULT_MODEL)  # fmt: skip


# --------------------------------------------------------------------------- jobs in the store


def current_job(session: Session, name: str, key: str | None = None) -> Job | None:
    """The latest job of this fine-tune (with this key, when given)."""
    jobs = session.scalars(select(Job).where(Job.kind.like("finetune:%")).order_by(Job.id.desc())).all()
    for job in jobs:
        cfg = job.config or {}
        if cfg.get("finetune") == name and (key is None or cfg.get("key") == key):
            return job
    return None


def _new_job(engine: Engine, prep: Prepared, extra: dict[str, Any] | None = None) -> int:
    with Session(engine) as s, s.begin():
        job = Job(kind=f"finetune:{prep.spec.backend}", status="running",
                  config={"finetune": prep.name, "key": prep.key, "train": prep.spec.train, "train_items": len(prep.train),
                          "validation": prep.spec.validation, "gold": prep.spec.gold, "settings": prep.settings,
                          "model": prep.rater.spec.model, **(extra or {})})  # fmt: skip
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


def _report(job: Job, backend: str) -> FinetuneReport:
    cfg = job.config or {}
    return FinetuneReport(cfg.get("finetune", "?"), backend, job.status, job.id, job.external_id,
                          cfg.get("result_model"), job.error, cfg)  # fmt: skip


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
    with Session(engine) as s:
        prep = prepare(s, run)
        job = current_job(s, name, prep.key)
        job_id, status, external = (job.id, job.status, job.external_id) if job else (None, None, None)
        error = job.error if job else None
    if status in ("failed", "cancelled") and not restart:
        return FinetuneReport(name, prep.spec.backend, status, job_id, external, None, error,
                              details={"hint": f"run `workbench finetune start {name} --restart` to try again"})  # fmt: skip
    if prep.spec.backend == "local":  # before any job is made: a missing package is one line, not a failed job
        from workbench.extras import check

        check("torch", "transformers", "peft", "safetensors", needed_for="A local fine-tune")
    if status in ("failed", "cancelled") or job_id is None:
        if restart and prep.spec.backend == "local":
            import shutil

            shutil.rmtree(finetune_dir(run), ignore_errors=True)
        job_id = _new_job(engine, prep)
        status = "running"
        say(f"{name}: job {job_id} started ({prep.spec.backend}, {len(prep.train)} training items).")
    elif status == "running":
        say(f"{name}: resuming job {job_id}{' (' + external + ')' if external else ''}.")
    if status == "running":
        try:
            if prep.spec.backend == "local":
                _run_local(engine, run, prep, job_id, say)
            else:
                from workbench.finetune.openai_ft import run_openai

                run_openai(engine, run, prep, job_id, say)
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
        report = _report(job, prep.spec.backend)
    if report.status == "succeeded" and rate and prep.spec.rate:
        report.rating = rate_tuned(engine, run, report.model, prep, on_progress=on_rate_progress)
    return report


def _run_local(engine: Engine, run: FinetuneRun, prep: Prepared, job_id: int, say: OnEvent) -> None:
    import threading
    import time

    from workbench.finetune.lora import train_lora, training_status
    from workbench.raters.local.files import adapter_fingerprint

    folder = finetune_dir(run)
    update_job(engine, job_id, external_id=str(folder))
    settings = local_settings(prep.spec, prep.rater)
    state = training_status(folder)
    if state["state"] == "stopped" and state.get("checkpoint_step"):
        say(f"{prep.name}: resuming training from the checkpoint at step {state['checkpoint_step']}.")
    last = [0.0]
    stop = threading.Event()

    def on_step(e: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] > 10 or e["step"] == e["total"]:
            last[0] = now
            say(f"{prep.name}: step {e['step']}/{e['total']}, loss {e['loss']:.4f}, {e['seconds']:.0f} s")
            with Session(engine) as s:  # `workbench finetune cancel` from another shell
                if s.get(Job, job_id).status == "cancelled":  # type: ignore[union-attr]
                    stop.set()

    result = train_lora(prep.train, prep.points, folder, settings, checkpoint_every=prep.spec.local.checkpoint_every,
                        device=prep.spec.local.device, on_step=on_step, stop=stop)  # fmt: skip
    if stop.is_set():
        say(f"{prep.name}: cancelled at step {result.steps} (checkpoint kept; --restart trains from scratch).")
        return
    update_job(engine, job_id, status="succeeded",
               config={"result_model": str(folder), "adapter": adapter_fingerprint(folder), "steps": result.steps,
                       "seconds": round(result.seconds, 1), "peak_memory_mb": result.peak_memory_mb,
                       "final_loss": result.final_loss, "device": result.device})  # fmt: skip
    say(f"{prep.name}: trained ({result.steps} steps, final loss {result.final_loss}); adapter in {folder}.")


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
    report = _report(job, spec.backend)
    if spec.backend == "local" and job.external_id:
        from workbench.finetune.lora import training_status

        report.details = {**report.details, "training": training_status(job.external_id)}
    return report


def cancel_finetune(engine: Engine, run: FinetuneRun, on_event: OnEvent | None = None) -> FinetuneReport:
    """Cancel the running job (upstream too, for openai); a finished job is left as it is."""
    say = on_event or (lambda _m: None)
    name = run.name
    with Session(engine) as s:
        job = current_job(s, name)
        if job is None:
            raise WorkbenchError(f"fine-tune {name!r} has no job to cancel.")
        backend = run.spec.backend
        report = _report(job, backend)
    if report.status != "running":
        say(f"{name}: job {report.job_id} is {report.status}; nothing to cancel.")
        return report
    token = report.details.get("run_token")
    if backend == "openai" and (report.external_id or token):
        from workbench.finetune.openai_ft import cancel_remote

        upstream = cancel_remote(run, report.external_id, token, report.details.get("training_file"))
        if upstream and not report.external_id:
            update_job(engine, report.job_id, external_id=upstream)  # type: ignore[arg-type]
            report.external_id = upstream
    update_job(engine, report.job_id, status="cancelled", error="cancelled by the user")  # type: ignore[arg-type]
    say(f"{name}: job {report.job_id} cancelled.")
    report.status = "cancelled"
    return report


def tuned_rate_plan(session: Session, run: FinetuneRun, model: str | None):
    """The dry run of the tuned rater over its ``rate`` set (what apply's plan shows)."""
    return run_rater_dry(session, _tuned_run(run, model))
