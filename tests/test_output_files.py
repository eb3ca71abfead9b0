"""Files the workbench writes: one rule and one wording for every command (workbench.files).

A file goes only into a folder that exists and can be written to; a folder a
command exists to make (init DIR, a study report's out:) is created inside an
existing folder. Otherwise: one line, exit 1, nothing written, no store made.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli.main import app

STUDY = """\
study: files
dimensions:
  familiarity: {scale: [1, 7]}
datasets:
  toolbox: {file: norms.csv, preset: glasgow_mrc}
reports:
  main: {gold: [toolbox-glasgow], raters: [toolbox-mrc], formats: [json], n_boot: 100, out: OUT}
"""


@pytest.fixture
def read_only_folder(tmp_path) -> Path:
    """A folder no file can be created in: chmod 555, or for root (who ignores modes) sysfs."""
    if os.geteuid() == 0:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without /sys: no read-only folder to write into")
        yield Path("/sys/kernel")
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield folder
    folder.chmod(stat.S_IRWXU)


def error_line(cwd: Path, *args) -> str:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        os.chdir(old)
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def commands(target: Path, store: Path):
    """Each command that writes a file, aimed at `target`."""
    return {
        "report": ["report", "--db", store, "--format", "json", "--out", target / "report.json"],
        "report -o": ["report", "--db", store, "-o", target / "report.json"],
        "export": ["export", "--db", store, "--dataset", "d", "--out", target / "ratings.csv"],
        "export -o": ["export", "--db", store, "--dataset", "d", "-o", target / "ratings.parquet"],
    }


@pytest.mark.parametrize("name", ["report", "report -o", "export", "export -o"])
def test_missing_folder(name, tmp_path):
    missing = tmp_path / "no" / "such"
    store = tmp_path / "store.db"
    args = commands(missing, store)[name]
    line = error_line(tmp_path, *args)
    out = Path(args[-1])
    assert line == f"Error: --out {out}: the folder {missing} does not exist; create it or name a file in an existing folder."
    assert not (tmp_path / "no").exists() and not store.exists()


@pytest.mark.parametrize("name", ["report", "export"])
def test_read_only_folder(name, tmp_path, read_only_folder):
    store = tmp_path / "store.db"
    args = commands(read_only_folder, store)[name]
    line = error_line(tmp_path, *args)
    assert line.startswith(f"Error: --out {args[-1]}: cannot write in the folder {read_only_folder} (")
    assert line.endswith("); choose a folder you can write to.")
    assert not store.exists()


@pytest.mark.parametrize("name", ["report", "export"])
def test_out_is_a_folder(name, tmp_path):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    args = commands(tmp_path, tmp_path / "store.db")[name]
    args[-1] = folder
    line = error_line(tmp_path, *args)
    assert line.startswith(f"Error: --out {folder}: is a folder; name a file to write, e.g. {folder}/")
    assert list(folder.iterdir()) == []


def test_init_into_a_missing_or_read_only_folder(tmp_path, read_only_folder):
    target = tmp_path / "no" / "such" / "study"
    line = error_line(tmp_path, "init", target)
    assert line == (f"Error: init {target}: the folder {target.parent} does not exist; create it or name a folder inside an existing one.")
    assert not (tmp_path / "no").exists()
    line = error_line(tmp_path, "init", read_only_folder / "study")
    assert line.startswith(f"Error: init {read_only_folder / 'study'}: cannot write in the folder {read_only_folder} (")
    # a folder that exists, or a new one in an existing folder, is fine
    result = CliRunner().invoke(app, ["init", str(tmp_path / "fresh")])
    assert result.exit_code == 0 and (tmp_path / "fresh" / "study.yaml").exists()


def _study(folder: Path, out: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "norms.csv").write_text("Word,FAM_Glas,FAM_MRC\n" + "".join(f"w{i},{1 + i % 7},{1 + i * 3 % 7}\n" for i in range(30)))
    (folder / "study.yaml").write_text(STUDY.replace("OUT", out))
    return folder / "study.yaml"


def test_a_study_report_folder_follows_the_same_rule(tmp_path, read_only_folder):
    study = _study(tmp_path / "s1", "results/reports")
    line = error_line(tmp_path, "apply", "--study", study)
    missing = tmp_path / "s1" / "results"
    assert line == (
        f"Error: reports.main.out {missing / 'reports'}: the folder {missing} does not exist; "
        "create it or name a folder inside an existing one."
    )
    study = _study(tmp_path / "s2", str(read_only_folder / "reports"))
    line = error_line(tmp_path, "apply", "--study", study)
    assert line.startswith(f"Error: reports.main.out {read_only_folder / 'reports'}: cannot write in the folder {read_only_folder} (")
    # the folder is made when its parent exists
    study = _study(tmp_path / "s3", "reports")
    result = CliRunner().invoke(app, ["apply", "--study", str(study)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s3" / "reports" / "main.json").exists()
