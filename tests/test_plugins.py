"""A backend from another distribution: installed for real, found through its entry point, rating in a real CLI run.

The test writes two tiny distributions (a pyproject.toml and one module each),
installs them with pip (setuptools from this venv, no network) into a folder
of their own, and runs `workbench apply` in a subprocess that has that folder
on its PYTHONPATH, as an installed plugin would be on sys.path:

- workbench-plugin-constant registers a `plugin-constant` backend under the
  entry-point group workbench.backends; a study rates with it;
- workbench-plugin-broken names a module that raises on import: the CLI says
  so in one line naming the distribution and the entry point, goes on with
  the other plugins, and a study that asks for its backend is told why the
  name is unknown.

SQLite only: what is tested is how plugins load, not the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.store import connect
from workbench.store.models import Rater, Rating

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i:02d}" for i in range(12)]

CONSTANT = '''
"""A backend that rates every item 4.5 (or its `value:`)."""
from pydantic import Field

from workbench.raters.backend import Outcome, RaterBackend, RaterOptions, in_chunks, register_backend
from workbench.raters.readout import Readout


class ConstantOptions(RaterOptions):
    value: float = Field(4.5, description="the rating every item gets")


@register_backend("plugin-constant")
class Constant(RaterBackend):
    Options = ConstantOptions
    kind = "model"

    def run(self, rater, texts, job):
        for ids, words in in_chunks(texts, 5):
            for item_id, word in zip(ids, words, strict=True):
                job.writer.add(Outcome(item_id, Readout(value=rater.spec.value, answer=word)))
            job.report()
        return "completed"
'''

BROKEN = """
raise RuntimeError("this plugin is broken on purpose\\nsecond line that must not be printed")
"""


def _distribution(folder: Path, name: str, module: str, code: str, entry: str) -> Path:
    src = folder / name
    src.mkdir()
    (src / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.1"

        [project.entry-points."workbench.backends"]
        {entry} = "{module}"

        [tool.setuptools]
        py-modules = ["{module}"]
        """),
        encoding="utf-8",
    )
    return src


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    """A folder holding the two plugin distributions, installed by pip (as site-packages would hold them)."""
    work = tmp_path_factory.mktemp("plugins")
    good = _distribution(work, "workbench-plugin-constant", "wb_plugin_constant", CONSTANT, "plugin-constant")
    bad = _distribution(work, "workbench-plugin-broken", "wb_plugin_broken", BROKEN, "broken-backend")
    target = work / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--target", str(target), str(good), str(bad)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=work)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "workbench_plugin_broken-0.1.dist-info",
        "workbench_plugin_constant-0.1.dist-info",
    ]
    return target


def workbench(site: Path, *args: str, cwd: Path, only: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_STUDY", "WORKBENCH_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site)])
    if only is not None:
        env["WORKBENCH_PLUGINS"] = only
    cmd = [sys.executable, "-m", "workbench.cli.main", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def write_study(folder: Path, raters: dict) -> Path:
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(WORDS)), encoding="utf-8")
    study = {
        "study": "plugins",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7]}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": raters,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def ratings(folder: Path, rater: str) -> list[float]:
    engine = connect(f"sqlite:///{folder / 'store.db'}")
    with Session(engine) as s:
        values = list(s.scalars(select(Rating.value).join(Rater).where(Rater.name == rater)))
    engine.dispose()
    return values


def test_an_installed_plugin_backend_rates_through_apply(plugins, tmp_path):
    study = write_study(tmp_path, {"flat": {"backend": "plugin-constant", "value": 2.5}})
    done = workbench(plugins, "apply", "--study", str(study), cwd=tmp_path, only="workbench-plugin-constant")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "flat (plugin-constant): job" in done.stdout and f"completed: {len(WORDS)} rated" in done.stdout
    assert "broken" not in done.stderr  # WORKBENCH_PLUGINS named only the good one: the broken one is never imported
    assert ratings(tmp_path, "flat") == [2.5] * len(WORDS)


def test_a_broken_plugin_is_one_line_and_the_others_still_load(plugins, tmp_path):
    study = write_study(tmp_path, {"flat": {"backend": "plugin-constant"}})
    done = workbench(plugins, "apply", "--study", str(study), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "broken" in line]
    assert lines == [
        "workbench: plugin 'workbench-plugin-broken' (workbench.backends: broken-backend = wb_plugin_broken) failed to load "
        "and is skipped: RuntimeError: this plugin is broken on purpose"
    ], done.stderr
    assert "Traceback" not in done.stderr and "second line" not in done.stderr
    assert ratings(tmp_path, "flat") == [4.5] * len(WORDS)

    # a study asking for a backend the broken plugin would have registered: the unknown name says why
    (tmp_path / "other").mkdir()
    study = write_study(tmp_path / "other", {"odd": {"backend": "broken-backend"}})
    done = workbench(plugins, "validate", "--study", str(study), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "unknown backend 'broken-backend' (plugins that failed to load: workbench-plugin-broken: broken-backend)." in done.stderr
