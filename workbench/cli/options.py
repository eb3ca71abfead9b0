"""Options shared by every command, defined once, and the conventions they follow.

- Every command takes ``--format/-f table|csv|json`` (`Format`) and prints
  its result through one function, `workbench.cli.display.show`: table is
  the readable text (or aligned rows), csv the rows, json one document that
  parses (messages then go to stderr). tests/test_cli_conventions.py finds
  the commands itself and runs each with ``--format json``.
- The study is loaded once per command (`study_and_store`).
- Commands that write a file take ``-o/--out`` (`workbench.files` checks it).
- Repeatable flags are singular and repeated: ``--rater a --rater b``, ``--gold g``.
- No command prints a ``Store: URL`` line (stdout carries only what the
  command is for, and an error is the only line on stderr); `status` and
  `db current` name the store (password hidden) as part of their output.
- Nothing heavy is imported at module level (SQLAlchemy, pandas, scipy, the
  report stack, DuckDB, torch, openai): `workbench --help` starts fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workbench.output import OutputFormat

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from workbench.study.load import LoadedStudy

StudyPath = Annotated[
    Path,
    typer.Option("--study", "-s", help="The study file.", envvar="WORKBENCH_STUDY", show_default=True),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Store URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "(default: the study's `database`, else workbench.db beside the study).",
        envvar="WORKBENCH_DB",
        show_default=False,
    ),
]
DEFAULT_STUDY = Path("study.yaml")
Format = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="How to print the rows: table (aligned), csv or json.", case_sensitive=False),
]


def store_url(db: str | None, study: Path, loaded: LoadedStudy | None = None) -> str:
    """--db/WORKBENCH_DB, else the study file's database, else workbench.db beside the study.

    Give the study when the command has loaded it already: it is read once per command.
    """
    from workbench.store.urls import resolve_url

    if db:
        return resolve_url(db, base_dir=Path.cwd())
    if loaded is None and study.exists():
        from workbench.study.load import load_study

        loaded = load_study(study)
    if loaded is not None:
        return resolve_url(None, loaded.study.database, loaded.base_dir)
    return resolve_url(None, None, study.resolve().parent)


def study_and_store(study: Path, db: str | None, *, required: bool = True) -> tuple[LoadedStudy | None, str]:
    """The study, loaded once (None when it is not required and there is no file), and the store's URL."""
    loaded = None
    if required or study.exists():
        from workbench.study.load import load_study

        loaded = load_study(study)
    return loaded, store_url(db, study, loaded)


@contextmanager
def open_store(url: str, *, check_schema: bool = True) -> Iterator[Engine]:
    """An engine for one command, disposed afterwards; checks (or, when new, creates) the schema.

    A store that is locked past the busy timeout, not a database, damaged,
    on a full disk or not writable is one line (workbench.store.engine.store_error),
    wherever the command meets it.
    """
    from workbench.store.engine import connect, make_engine, store_error

    engine = connect(url) if check_schema else make_engine(url)
    try:
        yield engine
    except Exception as exc:  # a database error, SQLAlchemy's or the driver's own (raw cursors)
        known = store_error(exc, url)
        if known is None:
            raise
        raise known from None
    finally:
        engine.dispose()
