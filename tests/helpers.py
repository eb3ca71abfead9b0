"""Helpers the test modules share: the CLI run in process, and waiting for a condition.

The `runner` fixture (a typer CliRunner) is in tests/conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from typer.testing import CliRunner, Result

from workbench.cli.main import app


def cli(runner: CliRunner, *args: object, code: int = 0) -> Result:
    """`workbench ARGS...` in process; asserts its exit code, and that an error (code 1) is one line,
    "Error: ...", on stderr alone, with no traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    if code == 1:
        assert result.stdout == ""
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
    return result


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, *, every: float = 0.05) -> None:
    """Return once predicate() is true; AssertionError("timed out") after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s")
        time.sleep(every)
