"""workbench rater show: a rater's whole configuration and its prompt for a word."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli import display
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, study_and_store
from workbench.output import OutputFormat

app = typer.Typer(help="Look at raters: their configuration and prompts.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="A rater of the study's raters:, or one the store holds (NAME@HASH, an imported model).")],
    word: Annotated[str | None, typer.Option("--word", help="Fill the prompt in for this word (default: the first of its items).")] = None,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Print a rater's whole configuration (declared options, identity, what the store holds) and its prompt for a word.

    table: readable text; json: one object; csv: one row of field, value per entry (nested values as JSON).
    """
    from sqlalchemy.orm import Session

    from workbench.study.rater_show import describe_rater, rater_details

    loaded, url = study_and_store(study, db, required=False)
    with open_store(url) as engine, Session(engine) as s:
        details = rater_details(s, loaded, name, word=word)
    display.show(fmt, ["field", "value"], list(details.items()), lines=describe_rater(details), document=details)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="rater")
