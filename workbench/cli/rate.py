"""workbench rate: run one rater over the items it has not rated yet."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.display import RUN_COLUMNS, describe, exit_if_failed, progress_bar, run_document, run_row, show
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, study_and_store
from workbench.output import OutputFormat


def rate(
    rater: Annotated[str, typer.Argument(help="A rater declared in the study's raters:.")],
    items: Annotated[str | None, typer.Option("--items", help="Item set or dataset to rate (default: the rater's items).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Rate at most this many of the unrated items.")] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the requests and estimated cost, and check the model name with the server; rate nothing."),
    ] = False,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait for an apply or rate running on the same store before giving up."),
    ] = 10.0,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Rate the items a rater has not rated yet; resumable.

    Interrupt at any time and run again to resume.

    Exits with code 2 when items failed (after retries): the next run retries them.
    """
    from workbench.study.rate import dry_run_rater, run_rater

    loaded, url = study_and_store(study, db)
    if dry_run:  # changes nothing, not even a new store; checks the model name with the server
        report = dry_run_rater(url, loaded, rater, items=items, limit=limit, check_server=True)
    else:
        from workbench.store.locks import study_lock

        # the same store-wide lock as apply: a rate beside an apply (or another rate) never sends a request twice
        with open_store(url) as engine, study_lock(engine, "apply", wait, what=f"rate {rater}", wait_option="--wait"):
            with progress_bar(f"Rating with {rater}") as bar:
                report = run_rater(engine, loaded, rater, items=items, limit=limit, on_progress=bar)
    show(fmt, RUN_COLUMNS, [run_row(report)], lines=describe(report), document=run_document(report))
    exit_if_failed(report.failed)


def register(app: typer.Typer) -> None:
    app.command()(rate)
