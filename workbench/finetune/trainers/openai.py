"""The openai trainer: training files in chat format, upload, job, polling with events, resume.

The training file has one chat per training item: the messages the base rater
sends for the item (its system prompt and filled prompt) and the gold value
with two decimals as the assistant's answer, as the paper did. Each step is
recorded in the job's row before the next one starts (the run's token, the
uploaded file ids, then the OpenAI job id in ``external_id``), so a workbench
killed at any point picks the same files and job up on the next start instead
of paying twice.

Creating a job costs money, so it is never sent twice blindly: the request
carries the run's token in ``metadata`` (``workbench_run``), is sent without
the client's own retries, and before each attempt the server's jobs are
listed for one made for this run (by that token, or by the training file
uploaded for it); one found is adopted. A connection dropped after the server
created the job, or a workbench killed while waiting for the answer, thus
ends with that one job.

Every call goes through the official client behind the redacting door
(``raters/openai/client.py``): a key echoed in an upload error, a failed job's
message or an event is gone before it is printed or stored. While the job is
followed, only its upstream status marks it failed or cancelled: a 5xx, a
timeout or a dropped connection is asked again (with backoff), and when the
server stays away the job stays running for the next start to resume.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.finetune.job import (
    FinetuneReport,
    FinetuneRun,
    OnEvent,
    Prepared,
    StillRunning,
    finetune_dir,
    job_status,
    update_job,
)
from workbench.finetune.lora import Example, answer_text
from workbench.finetune.spec import FinetuneSpec
from workbench.finetune.trainer import Trainer, register_trainer
from workbench.raters.backend import ResolvedRater
from workbench.raters.openai.client import OpenAIApi, ServerError
from workbench.raters.openai.wire import KeyRefused
from workbench.store.models import Job

TERMINAL = {"succeeded", "failed", "cancelled"}
TIMEOUT = 60.0
CREATE_ATTEMPTS = 3  # each after looking for a job made by the attempts before
POLL_FAILURES = 8  # transient failures in a row while following a job before it is left running for later
LIST_PAGES = 10  # pages of 100 jobs looked through for one made for this run


@register_trainer("openai")
class OpenAITrainer(Trainer):
    """The fine-tuning API of an OpenAI-style server; the tuned rater is an openai rater with the tuned model id."""

    rater_backend = "openai"
    base_backends = ("openai", "openai-batch")

    def check_spec(self, spec: FinetuneSpec) -> None:
        if not (spec.base or spec.model):
            raise ValueError("an openai fine-tune needs base (a declared openai rater) or model")

    def settings(self, spec: FinetuneSpec, rater: ResolvedRater) -> dict[str, Any]:
        return spec.openai.model_dump(exclude_none=True)

    def train(self, engine: Engine, run: FinetuneRun, prep: Prepared, job_id: int, say: OnEvent) -> None:
        run_openai(engine, run, prep, job_id, say)

    def cancel_upstream(self, run: FinetuneRun, report: FinetuneReport) -> str | None:
        token = report.details.get("run_token")
        if not (report.external_id or token):
            return None
        resolved = ResolvedRater(run.name, self.tuned_rater(run), "", (), {})
        upstream = cancel_remote(resolved, report.external_id, token, report.details.get("training_file"))
        return upstream if upstream and not report.external_id else None


def chat_lines(prep: Prepared, examples: list[Example]) -> list[str]:
    """The JSONL lines of a training (or validation) file."""
    from workbench.raters.openai.chat import request_body

    lines = []
    for e in examples:
        messages = request_body(prep.rater, e.item)["messages"]
        messages.append({"role": "assistant", "content": answer_text(e.mean)})
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return lines


def _api(resolved: ResolvedRater) -> OpenAIApi:
    return OpenAIApi.for_rater(resolved, timeout=TIMEOUT)


class _Transient(WorkbenchError):
    """The server could not be asked (a 5xx, a timeout, no connection): the job stays running, a later start resumes it."""


def _job_config(engine: Engine, job_id: int) -> tuple[dict[str, Any], str | None]:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return dict(job.config or {}), job.external_id


def _upload(api: OpenAIApi, path: Path, what: str) -> str:
    """The uploaded file's id; a refusal or an answer that is not a file object is one line (ServerError)."""
    with path.open("rb") as f:
        obj = api(f"uploading the {what} file", api.client.files.create, file=(path.name, f), purpose="fine-tune")
    status = getattr(obj, "status", None)
    if status in ("error", "failed"):
        raise WorkbenchError(f"the server rejected the {what} file: {getattr(obj, 'status_details', None) or status}")
    return str(obj.id)


def _meta(job: Any) -> dict[str, Any]:
    meta = getattr(job, "metadata", None)
    return meta if isinstance(meta, dict) else {}


def find_job(api: OpenAIApi, token: str, training_file: str | None) -> Any | None:
    """A job the server holds that was made for this run: its metadata carries the run's token, or it trains
    on the file uploaded for this run. None when there is none (or the server cannot list its jobs)."""
    return api.find(
        "listing the fine-tuning jobs", api.client.fine_tuning.jobs.list,
        lambda job: _meta(job).get("workbench_run") == token or bool(training_file and getattr(job, "training_file", None) == training_file),
        pages=LIST_PAGES, metadata={"workbench_run": token},
    )  # fmt: skip


def _create(api: OpenAIApi, body: dict[str, Any], token: str, what: str, say) -> tuple[Any, bool]:
    """(the job, adopted): the job made for this run, found or created; never a second one."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        found = find_job(api, token, body["training_file"])
        if found is not None:
            return found, True
        try:
            return api(what, api.once().fine_tuning.jobs.create, **body), False
        except ServerError as exc:
            if not exc.transient:
                raise
            if attempt == CREATE_ATTEMPTS:
                raise _Transient(str(exc)) from None
            say(f"{exc}; looking for a job made by that request before asking again.")
            time.sleep(min(30.0, 2.0 ** (attempt - 1)))
    raise AssertionError("unreachable")


def run_openai(engine: Engine, run: FinetuneRun, prep: Prepared, job_id: int, say: OnEvent) -> None:
    """Upload, create (or adopt) and poll the OpenAI job until it ends; the job row follows every step."""
    name, spec = prep.name, prep.spec
    api = _api(prep.rater)
    cfg, external = _job_config(engine, job_id)
    try:
        if not external:
            token = cfg.get("run_token")
            if not token:
                token = f"wb-{secrets.token_hex(8)}"
                update_job(engine, job_id, config={"run_token": token})
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
                files[part] = _upload(api, path, part)
                update_job(engine, job_id, config={f"{part}_file": files[part]})
                say(f"{name}: uploaded the {part} file ({len(examples)} examples): {files[part]}.")
            body: dict[str, Any] = {"model": prep.rater.spec.model, "training_file": files["training"],
                                    "metadata": {"workbench_run": token, "workbench_finetune": name[:64]}}  # fmt: skip
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
            job, adopted = _create(api, body, token, f"creating the fine-tuning job for {prep.rater.spec.model}",
                                   lambda m: say(f"{name}: {m}"))  # fmt: skip
            external = str(job.id)
            update_job(engine, job_id, external_id=external)
            say(f"{name}: OpenAI job {external} {'adopted (made earlier for this run)' if adopted else 'created'}.")
        _poll(engine, api, prep, job_id, external, say)
    except (_Transient, KeyRefused) as exc:  # the server could not be asked, or refused the key: nothing is wrong with the job
        raise StillRunning(f"{exc}; job {job_id} stays running: run `workbench finetune start {name}` again to resume.") from None
    except ServerError as exc:
        if exc.transient:
            raise StillRunning(f"{exc}; job {job_id} stays running: run `workbench finetune start {name}` again to resume.") from None
        raise


def _poll(engine: Engine, api: OpenAIApi, prep: Prepared, job_id: int, external: str, say: OnEvent) -> None:
    """Follow the job until it ends upstream. Only its upstream status marks it failed or cancelled: any
    failure to ask (a 5xx, a timeout, no connection, a refused key, an answer that is not a job) is asked
    again, and in the end leaves the job running for the next start."""
    name = prep.name
    seen: set[str] = set()
    failures = 0
    while True:
        try:
            job = api(f"checking job {external}", api.client.fine_tuning.jobs.retrieve, external, expect="status")
            events = api(f"reading the events of {external}", api.client.fine_tuning.jobs.list_events, external, limit=100,
                         expect="data")  # fmt: skip
        except WorkbenchError as exc:
            transient = getattr(exc, "transient", False)
            failures += 1
            if not transient or failures >= POLL_FAILURES:
                raise StillRunning(f"{exc}; job {job_id} ({external}) stays running: run `workbench finetune start {name}` "
                                   "again to resume, or `workbench finetune cancel` to cancel it upstream.") from None  # fmt: skip
            wait = min(300.0, prep.spec.poll_seconds * 2.0 ** (failures - 1))
            say(f"{name}: {exc}; asking again in {wait:g} s ({failures} of {POLL_FAILURES}).")
            time.sleep(wait)
            continue
        failures = 0
        listed = [e for e in (getattr(events, "data", None) or []) if getattr(e, "id", None)]
        for ev in sorted(listed, key=lambda e: (getattr(e, "created_at", 0) or 0, str(e.id))):
            if ev.id not in seen:
                seen.add(ev.id)
                say(f"{name}: [{getattr(ev, 'level', 'info')}] {getattr(ev, 'message', '')}")
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
            reason = " ".join(api.redact(reason).split())[:500]
            update_job(engine, job_id, status=status, error=f"OpenAI job {external} {status}: {reason}")
            say(f"{name}: OpenAI job {external} {status}: {reason}")
            return
        if job_status(engine, job_id) == "cancelled":  # cancelled from another workbench
            return
        time.sleep(prep.spec.poll_seconds)


def cancel_remote(
    resolved: ResolvedRater, external_id: str | None, token: str | None = None, training_file: str | None = None
) -> str | None:
    """Cancel the job upstream (found by the run's token when its id was never recorded: a workbench killed
    while creating it); returns its id, None when there was none. One line when the server cannot be asked."""
    api = _api(resolved)
    try:
        if not external_id and token:
            found = find_job(api, token, training_file)
            external_id = str(found.id) if found is not None else None
        if not external_id:
            return None
        api(f"cancelling job {external_id}", api.client.fine_tuning.jobs.cancel, external_id, expect="status")
        return external_id
    except ServerError as exc:
        if "has already" in str(exc):  # it ended upstream in the meantime
            return external_id
        raise WorkbenchError(f"{exc}: the job is left as it is; try `workbench finetune cancel` again.") from None
