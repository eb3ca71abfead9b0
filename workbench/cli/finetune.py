"""workbench finetune start | status | cancel NAME: the study's fine-tuning jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.display import describe, note, progress_bar, run_document, show_record
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, study_and_store
from workbench.output import OutputFormat

app = typer.Typer(help="Fine-tuning jobs declared under `finetunes:` in the study; each makes a rater.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="A fine-tune declared in the study's finetunes:.")]


def _describe(report) -> list[str]:
    head = f"{report.name} ({report.backend}): "
    if report.status == "not started":
        return [head + "not started." + (f" {report.details['note']}." if report.details.get("note") else "")]
    lines = [head + f"job {report.job_id} {report.status}" + (f", {report.external_id}" if report.external_id else "")]
    if report.model and report.status == "succeeded":
        lines.append(f"  model: {report.model}")
    if report.error:
        lines.append(f"  reason: {report.error}")
    training = report.details.get("training")
    if training and training.get("state") != "not started":
        step = f"step {training.get('step')}/{training.get('total_steps')}"
        loss = f", loss {training['loss']}" if training.get("loss") is not None else ""
        ckpt = f", checkpoint at step {training['checkpoint_step']}" if training.get("checkpoint_step") else ""
        lines.append(f"  training: {training['state']}, {step}{loss}{ckpt}")
    if report.details.get("hint"):
        lines.append(f"  {report.details['hint']}.")
    return lines


@app.command()
def start(
    name: Name,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start a new job even if the last one failed or was cancelled (a local one trains from scratch)."),
    ] = False,  # fmt: skip
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Start the fine-tune, or resume its job; on success its rater rates the `rate` items."""
    from workbench.study.finetune import start_finetune

    loaded, url = study_and_store(study, db)
    with open_store(url) as engine, progress_bar(f"Rating with {name}") as bar:
        report = start_finetune(engine, loaded, name, restart=restart, on_event=note(fmt), on_rate_progress=bar)
    _show(fmt, report)
    if report.status in ("failed", "cancelled"):
        raise typer.Exit(1)


def _show(fmt: OutputFormat, report) -> None:
    lines = _describe(report)
    if report.rating is not None:
        lines += ["  " + line for line in describe(report.rating)]
    rating = run_document(report.rating) if report.rating is not None else None
    show_record(fmt, {k: v for k, v in vars(report).items() if k != "rating"}, lines, rating=rating)


@app.command()
def status(name: Name, fmt: Format = OutputFormat.table, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """The fine-tune's job: running (with its progress), succeeded (its model), failed (why) or cancelled."""
    from sqlalchemy.orm import Session

    from workbench.study.finetune import finetune_status

    loaded, url = study_and_store(study, db)
    with open_store(url) as engine, Session(engine) as s:
        report = finetune_status(s, loaded, name)
    _show(fmt, report)


@app.command()
def cancel(name: Name, fmt: Format = OutputFormat.table, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """Cancel the fine-tune's running job (upstream too); a finished job is left as it is."""
    from workbench.study.finetune import cancel_finetune

    loaded, url = study_and_store(study, db)
    say = note(fmt)
    events: list[str] = []

    def event(message: str) -> None:
        events.append(message)
        say(message)

    with open_store(url) as engine:
        report = cancel_finetune(engine, loaded, name, on_event=event)
    # the table format said what happened in the events; csv and json print the job as it is now
    show_record(fmt, {k: v for k, v in vars(report).items() if k != "rating"}, [], events=events)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="finetune")
