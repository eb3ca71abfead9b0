"""Rating through the OpenAI Batch API: half the price, answers within 24 hours.

The lifecycle: build a JSONL file of chat completions bodies (one line per
item, ``custom_id`` = ``item-ID``), upload it, create the batch, keep its id
on the job (status ``submitted``) and commit, poll until the batch ends, then
download the output and error files and ingest every line. A run that finds a
``submitted`` job of the same rater (the process was stopped while waiting)
picks that batch up instead of paying for a second one. A batch that expires
or is cancelled with part of its answers yields those; the rest stay unrated
for the next run.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.raters.backend import (
    Outcome,
    RaterOptions,
    ResolvedRater,
    RunJob,
    StillWaiting,
    Writer,
)
from workbench.raters.openai.chat import (
    ChatBackend,
    ChatOptions,
    read_rating,
    request_body,
)
from workbench.raters.openai.client import OpenAIApi, ServerError
from workbench.raters.openai.http import BadResponse, check_model_name, read_answer
from workbench.raters.openai.wire import KeyRefused
from workbench.redact import Redactor
from workbench.store.models import Job

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
CREATE_ATTEMPTS = 3  # each after looking for a batch made by the attempts before
POLL_FAILURES = 8  # transient failures in a row while waiting before the job is left submitted for the next run
LIST_PAGES = 5


def _custom_id(item_id: int) -> str:
    return f"item-{item_id}"


def _item_id(custom_id: str) -> int | None:
    prefix, _, number = str(custom_id).partition("-")
    return int(number) if prefix == "item" and number.isdigit() else None


def batch_file(resolved: ResolvedRater, texts: dict[int, str]) -> bytes:
    """The batch input: one request line per item."""
    lines = (
        json.dumps({"custom_id": _custom_id(i), "method": "POST", "url": ENDPOINT, "body": request_body(resolved, t)}, ensure_ascii=False)
        for i, t in texts.items()
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def _submit(engine: Engine, api: OpenAIApi, resolved: ResolvedRater, texts: dict[int, str], job_id: int) -> str:
    client = api.client
    uploaded = api("uploading the batch file", client.files.create,
                   file=("workbench-batch.jsonl", io.BytesIO(batch_file(resolved, texts))), purpose="batch")  # fmt: skip
    with Session(engine) as s, s.begin():  # before the create: a workbench killed while creating finds its batch by it
        job = s.get(Job, job_id)
        job.config = dict(job.config or {}, input_file_id=api.redact(str(uploaded.id)), batch_items=len(texts))
    batch = _create(api, str(uploaded.id), {"workbench_rater": resolved.name[:64], "workbench_job": str(job_id)})
    with Session(engine) as s, s.begin():
        job = s.get(Job, job_id)
        job.external_id, job.status = api.redact(str(batch.id)), "submitted"
    return batch.id


def _adopt_orphan(engine: Engine, api: OpenAIApi, rater_id: int, job_id: int) -> None:
    """A workbench killed while creating a batch left a job with an uploaded file and no batch id: when the
    server made the batch, record it on that job (submitted), so it is picked up instead of paid again."""
    with Session(engine) as s:
        orphan = s.scalar(
            select(Job)
            .where(Job.rater_id == rater_id, Job.status == "interrupted", Job.external_id.is_(None), Job.id != job_id)
            .order_by(Job.id.desc())
        )
        cfg = dict(orphan.config or {}) if orphan is not None else {}
    if orphan is None or not cfg.get("input_file_id") or cfg.get("batch_looked_for"):
        return
    found = _find(api, str(cfg["input_file_id"]))
    with Session(engine) as s, s.begin():
        job = s.get(Job, orphan.id)
        job.config = dict(job.config or {}, batch_looked_for=True)
        if found is not None:
            job.external_id, job.status, job.finished_at = api.redact(str(found.id)), "submitted", None


def _find(api: OpenAIApi, input_file_id: str) -> Any | None:
    """A batch the server holds for this input file (uploaded for this job alone), or None."""
    return api.find("listing the batches", api.client.batches.list, lambda batch: getattr(batch, "input_file_id", None) == input_file_id,
                    pages=LIST_PAGES)  # fmt: skip


def _create(api: OpenAIApi, input_file_id: str, metadata: dict[str, str]) -> Any:
    """The batch of this input file, created once: sent without the client's own retries, and after a
    failure the server's batches are looked through for one the failed request made (adopted)."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        if attempt > 1:
            found = _find(api, input_file_id)
            if found is not None:
                return found
        try:
            return api("creating the batch", api.once().batches.create, input_file_id=input_file_id, endpoint=ENDPOINT,
                       completion_window="24h", metadata=metadata)  # fmt: skip
        except ServerError as exc:
            if not exc.transient or attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(min(30.0, 2.0 ** (attempt - 1)))
    raise AssertionError("unreachable")


def _wait(api: OpenAIApi, batch_id: str, poll_seconds: float, progress: Callable[[int], None] | None, offset: int,
          status: str = "submitted") -> Any:  # fmt: skip
    """The batch once it ended. A 5xx, a timeout or a dropped connection is asked again with backoff; a
    server that stays away (or refuses the key) leaves the job `status` for the next run (StillWaiting)."""
    failures = 0
    while True:
        try:
            batch = api(f"checking the batch {api.redact(batch_id)}", api.client.batches.retrieve, batch_id, expect="status")
        except (ServerError, KeyRefused) as exc:
            failures += 1
            if not getattr(exc, "transient", False) or failures >= POLL_FAILURES:
                raise StillWaiting(f"{exc}; the batch {api.redact(batch_id)} is left waiting: run again to pick it up.",
                                   status) from None  # fmt: skip
            time.sleep(min(300.0, poll_seconds * 2.0 ** (failures - 1)))
            continue
        failures = 0
        counts = getattr(batch, "request_counts", None)
        if progress and counts is not None:
            progress(offset + (counts.completed or 0) + (counts.failed or 0))
        if batch.status in TERMINAL:
            return batch
        time.sleep(poll_seconds)


def _lines(api: OpenAIApi, file_id: str | None) -> list[dict[str, Any]]:
    """The lines of a batch's output or error file, parsed, every value redacted."""
    if not file_id:
        return []
    text = api("downloading the batch's results", api.client.files.content, file_id, expect="text").text
    out = []
    for line in text.splitlines():
        if line.strip():
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a broken line: its item is reported missing below
            if isinstance(data, dict):
                out.append(api.redact.json(data))
    return out


def _outcome(resolved: ResolvedRater, item_id: int, line: dict[str, Any], body: dict[str, Any]) -> Outcome:
    response = line.get("response") if isinstance(line.get("response"), dict) else {}
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    raw = json.dumps(line, ensure_ascii=False)
    status_code = response.get("status_code")
    call_row = {"attempt": 1, "request": body, "response": raw, "http_status": status_code if isinstance(status_code, int) else None,
                "latency_ms": None}  # fmt: skip
    if error or status_code != 200:
        answer = response.get("body") if isinstance(response.get("body"), dict) else {}
        answer_error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        message = (error or {}).get("message") or answer_error.get("message") or "error"
        code = (error or {}).get("code") or status_code
        reason = " ".join(f"batch {code}: {message}".split())[:300]
        return Outcome(item_id, None, error=reason, calls=[dict(call_row, status="error", error=reason)])
    data = response.get("body")
    try:
        readout, usage = read_answer(data, lambda d: read_rating(resolved, d))
    except BadResponse as exc:
        return Outcome(item_id, None, error=str(exc), calls=[dict(call_row, status="error", error=str(exc))])
    call_row.update(status="ok", prompt_tokens=usage[0] or None, completion_tokens=usage[1] or None)
    return Outcome(item_id, readout, calls=[call_row], prompt_tokens=usage[0], completion_tokens=usage[1])


def _ingest(api: OpenAIApi, resolved: ResolvedRater, batch: Any, texts: dict[int, str], writer: Writer) -> set[int]:
    """Write every answered line; returns the items the batch answered or failed."""
    seen: set[int] = set()
    for line in _lines(api, batch.output_file_id) + _lines(api, batch.error_file_id):
        item_id = _item_id(line.get("custom_id", ""))
        if item_id is None or item_id in seen or item_id not in texts:
            continue
        seen.add(item_id)
        outcome = _outcome(resolved, item_id, line, request_body(resolved, texts[item_id]))
        if outcome.readout is None and "batch_expired" in (outcome.error or ""):
            continue  # never answered: it stays pending for the next run, not "failed"
        writer.add(outcome)
    return seen


def _finish_status(batch: Any, writer: Writer) -> str:
    if batch.status == "completed":
        return "completed" if writer.counts["failed"] == 0 else "partial"
    return batch.status  # failed, expired, cancelled


def _batch_errors(batch: Any, redact: Redactor) -> str | None:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    text = "; ".join(f"line {e.line}: {e.message}" if getattr(e, "line", None) else str(e.message) for e in data)
    return " ".join(redact(text).split())[:500] or None


def _submitted_job(engine: Engine, rater_id: int, job_id: int) -> Job | None:
    with Session(engine) as s:
        return s.scalar(
            select(Job)
            .where(Job.rater_id == rater_id, Job.status == "submitted", Job.external_id.is_not(None), Job.id != job_id)
            .order_by(Job.id.desc())
        )


def run_batch(resolved: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
    """Pick up a batch left waiting by an earlier run, then submit the items still unrated."""
    api = OpenAIApi.for_rater(resolved)
    spec = resolved.spec
    engine, writer, progress = job.engine, job.writer, job.progress
    remaining = dict(texts)
    _adopt_orphan(engine, api, writer.rater_id, job.job_id)
    prior = _submitted_job(engine, writer.rater_id, job.job_id)
    if prior is not None:
        assert job.writer_for is not None
        earlier = job.writer_for(prior.id)
        batch = _wait(api, prior.external_id, spec.poll_seconds, progress, 0, status="interrupted")
        answered = _ingest(api, resolved, batch, remaining, earlier)
        earlier.finish(_finish_status(batch, earlier), error=_batch_errors(batch, api.redact))
        for item_id in answered:
            remaining.pop(item_id, None)
        if progress:
            progress(len(texts) - len(remaining))
    if not remaining:
        return "completed"
    check_model_name(resolved, api.key, api.redact)
    batch_id = _submit(engine, api, resolved, remaining, job.job_id)
    batch = _wait(api, batch_id, spec.poll_seconds, progress, len(texts) - len(remaining))
    _ingest(api, resolved, batch, remaining, writer)
    if batch.status == "failed":
        raise WorkbenchError(f"the batch {api.redact(batch_id)} failed: {_batch_errors(batch, api.redact) or 'no reason given'}.")
    return _finish_status(batch, writer)


class BatchOptions(ChatOptions):
    """Options of openai-batch: the chat options, and how often to ask whether the batch has ended."""

    poll_seconds: float = Field(30, gt=0, description="seconds between batch status checks")

    run_fields: ClassVar[frozenset[str]] = ChatOptions.run_fields | {"poll_seconds"}


class BatchBackend(ChatBackend):
    """The chat requests of the openai backend, sent as one batch at the Batch API's price."""

    Options: ClassVar[type[RaterOptions]] = BatchOptions
    batch = True
    picks_up_waiting_work = True

    def run(self, rater: ResolvedRater, texts: dict[int, str], job: RunJob) -> str:
        return run_batch(rater, texts, job)
