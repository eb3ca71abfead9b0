"""workbench rate: run one rater over the items it has not rated yet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from workbench.cli.options import DEFAULT_STUDY, Db, StudyPath, open_store, store_url

if TYPE_CHECKING:
    from workbench.jobs.runner import RunReport


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar with rate and ETA on stderr (plain lines when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not sys.stderr.isatty():
        last = [-1]

        def plain(done: int, total: int) -> None:
            step = max(1, total // 10)
            if done == total or done // step != last[0]:
                last[0] = done // step
                console.print(f"{label}: {done}/{total}", highlight=False)

        yield plain
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(done: int, total: int) -> None:
            t = bar.tasks[task]
            speed = t.speed
            bar.update(task, completed=done, total=total, rate=f"{speed:.1f} items/s" if speed else "")

        yield update


def describe(report: RunReport) -> list[str]:
    """The lines that tell a user what a run did or would do."""
    head = f"{report.rater} ({report.backend}{', ' + report.model if report.model else ''})"
    if report.dry_run:
        lines = [f"{head}: {report.requested} of {report.target} items to rate ({report.already} already rated)."]
        if report.estimated_tokens:
            p, c = report.estimated_tokens
            lines.append(f"  {report.requests} requests, about {p:,} prompt and {c:,} completion tokens (estimated).")
            if report.price_known:
                lines.append(f"  Estimated cost: ${report.estimated_cost:.4f}.")
            else:
                lines.append("  Cost unknown: the price table does not know this model; give the rater a price:.")
        lines += [f"  {note}" for note in report.notes]
        lines.append("Dry run: nothing was rated or stored.")
        return lines
    if report.job_id is None:
        return [f"{head}: all {report.target} items are rated already. Nothing to do."]
    c = report.counts
    lines = [
        f"{head}: job {report.job_id} {report.status}: {c.get('rated', 0)} rated, "
        f"{c.get('unreadable', 0)} answers with no rating, {c.get('failed', 0)} failed"
        f"{', ' + str(c['low_mass']) + ' with low mass on scale tokens' if c.get('low_mass') else ''}."
    ]
    if c.get("refused"):
        lines.append(
            f"  {c['refused']} of the answers with no rating were refusals (the model refused, or the server's content filter stopped it)."
        )
    if c.get("prompt_tokens"):
        cost = f", ${report.cost:.4f}" if report.cost is not None else ""
        lines.append(f"  {c.get('calls', 0)} calls, {c['prompt_tokens']:,} prompt + {c['completion_tokens']:,} completion tokens{cost}.")
    for f in c.get("failures", [])[:10]:
        lines.append(f"  failed: {f['item']}: {f['reason']}")
    if c.get("failed"):
        lines.append("  Run the command again to retry the failed items.")
    lines += [f"  {note}" for note in report.notes]
    return lines


FAILED_ITEMS_EXIT = 2  # a job ended with failed items (or a fine-tune failed): scripts notice


def exit_if_failed(failed: int, unfinished: list[str] | None = None) -> None:
    """Exit with code 2 after a run that left failed items, or a fine-tune failed or cancelled, saying so on stderr."""
    if failed:
        typer.echo(f"{failed} item(s) failed and have no rating yet: run the command again to retry them.", err=True)
    for line in unfinished or ():
        typer.echo(line, err=True)
    if failed or unfinished:
        raise typer.Exit(FAILED_ITEMS_EXIT)


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
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Rate the items a rater has not rated yet; resumable.

    Interrupt at any time and run again to resume.

    Exits with code 2 when items failed (after retries): the next run retries them.
    """
    from workbench.study.load import load_study
    from workbench.study.rate import dry_run_rater, run_rater

    loaded = load_study(study)
    url = store_url(db, study)
    if dry_run:  # changes nothing, not even a new store; checks the model name with the server
        report = dry_run_rater(url, loaded, rater, items=items, limit=limit, check_server=True)
    else:
        from workbench.store.locks import study_lock

        # the same store-wide lock as apply: a rate beside an apply (or another rate) never sends a request twice
        with open_store(url) as engine, study_lock(engine, "apply", wait, what=f"rate {rater}", wait_option="--wait"):
            with progress_bar(f"Rating with {rater}") as bar:
                report = run_rater(engine, loaded, rater, items=items, limit=limit, on_progress=bar)
    for line in describe(report):
        typer.echo(line)
    exit_if_failed(report.failed)


def register(app: typer.Typer) -> None:
    app.command()(rate)
