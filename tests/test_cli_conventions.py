"""One CLI convention, checked on the real command list (app.registered_commands and its sub-typers).

Every command has help and an example in README.md; `--format` is an enum
listed in --help; a file is written with -o/--out; repeatable flags are
singular (--rater, --gold); importing the CLI loads no heavy library.
"""

from __future__ import annotations

import enum
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.output import OutputFormat

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["scipy", "pandas", "matplotlib", "duckdb", "torch", "openai", "sqlalchemy", "alembic", "pyarrow",
         "numpy", "pydantic", "workbench.analysis.report", "transformers", "aiohttp"]  # fmt: skip


def _name(info) -> str:
    return info.name or info.callback.__name__.rstrip("_").replace("_", "-")


def registered(typer_app: typer.Typer, prefix: str = "") -> list[str]:
    """Command paths from the Typer registrations themselves ("status", "db current", ...)."""
    out = [f"{prefix}{_name(c)}" for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        out += registered(group.typer_instance, f"{prefix}{group.name} ")
    return out


def click_commands(group, prefix: str = "") -> dict:
    """The commands as the CLI runs them (Typer's own click: groups are the ones with sub-commands)."""
    out = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out |= click_commands(cmd, f"{prefix}{name} ")
        else:
            out[f"{prefix}{name}"] = cmd
    return out


def _enum(param):
    """The Enum a Typer parameter is declared with (None if it is not one)."""
    annotation = param.type_descriptor.annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


def _is_option(param) -> bool:
    return type(param).__name__.endswith("Option")


COMMANDS = click_commands(typer.main.get_command(app))


def test_the_walk_sees_every_command():
    assert sorted(registered(app)) == sorted(COMMANDS)
    assert {"init", "validate", "plan", "apply", "import", "status", "export", "rate", "report", "sql",
            "db upgrade", "db current"} <= set(COMMANDS)  # fmt: skip


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_help_and_a_readme_example(path):
    cmd = COMMANDS[path]
    assert (cmd.help or "").strip(), f"`workbench {path}` has no help text (a docstring)"
    for param in cmd.params:
        if _is_option(param) and param.name != "help":
            assert (param.help or "").strip() or param.name in ("study", "db"), f"{path} {param.opts} has no help"
    result = CliRunner().invoke(app, [*path.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"workbench {re.escape(path)}\b", readme), f"README.md lacks an example of `workbench {path}`"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_options_follow_the_convention(path):
    cmd = COMMANDS[path]
    for param in cmd.params:
        if not _is_option(param):
            continue
        if "--format" in param.opts:
            choices = _enum(param)
            assert choices is not None, f"{path}: --format is not an enum"
            assert "-f" in param.opts, f"{path}: --format has no -f"
            help_text = CliRunner().invoke(app, [*path.split(), "--help"]).output
            assert "|".join(c.value for c in choices) in help_text
        if param.name in ("out", "output"):
            assert {"-o", "--out"} <= set(param.opts), f"{path}: a file is written with -o/--out, not {param.opts}"
        if param.multiple:
            long = [o for o in param.opts if o.startswith("--")]
            assert long and not long[0].endswith("s") or long[0] in ("--na",), f"{path}: repeatable {long} is not singular"


def test_commands_that_print_data_share_one_format_enum():
    printing = {"sql", "status", "db current"}
    for path in printing:
        (fmt,) = [p for p in COMMANDS[path].params if "--format" in getattr(p, "opts", [])]
        assert _enum(fmt) is OutputFormat, path


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, workbench.cli.main\nheavy = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(heavy))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported when the CLI loads: {done.stdout.strip()}"
