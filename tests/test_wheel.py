"""The wheel: built from this tree, installed into a new virtualenv, it creates and migrates stores.

The new virtualenv gets the wheel with --no-deps and sees the test
virtualenv's site-packages (a .pth line) for the dependencies only: the
workbench it runs is the installed wheel, from a folder outside the source
tree, so the Alembic migrations must come from inside the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT


def _run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKBENCH_DB", "WORKBENCH_STUDY")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # a copy of the tree, so the build writes nothing into the checkout
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.db", ".pytest_cache", "tests", "bench"))
    done = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)], out)
    assert done.returncode == 0, done.stderr
    (whl,) = out.glob("workbench-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    home = tmp_path_factory.mktemp("venv")
    env = home / "env"
    done = _run([sys.executable, "-m", "venv", "--without-pip", str(env)], home)
    assert done.returncode == 0, done.stderr
    py = env / "bin" / "python"
    done = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)], home)
    assert done.returncode == 0, done.stderr
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], home).stdout.strip())
    # the dependencies (not workbench: the test venv's editable finder is a .pth that a plain path line does not run)
    (purelib / "zz_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env


def test_wheel_holds_the_migrations_and_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert versions
    for name in versions:
        assert f"workbench/migrations/versions/{name}" in names
    assert {"workbench/migrations/env.py", "workbench/migrations/script.py.mako"} <= names
    assert "workbench/templates/study/study.yaml" in names
    assert "workbench/py.typed" in names
    assert not any("__pycache__" in n or n.startswith(("tests/", "migrations/")) for n in names)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_installed_wheel_inits_applies_and_reports_the_revision(venv, tmp_path, kind, request):
    bin_ = venv / "bin"
    where = _run([str(bin_ / "python"), "-c", "import workbench; print(workbench.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    study = tmp_path / "norms"
    done = _run([str(bin_ / "workbench"), "init", str(study)], tmp_path)
    assert done.returncode == 0, done.stderr
    shutil.copyfile(DATA / "glasgow" / "glasgow_norms.csv", study / "data" / "glasgow_norms.csv")
    text = (study / "study.yaml").read_text()
    text = text.replace("datasets: {}", "datasets:\n  glasgow:\n    file: data/glasgow_norms.csv\n    preset: glasgow")
    (study / "study.yaml").write_text(text)
    db = f"sqlite:///{tmp_path / 'store.db'}" if kind == "sqlite" else request.getfixturevalue("empty_pg_url")
    args = ["--study", str(study / "study.yaml"), "--db", db]

    done = _run([str(bin_ / "workbench"), "apply", *args], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "glasgow" in done.stdout

    head = sorted(p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("*.py"))[-1]
    done = _run([str(bin_ / "workbench"), "db", "current", *args, "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["revision"], row["state"], row["needed"]) == (head, "up to date", head)
