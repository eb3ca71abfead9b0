"""Load test: annotators working at once through Label Studio's labeling stream while `annotate pull` runs.

    python bench/bench_annotate_load.py [--annotators 50] [--words 10000] [--k 5] [--list-size 100]
                                        [--server both|development|production] [--workers 4]
                                        [--pull-every 30] [--max-seconds 600] [--max-submissions 50000]

For each server (the development one: SQLite, Django's runserver; the production one: PostgreSQL, gunicorn with
--workers processes, Redis), in one run: a study with WORDS generated words and a campaign with K ratings per word in
lists of LIST_SIZE is pushed; ANNOTATORS people sign up through the invite link, each a separate Label Studio user;
all of them then work at once, as fast as the server allows, each through the labeling stream of one list after
another (asking for the next task, submitting a rating); a puller runs `annotate pull` every PULL_EVERY seconds. The
work stops when every word has its K ratings, or at MAX_SECONDS or MAX_SUBMISSIONS (the bounds: this is a small,
shared machine), then one last pull runs.

Checked at the end: every submitted annotation is in the store exactly once; no annotator has two ratings of one
word; the words short of K are exactly those `annotate status` lists. Reported: submissions per second, p50/p95 of a
submission's latency (and of asking for the next task), errors, pull times; the machine's load. Everything listens on
127.0.0.1. A JSON line per server goes to bench/results/bench_annotate_load.jsonl.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_annotate import store_database  # noqa: E402
from tests.labelstudio import Annotator, invite_url, ls_database  # noqa: E402
from workbench.annotate.connection import connect  # noqa: E402
from workbench.annotate.labelconfig import FROM_NAME, TO_NAME  # noqa: E402
from workbench.annotate.pull import _read_tasks, pull_campaign  # noqa: E402
from workbench.annotate.push import push_campaign  # noqa: E402
from workbench.annotate.server import start_server  # noqa: E402
from workbench.annotate.status import campaign_status  # noqa: E402
from workbench.store import connect as connect_store  # noqa: E402
from workbench.study.apply import apply_study  # noqa: E402
from workbench.study.load import load_study  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--words", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--list-size", type=int, default=100)
    ap.add_argument("--server", choices=["development", "production", "both"], default="both")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pull-every", type=float, default=30)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--max-submissions", type=int, default=50_000)
    args = ap.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "label_studio.sh")], check=True, stdout=subprocess.DEVNULL)
    kinds = ["development", "production"] if args.server == "both" else [args.server]
    rows = []
    for kind in kinds:
        rows.append(run(args, kind))
        RESULTS.mkdir(exist_ok=True)
        with open(RESULTS / "bench_annotate_load.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rows[-1]) + "\n")
    print("\nserver       submissions  per s   p50 ms  p95 ms  next p95 ms  errors  pulls (s)           checks")
    for r in rows:
        pulls = ", ".join(f"{x:.1f}" for x in r["pull_s"][:6]) + (" ..." if len(r["pull_s"]) > 6 else "")
        print(f"{r['server']:<12} {r['submitted']:>11} {r['per_s']:>6.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>7.0f} "
              f"{r['next_p95_ms']:>12.0f} {r['errors']:>7}  {pulls:<19} {'ok' if r['checks_ok'] else 'FAILED'}")  # fmt: skip


def run(args, kind: str) -> dict:
    print(f"--- {kind} server: {args.annotators} annotators, {args.words} words x {args.k}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ls_database(kind == "production") as database, store_database(Path(tmp), kind) as store:
        tmp = Path(tmp)
        token = "load0123456789abcdef0123456789abcdef0123"
        t0 = time.perf_counter()
        server = start_server(tmp / "ls", username="admin@example.com", password="load-pass-123", token=token, database=database,
                              workers=args.workers, secret_key="load-" + "k" * 45)  # fmt: skip
        print(f"server up in {time.perf_counter() - t0:.0f} s ({server.mode}, {server.workers} workers, redis: {server.redis or 'none'})")
        try:
            return _load(args, kind, tmp, server, token, store)
        finally:
            server.stop()


def _load(args, kind: str, tmp: Path, server, token: str, store: str) -> dict:
    words = [f"w{i:05d}" for i in range(args.words)]
    (tmp / "norms.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(words)))
    (tmp / "study.yaml").write_text(f"""
study: load
database: {store}
dimensions:
  familiarity: {{scale: [1, 7]}}
datasets:
  norms: {{file: norms.csv, item_column: word, ratings: {{familiarity: fam}}}}
campaigns:
  load: {{items: norms, raters_per_item: {args.k}, list_size: {args.list_size}, server: {{url: {server.url}}}}}
""")
    loaded = load_study(tmp / "study.yaml")
    engine = connect_store(store)
    apply_study(engine, loaded)
    conn = connect(server.url, token, database=server.database, timeout=600)
    t, push = _timed(lambda: push_campaign(engine, loaded, "load", conn))
    print(f"push: {t:.1f} s ({push.projects_created} projects, {push.tasks_imported} tasks; load {os.getloadavg()[0]:.1f})", flush=True)
    from sqlalchemy.orm import Session

    from workbench.store.models import CampaignList

    with Session(engine) as s:
        projects = [cl.project_id for cl in s.query(CampaignList).order_by(CampaignList.list_no)]
    invite = invite_url(server.url, token)
    at_once = 8 if kind == "production" else 1  # sign-ups at once into the development server's SQLite fail ("locked")
    t, people = _timed(lambda: list(ThreadPoolExecutor(at_once).map(
        lambda u: Annotator.sign_up(server.url, invite, f"load{u}@example.com"), range(args.annotators))))  # fmt: skip
    print(f"{len(people)} annotators signed up through the invite link in {t:.1f} s", flush=True)

    lock = threading.Lock()
    latencies: list[float] = []
    next_latencies: list[float] = []
    submitted: list[tuple[int, int, int, str]] = []  # (annotation id, user id, task id, word)
    errors: dict[str, int] = {}
    stop = threading.Event()
    start = time.perf_counter()
    deadline = start + args.max_seconds

    def annotator(j: int, person: Annotator) -> None:
        with httpx.Client(base_url=server.url, headers=person.headers, timeout=120) as c:
            for step in range(len(projects)):
                pid = projects[(j * max(1, len(projects) // max(1, args.annotators)) + j + step) % len(projects)]
                while not stop.is_set():
                    if time.perf_counter() > deadline or len(submitted) >= args.max_submissions:
                        stop.set()
                        return
                    t1 = time.perf_counter()
                    try:
                        r = c.get(f"/api/projects/{pid}/next")
                    except httpx.HTTPError as exc:
                        _count(errors, lock, f"next: {type(exc).__name__}")
                        continue
                    t2 = time.perf_counter()
                    if r.status_code == 404:
                        break  # nothing left in this list for this annotator
                    if r.status_code != 200:
                        _count(errors, lock, f"next: {r.status_code}")
                        time.sleep(0.2)
                        continue
                    task = r.json()
                    choice = str(1 + (hash((j, task["id"])) % 7))
                    body = {"result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choice]}}],
                            "lead_time": 1.5}  # fmt: skip
                    t3 = time.perf_counter()
                    try:
                        a = c.post(f"/api/tasks/{task['id']}/annotations/", json=body)
                    except httpx.HTTPError as exc:
                        _count(errors, lock, f"submit: {type(exc).__name__}")
                        continue
                    t4 = time.perf_counter()
                    if a.status_code != 201:
                        _count(errors, lock, f"submit: {a.status_code}")
                        continue
                    with lock:
                        latencies.append(t4 - t3)
                        next_latencies.append(t2 - t1)
                        submitted.append((a.json()["id"], person.user_id, task["id"], task["data"]["word"]))

    pulls: list[float] = []
    pull_errors: list[str] = []
    spec = loaded.study.campaigns["load"]

    def puller() -> None:
        while not stop.wait(args.pull_every):
            try:
                t, _ = _timed(lambda: pull_campaign(engine, loaded, spec, "load", conn))
                pulls.append(t)
                print(f"  pull during the load: {t:.1f} s ({len(submitted)} submitted so far)", flush=True)
            except Exception as exc:  # noqa: BLE001 - reported, the load goes on
                pull_errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=annotator, args=(j, p)) for j, p in enumerate(people)]
    pt = threading.Thread(target=puller)
    pt.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    elapsed = time.perf_counter() - start
    pt.join()
    t, final = _timed(lambda: pull_campaign(engine, loaded, spec, "load", conn))
    pulls.append(t)
    load_avg = os.getloadavg()

    # ---- checks
    from sqlalchemy import text

    with Session(engine) as s:
        stored = [r[0] for r in s.execute(text("SELECT annotation_id FROM campaign_annotations"))]
        two = s.execute(text("SELECT count(*) FROM (SELECT rater_id, item_id FROM ratings r JOIN raters ra ON ra.id = r.rater_id "
                             "WHERE ra.kind = 'human' GROUP BY rater_id, item_id HAVING count(*) > 1) x")).scalar()  # fmt: skip
        st = campaign_status(s, "load")
        who_what = {
            a: (who, task) for a, who, task in s.execute(text("SELECT annotation_id, annotator, task_row_id FROM campaign_annotations"))
        }
    on_server = {a["id"] for pid in projects for anns, _ in _read_tasks(conn, pid, None).values() for a in anns}
    ids = [x[0] for x in submitted]
    per_word: dict[str, set[int]] = {}
    pairs = set()
    repeated = 0
    for _, user, _, word in submitted:
        repeated += (user, word) in pairs
        pairs.add((user, word))
        per_word.setdefault(word, set()).add(user)
    short_expected = {w for w in words if len(per_word.get(w, ())) < args.k}
    short_listed = {w for w, _ in st.short}
    checks = {
        "every submitted annotation stored once": set(ids) <= set(stored) and len(set(stored)) == len(stored),
        "the store has exactly the server's annotations": set(stored) == on_server,
        # the development server under this load sometimes makes a second annotation of one POST (the annotator got
        # one 201): pull keeps the pair as one annotator's two annotations of one task (the latest counts, one rating)
        "any other is a second of the same task": all(a in ids or list(who_what.values()).count(who_what[a]) == 2 for a in stored),
        "no annotator rated a word twice (server)": repeated == 0,
        "no annotator has two ratings of a word (store)": two == 0,
        "words short of k = those status lists": short_expected == short_listed,
    }
    for what, ok in checks.items():
        print(f"  check: {what}: {'ok' if ok else 'FAILED'}")
    missing, extra = sorted(set(ids) - set(stored)), sorted(set(stored) - set(ids))
    if missing or extra or len(set(stored)) != len(stored):
        print(f"  submitted but not in the store: {len(missing)} {missing[:10]}; in the store but not submitted (as the "
              f"annotators saw it): {len(extra)} {extra[:10]}; stored twice: {len(stored) - len(set(stored))}")  # fmt: skip
        with Session(engine) as s:
            for ann in extra[:10]:  # what the server has that no annotator got a 201 for: a second of the same task?
                row = s.execute(text("SELECT a.annotator, a.task_row_id, a.status, a.lead_time, a.updated_at, (SELECT count(*) FROM "
                                     "campaign_annotations b WHERE b.annotator = a.annotator AND b.task_row_id = a.task_row_id) "
                                     "FROM campaign_annotations a WHERE a.annotation_id = :i"), {"i": ann}).one()  # fmt: skip
                print(
                    f"    annotation {ann}: status {row[2]}, lead time {row[3]}, updated {row[4]}, "
                    f"{row[5]} annotations of that task by that annotator"
                )
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    nxt = np.array(next_latencies) * 1000 if next_latencies else np.array([np.nan])
    row = {
        "bench": "annotate_load", "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "server": kind,
        "machine": platform.platform(), "cpus": os.cpu_count(), "load_avg_end": load_avg, "workers": server.workers,
        "redis": bool(server.redis), "annotators": args.annotators, "words": args.words, "k": args.k, "list_size": args.list_size,
        "max_seconds": args.max_seconds, "elapsed_s": elapsed, "submitted": len(submitted), "per_s": len(submitted) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
        "next_p50_ms": float(np.percentile(nxt, 50)), "next_p95_ms": float(np.percentile(nxt, 95)),
        "errors": sum(errors.values()), "error_kinds": errors, "pull_s": pulls, "pull_errors": pull_errors,
        "final_pull_new": final.new, "server_made_duplicates": len(set(stored) - set(ids)), "short_of_k": len(short_listed), "complete": len(short_expected) == 0,
        "checks": checks, "checks_ok": all(checks.values()),
    }  # fmt: skip
    print(f"{kind}: {len(submitted)} submissions in {elapsed:.0f} s = {row['per_s']:.1f}/s; submit p50 {row['p50_ms']:.0f} ms, "
          f"p95 {row['p95_ms']:.0f} ms; next p95 {row['next_p95_ms']:.0f} ms; errors {errors or 0}; pulls {[round(p, 1) for p in pulls]}; "
          f"load {load_avg[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
    engine.dispose()
    return row


def _count(errors: dict[str, int], lock: threading.Lock, what: str) -> None:
    with lock:
        errors[what] = errors.get(what, 0) + 1


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


if __name__ == "__main__":
    main()
