"""The `workbench` command: one Typer app per command group, joined here."""

from __future__ import annotations

import typer
from typer.core import TyperGroup
from typer.models import DefaultPlaceholder

from workbench import __version__
from workbench.cli import annotate, annotate_tools, data, db, finetune, rate, rater, report, sql, study
from workbench.errors import WorkbenchError


class FullHelpGroup(TyperGroup):
    """A command list that shows each command's first sentence whole, wrapped, never cut with "..."."""

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class WorkbenchGroup(FullHelpGroup):
    """User mistakes become one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:  # an optional dependency no `require` caught first: still one line
            from workbench.extras import missing_extra

            known = missing_extra(exc, f"`workbench {ctx.invoked_subcommand}`" if ctx.invoked_subcommand else None)
            if known is None:
                raise
            typer.echo(f"Error: {known}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted: finished steps are kept; run the command again to resume.", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    name="workbench",
    cls=WorkbenchGroup,
    help="Build word norms with humans and LLMs: declare a study, import norms, rate, validate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
study.register(app)
data.register(app)
rate.register(app)
rater.register(app)
report.register(app)
sql.register(app)
finetune.register(app)
app.add_typer(db.app, name="db")
annotate.register(app)
annotate_tools.register(annotate.app)
for _group in app.registered_groups:  # the command groups list their commands whole too
    if _group.typer_instance is not None and isinstance(_group.typer_instance.info.cls, (type(None), DefaultPlaceholder)):
        _group.typer_instance.info.cls = FullHelpGroup


def _version(value: bool) -> None:
    if value:
        typer.echo(f"workbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Workbench: word norms from humans and LLMs, in one reproducible store."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
