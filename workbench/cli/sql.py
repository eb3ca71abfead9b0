"""workbench sql: DuckDB over the store, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import show
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, store_url
from workbench.errors import WorkbenchError
from workbench.output import OutputFormat


def sql(
    query: Annotated[
        str | None,
        typer.Argument(
            help="A DuckDB SELECT over the views items, dimensions, datasets, raters, ratings, ratings_wide, rating_pairs, jobs, calls."
        ),
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-F", help="Read the query from this file.")] = None,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Query the store with DuckDB SQL (read-only). See README for the views and examples."""
    from workbench.analysis.duck import result_rows, run_sql

    if (query is None) == (file is None):
        raise WorkbenchError("Give the query as an argument, or --file PATH, not both.")
    if file is not None:
        if not file.exists():
            raise WorkbenchError(f"{file}: no such file.")
        query = file.read_text(encoding="utf-8")
    with open_store(store_url(db, study)) as engine:
        table = run_sql(engine, query)
    names, rows, numeric = result_rows(table)
    show(fmt, names, rows, numeric=numeric)


def register(app: typer.Typer) -> None:
    app.command()(sql)
