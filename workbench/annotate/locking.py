"""One `annotate push` (or one `annotate pull`) of a campaign at a time per store.

The store-wide lock of workbench.store.locks (an advisory lock on PostgreSQL,
a lock row on SQLite): a second push of the same campaign waits a bounded
time, then ends with one line naming the one that runs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Engine

LOCK_WAIT_S = 10.0


def campaign_lock(engine: Engine, name: str, what: str, wait_s: float = LOCK_WAIT_S) -> AbstractContextManager:
    from workbench.store.locks import study_lock

    return study_lock(engine, name, wait_s=wait_s, what=what, wait_option="--wait")
