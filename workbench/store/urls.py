"""Store URLs: which database a command opens, and how it is shown.

The lowest module of the store: no engine, no migrations.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DB_NAME = "workbench.db"


def resolve_url(explicit: str | None, study_database: str | None = None, base_dir: Path | None = None) -> str:
    """The store URL: --db/WORKBENCH_DB, else the study file's, else a SQLite file beside the study.

    A bare path is taken as a SQLite file; relative SQLite paths in a study
    file are relative to the study's folder.
    """
    base_dir = base_dir or Path.cwd()
    raw = explicit or os.environ.get("WORKBENCH_DB") or study_database
    if not raw:
        return f"sqlite:///{(base_dir / DEFAULT_DB_NAME).resolve()}"
    if "://" not in raw:
        return f"sqlite:///{(base_dir / raw).resolve()}"
    if raw.startswith("postgresql://") or raw.startswith("postgres://"):
        raw = "postgresql+psycopg://" + raw.split("://", 1)[1]
    if raw.startswith("sqlite:///") and not raw.startswith("sqlite:////") and raw != "sqlite:///:memory:":
        rel = raw[len("sqlite:///") :]
        if rel and not Path(rel).is_absolute():
            raw = f"sqlite:///{(base_dir / rel).resolve()}"
    return raw


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
