"""Benchmark `workbench annotate push` and `pull` on a real Label Studio server.

    python bench/bench_annotate.py [--words 10000] [--list-size 100] [--k 5] [--unchanged-only]
                                   [--server development|production|both] [--workers 4]

Starts Label Studio (scripts/label_studio.sh installs it) on a free 127.0.0.1
port: the development server (SQLite, Django's runserver) or the production
one (PostgreSQL, gunicorn with --workers processes, Redis), or both one after
the other in one run; and a study with WORDS generated words in a store
(SQLite for the development server, PostgreSQL for the production one), then
times:

  (a) push of WORDS words in lists of LIST_SIZE: WORDS/LIST_SIZE projects made, WORDS tasks imported;
  (b) pull of WORDS x K annotations by K annotators. Making 50,000 annotations one API request at a
      time would take the better part of an hour here, so a second campaign's projects are made
      beforehand with their tasks and annotations imported together (Label Studio's import takes
      annotations with their annotator's user id); push adopts those projects and tasks (timed
      too), then pull reads every annotation;
  (c) pull when nothing changed (the goal: under 0.5 s), and pull after one annotation was edited; both on the
      server's /api/workbench/ endpoints (a server `annotate serve` started) and through Label Studio's own API (as
      any other server is pulled), alternating in one run;
  (d) reading every task of every project without the store, three ways: /api/workbench/tasks/ (what pull reads),
      Label Studio's Data Manager task list with fields=all (what pull read before, and reads on other servers), and
      Label Studio's project export (exportType=JSON, download_all_tasks=true).

--unchanged-only skips (a) and (d), the parts not needed to time (c).

Prints the figures and appends a JSON line to bench/results/bench_annotate.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.labelstudio import PG_SERVER, Annotator, invite_url, ls_database  # noqa: E402
from workbench.annotate.campaign import resolve_campaign  # noqa: E402
from workbench.annotate.connection import connect  # noqa: E402
from workbench.annotate.labelconfig import FROM_NAME, TO_NAME  # noqa: E402
from workbench.annotate.pull import _read_tasks, pull_campaign  # noqa: E402
from workbench.annotate.push import project_settings, push_campaign  # noqa: E402
from workbench.annotate.server import start_server  # noqa: E402
from workbench.store import connect as connect_store  # noqa: E402
from workbench.study.apply import apply_study  # noqa: E402
from workbench.study.load import load_study  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=10_000)
    ap.add_argument("--list-size", type=int, default=100)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--unchanged-only", action="store_true", help="skip the push of (a) and the baseline (d): time (c) sooner")
    ap.add_argument("--server", choices=["development", "production", "both"], default="production")
    ap.add_argument("--workers", type=int, default=4, help="the production server's web workers")
    ap.add_argument("--no-baseline", action="store_true", help="skip (d), reading every project without the store")
    args = ap.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "label_studio.sh")], check=True, stdout=subprocess.DEVNULL)
    kinds = ["development", "production"] if args.server == "both" else [args.server]
    for kind in kinds:
        record = run(args, kind)
        RESULTS.mkdir(exist_ok=True)
        with open(RESULTS / "bench_annotate.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def store_database(tmp: Path, kind: str):
    """The study's store: SQLite beside the development server, a new PostgreSQL database beside the production one."""
    import contextlib
    import uuid

    from sqlalchemy import create_engine, text

    if kind == "development":
        return contextlib.nullcontext(f"sqlite:///{tmp / 'store.db'}")

    @contextlib.contextmanager
    def pg():
        name = f"wb_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_SERVER.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield PG_SERVER.rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    return pg()


def run(args, kind: str) -> dict:
    t_push = t_base = None
    rng = np.random.default_rng(7)
    print(f"--- {kind} server", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ls_database(kind == "production") as database, store_database(Path(tmp), kind) as store:
        tmp = Path(tmp)
        token = "bench0123456789abcdef0123456789abcdef01"
        t_start, server = timed(lambda: start_server(tmp / "ls", username="admin@example.com", password="bench-pass-123", token=token,
                                                     database=database, workers=args.workers, secret_key="bench-" + "k" * 44))  # fmt: skip
        print(f"server up in {t_start:.1f} s ({server.mode}, {server.workers} workers, redis: {server.redis or 'none'})", flush=True)
        try:
            words = [f"w{i:05d}" for i in range(args.words)]
            truth = rng.uniform(1, 7, args.words)
            (tmp / "norms.csv").write_text("word,fam\n" + "".join(f"{w},{v:.3f}\n" for w, v in zip(words, truth, strict=True)))
            (tmp / "study.yaml").write_text(f"""
study: bench
database: {store}
dimensions:
  familiarity: {{scale: [1, 7]}}
datasets:
  norms: {{file: norms.csv, item_column: word, ratings: {{familiarity: fam}}}}
campaigns:
  pushed: {{items: norms, raters_per_item: {args.k}, list_size: {args.list_size}, server: {{url: {server.url}}}}}
  pulled: {{items: norms, raters_per_item: {args.k}, list_size: {args.list_size}, server: {{url: {server.url}}}}}
""")
            loaded = load_study(tmp / "study.yaml")
            engine = connect_store(store)
            apply_study(engine, loaded)
            conn = connect(server.url, token, database=server.database, timeout=600)  # a loaded machine: slow pages, not dead ones
            if not args.unchanged_only:
                t_push, push = timed(lambda: push_campaign(engine, loaded, "pushed", conn))
                print(
                    f"push of {args.words} words in lists of {args.list_size}: {t_push:.1f} s "
                    f"({push.projects_created} projects, {push.tasks_imported} tasks; load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )

            # the annotators, and the second campaign's projects with their annotations imported
            invite = invite_url(server.url, token)
            people = [Annotator.sign_up(server.url, invite, f"bench{u}@example.com") for u in range(args.k)]
            from sqlalchemy.orm import Session

            with Session(engine) as s:
                rc = resolve_campaign(s, loaded, "pulled")
            from workbench.annotate.push import assign

            lists = assign(rc, {}, {}, {})
            texts = {w: i for i, w in enumerate(words)}
            choices = {t.text: [str(int(np.clip(round(truth[texts[t.text]] + rng.normal(0, 1)), 1, 7))) for _ in people]
                       for tasks in lists.values() for t in tasks}  # fmt: skip
            leads = rng.uniform(1, 5, (args.words + 10, args.k))

            def make(list_no: int) -> int:
                settings = project_settings(rc, list_no)
                pid = conn.client.projects.create(**settings).id
                body = []
                for t in lists[list_no]:
                    anns = [{
                        "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choices[t.text][u]]}}],
                        "completed_by": p.user_id, "lead_time": float(leads[texts[t.text], u]),
                    } for u, p in enumerate(people)]  # fmt: skip
                    body.append({"data": {"word": t.text, "wb_key": t.key}, "annotations": anns})
                conn.client.projects.import_tasks(id=pid, request=body)
                return pid

            # one list at a time on SQLite (imports into Label Studio's SQLite at once lost annotations); 4 on PostgreSQL
            at_once = 4 if server.database == "postgresql" else 1
            t_make, pids = timed(lambda: list(ThreadPoolExecutor(at_once).map(make, sorted(lists))))
            n_ann = args.words * args.k
            print(f"(setup: {len(pids)} projects with {n_ann} annotations imported in {t_make:.1f} s)", flush=True)
            t_adopt, adopt = timed(lambda: push_campaign(engine, loaded, "pulled", conn))
            print(f"push adopting them: {t_adopt:.1f} s ({adopt.projects_adopted} projects, {adopt.tasks_adopted} tasks)", flush=True)

            reads = {}
            if not args.unchanged_only and not args.no_baseline:
                old = connect(server.url, token, database=server.database, timeout=600)
                old.workbench_api = False
                conn.workbench_api = True
                export = {"exportType": "JSON", "download_all_tasks": "true"}
                for what, fn in [
                    ("workbench endpoint", lambda p: _read_tasks(conn, p, None)),
                    ("data manager task list", lambda p: _read_tasks(old, p, None)),
                    ("project export", lambda p: conn.request("GET", f"/api/projects/{p}/export", params=export, timeout=600)),
                ]:  # fmt: skip
                    reads[what], _ = timed(lambda fn=fn: list(ThreadPoolExecutor(8).map(fn, pids)))
                    print(f"(d) reading every project by the {what}: {reads[what]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
                t_base = reads["workbench endpoint"]
                conn.workbench_api = None
            spec = loaded.study.campaigns["pulled"]
            t_pull, pulled = timed(lambda: pull_campaign(engine, loaded, spec, "pulled", conn))
            base_note = f"; baseline, reading them without the store: {t_base:.1f} s, ratio {t_pull / t_base:.2f}" if t_base else ""
            print(
                f"pull of {pulled.new} annotations: {t_pull:.1f} s ({pulled.ratings_added} ratings{base_note}; "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            time.sleep(6)  # past pull's margin: it re-reads tasks updated in the 5 s before the last pull
            pull_campaign(engine, loaded, spec, "pulled", conn)  # re-reads what changed just before the first began
            own = connect(server.url, token, database=server.database, timeout=600)
            own.workbench_api = False  # as a server `annotate serve` did not start is pulled
            t_none, t_none_old = [], []
            for _ in range(3):  # alternating, so both meet the same load
                for c, times in ((conn, t_none), (own, t_none_old)):
                    dt_, again = timed(lambda c=c: pull_campaign(engine, loaded, spec, "pulled", c))
                    assert not again.changed and again.lists_read == 0
                    times.append(dt_)
            print(f"pull when nothing changed: median {np.median(t_none):.2f} s of {[round(x, 2) for x in t_none]}; through Label "
                  f"Studio's own API {np.median(t_none_old):.2f} s of {[round(x, 2) for x in t_none_old]} "
                  f"(ratio {np.median(t_none_old) / np.median(t_none):.1f}; load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
            task = conn.request("GET", "/api/tasks/", params={"project": pids[0], "fields": "all", "page_size": 1})["tasks"][0]
            ann = task["annotations"][0]
            choice = ["1"] if ann["result"][0]["value"]["choices"] != ["1"] else ["2"]
            conn.request("PATCH", f"/api/annotations/{ann['id']}/",
                         json={"result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": choice}}]})  # fmt: skip
            t_one, one = timed(lambda: pull_campaign(engine, loaded, spec, "pulled", conn))
            print(f"pull after one edit: {t_one:.2f} s ({one.edited} edited, {one.ratings_changed} rating changed)", flush=True)
            engine.dispose()
        finally:
            server.stop()
    return {
        "bench": "annotate", "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "server": kind,
        "workers": server.workers, "redis": bool(server.redis), "load": os.getloadavg(),
        "machine": platform.platform(), "words": args.words, "unchanged_only": args.unchanged_only, "list_size": args.list_size, "k": args.k,
        "server_start_s": t_start, "push_s": t_push, "adopt_push_s": t_adopt, "pull_s": t_pull, "pull_baseline_s": t_base,
        "pull_unchanged_s": t_none, "pull_unchanged_label_studio_api_s": t_none_old, "pull_one_edit_s": t_one, "annotations": n_ann,
        "read_all_s": reads,
    }  # fmt: skip


if __name__ == "__main__":
    main()
