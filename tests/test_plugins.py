"""A backend from another distribution: installed for real, found through its entry point, rating in a real CLI run.

The test writes two tiny distributions (a pyproject.toml and one module each),
installs them with pip (setuptools from this venv, no network) into a folder
of their own, and runs `workbench apply` in a subprocess that has that folder
on its PYTHONPATH, as an installed plugin would be on sys.path:

- workbench-plugin-constant registers a `plugin-constant` backend under the
  entry-point group workbench.backends, and a `plugin-mean` trainer under
  workbench.trainers (it "trains" by taking the training items' mean gold
  value; its tuned rater is a plugin-constant rater rating that); a study
  rates with the backend and fine-tunes with the trainer;
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
from workbench.store.itemsets import item_texts, resolve_items
from workbench.store.models import Job, Rater, Rating

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i:02d}" for i in range(12)]

CONSTANT = '''
"""A backend that rates every item 4.5 (or its `value:`)."""
from pydantic import Field

from workbench.finetune.job import update_job
from workbench.finetune.trainer import Trainer, register_trainer
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


@register_trainer("plugin-mean")
class MeanTrainer(Trainer):
    rater_backend = "plugin-constant"

    def train(self, engine, run, prep, job_id, say):
        mean = sum(e.mean for e in prep.train) / len(prep.train)
        update_job(engine, job_id, status="succeeded", config={"result_model": repr(mean)})
        say(f"{prep.name}: the mean of {len(prep.train)} training items is {mean}")

    def tuned_rater(self, run, model=None):
        spec = super().tuned_rater(run, model)
        return spec if model is None else spec.model_copy(update={"value": float(model)})
'''

BROKEN = """
raise RuntimeError("this plugin is broken on purpose\\nsecond line that must not be printed")
"""


def _distribution(folder: Path, name: str, module: str, code: str, entries: dict[str, str]) -> Path:
    """A source tree: one module, and a pyproject.toml naming it under each group (group -> entry point name)."""
    src = folder / name
    src.mkdir()
    (src / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    groups = "".join(f'[project.entry-points."{group}"]\n{entry} = "{module}"\n\n' for group, entry in entries.items())
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1"\n\n{groups}[tool.setuptools]\npy-modules = ["{module}"]\n'
    )
    (src / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return src


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    """A folder holding the two plugin distributions, installed by pip (as site-packages would hold them)."""
    work = tmp_path_factory.mktemp("plugins")
    good = _distribution(work, "workbench-plugin-constant", "wb_plugin_constant", CONSTANT,
                         {"workbench.backends": "plugin-constant", "workbench.trainers": "plugin-mean"})  # fmt: skip
    bad = _distribution(work, "workbench-plugin-broken", "wb_plugin_broken", BROKEN, {"workbench.backends": "broken-backend"})
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


def write_study(folder: Path, raters: dict, **more) -> Path:
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(WORDS)), encoding="utf-8")
    study = {
        "study": "plugins",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7]}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": raters,
        **more,
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


def test_an_installed_plugin_trainer_fine_tunes_through_apply(plugins, tmp_path):
    study = write_study(
        tmp_path,
        {},
        splits={"s": {"from": "gold", "train": 8, "seed": 1}},
        finetunes={"avg": {"backend": "plugin-mean", "train": "s.train", "gold": "gold", "rate": "s.test"}},
    )
    done = workbench(plugins, "apply", "--study", str(study), cwd=tmp_path, only="workbench-plugin-constant")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "avg: the mean of 8 training items is" in done.stdout + done.stderr
    gold = {w: float(1 + i % 7) for i, w in enumerate(WORDS)}
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    with Session(engine) as s:
        train = item_texts(s, resolve_items(s, "s.train")).values()
        test = item_texts(s, resolve_items(s, "s.test")).values()
        job = s.scalar(select(Job).where(Job.kind == "finetune:plugin-mean"))
        rater = s.scalar(select(Rater).where(Rater.name == "avg"))
    engine.dispose()
    mean = sum(gold[w] for w in train) / len(train)
    assert job.status == "succeeded" and float(job.config["result_model"]) == pytest.approx(mean)
    assert rater.config["backend"] == "plugin-constant" and rater.config["trained_on"]["finetune"] == "avg"
    assert ratings(tmp_path, "avg") == pytest.approx([mean] * len(test))


def test_the_trainer_registry_names_an_unknown_trainer_and_lets_a_trainer_refuse_an_entry(tmp_path):
    from workbench.errors import WorkbenchError
    from workbench.finetune.trainer import builtin_trainer_names, trainer_names
    from workbench.study.load import load_study

    assert set(builtin_trainer_names()) == {"local", "openai"} and set(builtin_trainer_names()) <= set(trainer_names())
    entry = {"train": "s.train", "gold": "gold", "rate": "s.test"}
    splits = {"s": {"from": "gold", "train": 8, "seed": 1}}
    study = write_study(tmp_path, {}, splits=splits, finetunes={"ft": {"backend": "locale", **entry}})
    with pytest.raises(WorkbenchError, match=r"finetunes\.ft.*unknown trainer 'locale'\. Did you mean 'local'\? Trainers: "):
        load_study(study)
    study = write_study(tmp_path, {}, splits=splits, finetunes={"ft": {"backend": "openai", **entry}})
    with pytest.raises(WorkbenchError, match=r"finetunes\.ft.*an openai fine-tune needs base \(a declared openai rater\) or model"):
        load_study(study)
    study = write_study(tmp_path, {}, splits=splits, finetunes={"ft": {"backend": "local", **entry}})
    assert load_study(study).study.finetunes["ft"].backend == "local"
