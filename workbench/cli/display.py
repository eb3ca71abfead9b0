"""How commands print: rows as table|csv|json, progress on stderr, what a rating run did, exit codes.

Every command prints what it is for through `show` (rows or one JSON
document on stdout) and everything else, progress and messages, through
`note` (stdout for the table format, where people read it as today; stderr
for csv and json, so stdout parses). Nothing heavy is imported here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from workbench.output import OutputFormat, json_value, render

if TYPE_CHECKING:
    from workbench.jobs.runner import RunReport


def show(
    fmt: OutputFormat | str,
    columns: Sequence[str] = (),
    rows: Iterable[Sequence[object]] = (),
    *,
    lines: Iterable[str] | None = None,
    document: object = None,
    numeric: Sequence[bool] | None = None,
) -> None:
    """Print a command's result on stdout: the one renderer every command uses.

    - table: `lines` when given (the readable text a command has always printed), else the rows aligned;
    - csv: the rows (RFC 4180, a header row);
    - json: `document` when given (one object), else the rows as an array of objects.
    """
    fmt = OutputFormat(fmt.value if isinstance(fmt, OutputFormat) else fmt)
    rows = [list(r) for r in rows]
    if fmt is OutputFormat.json and document is not None:
        typer.echo(json.dumps(json_value(plain(document)), indent=2, ensure_ascii=False))
    elif fmt is OutputFormat.table and lines is not None:
        for line in lines:
            typer.echo(line)
    else:
        typer.echo(render(columns, rows, fmt, numeric=numeric), nl=False)


def plain(value: object) -> object:
    """Results (dataclasses, inside mappings and lists too) as plain dicts and lists for JSON."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def record(obj: object) -> dict:
    """A result (a dataclass, or a mapping) as a dict for JSON."""
    return plain(obj if not isinstance(obj, dict) else dict(obj))  # type: ignore[return-value]


def scalars(doc: dict) -> tuple[list[str], list[object]]:
    """The columns and the row of a record's single values (lists and mappings left to the JSON document)."""
    keys = [k for k, v in doc.items() if not isinstance(v, (list, tuple, dict, set))]
    return keys, [doc[k] for k in keys]


def show_record(fmt: OutputFormat | str, obj: object, lines: Iterable[str] | None = None, **extra: object) -> None:
    """One result: its readable lines (table), its single values as one row (csv), the whole of it (json)."""
    doc = {**record(obj), **extra}
    columns, row = scalars(doc)
    show(fmt, columns, [row], lines=lines, document=doc)


def show_records(fmt: OutputFormat | str, objs: Sequence[object], lines: Iterable[str] | None = None) -> None:
    """Several results of one kind: readable lines (table), one row each (csv), an array of objects (json)."""
    docs = [record(o) for o in objs]
    columns = scalars(docs[0])[0] if docs else []
    if fmt in (OutputFormat.json, "json"):
        show(fmt, lines=lines, document=docs)
    else:
        show(fmt, columns, [[d.get(c) for c in columns] for d in docs], lines=lines)


def note(fmt: OutputFormat | str) -> Callable[[str], None]:
    """Where a command's messages go: stdout for the table format, stderr for csv and json (stdout then parses)."""
    table = (fmt.value if isinstance(fmt, OutputFormat) else fmt) == "table"
    return typer.echo if table else (lambda message: typer.echo(message, err=True))


def working(message: str):
    """A spinner on stderr while long work runs (only on a terminal, so piped output stays clean)."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


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


RUN_COLUMNS = ("rater", "backend", "model", "dry_run", "job", "status", "target", "already", "requested", "requests", "rated",
               "unreadable", "refused", "failed", "low_mass", "calls", "prompt_tokens", "completion_tokens", "cost",
               "estimated_prompt_tokens", "estimated_completion_tokens", "estimated_cost")  # fmt: skip


def run_row(report: RunReport) -> list[object]:
    """A rating run (or a dry run) as one row of RUN_COLUMNS."""
    c = report.counts or {}
    p, comp = report.estimated_tokens or (None, None)
    return [report.rater, report.backend, report.model, report.dry_run, report.job_id, report.status if not report.dry_run else "dry run",
            report.target, report.already, report.requested, report.requests, c.get("rated"), c.get("unreadable"), c.get("refused"),
            c.get("failed"), c.get("low_mass"), c.get("calls"), c.get("prompt_tokens"), c.get("completion_tokens"), report.cost,
            p, comp, report.estimated_cost if report.price_known else None]  # fmt: skip


def run_document(report: RunReport) -> dict:
    """A rating run as one JSON object: its row, its failures and notes."""
    doc = dict(zip(RUN_COLUMNS, run_row(report)))
    doc["failures"] = list((report.counts or {}).get("failures", []))
    doc["notes"] = list(report.notes)
    return doc


FAILED_ITEMS_EXIT = 2  # a job ended with failed items (or a fine-tune failed): scripts notice


def exit_if_failed(failed: int, unfinished: list[str] | None = None) -> None:
    """Exit with code 2 after a run that left failed items, or a fine-tune failed or cancelled, saying so on stderr."""
    if failed:
        typer.echo(f"{failed} item(s) failed and have no rating yet: run the command again to retry them.", err=True)
    for line in unfinished or ():
        typer.echo(line, err=True)
    if failed or unfinished:
        raise typer.Exit(FAILED_ITEMS_EXIT)
