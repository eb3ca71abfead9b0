"""The store's own facts in `store_meta`: its identity and its change counter.

Caches and stamps outside the store (the DuckDB snapshot, the study's report
stamps) are keyed by `store_version`: the store's random identity, created
with it, and its generation. A store deleted and created again at the same
path or URL gets a new identity, so nothing cached from the old one is
taken for it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from workbench.store.models import StoreMeta

STORE_ID = "store_id"
GENERATION = "generation"


def ensure_store_id(conn: Connection) -> None:
    """Give the store its identity if it has none yet (a new store, or one made before identities).

    Safe when several processes open a new store at once: the first insert wins.
    """
    if conn.scalar(select(StoreMeta.value).where(StoreMeta.key == STORE_ID)) is not None:
        return
    if conn.dialect.name == "postgresql":  # the dialect modules load on demand: CLI startup
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(StoreMeta).values(key=STORE_ID, value=uuid.uuid4().hex).on_conflict_do_nothing(index_elements=["key"]))


def store_id(session: Session) -> str:
    """The store's identity: a random id created with the store ("" if it has none yet)."""
    return session.scalar(select(StoreMeta.value).where(StoreMeta.key == STORE_ID)) or ""


def generation(session: Session) -> int:
    """How many changes have been committed to the store (for caches)."""
    value = session.scalar(select(StoreMeta.value).where(StoreMeta.key == GENERATION))
    return int(value) if value is not None else 0


def store_version(session: Session) -> str:
    """`<identity>-g<generation>`: what a cache of the store's contents is keyed by."""
    rows = dict(session.execute(select(StoreMeta.key, StoreMeta.value).where(StoreMeta.key.in_([STORE_ID, GENERATION]))).all())
    return f"{rows.get(STORE_ID) or 'noid'}-g{int(rows.get(GENERATION) or 0)}"


def bump_generation(session: Session) -> int:
    """Count one more change; call inside the transaction that makes it."""
    row = session.get(StoreMeta, GENERATION, with_for_update=True)
    if row is None:
        row = StoreMeta(key=GENERATION, value="1")
        session.add(row)
    else:
        row.value = str(int(row.value) + 1)
    session.flush()
    return int(row.value)


STUDY = "study"


def study_info(session: Session) -> dict | None:
    """The study the store was last applied from: {"name", "title"} as `record_study` wrote it (None if never)."""
    import json

    value = session.scalar(select(StoreMeta.value).where(StoreMeta.key == STUDY))
    if not value:
        return None
    try:
        info = json.loads(value)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def record_study(session: Session, info: dict) -> bool:
    """Record the study the store is applied from (its name and title), so reports can name it; True when it changed."""
    import json

    text = json.dumps(info, sort_keys=True, ensure_ascii=False)
    row = session.get(StoreMeta, STUDY)
    if row is not None and row.value == text:
        return False
    if row is None:
        session.add(StoreMeta(key=STUDY, value=text))
    else:
        row.value = text
    session.flush()
    return True
