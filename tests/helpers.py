"""Helpers the test modules share: the CLI in process and in a subprocess, a norms study, waiting for a condition.

The `runner` fixture (a typer CliRunner) is in tests/conftest.py.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner, Result

from workbench.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


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


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for `python -m workbench.cli.main` in a subprocess: this one without the variables
    that would choose its store, study or cache, with the repository on PYTHONPATH, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_STUDY", "WORKBENCH_CACHE_DIR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env | extra


def norms_study(folder: Path, study: str, words: int, digits: int) -> Path:
    """folder/study.yaml (the text `study`) beside norms.csv in the glasgow_mrc preset's columns: `words`
    words word0000... (`digits` digits), familiarity 1 + i % 7 (Glasgow) and 1 + 3i % 7 (MRC)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "norms.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Word", "FAM_Glas", "FAM_MRC"])
        for i in range(words):
            w.writerow([f"word{i:0{digits}d}", 1 + i % 7, 1 + (i * 3) % 7])
    (folder / "study.yaml").write_text(study)
    return folder / "study.yaml"
