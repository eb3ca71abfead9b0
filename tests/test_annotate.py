"""Human norming campaigns on a real Label Studio server (PyPI label-studio in its own virtualenv).

One server per test run (per xdist worker), started on a free 127.0.0.1 port
with a temporary data directory copied from the migrated, empty one that
scripts/label_studio.sh makes. Annotators join through the invite link and
annotate through the API as themselves; pull is checked in the store, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.labelstudio import Annotator, CuttingProxy, invite_url, ls_database
from workbench.annotate.connection import connect
from workbench.annotate.pull import pull_campaign
from workbench.annotate.push import push_campaign
from workbench.annotate.server import label_studio_program, start_server
from workbench.annotate.status import campaign_status
from workbench.cli.main import app
from workbench.errors import WorkbenchError
from workbench.store import connect as connect_store
from workbench.store.models import Campaign, CampaignAnnotation, CampaignList, CampaignTask, Dataset, Rater, Rating
from workbench.study.apply import apply_study
from workbench.study.load import load_study

ADMIN = "admin@example.com"
WORDS = [  # word, familiarity (1-7)
    ("house", 6.9), ("water", 6.9), ("mother", 6.8), ("bread", 6.6), ("table", 6.7), ("garden", 6.1),
    ("ladder", 5.2), ("saddle", 4.6), ("anchor", 4.4), ("bishop", 4.0), ("falcon", 3.9), ("quiver", 3.3),
    ("lintel", 2.6), ("gimlet", 2.0), ("sedge", 2.1), ("zither", 1.9), ("caltrop", 1.5), ("ogee", 1.3),
    ("sastrugi", 1.1), ("tmesis", 1.05), ("apple", 6.85), ("river", 6.5), ("candle", 5.9), ("kettle", 5.8),
]  # fmt: skip
INSTRUCTIONS = "Familiarity is how often you have come across a word.\n\nRate each word from 1 (never) to 7 (very often)."


@pytest.fixture(scope="session", params=["development", pytest.param("production", marks=pytest.mark.postgres)])
def ls_server(request, tmp_path_factory):
    """A Label Studio server for the whole run, each test on both: the development server (SQLite, runserver) and the
    production one (PostgreSQL, gunicorn workers, Redis); skipped where Label Studio is not installed (required in CI)."""
    try:
        label_studio_program()
    except WorkbenchError as exc:
        if os.environ.get("WORKBENCH_REQUIRE_LABEL_STUDIO"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with ls_database(request.param == "production") as database:
        server = start_server(tmp_path_factory.mktemp("label-studio"), username=ADMIN, password="admin-pass-123",
                              token="0123456789abcdef0123456789abcdef01234567", database=database, workers=2, threads=4,
                              secret_key="test-secret-key-" + uuid.uuid4().hex)  # fmt: skip
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def annotators(ls_server):
    invite = invite_url(ls_server.url, ls_server.token)
    return [Annotator.sign_up(ls_server.url, invite, f"annotator{k}@example.com") for k in range(4)]


def make_study(folder: Path, url: str, *, k: int = 3, list_size: int = 5, exclude: str = "", extra: str = "") -> Path:
    """A study: one dimension with instructions in a file, a norm dataset, 12 words to rate, controls from the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "familiarity.txt").write_text(INSTRUCTIONS + "\n")
    (folder / "norms.csv").write_text("word,fam\n" + "".join(f"{w},{v}\n" for w, v in WORDS))
    name = "s" + uuid.uuid4().hex[:8]
    (folder / "study.yaml").write_text(f"""
study: {name}
database: store.db
dimensions:
  familiarity: {{scale: [1, 7], labels: {{1: never, 7: very often}}, instructions: familiarity.txt}}
datasets:
  norms: {{file: norms.csv, item_column: word, ratings: {{familiarity: fam}}}}
item_sets:
  to_rate: {{from: norms, sample: 12, seed: 3}}
campaigns:
  pilot:
    items: to_rate
    raters_per_item: {k}
    list_size: {list_size}
    controls: {{gold: norms, per_list: 2, nonwords: [blick, florp, crendle], nonwords_per_list: 1}}
    server: {{url: {url}, api_key_env: TEST_LS_KEY}}
{exclude}{extra}""")
    return folder / "study.yaml"


@pytest.fixture
def study(tmp_path, ls_server, db_url, monkeypatch):
    if ls_server.mode == "production" and db_url.startswith("sqlite"):
        pytest.skip("the production server is tested with the store on PostgreSQL (the lab's setup); SQLite on the development one")
    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    path = make_study(tmp_path / "study", ls_server.url)
    loaded = load_study(path)
    engine = connect_store(db_url)
    apply_study(engine, loaded)
    yield loaded, engine
    engine.dispose()


def conn_for(ls_server):
    return connect(ls_server.url, ls_server.token, key_source="TEST_LS_KEY", database=ls_server.database)


def project_tasks(ls_server, project_id: int) -> list:
    client = conn_for(ls_server).client
    return list(client.tasks.list(project=project_id, fields="all", page_size=1000))


def lists_of(engine, name="pilot") -> dict[int, int]:
    with Session(engine) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == name))
        return {cl.list_no: cl.project_id for cl in camp.lists}


def control_ids(engine) -> set[int]:
    with Session(engine) as s:
        return set(s.scalars(select(CampaignTask.task_id).where(CampaignTask.role != "item")))


def work_through(annotator: Annotator, project_id: int, choose) -> list[tuple[int, int, str]]:
    """The annotator takes tasks from the labeling stream until none is left for them: [(task, annotation, word)]."""
    done = []
    while (task := annotator.next_task(project_id)) is not None:
        word = task["data"]["word"]
        done.append((task["id"], annotator.annotate(task["id"], choose(word)), word))
    return done


def test_push_pull_with_annotators_working_at_once(study, ls_server, annotators):
    loaded, engine = study
    conn = conn_for(ls_server)
    report = push_campaign(engine, loaded, "pilot", conn)
    assert (report.lists, report.items, report.projects_created, report.tasks_imported) == (3, 12, 3, 12 + 2 * 3 + 3)
    projects = lists_of(engine)
    client = conn.client
    project = client.projects.get(id=projects[1])
    assert project.maximum_annotations == 3
    assert 'hotkey="1"' in project.label_config and "I don't know this word" in project.label_config
    assert "come across a word" in project.expert_instruction  # the dimension's instructions: one source
    first = project_tasks(ls_server, projects[1])
    assert sorted(t.data["wb_key"].split(":")[0] for t in first) == ["control"] * 2 + ["item"] * 5 + ["nonword"]

    # pushing again adds nothing
    again = push_campaign(engine, loaded, "pilot", conn)
    assert (again.projects_created, again.projects_updated, again.tasks_imported) == (0, 0, 0)
    assert len(project_tasks(ls_server, projects[1])) == 8

    # four annotators on list 1 at once: the stream gives each task to at least k = 3 of them (a race in the
    # server can hand a task to one more, and the annotations API takes any number: pull keeps every annotator's)
    gold = dict(WORDS)

    def choose(word):
        return "unknown" if word in ("blick", "florp", "crendle") else str(round(gold[word]))

    done: dict[str, list] = {}
    threads = [threading.Thread(target=lambda a=a: done.__setitem__(a.email, work_through(a, projects[1], choose))) for a in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # an annotator who asked while every task left was locked by the others got none and stopped: a second,
    # one-at-a-time round lets the stream hand out what is still short of k
    for a in annotators:
        done[a.email] = done.get(a.email, []) + work_through(a, projects[1], choose)
    per_task: dict[int, int] = {}
    for rows in done.values():
        for task_id, _, _ in rows:
            per_task[task_id] = per_task.get(task_id, 0) + 1
    assert len(per_task) == 8 and all(3 <= n <= 4 for n in per_task.values()), per_task
    word_of = {t.id: t.data["word"] for t in first}
    on_items = {t: n for t, n in per_task.items() if word_of[t] in dict(WORDS) and t not in control_ids(engine)}

    pulled = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert (pulled.new, pulled.edited, pulled.deleted) == (sum(per_task.values()), 0, 0)
    assert pulled.ratings_added == sum(on_items.values())  # controls are quality checks, not ratings
    with Session(engine) as s:
        humans = s.scalars(select(Rater).where(Rater.kind == "human")).all()
        assert {r.config["campaign"] for r in humans} == {"pilot"}
        assert len({r.config["annotator"] for r in humans}) == len({e for e, rows in done.items() if rows})
        items = s.scalars(select(CampaignTask).where(CampaignTask.role == "item", CampaignTask.list_id.is_not(None))).all()
        list1 = {t.item_id for t in items if t.task_id in per_task}
        counts = s.execute(text("SELECT item_id, count(*) FROM ratings r JOIN raters ra ON ra.id = r.rater_id "
                                "WHERE ra.kind = 'human' GROUP BY item_id")).all()  # fmt: skip
        item_of_task = {t.task_id: t.item_id for t in items}
        assert {i: n for i, n in counts} == {item_of_task[t]: n for t, n in on_items.items()}
        leads = s.scalars(select(CampaignAnnotation.lead_time)).all()
        assert leads and all(x == 2.0 for x in leads)
        # the aggregate: a dataset with a norm rater, mean/sd/n/known-ness per word
        ds = s.scalar(select(Dataset).where(Dataset.name == "pilot"))
        agg = s.execute(select(Rating).join(Rater).where(Rater.dataset_id == ds.id)).scalars().all()
        assert {r.item_id for r in agg} == list1
        texts = dict(s.execute(text("SELECT id, text FROM items")).all())
        for r in agg:
            assert r.n >= 3 and r.value == round(gold[texts[r.item_id]]) and r.sd == 0.0
            assert r.distribution == {"known": 1.0, "n_unknown": 0}
    # no email or name anywhere in the store
    with engine.connect() as c:
        for table in inspect(c).get_table_names():
            dump = json.dumps([list(map(str, row)) for row in c.execute(text(f"SELECT * FROM {table}"))])
            assert "example.com" not in dump, table

    # nothing changed: nothing written
    again = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert not again.changed and again.full_reads == 0

    # an edit alone changes none of the project's counts: pull still sees it
    # (on words, not controls: gold extremes and nonwords are quality checks, not ratings; and on an annotator who
    # rated two words: how the stream shares the tasks out among four at once varies)
    controls = control_ids(engine)
    words_of = {a.email: [(t, ann, w) for t, ann, w in done[a.email] if t not in controls] for a in annotators}
    a0 = next(a for a in annotators if len(words_of[a.email]) >= 2)
    mine = words_of[a0.email]
    (t_edit, ann_edit, w_edit), (t_del, ann_del, w_del) = mine[0], mine[1]
    a0.edit(ann_edit, "1" if round(gold[w_edit]) != 1 else "2")
    only_edit = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert (only_edit.new, only_edit.edited, only_edit.deleted, only_edit.full_reads) == (0, 1, 0, 0)
    assert (only_edit.ratings_added, only_edit.ratings_changed, only_edit.ratings_removed) == (0, 1, 0)

    # an edit updates the rating, a deletion removes it, a skip is not a rating, "I don't know" is kept as such
    a0.edit(ann_edit, "unknown")
    a0.delete(ann_del)
    task2 = annotators[1].next_task(projects[2])
    annotators[1].annotate(task2["id"], "", cancelled=True)
    pulled = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert (pulled.new, pulled.edited, pulled.deleted) == (1, 1, 1)
    assert (pulled.ratings_added, pulled.ratings_changed, pulled.ratings_removed) == (0, 1, 1)
    with Session(engine) as s:
        edited = s.execute(text(
            "SELECT r.value, r.note, r.raw_answer FROM ratings r JOIN items i ON i.id = r.item_id JOIN raters ra ON ra.id = r.rater_id "
            f"WHERE i.text = '{w_edit}' AND ra.kind = 'human' AND r.value IS NULL")).all()  # fmt: skip
        assert len(edited) == 1 and edited[0][1].startswith("unknown") and edited[0][2] == "unknown"
        n_del = s.execute(text(
            "SELECT count(*) FROM ratings r JOIN items i ON i.id = r.item_id JOIN raters ra ON ra.id = r.rater_id "
            f"WHERE i.text = '{w_del}' AND ra.kind = 'human'")).scalar_one()  # fmt: skip
        assert n_del == on_items[t_del] - 1
        skipped = s.scalars(select(CampaignAnnotation.status).where(CampaignAnnotation.status == "skipped")).all()
        assert len(skipped) == 1
        agg = s.execute(text(
            "SELECT r.n, r.distribution FROM ratings r JOIN items i ON i.id = r.item_id JOIN raters ra ON ra.id = r.rater_id "
            f"WHERE i.text = '{w_edit}' AND ra.kind = 'norm' AND ra.name = 'pilot'")).one()  # fmt: skip
        dist = agg[1] if isinstance(agg[1], dict) else json.loads(agg[1])
        k_edit = on_items[t_edit]
        assert agg[0] == k_edit - 1 and dist["n_unknown"] == 1 and abs(dist["known"] - (k_edit - 1) / k_edit) < 1e-6

    st = campaign_status(Session(engine), "pilot")
    lines = "\n".join(st.lines())
    assert "items short of 3 ratings" in lines and "1 skipped" in lines
    assert [lp.done for lp in st.lists][0] == 8 - (on_items[t_del] == 3)  # the deleted annotation's task may be short again


def test_faults_are_reported_and_never_store_a_second_or_bad_rating(study, ls_server, annotators):
    loaded, engine = study
    conn = conn_for(ls_server)
    push_campaign(engine, loaded, "pilot", conn)
    projects = lists_of(engine)
    spec = loaded.study.campaigns["pilot"]
    tasks = [t for t in project_tasks(ls_server, projects[3]) if t.data["wb_key"].startswith("item:")]
    a, b = annotators[2], annotators[3]
    a.annotate(tasks[0].id, "5")
    a.annotate(tasks[0].id, "6")  # the same annotator twice: Label Studio accepts it
    b.annotate(tasks[0].id, "9")  # off the scale (a hand-made annotation)
    b.annotate(tasks[1].id, "2")
    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    problems = "\n".join(pulled.problems)
    assert "annotated" in problems and "2 times" in problems
    assert "'9' is not on the scale" in problems
    with Session(engine) as s:
        values = s.execute(text(
            "SELECT i.text, r.value FROM ratings r JOIN items i ON i.id = r.item_id JOIN raters ra ON ra.id = r.rater_id "
            "WHERE ra.kind = 'human' ORDER BY i.text, r.value")).all()  # fmt: skip
    assert sorted(values) == sorted([(tasks[0].data["word"], 6.0), (tasks[1].data["word"], 2.0)])

    # a task deleted in Label Studio: reported, ratings kept, push puts it back
    conn.client.tasks.delete(id=str(tasks[1].id))
    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert any("was deleted in Label Studio" in p for p in pulled.problems)
    with Session(engine) as s:
        assert s.scalar(select(CampaignTask.deleted).where(CampaignTask.task_id == tasks[1].id)) is True
    again = push_campaign(engine, loaded, "pilot", conn)
    assert again.tasks_recreated == 1
    assert len(project_tasks(ls_server, projects[3])) == len(tasks) + 3

    # a wrong token: one line saying so
    with pytest.raises(WorkbenchError, match=r"refused the token from TEST_LS_KEY \(401\)"):
        connect(ls_server.url, "not-a-token", key_source="TEST_LS_KEY")


def test_server_down_mid_push_and_mid_pull_then_the_next_run_completes(tmp_path, ls_server, annotators, monkeypatch):
    port = int(ls_server.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(port)
    try:
        monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
        loaded = load_study(make_study(tmp_path / "study", proxy.url))
        engine = connect_store(f"sqlite:///{tmp_path / 'store.db'}")
        apply_study(engine, loaded)
        conn = connect(proxy.url, ls_server.token, key_source="TEST_LS_KEY")

        def cut_after_first(done, total):
            if done == 1:
                proxy.cut()

        with pytest.raises(WorkbenchError, match=rf"Label Studio at {proxy.url} cannot be reached"):
            push_campaign(engine, loaded, "pilot", conn, on_progress=cut_after_first)
        with Session(engine) as s:
            assert s.scalar(text("SELECT count(*) FROM campaign_lists")) == 1
            assert s.scalar(text("SELECT count(*) FROM campaign_tasks")) == 8
        proxy.heal()
        report = push_campaign(engine, loaded, "pilot", conn)
        assert (report.lists, report.projects_created, report.tasks_imported) == (3, 2, 8 + 5)
        # a push cut short after Label Studio made a list but before the store recorded it: the next push adopts it
        with Session(engine) as s, s.begin():
            s.execute(text("DELETE FROM campaign_tasks WHERE list_id IN (SELECT id FROM campaign_lists WHERE list_no = 3)"))
            s.execute(text("DELETE FROM campaign_lists WHERE list_no = 3"))
        report = push_campaign(engine, loaded, "pilot", conn)
        assert (report.projects_created, report.projects_adopted, report.tasks_imported, report.tasks_adopted) == (0, 1, 0, 5)
        projects = lists_of(engine)
        for no, pid in projects.items():
            keys = [t.data["wb_key"] for t in project_tasks(ls_server, pid)]
            assert len(keys) == len(set(keys)), f"list {no} has a task twice"

        for pid in projects.values():
            annotators[0].annotate(annotators[0].next_task(pid)["id"], "4")
        spec = loaded.study.campaigns["pilot"]
        with pytest.raises(WorkbenchError, match="cannot be reached"):
            pull_campaign(engine, loaded, spec, "pilot", conn, on_progress=lambda d, t: proxy.cut(), workers=1)
        with Session(engine) as s:
            assert s.scalar(text("SELECT count(*) FROM campaign_annotations")) == 0
            assert s.scalar(text("SELECT count(*) FROM ratings r JOIN raters ra ON ra.id = r.rater_id WHERE ra.kind = 'human'")) == 0
        proxy.heal()
        pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
        assert pulled.new == 3
        engine.dispose()
    finally:
        proxy.close()


def test_cli_push_pull_status_invite_and_exclusions(tmp_path, ls_server, annotators, monkeypatch):
    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    exclude = "    exclude: {max_failed_controls: 0.5, min_ratings: 1}\n"
    path = make_study(tmp_path / "study", ls_server.url, k=3, list_size=12, exclude=exclude)
    runner = CliRunner()
    assert runner.invoke(app, ["apply", "--study", str(path)]).exit_code == 0
    r = runner.invoke(app, ["annotate", "push", "pilot", "--study", str(path)])
    assert r.exit_code == 0, r.output
    assert "12 items in 1 lists" in r.output
    loaded = load_study(path)
    engine = connect_store(f"sqlite:///{path.parent / 'store.db'}")
    pid = lists_of(engine)[1]
    engine.dispose()
    gold = dict(WORDS)
    good, bad, other = annotators[0], annotators[1], annotators[2]
    work_through(good, pid, lambda w: "unknown" if w in ("blick", "florp", "crendle") else str(round(gold[w])))
    work_through(bad, pid, lambda w: "7" if w in gold and gold[w] < 3 else "1")  # fails the controls
    work_through(other, pid, lambda w: "unknown" if w in ("blick", "florp", "crendle") else str(min(7, round(gold[w]) + 1)))
    r = runner.invoke(app, ["annotate", "pull", "pilot", "--study", str(path)])
    assert r.exit_code == 0, r.output
    assert "1 excluded" in r.output and "failed" in r.output
    r = runner.invoke(app, ["annotate", "status", "pilot", "--study", str(path)])
    assert r.exit_code == 0 and "Every item has its 3 ratings." in r.output and "failed 3 of 3 control items" in r.output
    r = runner.invoke(app, ["annotate", "pull", "pilot", "--study", str(path)])
    assert "nothing changed" in r.output
    r = runner.invoke(app, ["annotate", "invite", "--study", str(path), "--url", ls_server.url, "--api-key-env", "TEST_LS_KEY"])
    assert r.exit_code == 0 and r.output.strip().startswith(ls_server.url + "/user/signup/?token=")
    # the aggregate is gold in the report, with the human raters' reliability beside it
    engine = connect_store(f"sqlite:///{path.parent / 'store.db'}")
    with Session(engine) as s:
        excluded = [r.config for r in s.scalars(select(Rater).where(Rater.kind == "human")) if r.config.get("excluded")]
        assert len(excluded) == 1
        agg = s.execute(select(Rating).join(Rater).where(Rater.name == "pilot")).scalars().all()
        assert len(agg) == 12 and all(x.n == 2 for x in agg)  # the excluded annotator does not count
        bad_rater = excluded[0]
    engine.dispose()
    out = tmp_path / "report.json"
    r = runner.invoke(app, ["report", "--study", str(path), "--format", "json", "--out", str(out), "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    dim = json.loads(out.read_text())["dimensions"][0]
    assert "pilot" in dim["gold"]  # the campaign's aggregate is a gold dataset
    assert {(row["rater"], row["gold"]) for row in dim["ceiling"]} >= {("pilot", "norms")}  # beside the published norm
    rel = dim["reliability"]
    assert len(rel["raters"]) == 2 and rel["split_half"] is not None and rel["krippendorff_alpha"] is not None
    assert (
        list(rel["excluded"]) == [f"pilot:{bad_rater['annotator']}"]
        and "control items" in rel["excluded"][f"pilot:{bad_rater['annotator']}"]
    )
    # wrong token and unknown campaign: one line each
    monkeypatch.setenv("TEST_LS_KEY", "wrong")
    r = runner.invoke(app, ["annotate", "pull", "pilot", "--study", str(path)])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "refused the token" in r.output
    r = runner.invoke(app, ["annotate", "push", "pilott", "--study", str(path)])
    assert r.exit_code == 1 and "Did you mean 'pilot'" in r.output


def test_serve_keeps_its_port_after_a_crash_and_serves_a_lab_behind_https(tmp_path):
    """`annotate serve`: the development server, killed (a crash), then the production one on the same port (sockets in
    TIME_WAIT do not count as taken) with the saved URL kept; secrets mode 600 and never printed; the invite link and
    the host, CSRF and cookie settings follow the public URL behind the lab's HTTPS proxy."""
    import signal
    import subprocess
    import sys

    import httpx

    try:
        label_studio_program()
    except WorkbenchError as exc:
        if os.environ.get("WORKBENCH_REQUIRE_LABEL_STUDIO"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    study_file = tmp_path / "study.yaml"
    study_file.write_text("study: served\n")
    info = tmp_path / ".workbench" / "label-studio.json"

    def serve(*extra):
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "annotate", "serve", "--study", str(study_file), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        return proc, proc.stdout.readline().strip()

    proc, url = serve()
    try:
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        assert stat.S_IMODE(info.stat().st_mode) == 0o600
        saved = json.loads(info.read_text())
        assert saved["url"] == url and saved["mode"] == "development"
        assert connect(url, saved["token"]).client.users.whoami().email == saved["username"]
        for _ in range(5):  # connections the server closes: its port has sockets in TIME_WAIT after it dies
            httpx.get(url + "/health", timeout=30)
    finally:
        proc.kill()  # a crash; Label Studio gets SIGTERM when its parent dies
        _, err1 = proc.communicate(timeout=60)
    for _ in range(120):
        try:
            httpx.get(url + "/health", timeout=1)
            threading.Event().wait(0.5)
        except httpx.HTTPError:
            break
    with ls_database() as database:
        proc, url2 = serve("--database", database, "--workers", "1", "--threads", "2", "--public-url", "https://norms.example.edu")
        try:
            assert url2 == url, proc.stderr.read()
            saved2 = json.loads(info.read_text())
            assert stat.S_IMODE(info.stat().st_mode) == 0o600
            assert saved2["url"] == url and saved2["public_url"] == "https://norms.example.edu" and saved2["mode"] == "production"
            assert saved2["token"] == saved["token"] and saved2["secret_key"] and saved2["database"] == database
            r = CliRunner().invoke(app, ["annotate", "invite", "--study", str(study_file)])
            assert r.exit_code == 0 and r.output.startswith("https://norms.example.edu/user/signup/?token="), r.output
            invite = r.output.strip().removeprefix("https://norms.example.edu")
            proxied = {"Host": "norms.example.edu", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.7"}
            with httpx.Client(base_url=url, timeout=60) as c:
                page = c.get(invite, headers=proxied)
                assert page.status_code == 200
                cookie = next(v for k, v in page.headers.multi_items() if k.lower() == "set-cookie" and v.startswith("csrftoken="))
                assert "Secure" in cookie  # the public URL is https: cookies only over https
                csrf = cookie.split(";")[0].split("=", 1)[1]
                form = {"csrfmiddlewaretoken": csrf, "email": "remote@example.com", "password": "remote-pass-123"}
                foreign = c.post(f"/user/signup/?token={invite.split('token=')[1]}", data=form,
                                 headers={**proxied, "Cookie": f"csrftoken={csrf}", "Referer": "https://evil.example.com/"})  # fmt: skip
                assert foreign.status_code == 403  # CSRF: only the public origin
                ok = c.post(f"/user/signup/?token={invite.split('token=')[1]}", data=form,
                            headers={**proxied, "Cookie": f"csrftoken={csrf}", "Referer": "https://norms.example.edu" + invite})  # fmt: skip
                assert ok.status_code == 302, ok.text[:300]
        finally:
            proc.send_signal(signal.SIGINT)
            out, err2 = proc.communicate(timeout=60)
    assert proc.returncode == 0, err2
    assert "Label Studio stopped." in err2 and "production server on PostgreSQL" in err2
    for secret in (saved["token"], saved["password"], saved2["secret_key"]):
        assert secret not in out + err1 + err2


def test_pre_annotations_personal_access_token_and_changed_instructions(tmp_path, ls_server, monkeypatch):
    import httpx

    from workbench.store.models import Dimension, Item

    # a personal access token (a JWT refresh token) works as well as the legacy one
    r = httpx.post(ls_server.url + "/api/token/", headers={"Authorization": f"Token {ls_server.token}"}, timeout=30)
    pat = r.json()["token"]
    monkeypatch.setenv("TEST_LS_KEY", pat)
    path = make_study(tmp_path / "study", ls_server.url, extra="    pre_annotations: llm-x\n")
    loaded = load_study(path)
    engine = connect_store(f"sqlite:///{tmp_path / 'store.db'}")
    apply_study(engine, loaded)
    gold = dict(WORDS)
    with Session(engine) as s, s.begin():
        dim = s.scalar(select(Dimension))
        rater = Rater(name="llm-x", kind="llm")
        s.add(rater)
        s.flush()
        for item in s.scalars(select(Item)):
            s.add(Rating(item_id=item.id, dimension_id=dim.id, rater_id=rater.id, value=gold[item.text] - 0.25))
    conn = connect(ls_server.url, pat, key_source="TEST_LS_KEY")
    report = push_campaign(engine, loaded, "pilot", conn)
    assert report.predictions == 12
    tasks = [t for pid in lists_of(engine).values() for t in project_tasks(ls_server, pid)]
    for t in tasks:
        if t.data["wb_key"].startswith("item:"):
            (pred,) = t.predictions
            p = pred if isinstance(pred, dict) else pred.dict()
            assert p["model_version"] == "llm-x"
            assert p["result"][0]["value"]["choices"] == [str(min(7, max(1, round(gold[t.data["word"]] - 0.25))))]
        else:
            assert not t.predictions  # controls carry no hint
    # one source of instructions: editing the dimension's file and applying updates every project on the next push
    (path.parent / "familiarity.txt").write_text("New instructions: rate how familiar the word is.\n")
    loaded = load_study(path)
    apply_study(engine, loaded)
    (path.parent / "familiarity.txt").write_text("New instructions: rate how familiar the word is.\n")
    again = push_campaign(engine, loaded, "pilot", conn)
    assert (again.projects_updated, again.tasks_imported) == (3, 0)
    project = conn.client.projects.get(id=lists_of(engine)[1])
    assert "New instructions" in project.expert_instruction
    engine.dispose()


def test_an_annotator_rates_a_word_in_the_browser_with_one_key(tmp_path, ls_server, monkeypatch):
    """Headless Chromium: log in, open the list's labeling stream, press a number key, submit; pull brings it back."""
    import time

    from tests.browser import Browser, ChromiumNotFound

    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    loaded = load_study(make_study(tmp_path / "study", ls_server.url, k=1, list_size=12))
    engine = connect_store(f"sqlite:///{tmp_path / 'store.db'}")
    apply_study(engine, loaded)
    conn = conn_for(ls_server)
    push_campaign(engine, loaded, "pilot", conn)
    pid = lists_of(engine)[1]
    person = Annotator.sign_up(ls_server.url, invite_url(ls_server.url, ls_server.token), "browser@example.com", "browser-pass-123")
    try:
        browser = Browser(timeout=120).start()
    except ChromiumNotFound as exc:
        pytest.skip(str(exc))
    b = browser
    try:
        b.load(ls_server.url + "/user/login/")
        b.evaluate("""(() => { const f = document.querySelector('form');
            f.querySelector('[name=email]').value = 'browser@example.com';
            f.querySelector('[name=password]').value = 'browser-pass-123'; f.submit(); return true; })()""")
        for _ in range(60):
            if not b.evaluate("location.pathname").startswith("/user/login"):
                break
            time.sleep(0.5)
        b.load(f"{ls_server.url}/projects/{pid}/data?labeling=1")
        words = {t.data["word"]: t.id for t in project_tasks(ls_server, pid)}
        shown = None
        for _ in range(240):
            text_now = b.evaluate("document.body.innerText") or ""
            shown = next((w for w in words if f"\n{w}\n" in f"\n{text_now}\n"), None)
            if shown and "Submit" in text_now:
                break
            time.sleep(0.5)
        assert shown, "the labeling stream showed no word"
        for kind in ("keyDown", "keyUp"):  # one key press: 5
            b._run(b._send("Input.dispatchKeyEvent", {"type": kind, "key": "5", "code": "Digit5", "text": "5" if kind == "keyDown" else "",
                                                       "windowsVirtualKeyCode": 53, "nativeVirtualKeyCode": 53}))  # fmt: skip
        time.sleep(0.5)
        assert b.evaluate("""(() => { const s = Array.from(document.querySelectorAll('button')).find(x => x.innerText.trim() === 'Submit');
            if (!s) return false; s.click(); return true; })()""")
        for _ in range(60):
            if person.token and any(a.get("completed_by") == person.user_id for t in project_tasks(ls_server, pid) for a in t.annotations):
                break
            time.sleep(0.5)
    finally:
        browser.close()
    pulled = pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn)
    assert pulled.new == 1
    with Session(engine) as s:
        row = s.execute(select(CampaignAnnotation.value, CampaignAnnotation.status, CampaignTask.text).join(
            CampaignTask, CampaignTask.id == CampaignAnnotation.task_row_id)).one()  # fmt: skip
    assert row == (5.0, "ok", shown)
    engine.dispose()


def _human_annotations(engine) -> int:
    with Session(engine) as s:
        return s.scalar(text("SELECT count(*) FROM campaign_annotations"))


def test_a_project_deleted_and_settings_edited_by_hand(study, ls_server, annotators):
    """A project deleted by hand: pull reads the other lists and names the missing one, its ratings stay, push makes it
    again (and the next pull takes nothing of the old one for deleted); a label config edited by hand: push puts it back."""
    loaded, engine = study
    conn = conn_for(ls_server)
    spec = loaded.study.campaigns["pilot"]
    push_campaign(engine, loaded, "pilot", conn)
    projects = lists_of(engine)
    for pid in projects.values():
        annotators[0].annotate(annotators[0].next_task(pid)["id"], "4")
    assert pull_campaign(engine, loaded, spec, "pilot", conn).new == 3
    with Session(engine) as s:
        ratings_before = s.scalar(text("SELECT count(*) FROM ratings r JOIN raters ra ON ra.id = r.rater_id WHERE ra.kind = 'human'"))

    generated = conn.client.projects.get(id=projects[1]).label_config
    conn.client.projects.update(id=projects[1], label_config=generated.replace("I don't know this word", "Not sure"))
    conn.client.projects.delete(id=projects[2])
    annotators[1].annotate(annotators[1].next_task(projects[3])["id"], "5")
    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert pulled.new == 1 and pulled.deleted == 0
    assert any(f"project {projects[2]} (list 2) is gone" in p and "annotate push pilot" in p for p in pulled.problems), pulled.problems
    assert _human_annotations(engine) == 4

    again = push_campaign(engine, loaded, "pilot", conn)
    assert (again.projects_created, again.tasks_recreated) == (1, 8)
    notes = "\n".join(again.notes)
    assert f"project {projects[2]} was deleted in Label Studio" in notes and "label_config had been changed" in notes
    assert conn.client.projects.get(id=projects[1]).label_config == generated
    remade = lists_of(engine)[2]
    assert remade != projects[2] and len(project_tasks(ls_server, remade)) == 8

    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert (pulled.new, pulled.deleted, pulled.problems) == (0, 0, [])
    assert _human_annotations(engine) == 4
    with Session(engine) as s:
        after = s.scalar(text("SELECT count(*) FROM ratings r JOIN raters ra ON ra.id = r.rater_id WHERE ra.kind = 'human'"))
    assert after >= ratings_before  # nothing pulled from the deleted project was lost
    annotators[2].annotate(annotators[2].next_task(remade)["id"], "6")
    assert pull_campaign(engine, loaded, spec, "pilot", conn).new == 1
    assert _human_annotations(engine) == 5
    # nothing changed since: a second push does nothing
    quiet = push_campaign(engine, loaded, "pilot", conn)
    assert (quiet.projects_created, quiet.projects_updated, quiet.tasks_imported, quiet.tasks_recreated, quiet.notes) == (0, 0, 0, 0, [])


@pytest.mark.parametrize("path", ["workbench endpoints", "label studio api"])
def test_an_unchanged_pull_asks_once_and_both_read_paths_pull_the_same(study, ls_server, annotators, monkeypatch, path):
    """On a server `annotate serve` started, a pull asks one request which lists changed (/api/workbench/changes/)
    and reads a changed list in one more; a server without those endpoints is pulled through Label Studio's own API
    (one question per list): new, edited, deleted, skipped and "I don't know" annotations come out the same."""
    import workbench.annotate.pull as pull_module

    loaded, engine = study
    conn = conn_for(ls_server)
    if path == "label studio api":
        conn.workbench_api = False  # as a server not started by `annotate serve` answers: 404
    spec = loaded.study.campaigns["pilot"]
    push_campaign(engine, loaded, "pilot", conn)
    projects = lists_of(engine)
    with Session(engine) as s:  # the words of each list (controls are quality checks, not ratings)
        words = {pid: sorted(s.scalars(select(CampaignTask.task_id).join(CampaignList, CampaignList.id == CampaignTask.list_id)
                                       .where(CampaignList.project_id == pid, CampaignTask.role == "item")))
                 for pid in projects.values()}  # fmt: skip
    mine = {pid: annotators[0].annotate(words[pid][0], "4") for pid in projects.values()}
    theirs = annotators[1].annotate(words[projects[1]][0], "2")
    assert pull_campaign(engine, loaded, spec, "pilot", conn).ratings_added == 4
    assert conn.workbench_api is (path == "workbench endpoints")

    # nothing changed: once past the margin within which pull re-reads what changed just before the last pull began
    # (the pull after that re-reads and finds nothing new), one request on the endpoints
    monkeypatch.setattr(pull_module, "MARGIN", pull_module.timedelta(seconds=1))
    time.sleep(2.2)
    assert not pull_campaign(engine, loaded, spec, "pilot", conn).changed
    calls: list[str] = []
    real = conn.request
    monkeypatch.setattr(conn, "request", lambda method, url, **kw: (calls.append(url), real(method, url, **kw))[1])
    quiet = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert not quiet.changed and quiet.lists_read == 0
    assert len(calls) == (1 if path == "workbench endpoints" else 1 + len(projects)), calls

    # an edit (no count changes), a deletion, a skip, an "I don't know": each seen, only the lists touched are read
    annotators[0].edit(mine[projects[2]], "6")
    annotators[1].delete(theirs)
    annotators[2].annotate(words[projects[3]][1], "", cancelled=True)
    dunno = annotators[3].annotate(words[projects[2]][1], "unknown")
    calls.clear()
    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert (pulled.new, pulled.edited, pulled.deleted, pulled.lists_read) == (2, 1, 1, 3)
    assert (pulled.ratings_added, pulled.ratings_changed, pulled.ratings_removed) == (1, 1, 1)
    if path == "workbench endpoints":
        assert len(calls) == 1 + 3, calls
    with Session(engine) as s:
        stored = {a: (v, u, st) for a, v, u, st in s.execute(select(
            CampaignAnnotation.annotation_id, CampaignAnnotation.value, CampaignAnnotation.unknown, CampaignAnnotation.status))}  # fmt: skip
    assert theirs not in stored and len(stored) == 5
    assert stored[mine[projects[2]]] == (6.0, False, "ok") and stored[mine[projects[1]]] == (4.0, False, "ok")
    assert stored[dunno] == (None, True, "ok") and sorted(st for _, _, st in stored.values()).count("skipped") == 1


def test_a_proxy_echoing_the_token_puts_it_nowhere(tmp_path, ls_server, annotators, monkeypatch):
    """Key echo, Label Studio: a proxy echoing `Authorization: Token ...` into headers, every JSON object, an error
    body and an annotation's choice; the console, the store, the DuckDB snapshot and every file written stay clean."""
    import base64

    from tests.labelstudio import EchoProxy

    token = ls_server.token
    proxy = EchoProxy(ls_server.url)
    try:
        monkeypatch.setenv("TEST_LS_KEY", token)
        path = make_study(tmp_path / "study", proxy.url, k=1, list_size=12)
        runner = CliRunner()
        console = []

        def cli(*args):
            r = runner.invoke(app, [*args, "--study", str(path)])
            console.append(r.output)
            return r

        assert cli("apply").exit_code == 0
        r = cli("annotate", "push", "pilot")
        assert r.exit_code == 1 and "answered 400" in r.output and "***" in r.output, r.output
        r = cli("annotate", "push", "pilot")
        assert r.exit_code == 0, r.output
        engine = connect_store(f"sqlite:///{path.parent / 'store.db'}")
        pid = lists_of(engine)[1]
        engine.dispose()
        work_through(annotators[0], pid, lambda w: "3")  # the proxy turns each of these choices into the header
        r = cli("annotate", "pull", "pilot")
        assert r.exit_code == 0 and "is not on the scale" in r.output and "***" in r.output, r.output
        assert cli("annotate", "status", "pilot").exit_code == 0
        assert cli("sql", "SELECT count(*) FROM ratings").exit_code == 0
        r = cli("annotate", "invite", "--url", proxy.url, "--api-key-env", "TEST_LS_KEY")
        assert r.exit_code == 0
    finally:
        proxy.close()
    forms = [token, token.encode().hex(), base64.b64encode(f"Token {token}".encode()).decode()]
    out = "\n".join(console)
    assert not any(f in out for f in forms), "the token reached the console"
    engine = connect_store(f"sqlite:///{path.parent / 'store.db'}")
    with engine.connect() as c:
        for table in inspect(c).get_table_names():
            dump = json.dumps([list(map(str, row)) for row in c.execute(text(f"SELECT * FROM {table}"))])
            assert not any(f in dump for f in forms), f"the token reached table {table}"
    engine.dispose()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    from workbench.analysis.duck import snapshot_path

    engine = connect_store(f"sqlite:///{path.parent / 'store.db'}")
    snap = snapshot_path(engine)
    engine.dispose()
    written += [p for p in snap.parent.glob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" or "duck" in p.name for p in written), written
    for p in written:
        data = p.read_bytes()
        assert not any(f.encode() in data for f in forms), f"the token reached {p}"


def test_production_server_faults_a_worker_killed_and_the_database_cut_mid_pull(study, ls_server, annotators):
    """A web worker killed under load: the server keeps answering through the others (gunicorn makes a new one);
    Label Studio's database connections cut mid-pull: the pull fails with one line or completes, the next completes,
    and the store has every annotation once."""
    if ls_server.mode != "production":
        pytest.skip("the production server's faults")
    import signal as _signal

    from sqlalchemy import create_engine

    from tests.labelstudio import PG_SERVER

    loaded, engine = study
    conn = conn_for(ls_server)
    spec = loaded.study.campaigns["pilot"]
    push_campaign(engine, loaded, "pilot", conn)
    projects = lists_of(engine)
    gold = dict(WORDS)

    def choose(word):
        return "unknown" if word not in gold else str(round(gold[word]))

    before = ls_server.worker_pids()
    assert len(before) == 2
    errors: list[str] = []

    def work(a, pid):
        try:
            work_through(a, pid, choose)
        except Exception as exc:  # noqa: BLE001 - a request in flight on the killed worker
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work, args=(a, projects[1 + k % 3])) for k, a in enumerate(annotators)]
    for t in threads:
        t.start()
    os.kill(before[0], _signal.SIGKILL)
    for t in threads:
        t.join()
    assert len(errors) <= len(annotators)  # at most the requests in flight on the killed worker
    for _ in range(60):
        if len(ls_server.worker_pids()) == 2:
            break
        threading.Event().wait(0.5)
    assert ls_server.alive() and before[0] not in ls_server.worker_pids() and len(ls_server.worker_pids()) == 2
    for a in annotators:  # the server answers: everyone finishes their lists
        for pid in projects.values():
            work_through(a, pid, choose)

    ls_db = ls_server_database(ls_server)
    admin = create_engine(PG_SERVER.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    cut = []

    def terminate(done, total):
        with admin.connect() as c:
            cut.append(c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": ls_db}).scalar())  # fmt: skip

    try:
        pull_campaign(engine, loaded, spec, "pilot", conn, on_progress=terminate, workers=1)
    except WorkbenchError as exc:
        assert "\n" not in str(exc) and "Label Studio at" in str(exc)
    admin.dispose()
    assert cut
    pulled = pull_campaign(engine, loaded, spec, "pilot", conn)
    assert pulled.problems == [] or all("annotated" in p for p in pulled.problems)
    on_server = sum(len(t.annotations) for pid in projects.values() for t in project_tasks(ls_server, pid))
    with Session(engine) as s:
        ids = s.scalars(select(CampaignAnnotation.annotation_id)).all()
    assert len(ids) == len(set(ids)) == on_server


def ls_server_database(ls_server) -> str:
    cfg = json.loads((ls_server.data_dir / "workbench-server.json").read_text())
    return cfg["database"]["NAME"]


def test_production_server_without_redis_says_so_and_works(tmp_path, monkeypatch):
    """Redis absent: the server says so, runs Label Studio's jobs inside the requests, and a campaign goes round."""
    try:
        label_studio_program()
    except WorkbenchError as exc:
        pytest.skip(str(exc))
    with ls_database() as database:
        server = start_server(tmp_path / "ls", username=ADMIN, password="admin-pass-123", token="f" * 40, database=database,
                              workers=1, threads=2, redis="redis://127.0.0.1:1/3", secret_key="k" * 50)  # fmt: skip
        try:
            assert server.redis is None and any("Redis does not answer" in n for n in server.notes)
            assert not server.helpers  # no RQ worker
            monkeypatch.setenv("TEST_LS_KEY", server.token)
            loaded = load_study(make_study(tmp_path / "study", server.url, k=1, list_size=12))
            engine = connect_store(f"sqlite:///{tmp_path / 'store.db'}")
            apply_study(engine, loaded)
            conn = connect(server.url, server.token, key_source="TEST_LS_KEY", database=server.database)
            assert push_campaign(engine, loaded, "pilot", conn).tasks_imported == 15
            person = Annotator.sign_up(server.url, invite_url(server.url, server.token), "solo@example.com")
            done = work_through(person, lists_of(engine)[1], lambda w: "4")
            assert pull_campaign(engine, loaded, loaded.study.campaigns["pilot"], "pilot", conn).new == len(done) == 15
            engine.dispose()
        finally:
            server.stop()


def test_two_pushes_or_two_pulls_at_once_go_one_at_a_time(tmp_path, ls_server, annotators, db_url):
    """Two `annotate push` (or `pull`) of a campaign at once on one store: one at a time; a second that waits past
    --wait ends with one line naming the first; never a project, task or annotation twice (SQLite and PostgreSQL)."""
    import subprocess
    import sys

    from workbench.store.locks import study_lock

    if ls_server.mode == "production" and db_url.startswith("sqlite"):
        pytest.skip("the production server is tested with the store on PostgreSQL")
    path = make_study(tmp_path / "study", ls_server.url, k=1, list_size=5)
    env = {**os.environ, "TEST_LS_KEY": ls_server.token, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def cli(*args):
        return subprocess.Popen([sys.executable, "-m", "workbench.cli.main", *args, "--study", str(path), "--db", db_url],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    assert cli("apply").wait(300) == 0
    engine = connect_store(db_url)
    with study_lock(engine, "annotate push:pilot", what="annotate push pilot"):  # another push holds the campaign
        p = cli("annotate", "push", "pilot", "--wait", "0.5")
        out = p.communicate(timeout=300)[0]
    assert p.returncode == 1 and out.count("\n") == 1 and "annotate push pilot" in out and "Traceback" not in out, out
    for command in ("push", "pull"):
        if command == "pull":
            for pid in lists_of(engine).values():
                work_through(annotators[3], pid, lambda w: "4")
        procs = [cli("annotate", command, "pilot", "--wait", "120") for _ in range(2)]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert not any("Error" in o or "Traceback" in o for o in outs), outs
    projects = lists_of(engine)
    assert len(projects) == 3
    for pid in projects.values():
        keys = [t.data["wb_key"] for t in project_tasks(ls_server, pid)]
        assert len(keys) == len(set(keys))
    with Session(engine) as s:
        ids = s.scalars(select(CampaignAnnotation.annotation_id)).all()
        assert len(ids) == len(set(ids)) == sum(len(t.annotations) for pid in projects.values() for t in project_tasks(ls_server, pid))
        assert s.scalar(text("SELECT count(*) FROM jobs WHERE kind = 'annotate:pull'")) == 1  # the second found nothing new
    engine.dispose()
