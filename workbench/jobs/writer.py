"""Committing a job's results in small batches, so an interrupted job keeps what it finished.

Every flush is one transaction: the ratings (inserted with "on conflict do
nothing", so a resume or a second runner can never duplicate one), the call
log rows, the job's running counts and cost, and the store generation. A
flush happens every ``commit_every`` results and, from a timer, every
``commit_seconds`` while results wait, even when no new result arrives (one
request stalling must not hold back what the others answered). So a ``kill
-9`` loses only the requests in flight and at most ``commit_seconds`` of
answered results.

What is stored is the backstop of the key's redaction (every text: the call
log's response and error, the rating's answer and note, the job's error), and
one response is kept up to ``MAX_STORED_RESPONSE`` characters: a longer one is
cut, saying so at its end.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlalchemy.orm import Session

from workbench.raters.backend import Outcome
from workbench.raters.pricing import Rate
from workbench.raters.readout import Refusal, SamplesReadout
from workbench.store.engine import bump_generation
from workbench.store.models import Call, Job, Rating

MAX_FAILURES_KEPT = 200
MAX_STORED_RESPONSE = 64 << 10
"""Characters of one response kept in the call log (a rating's evidence is a few kilobytes)."""


def capped(text: str, limit: int = MAX_STORED_RESPONSE) -> str:
    """The text, or its first `limit` characters and a note saying how long it was."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" [... cut by the workbench: {limit} of {len(text)} characters kept]"


__all__ = ["JobWriter", "Outcome", "insert_ignoring_duplicates", "rating_row"]


def insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ratings, skipping any whose (rater, dimension, item, replicate) is already stored."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(Rating).on_conflict_do_nothing(index_elements=["rater_id", "dimension_id", "item_id", "replicate"])
    session.execute(stmt, rows)


def rating_row(outcome: Outcome, *, rater_id: int, dimension_id: int, job_id: int) -> dict[str, Any]:
    r = outcome.readout
    assert r is not None
    sd = n = None
    if isinstance(r, SamplesReadout):
        sd, n = r.sd, r.n_valid
    return {
        "item_id": outcome.item_id,
        "dimension_id": dimension_id,
        "rater_id": rater_id,
        "replicate": outcome.replicate,
        "value": r.value,
        "sd": sd,
        "n": n,
        "distribution": r.distribution,
        "raw_answer": r.answer,
        "mass": r.mass,
        "note": r.reason,
        "job_id": job_id,
    }


class JobWriter:
    """Buffers outcomes and commits them every ``commit_every`` items or ``commit_seconds``."""

    def __init__(
        self,
        engine: Engine,
        *,
        job_id: int,
        rater_id: int,
        dimension_id: int,
        rate: Rate | None,
        names: dict[int, str],
        commit_every: int = 64,
        commit_seconds: float = 1.0,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.engine, self.job_id, self.rater_id, self.dimension_id = engine, job_id, rater_id, dimension_id
        self.rate, self.names, self.redact = rate, names, redact
        self.commit_every, self.commit_seconds = commit_every, commit_seconds
        self.pending: list[Outcome] = []
        self.last_flush = time.monotonic()
        self.counts: dict[str, Any] = {
            "rated": 0, "unreadable": 0, "low_mass": 0, "failed": 0, "calls": 0,
            "prompt_tokens": 0, "completion_tokens": 0,
            "mass_read": 0, "mass_low": 0,  # answers whose probability on scale tokens was measured; of them, below min_mass
        }  # fmt: skip
        self._lock = threading.RLock()  # add() and flush() from the job's thread, flush() from the timer
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.failures: list[dict[str, str]] = []
        self.cost = 0.0

    @property
    def done(self) -> int:
        return self.counts["rated"] + self.counts["unreadable"] + self.counts["failed"]

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            self._add(outcome)
        if self._timer is None and self.commit_seconds > 0:
            self._timer = threading.Thread(target=self._flush_on_time, name=f"job-{self.job_id}-writer", daemon=True)
            self._timer.start()

    def _flush_on_time(self) -> None:
        """Flush what waits every commit_seconds, until the job finishes."""
        while not self._stop.wait(self.commit_seconds / 2):
            with self._lock:
                if self.pending and time.monotonic() - self.last_flush >= self.commit_seconds:
                    try:
                        self.flush()
                    except Exception:  # noqa: BLE001 - the job's own next flush reports the store's error
                        return

    def _add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        c = self.counts
        c["calls"] += len(outcome.calls)
        c["prompt_tokens"] += outcome.prompt_tokens
        c["completion_tokens"] += outcome.completion_tokens
        if self.rate is not None:
            self.cost += self.rate.cost(outcome.prompt_tokens, outcome.completion_tokens)
        if outcome.readout is None:
            c["failed"] += 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append({"item": self.names.get(outcome.item_id, str(outcome.item_id)), "reason": outcome.error or "failed"})
        elif outcome.readout.value is None:
            c["unreadable"] += 1
            if isinstance(outcome.readout, Refusal):
                c["refused"] = c.get("refused", 0) + 1
        else:
            c["rated"] += 1
            c["low_mass"] += bool(outcome.readout.low_mass)
        if outcome.readout is not None and outcome.readout.mass is not None and not isinstance(outcome.readout, SamplesReadout):
            c["mass_read"] += 1
            c["mass_low"] += bool(outcome.readout.low_mass)
        if len(self.pending) >= self.commit_every or time.monotonic() - self.last_flush >= self.commit_seconds:
            self.flush()

    def _call_rows(self) -> list[dict[str, Any]]:
        rows = []
        for o in self.pending:
            for call in o.calls:
                row = dict(call, job_id=self.job_id, item_id=o.item_id)
                for key in ("error", "response"):
                    if row.get(key):
                        row[key] = self.redact(capped(row[key]))
                rows.append(row)
        return rows

    def flush(self) -> None:
        """Commit what is buffered, with the job's counts so far."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        with Session(self.engine) as s, s.begin():
            ratings = [
                rating_row(o, rater_id=self.rater_id, dimension_id=self.dimension_id, job_id=self.job_id)
                for o in self.pending
                if o.readout is not None
            ]
            for row in ratings:
                for key in ("raw_answer", "note"):
                    if row.get(key):
                        row[key] = self.redact(row[key])
            insert_ignoring_duplicates(s, ratings)
            calls = self._call_rows()
            if calls:
                s.execute(insert(Call), calls)
            self._save_job(s)
            if ratings:
                bump_generation(s)
        self.pending.clear()
        self.last_flush = time.monotonic()

    def _save_job(self, s: Session, **extra: Any) -> None:
        counts = dict(self.counts, failures=self.failures)
        s.execute(update(Job).where(Job.id == self.job_id).values(counts=counts, cost=round(self.cost, 6), **extra))

    def finish(self, status: str, error: str | None = None) -> None:
        """Flush and close the job with its final status."""
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=30)
        if error is None and self.failures:
            shown = "; ".join(f"{f['item']}: {f['reason']}" for f in self.failures[:5])
            more = f" (and {self.counts['failed'] - 5} more)" if self.counts["failed"] > 5 else ""
            error = f"{self.counts['failed']} item(s) failed: {shown}{more}"
        self.flush()
        with Session(self.engine) as s, s.begin():
            self._save_job(s, status=status, error=self.redact(error) if error else None, finished_at=dt.datetime.now(dt.UTC))
