"""What annotators see and what they did, against a real Label Studio: the study's title, information and consent in
the instructions, one label per point, the word in large type, no workbench key in the project's title or
description (it lives in a comment of the label config, and push still finds the projects by it), a completion
code, the first pull with no annotations, the annotators' work for paying them, and `annotate preview`.

SQLite store only: the store paths are the ones tests/test_annotate.py runs on both databases.
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.test_annotate import annotators, conn_for, ls_server, make_study, work_through  # noqa: F401 (fixtures)
from workbench.annotate.annotators import annotator_work
from workbench.annotate.labelconfig import UNKNOWN_LABEL, label_mismatches
from workbench.annotate.preview import find_chromium
from workbench.annotate.pull import pull_campaign
from workbench.annotate.push import push_campaign
from workbench.annotate.status import campaign_status
from workbench.cli.main import app
from workbench.store import connect as connect_store
from workbench.study.apply import apply_study
from workbench.study.load import load_study

TITLE = "Familiarity of rare English words"
INFORMATION = "This study is run by the Language Lab.\n\nIt takes about ten minutes. Contact: lab@example.org."
CONSENT = "Your ratings are stored under a pseudonym and published as averages only."
CODE = "C0DE1234"
URL = "https://app.prolific.com/submissions/complete?cc=C0DE1234"


@pytest.fixture
def people_study(tmp_path, ls_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    campaign_extra = f"    completion: {{code: {CODE}, url: '{URL}'}}\n"
    study_extra = f"title: {TITLE}\ninformation: information.txt\nconsent: {CONSENT}\n"
    path = make_study(tmp_path / "study", ls_server.url, k=2, list_size=6, exclude=campaign_extra, extra=study_extra)
    (path.parent / "information.txt").write_text(INFORMATION + "\n")
    loaded = load_study(path)
    engine = connect_store(f"sqlite:///{tmp_path / 'store.db'}")
    apply_study(engine, loaded)
    yield loaded, engine
    engine.dispose()


def test_annotators_meet_the_study_not_the_workbench(people_study, ls_server, annotators, tmp_path):  # noqa: F811
    loaded, engine = people_study
    conn = conn_for(ls_server)
    report = push_campaign(engine, loaded, "pilot", conn)
    assert report.lists == 2 and report.notes == []  # instructions and buttons agree: no note
    projects = conn.request("GET", "/api/projects/", params={"page_size": 100, "include": "id,title,description,label_config,"
                                                             "expert_instruction,show_instruction,show_annotation_history"})["results"]  # fmt: skip
    mine = sorted((p for p in projects if f"[workbench:{loaded.study.study}/" in (p["label_config"] or "")), key=lambda p: p["title"])
    assert [p["title"] for p in mine] == [f"{TITLE} list 1", f"{TITLE} list 2"]
    for p in mine:
        assert "workbench" not in p["title"] and "workbench" not in p["description"]  # the key is not shown to annotators
        assert p["show_instruction"] and not p["show_annotation_history"]
        text = p["expert_instruction"]
        assert TITLE in text and "Language Lab" in text and "lab@example.org" in text and CONSENT in text
        assert CODE in text and URL in text
        # one label per point, the same in the instructions and on the buttons
        buttons = re.findall(r'<Choice value="([^"]+)"', p["label_config"])
        assert buttons[0] == "1 (never)" and buttons[-2] == "7 (very often)" and buttons[-1] == UNKNOWN_LABEL
        for b in buttons:
            assert f"<li>{b.replace(chr(39), '&#x27;')}" in text, b
        # the word is the largest thing on the screen; the heading above it is small
        assert 'className="wb-word"' in p["label_config"] and 'size="6"' in p["label_config"]

    # Label Studio keeps the settings as pushed (the key's comment included): a second push changes nothing
    again = push_campaign(engine, loaded, "pilot", conn)
    assert (again.projects_updated, again.tasks_imported, again.notes) == (0, 0, [])

    # a push cut short before the store knew its projects: the next push finds them by the key in the label config
    other = connect_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        apply_study(other, loaded)
        again = push_campaign(other, loaded, "pilot", conn)
        assert (again.projects_created, again.projects_adopted, again.tasks_imported) == (0, 2, 0)
    finally:
        other.dispose()

    # the first pull, with no annotations yet
    first = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert first.lines()[0].startswith("pilot: first pull: no annotations")
    with Session(engine) as s:
        assert "pulled never" not in campaign_status(s, "pilot").lines()[0]
    second = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert "nothing changed" in second.lines()[0]

    # two annotators: one finishes list 1, the other rates two of its words and skips one
    a, b = annotators[0], annotators[1]
    project_1 = next(p["id"] for p in mine if p["title"].endswith("list 1"))
    n_tasks = len(work_through(a, project_1, lambda w: "4"))
    task = b.next_task(project_1)
    b.annotate(task["id"], "5", lead_time=3.5)
    task = b.next_task(project_1)
    b.annotate(task["id"], UNKNOWN_LABEL, lead_time=1.5)
    task = b.next_task(project_1)
    b.annotate(task["id"], "", cancelled=True, lead_time=1.0)
    pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    with Session(engine) as s:
        work = annotator_work(s, "pilot")
    assert len(work) == 2 and all(w.rater for w in work)
    done, partial = sorted(work, key=lambda w: -w.annotations)
    assert (done.lists_done, done.lists, done.annotations, done.rated, done.seconds) == (1, "1", n_tasks, n_tasks, 2.0 * n_tasks)
    assert (partial.lists_done, partial.lists_started, partial.annotations) == (0, 1, 3)
    assert (partial.rated, partial.unknown, partial.skipped, partial.seconds) == (1, 1, 1, 6.0)
    assert done.completion_code == CODE

    # exported for payment, read back as a spreadsheet would
    pay = tmp_path / "pay.csv"
    result = CliRunner().invoke(app, ["annotate", "annotators", "pilot", "--study", str(loaded.path), "--db",
                                      f"sqlite:///{tmp_path / 'store.db'}", "-o", str(pay)])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(pay)
    assert list(table.columns[:6]) == ["annotator", "rater", "lists_done", "lists_started", "lists", "annotations"]
    assert sorted(table["lists_done"]) == [0, 1] and set(table["completion_code"]) == {CODE}
    assert set(table["annotator"]) == {w.annotator for w in work}
    shown = CliRunner().invoke(app, ["annotate", "annotators", "pilot", "--study", str(loaded.path), "--db",
                                     f"sqlite:///{tmp_path / 'store.db'}", "-f", "csv"])  # fmt: skip
    assert pd.read_csv(io.StringIO(shown.output)).shape == table.shape


def test_preview_writes_what_an_annotator_sees(people_study, tmp_path):
    loaded, engine = people_study
    out = tmp_path / "preview.html"
    result = CliRunner().invoke(app, ["annotate", "preview", "pilot", "--study", str(loaded.path), "--db",
                                      f"sqlite:///{tmp_path / 'store.db'}", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert TITLE in page and CONSENT in page and CODE in page and "workbench:" not in page
    word = re.search(r"first word '([^']+)'", result.output).group(1)
    assert f'<div class="wb-word"><div>{word}</div></div>' in page
    assert "<label>1 (never)<kbd>1</kbd></label>" in page and "<li>1 (never), key 1</li>" in page
    if find_chromium() is None:
        assert "No Chromium found" in result.output
        return
    from PIL import Image

    png = Image.open(out.with_suffix(".png"))
    import numpy as np

    assert png.size[0] >= 1000 and np.unique(np.asarray(png.convert("L"))).size > 10  # drawn, not blank


def test_instructions_that_name_a_point_otherwise_than_its_button_are_reported():
    points = [1.0, 2, 3, 4, 5, 6, 7]
    labels = {"1": "unfamiliar", "7": "very familiar"}
    assert label_mismatches("Rate from 1 (very unfamiliar) to 7 (very familiar).", points, labels) == [
        "the instructions say 1 (very unfamiliar) where the button says 1 (unfamiliar)"
    ]
    assert label_mismatches("Rate from 1 (unfamiliar) to 7 (very familiar); 12 (dozen) is no point.", points, labels) == []


def test_serve_help_names_the_default_port():
    result = CliRunner().invoke(app, ["annotate", "serve", "--help"])
    assert "8080" in result.output and "[default: 0]" not in result.output
