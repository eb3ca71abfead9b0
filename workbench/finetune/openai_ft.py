"""OpenAI fine-tuning: training files in chat format, upload, job, polling with events, resume.

The training file has one chat per training item: the messages the base rater
sends for the item (its system prompt and filled prompt) and the gold value
with two decimals as the assistant's answer, as the paper did. Each step is
recorded in the job's row before the next one starts (the uploaded file ids,
then the OpenAI job id in ``external_id``), so a workbench killed at any point
picks the same files and job up on the next start instead of paying twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.finetune.lora import Example, answer_text
from workbench.store.models import Job

TERMINAL = {"succeeded", "failed", "cancelled"}


def chat_lines(prep: Any, examples: list[Example]) -> list[str]:
    """The JSONL lines of a training (or validation) file."""
    from workbench.raters.openai_chat import request_body

    lines = []
    for e in examples:
        messages = request_body(prep.rater, e.item)["messages"]
        messages.append({"role": "assistant", "content": answer_text(e.mean)})
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return lines


def _client(prep_or_resolved: Any) -> Any:
    from openai import OpenAI

    from workbench.raters.http import api_key

    resolved = getattr(prep_or_resolved, "rater", prep_or_resolved)
    return OpenAI(base_url=resolved.spec.base_url, api_key=api_key(resolved), max_retries=3, timeout=60)


def _why(exc: Exception) -> str:
    """The server's message for an API error (never the key)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(getattr(exc, "message", None) or exc)


def _api_call(what: str, fn, *args, **kwargs) -> Any:
    import openai

    try:
        return fn(*args, **kwargs)
    except openai.AuthenticationError:
        raise WorkbenchError(f"{what}: the server refused the API key.") from None
    except openai.APIStatusError as exc:
        raise WorkbenchError(f"{what}: the server answered {exc.status_code}: {_why(exc)}") from None
    except openai.APIConnectionError as exc:
        raise _Transient(f"{what}: cannot reach the server ({exc.__class__.__name__})") from None


class _Transient(Exception):
    """The server could not be reached: the job stays running, a later start resumes it."""


def _job_config(engine: Engine, job_id: int) -> tuple[dict[str, Any], str | None]:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return dict(job.config or {}), job.external_id


def _upload(client: Any, path: Path, what: str) -> str:
    with path.open("rb") as f:
        obj = _api_call(f"uploading the {what} file", client.files.create, file=(path.name, f), purpose="fine-tune")
    status = getattr(obj, "status", None)
    if status in ("error", "failed"):
        raise WorkbenchError(f"the server rejected the {what} file: {getattr(obj, 'status_details', None) or status}")
    return obj.id


def run_openai(engine: Engine, run: Any, prep: Any, job_id: int, say) -> None:
    """Upload, create and poll the OpenAI job until it ends; the job row follows every step."""
    from workbench.finetune.run import finetune_dir, update_job

    name, spec = prep.name, prep.spec
    client = _client(prep)
    cfg, external = _job_config(engine, job_id)
    try:
        if not external:
            folder = finetune_dir(run)
            folder.mkdir(parents=True, exist_ok=True)
            files = {}
            for part, examples in (("training", prep.train), ("validation", prep.validation)):
                if not examples:
                    continue
                if cfg.get(f"{part}_file"):
                    files[part] = cfg[f"{part}_file"]
                    continue
                path = folder / f"{part}.jsonl"
                path.write_text("\n".join(chat_lines(prep, examples)) + "\n", encoding="utf-8")
                files[part] = _upload(client, path, part)
                update_job(engine, job_id, config={f"{part}_file": files[part]})
                say(f"{name}: uploaded the {part} file ({len(examples)} examples): {files[part]}.")
            body: dict[str, Any] = {"model": prep.rater.spec.model, "training_file": files["training"]}
            if "validation" in files:
                body["validation_file"] = files["validation"]
            hyper = {k: getattr(spec.openai, k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier")
                     if getattr(spec.openai, k) is not None}  # fmt: skip
            if hyper:
                body["hyperparameters"] = hyper
            if spec.openai.suffix:
                body["suffix"] = spec.openai.suffix
            if spec.openai.seed is not None:
                body["seed"] = spec.openai.seed
            job = _api_call(f"creating the fine-tuning job for {prep.rater.spec.model}", client.fine_tuning.jobs.create, **body)
            external = job.id
            update_job(engine, job_id, external_id=external)
            say(f"{name}: OpenAI job {external} created.")
        _poll(engine, client, prep, job_id, external, say)
    except _Transient as exc:
        from workbench.finetune.run import StillRunning

        raise StillRunning(f"{exc}; job {job_id} stays running: run `workbench finetune start {name}` again to resume.") from None


def _poll(engine: Engine, client: Any, prep: Any, job_id: int, external: str, say) -> None:
    from workbench.finetune.run import update_job

    name = prep.name
    seen: set[str] = set()
    while True:
        job = _api_call(f"checking job {external}", client.fine_tuning.jobs.retrieve, external)
        events = _api_call(f"reading the events of {external}", client.fine_tuning.jobs.list_events, external, limit=100)
        for ev in sorted(getattr(events, "data", []) or [], key=lambda e: (e.created_at, e.id)):
            if ev.id not in seen:
                seen.add(ev.id)
                say(f"{name}: [{ev.level}] {ev.message}")
        status = job.status
        if status == "succeeded":
            model = job.fine_tuned_model
            if not model:
                update_job(engine, job_id, status="failed", error=f"job {external} succeeded without a fine-tuned model")
                say(f"{name}: job {external} succeeded but named no model.")
                return
            update_job(engine, job_id, status="succeeded", config={"result_model": model,
                                                                   "trained_tokens": getattr(job, "trained_tokens", None)})  # fmt: skip
            say(f"{name}: job {external} succeeded: {model}.")
            return
        if status in ("failed", "cancelled"):
            err = getattr(job, "error", None)
            reason = (f"{getattr(err, 'code', None) or 'error'}: {getattr(err, 'message', None)}" if err and getattr(err, "message", None)
                      else f"the job was {status} upstream")  # fmt: skip
            update_job(engine, job_id, status=status, error=f"OpenAI job {external} {status}: {reason}")
            say(f"{name}: OpenAI job {external} {status}: {reason}")
            return
        with Session(engine) as s:  # cancelled from another workbench
            if s.get(Job, job_id).status == "cancelled":  # type: ignore[union-attr]
                return
        time.sleep(prep.spec.poll_seconds)


def cancel_remote(run: Any, external_id: str) -> None:
    from workbench.finetune.run import tuned_rater_spec
    from workbench.raters.config import ResolvedRater

    resolved = ResolvedRater(run.name, tuned_rater_spec(run), "", (), {})
    client = _client(resolved)
    try:
        _api_call(f"cancelling job {external_id}", client.fine_tuning.jobs.cancel, external_id)
    except _Transient as exc:
        raise WorkbenchError(str(exc)) from None
