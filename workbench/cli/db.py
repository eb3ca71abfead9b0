"""workbench db upgrade | current: the store's schema."""

from __future__ import annotations

import typer

from workbench.cli.display import show
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, store_url
from workbench.output import OutputFormat

app = typer.Typer(help="The store's schema: show its revision, upgrade it.", no_args_is_help=True)


@app.command()
def upgrade(study: StudyPath = DEFAULT_STUDY, db: Db = None, fmt: Format = OutputFormat.table) -> None:
    """Upgrade the store to this workbench's schema (back it up first)."""
    from workbench.store import migrate
    from workbench.store.urls import redact_url

    url = store_url(db, study)
    with open_store(url, check_schema=False) as engine:
        before = migrate.current_revision(engine)
        head = migrate.head_revision(engine)
        if before != head:
            migrate.ensure_current(engine, allow_upgrade=True)
    if before == head:
        line = f"{redact_url(url)}: already at revision {head}."
    else:
        line = f"{redact_url(url)}: upgraded from {before or 'empty'} to {head}."
    row = {"store": redact_url(url), "from": before, "to": head, "upgraded": before != head}
    show(fmt, list(row), [list(row.values())], lines=[line], document=row)


@app.command()
def current(study: StudyPath = DEFAULT_STUDY, db: Db = None, fmt: Format = OutputFormat.table) -> None:
    """Show the store, its schema revision and the one this workbench needs."""
    from workbench.store import migrate
    from workbench.store.urls import redact_url

    url = store_url(db, study)
    with open_store(url, check_schema=False) as engine:
        cur = migrate.current_revision(engine)
        head = migrate.head_revision(engine)
    state = "up to date" if cur == head else ("empty" if cur is None else "needs `workbench db upgrade`")
    row = (redact_url(url), cur, state, head)
    show(fmt, ["store", "revision", "state", "needed"], [row])
