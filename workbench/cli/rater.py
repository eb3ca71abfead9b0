"""workbench rater show: a rater's whole configuration and its prompt for a word."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from workbench.cli.options import DEFAULT_STUDY, Db, StudyPath, open_store, store_url

app = typer.Typer(help="Look at raters: their configuration and prompts.", no_args_is_help=True, rich_markup_mode=None)


class ShowFormat(str, Enum):
    """How `rater show` prints: readable text, or one JSON object."""

    text = "text"
    json = "json"


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="A rater of the study's raters:, or one the store holds (NAME@HASH, an imported model).")],
    word: Annotated[str | None, typer.Option("--word", help="Fill the prompt in for this word (default: the first of its items).")] = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="text or json.", case_sensitive=False)] = ShowFormat.text,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Print a rater's whole configuration (declared options, identity, what the store holds) and its prompt for a word."""
    import json

    from sqlalchemy.orm import Session

    from workbench.study.rater_show import describe_rater, rater_details

    loaded = None
    if study.exists():
        from workbench.study.load import load_study

        loaded = load_study(study)
    with open_store(store_url(db, study)) as engine, Session(engine) as s:
        details = rater_details(s, loaded, name, word=word)
    if fmt == ShowFormat.json:
        from workbench.output import json_value

        typer.echo(json.dumps(json_value(details), indent=2, ensure_ascii=False))
        return
    for line in describe_rater(details):
        typer.echo(line)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="rater")
