"""workbench annotate preview | annotators: what annotators see, and what they did (for paying them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import note, show, show_record
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, store_url, study_and_store
from workbench.output import OutputFormat

Campaign = Annotated[str, typer.Argument(help="A campaign declared under `campaigns:` in the study file.")]


def preview(
    campaign: Campaign,
    list_no: Annotated[int, typer.Option("--list", min=1, help="Which list's first word to show.")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file; a PNG screenshot goes beside it when Chromium is found.")] = Path(
        "preview.html"
    ),
    png: Annotated[bool, typer.Option("--png/--no-png", help="Also save a screenshot with headless Chromium, when found.")] = True,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Write what an annotator sees (instructions, the rating screen of a list's first word) as HTML, and a PNG."""
    from sqlalchemy.orm import Session

    from workbench.annotate.preview import build_preview, screenshot
    from workbench.files import check_output_file, writing

    path = check_output_file(out, "--out")
    loaded, url = study_and_store(study, db)
    with open_store(url) as engine, Session(engine) as s:
        shown = build_preview(s, loaded, campaign, list_no=list_no)
    with writing(path, "--out"):
        path.write_text(shown.html, encoding="utf-8")
    say = note(fmt)
    say(f"Wrote {path.resolve()}: list {shown.list_no} of {campaign}, first word {shown.word!r}.")
    image = path.with_suffix(".png")
    if png and screenshot(path, image):
        say(f"Wrote {image.resolve()}.")
    elif png:
        typer.echo("No Chromium found ($CHROMIUM, or chromium on PATH; Debian: apt-get install chromium): no screenshot.", err=True)
    made = {"file": str(path.resolve()), "campaign": campaign, "list": shown.list_no, "word": shown.word,
            "png": str(image.resolve()) if png and image.exists() else None}  # fmt: skip
    show_record(fmt, made, [])


def annotators(
    campaign: Campaign,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the rows to this file (CSV) instead of printing them.")] = None,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Per annotator (pseudonym): lists done, annotations, time spent, exclusion, completion code; as of the last pull."""
    from sqlalchemy.orm import Session

    from workbench.annotate.annotators import COLUMNS, NUMERIC, annotator_work
    from workbench.files import check_output_file, writing
    from workbench.output import render

    path = check_output_file(out, "--out") if out is not None else None
    with open_store(store_url(db, study)) as engine, Session(engine) as s:
        rows = [w.row() for w in annotator_work(s, campaign)]
    if path is not None:
        with writing(path, "--out"):
            path.write_text(render(COLUMNS, rows, "csv" if fmt == OutputFormat.table else fmt, numeric=NUMERIC), encoding="utf-8")
        typer.echo(f"Wrote {len(rows)} annotators to {path.resolve()}.", err=fmt is not OutputFormat.table)
        return
    show(fmt, COLUMNS, rows, numeric=NUMERIC)


def register(annotate_app: typer.Typer) -> None:
    annotate_app.command()(preview)
    annotate_app.command()(annotators)
