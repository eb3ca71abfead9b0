"""pull: annotations come back as ratings of ``human`` raters, one per annotator, under a pseudonym.

Incremental: for each list (a project) pull asks only for the tasks updated
since its last pull (Label Studio bumps a task's ``updated_at`` when one of
its annotations is made or edited). Deletions do not bump it, so pull also
compares the project's annotation counts with what it expects; any mismatch
(a deleted annotation or task, a project edited by hand) makes it read the
whole project.

A pull when nothing changed asks one request on a server `workbench annotate
serve` started: its /api/workbench/changes/ gives every list's counts and the
newest ``updated_at`` of its tasks (a read-only endpoint the server's settings
add; see server.py). On another server it asks for every project's counts,
then one cheap question per list, several lists at once (a page of one task
id: how many tasks changed since the last pull). Nothing else is read from the
store or the server: the annotations the store holds are loaded only when some
list changed, and then only the lists that changed are read (on a server
`annotate serve` started, one request per list: /api/workbench/tasks/, plain
rows without Label Studio's task serializer, its cost in a big pull).

Everything Label Studio returns is read before anything is written; the
store then changes in one transaction, so a server that goes down mid-pull
leaves the store as it was, and the next pull does the work.

A second annotation by the same annotator of the same word replaces the
first (the latest counts; the earlier is kept as ``duplicate``); skipped
tasks are not ratings; "I don't know this word" is a rating with no value
and the note ``unknown``; a value off the scale is reported, never stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from workbench.annotate.connection import Connection, httpx, study_secret
from workbench.annotate.labelconfig import choice_value
from workbench.annotate.pseudonym import pseudonym
from workbench.annotate.push import PAGE, PULL_FIELDS, server_projects
from workbench.annotate.quality import Response, aggregate, evaluate
from workbench.errors import WorkbenchError
from workbench.scale import point_label, scale_points
from workbench.store.engine import bump_generation
from workbench.store.models import (
    Campaign,
    CampaignAnnotation,
    CampaignList,
    CampaignTask,
    Dataset,
    Dimension,
    Job,
    Rater,
    Rating,
    utcnow,
)  # fmt: skip
from workbench.study.load import LoadedStudy
from workbench.study.models import CampaignSpec

MARGIN = timedelta(seconds=5)  # re-read tasks updated shortly before the last pull (commits land out of order)
READ_TIMEOUT_S = 600  # the least a request reading a project's annotations gets: a big list on a busy server is slow, not dead
UNKNOWN_NOTE = "unknown: the annotator does not know this word"


@dataclass
class PullReport:
    campaign: str
    url: str
    lists: int = 0
    lists_read: int = 0
    full_reads: int = 0
    new: int = 0
    edited: int = 0
    deleted: int = 0
    ratings_added: int = 0
    ratings_changed: int = 0
    ratings_removed: int = 0
    annotators: int = 0
    excluded: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    first: bool = False  # the campaign's first pull

    @property
    def changed(self) -> bool:
        return bool(self.new or self.edited or self.deleted)

    def lines(self) -> list[str]:
        if not self.changed and self.first:
            out = [f"{self.campaign}: first pull: no annotations on {self.url} yet ({self.lists} lists checked)."]
        elif not self.changed:
            out = [f"{self.campaign}: nothing changed on {self.url} since the last pull ({self.lists} lists checked)."]
        else:
            out = [
                f"{self.campaign}: {self.new} new, {self.edited} edited, {self.deleted} deleted annotations "
                f"from {self.lists_read} of {self.lists} lists.",
                f"  ratings: {self.ratings_added} added, {self.ratings_changed} changed, {self.ratings_removed} removed; "
                f"{self.annotators} annotators, {len(self.excluded)} excluded.",
            ]
        out += [f"  excluded {a}: {why}" for a, why in sorted(self.excluded.items())]
        return out + [f"  {p}" for p in self.problems]


@dataclass
class Fetched:
    list_no: int
    full: bool
    tasks: dict[int, list[dict]]  # task id -> its annotations (every task read)
    task_ids: set[int] | None  # on a full read: every task id of the project
    fingerprint: str
    newest: str | None


def _parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _since(synced_at: str) -> str:
    return (_parse_time(synced_at) - MARGIN).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_tasks(
    conn: Connection, project_id: int, since: str | None, detail: bool = True, counts: dict | None = None
) -> dict[int, tuple[list[dict], str | None]]:
    """task id -> (its annotations, its updated_at): every task of the project, or those updated since a time.

    On a server `annotate serve` started: one request to its /api/workbench/tasks/ (plain rows, no serializers),
    which also gives the project's counts read in the same snapshot: put into `counts` when given.
    Elsewhere the Data Manager's task list, read as plain JSON: it is the SDK's ``tasks.list`` request, but parsing
    thousands of tasks into the SDK's models costs more than the request itself.
    """
    if conn.workbench_api:
        params: dict = {"project": project_id, **({"since": since} if since else {})}
        body = conn.call(f"read the tasks of project {project_id}",
                         lambda: conn.request("GET", "/api/workbench/tasks/", params=params, timeout=_read_timeout(conn)))  # fmt: skip
        if counts is not None and isinstance(body.get("counts"), dict):
            counts.update({k: body["counts"].get(k) or 0 for k in PULL_FIELDS if k != "description"})
        return {t["id"]: (t.get("annotations") or [], t.get("updated_at")) for t in body.get("tasks") or []}
    params = {"project": project_id, "fields": "all", "page_size": PAGE}
    if not detail:  # only which tasks: the cheap question asked of every list on every pull
        params.update(fields="task_only", include="id,updated_at")
    if since:
        item = {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
        params["query"] = json.dumps({"filters": {"conjunction": "and", "items": [item]}})
    out: dict[int, tuple[list[dict], str | None]] = {}
    page = 1
    while True:
        body = conn.call(f"read the tasks of project {project_id}",
                         lambda: conn.request("GET", "/api/tasks/", params={**params, "page": page}, timeout=_read_timeout(conn)))  # fmt: skip
        tasks = body.get("tasks") or []
        for t in tasks:
            out[t["id"]] = (t.get("annotations") or [], t.get("updated_at"))
        if not tasks or len(out) >= int(body.get("total") or 0):
            return out
        page += 1


def _read_timeout(conn: Connection) -> float:
    return max(conn.timeout, READ_TIMEOUT_S)


CHANGES_CHUNK = 300  # project ids per request (a URL under the 4 KiB request line gunicorn takes)


def server_changes(conn: Connection, project_ids: list[int]) -> dict[int, dict] | None:
    """Every listed project's counts and the newest ``updated_at`` of its tasks, from one request per 300 lists, on a
    server `annotate serve` started (its /api/workbench/changes/); None from a server without it (asked once)."""
    if conn.workbench_api is False:
        return None
    out: dict[int, dict] = {}
    for start in range(0, len(project_ids), CHANGES_CHUNK) or [0]:
        ids = ",".join(str(p) for p in project_ids[start : start + CHANGES_CHUNK])

        def ask(ids: str = ids) -> dict | None:
            try:
                return conn.request("GET", "/api/workbench/changes/", params={"projects": ids})
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 404:  # not a server `annotate serve` started
                    return None
                raise

        body = conn.call("ask which lists changed", ask)
        if body is None or not isinstance(body.get("projects"), dict):
            conn.workbench_api = False
            return None
        for pid, p in body["projects"].items():
            if str(pid).isdigit() and isinstance(p, dict):
                out[int(pid)] = {k: p.get(k) or 0 for k in PULL_FIELDS if k != "description"} | {"updated_at": p.get("updated_at")}
    conn.workbench_api = True
    return out


def _changed_since(conn: Connection, project_id: int, since: str) -> int:
    """How many tasks of a project were updated since a time: one page of one task id, the count only."""
    item = {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
    params = {"project": project_id, "fields": "task_only", "include": "id", "page_size": 1, "page": 1,
              "query": json.dumps({"filters": {"conjunction": "and", "items": [item]}})}  # fmt: skip
    body = conn.call(f"read the tasks of project {project_id}", lambda: conn.request("GET", "/api/tasks/", params=params))
    return int(body.get("total") or 0) if body.get("tasks") else 0


def _quiet(
    conn: Connection, project_id: int, synced_at: str | None, fingerprint: str | None, counts: dict, live_tasks: int, probed: bool
) -> bool:
    """True when a list surely has nothing new: its counts are those of the last pull and no task was updated since.

    An edit leaves the counts alone but bumps its task's ``updated_at``; a deletion changes the counts. `probed`: the
    counts came from /api/workbench/changes/ with the newest ``updated_at`` of the project's tasks; otherwise one
    request asks the project how many tasks were updated since.
    """
    if synced_at is None or fingerprint is None or _fingerprint(counts) != fingerprint:
        return False
    if int(counts.get("task_number") or 0) != live_tasks:
        return False
    if probed:
        return counts.get("updated_at") is None or _parse_time(counts["updated_at"]) <= _parse_time(_since(synced_at))
    return _changed_since(conn, project_id, _since(synced_at)) == 0


def _server_clock(date_header: str | None) -> str | None:
    if not date_header:
        return None
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(date_header).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fingerprint(p: dict) -> str:
    return f"{p.get('task_number', 0)}/{p.get('total_annotations_number', 0)}/{p.get('skipped_annotations_number', 0)}"


def _fetch_list(
    conn: Connection,
    list_no: int,
    project_id: int,
    synced_at: str | None,
    fingerprint: str | None,
    counts: dict,
    stored: dict[int, set[int]],
    live_tasks: int,
) -> Fetched | None:
    """What changed in one list since the last pull (None: nothing), reading the whole project when counts disagree.

    The counts compared are those the read came with (the same snapshot) on a server `annotate serve` started;
    elsewhere those asked before the read (an annotation made in between can then cost a whole read, never a loss).
    """
    fp = _fingerprint(counts)
    full = synced_at is None or fingerprint is None
    read: dict[int, tuple[list[dict], str | None]] = {}
    if not full:
        if conn.workbench_api:  # what changed, in full, with the counts of the same moment, in one request
            snap: dict = {}
            read = _read_tasks(conn, project_id, _since(synced_at), counts=snap)
            counts = snap or counts
            fp = _fingerprint(counts)
        else:
            read = _read_tasks(conn, project_id, _since(synced_at), detail=False)
            if read:  # what changed, in full
                read = _read_tasks(conn, project_id, _since(synced_at))
        # the annotation count the project should have now, if nothing was deleted behind our back
        was_tasks, was_total, was_skipped = (int(x) for x in fingerprint.split("/"))
        delta = 0
        for task_id, (anns, _) in read.items():
            delta += len(anns) - len(stored.get(task_id, set()))
        expected = was_total + was_skipped + delta
        now_total = counts.get("total_annotations_number", 0) + counts.get("skipped_annotations_number", 0)
        if now_total != expected or counts.get("task_number", 0) != live_tasks:
            full = True
        elif not read and fp == fingerprint:
            return None
    if full:
        snap = {}
        read = _read_tasks(conn, project_id, None, counts=snap)
        fp = _fingerprint(snap or counts)
    newest = max((u for _, u in read.values() if u), default=None)
    return Fetched(list_no, full, {t: anns for t, (anns, _) in read.items()}, set(read) if full else None, fp, newest)


def _annotator_id(ann: dict) -> int | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id")
    return who


def pull_campaign(
    engine: Engine,
    loaded: LoadedStudy,
    spec: CampaignSpec,
    name: str,
    conn: Connection,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 8,
    wait_s: float | None = None,
) -> PullReport:
    """Pull a campaign; one pull of a campaign at a time per store (a second waits `wait_s`, then says so)."""
    from workbench.annotate.locking import LOCK_WAIT_S, campaign_lock

    with campaign_lock(engine, f"annotate pull:{name}", f"annotate pull {name}", LOCK_WAIT_S if wait_s is None else wait_s):
        return _pull(engine, loaded, spec, name, conn, on_progress, workers)


def _pull(
    engine: Engine,
    loaded: LoadedStudy,
    spec: CampaignSpec,
    name: str,
    conn: Connection,
    on_progress: Callable[[int, int], None] | None,
    workers: int,
) -> PullReport:
    report = PullReport(name, conn.url)
    secret = study_secret(loaded.base_dir)
    with Session(engine) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == name))
        if camp is None:
            raise WorkbenchError(f"campaign {name!r} has not been pushed yet: run `workbench annotate push {name}` first.")
        if camp.server_url.rstrip("/") != conn.url:
            raise WorkbenchError(f"campaign {name!r} lives on {camp.server_url}, not {conn.url}: point server.url there.")
        campaign_id = camp.id
        report.first = camp.pulled_at is None
        dim = s.get(Dimension, camp.dimension_id)
        points = [float(p) for p in scale_points(dim.scale_min, dim.scale_max, dim.scale_step or 1)]
        lists = [(cl.id, cl.list_no, cl.project_id, cl.synced_at, cl.fingerprint)
                 for cl in s.scalars(select(CampaignList).where(CampaignList.campaign_id == campaign_id).order_by(CampaignList.list_no))]  # fmt: skip
        q = (select(CampaignTask.list_id, func.count()).where(CampaignTask.campaign_id == campaign_id, CampaignTask.deleted.is_(False))
             .group_by(CampaignTask.list_id))  # fmt: skip
        live_by_row = dict(s.execute(q).all())
    report.lists = len(lists)

    # ---- which lists changed: on a server `annotate serve` started, one request for every list's counts and newest
    # change; elsewhere the projects' counts in one request, then one cheap question per list, several at once
    probe = server_changes(conn, [pid for _, _, pid, *_ in lists])
    on_server = probe if probe is not None else server_projects(conn)
    started = _server_clock(conn.server_time)
    for _, no, pid, *_ in lists:
        if pid not in on_server:  # deleted by hand: the other lists are pulled; push makes it again
            report.problems.append(
                f"project {pid} (list {no}) is gone from {conn.url} (deleted by hand?): its ratings stay in the store; "
                f"`workbench annotate push {name}` makes it again."
            )
    lists_all = lists
    lists = [cl for cl in lists if cl[2] in on_server]

    def quiet(args) -> bool:
        cl_id, _no, pid, synced, fp = args
        return _quiet(conn, pid, synced, fp, on_server[pid], live_by_row.get(cl_id, 0), probe is not None)

    if probe is not None:
        flags = [quiet(cl) for cl in lists]
    else:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(lists)))) as pool:
            flags = list(pool.map(quiet, lists))
    to_read = [cl for cl, q in zip(lists, flags, strict=True) if not q]
    if not to_read:  # nothing changed: the store's annotations are not even loaded
        if on_progress:
            on_progress(len(lists), len(lists))
        with Session(engine) as s, s.begin():
            q = select(func.count(func.distinct(CampaignAnnotation.annotator))).where(CampaignAnnotation.campaign_id == campaign_id)
            report.annotators = int(s.scalar(q) or 0)
            s.get(Campaign, campaign_id).pulled_at = utcnow()  # pulled, even with nothing to bring: status says when
        return report

    with Session(engine) as s:
        task_rows = {t.task_id: t for t in s.scalars(select(CampaignTask).where(CampaignTask.campaign_id == campaign_id))}
        for t in task_rows.values():
            s.expunge(t)
        cols = [CampaignAnnotation.id, CampaignAnnotation.task_row_id, CampaignAnnotation.annotation_id,
                CampaignAnnotation.annotator, CampaignAnnotation.value, CampaignAnnotation.unknown,
                CampaignAnnotation.lead_time, CampaignAnnotation.status, CampaignAnnotation.note,
                CampaignAnnotation.updated_at]  # fmt: skip
        q = select(*cols).where(CampaignAnnotation.campaign_id == campaign_id)
        ann_rows = {r.annotation_id: r for r in s.execute(q)}  # plain rows: tens of thousands of ORM objects cost seconds
    row_by_id = {t.id: t for t in task_rows.values()}
    stored_by_task: dict[int, set[int]] = {}
    for a in ann_rows.values():
        stored_by_task.setdefault(row_by_id[a.task_row_id].task_id, set()).add(a.annotation_id)
    list_of_row = {cl_id: no for cl_id, no, *_ in lists_all}
    live_by_list: dict[int, int] = {}
    for t in task_rows.values():
        if not t.deleted:
            live_by_list[list_of_row[t.list_id]] = live_by_list.get(list_of_row[t.list_id], 0) + 1

    def one(args):
        _, no, pid, synced, fp = args
        f = _fetch_list(conn, no, pid, synced, fp, on_server[pid], stored_by_task, live_by_list.get(no, 0))
        if f is not None:
            f.newest = started  # the next pull asks for what changed after this one began
        return f

    fetched: list[Fetched] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(to_read)))) as pool:
        for k, f in enumerate(pool.map(one, to_read), 1):
            if f is not None:
                fetched.append(f)
            if on_progress:
                on_progress(len(lists) - len(to_read) + k, len(lists))
    report.lists_read = len(fetched)
    report.full_reads = sum(f.full for f in fetched)

    # ---- compare with what the store has: new, edited, deleted annotations; deleted tasks
    inserts: list[dict] = []
    updates: list[dict] = []
    deletes: list[int] = []
    deleted_tasks: list[CampaignTask] = []
    for f in fetched:
        if f.task_ids is not None:
            for t in task_rows.values():
                if list_of_row[t.list_id] == f.list_no and not t.deleted and t.task_id not in f.task_ids:
                    deleted_tasks.append(t)
        for task_id, anns in f.tasks.items():
            row = task_rows.get(task_id)
            if row is None:  # a task added by hand: not the campaign's
                if anns:
                    report.problems.append(f"task {task_id} of list {f.list_no} is not one workbench pushed: ignored.")
                continue
            seen = set()
            for a in anns:
                seen.add(a["id"])
                user = _annotator_id(a)
                if user is None:
                    continue
                value, unknown, problem = choice_value(a.get("result") or [], points)
                cancelled = bool(a.get("was_cancelled"))
                status = "skipped" if cancelled else ("off_scale" if problem else "ok")
                values = {
                    "campaign_id": campaign_id, "task_row_id": row.id, "annotation_id": a["id"],
                    "annotator": pseudonym(secret, conn.url, user), "value": None if cancelled else value,
                    "unknown": unknown and not cancelled, "lead_time": a.get("lead_time"), "status": status,
                    "note": None if cancelled else problem, "updated_at": a.get("updated_at"),
                }  # fmt: skip
                old = ann_rows.get(a["id"])
                if old is None:
                    inserts.append(values)
                    if problem and not cancelled:
                        report.problems.append(
                            f"annotation {a['id']} of {row.text!r} (list {f.list_no}): {problem}; not stored as a rating."
                        )
                elif old.updated_at != values["updated_at"] or old.task_row_id != row.id:
                    updates.append({"id": old.id, **values})
                    if problem and not cancelled:
                        report.problems.append(
                            f"annotation {a['id']} of {row.text!r} (list {f.list_no}): {problem}; not stored as a rating."
                        )
            for ann_id in stored_by_task.get(task_id, set()) - seen:
                deletes.append(ann_rows[ann_id].id)
    report.new, report.edited, report.deleted = len(inserts), len(updates), len(deletes)
    for t in deleted_tasks:
        report.problems.append(
            f"task {t.task_id} ({t.text!r}, list {list_of_row[t.list_id]}) was deleted in Label Studio: "
            "its ratings are kept; push again to put it back."
        )

    if not (report.changed or deleted_tasks):
        _save_sync_state(engine, lists, fetched, campaign_id, write_time=False)
        with Session(engine) as s:
            report.annotators = len(
                set(s.scalars(select(CampaignAnnotation.annotator).where(CampaignAnnotation.campaign_id == campaign_id)))
            )
        return report

    # ---- the new state of every annotation, then the ratings it implies
    by_id = {a.annotation_id: a._asdict() for a in ann_rows.values()}
    gone = set(deletes)
    state = {k: v for k, v in by_id.items() if v["id"] not in gone}
    for u in updates:
        state[u["annotation_id"]] = {**state[u["annotation_id"]], **u}
    for i in inserts:
        state[i["annotation_id"]] = dict(i)
    _mark_duplicates(state, row_by_id, report)

    responses = []
    for a in state.values():
        if a["status"] != "ok":
            continue
        t = row_by_id[a["task_row_id"]]
        responses.append(Response(a["annotator"], t.role, t.item_id, a["value"], bool(a["unknown"]), a["lead_time"], t.gold))
    tolerance = spec.controls.tolerance if spec.controls and spec.controls.tolerance else (points[-1] - points[0]) / 3
    quality = evaluate(responses, spec.exclude, tolerance)
    report.annotators = len(quality)
    report.excluded = {a: q.excluded for a, q in quality.items() if q.excluded}

    with Session(engine) as s, s.begin():
        job = Job(kind="annotate:pull", status="running", config={"campaign": name, "url": conn.url})
        s.add(job)
        s.flush()
        if deletes:
            for start in range(0, len(deletes), 5000):
                s.execute(delete(CampaignAnnotation).where(CampaignAnnotation.id.in_(deletes[start : start + 5000])))
        edited_ids = {u["id"] for u in updates}
        status_updates = [{"id": v["id"], "status": v["status"], "note": v["note"]} for v in state.values()
                          if "id" in v and v["id"] not in edited_ids]  # fmt: skip
        if updates:
            s.execute(update(CampaignAnnotation), updates)
        if inserts:
            s.execute(insert(CampaignAnnotation), [{k: v for k, v in i.items()} for i in inserts])
        # statuses that changed without an edit (a duplicate that became the latest after a deletion)
        old_status = {a.id: (a.status, a.note) for a in ann_rows.values()}
        changed_status = [u for u in status_updates if old_status.get(u["id"]) != (u["status"], u["note"])]
        if changed_status:
            s.execute(update(CampaignAnnotation), changed_status)
        if inserts:  # duplicates among the new rows: their ids are known only now
            s.flush()
            dup_ids = [i["annotation_id"] for i in inserts if state[i["annotation_id"]]["status"] == "duplicate"]
            if dup_ids:
                s.execute(update(CampaignAnnotation).where(CampaignAnnotation.campaign_id == campaign_id,
                                                           CampaignAnnotation.annotation_id.in_(dup_ids)).values(status="duplicate"))  # fmt: skip
        for t in deleted_tasks:
            s.execute(update(CampaignTask).where(CampaignTask.id == t.id).values(deleted=True))
        _write_ratings(s, name, campaign_id, dim.id, job.id, state, row_by_id, quality, report)
        _write_aggregate(s, name, spec, campaign_id, dim.id, job.id, responses, set(report.excluded))
        _sync_rows(s, lists, fetched)
        s.get(Campaign, campaign_id).pulled_at = utcnow()
        job.status, job.finished_at = "done", utcnow()
        job.counts = {"new": report.new, "edited": report.edited, "deleted": report.deleted,
                      "ratings_added": report.ratings_added, "ratings_changed": report.ratings_changed,
                      "ratings_removed": report.ratings_removed, "problems": len(report.problems)}  # fmt: skip
        bump_generation(s)
    return report


def _mark_duplicates(state: dict[int, dict], rows: dict[int, CampaignTask], report: PullReport) -> None:
    """Of one annotator's annotations of one task (or one item), only the latest counts."""
    groups: dict[tuple, list[dict]] = {}
    for a in state.values():
        if a["status"] == "duplicate":
            a["status"], a["note"] = "ok", None
        if a["status"] != "ok":
            continue
        t = rows[a["task_row_id"]]
        key = (a["annotator"], "item", t.item_id) if t.role == "item" else (a["annotator"], "task", t.id)
        groups.setdefault(key, []).append(a)
    for (who, _, _), group in groups.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda a: (a["updated_at"] or "", a["annotation_id"]))
        for a in group[:-1]:
            a["status"], a["note"] = "duplicate", f"replaced by annotation {group[-1]['annotation_id']}"
        text = rows[group[-1]["task_row_id"]].text
        report.problems.append(f"annotator {who} annotated {text!r} {len(group)} times: the latest counts, one rating is kept.")


def _rater_name(campaign: str, annotator: str) -> str:
    return f"{campaign}:{annotator}"


def _write_ratings(
    s: Session,
    name: str,
    campaign_id: int,
    dimension_id: int,
    job_id: int,
    state: dict[int, dict],
    rows: dict[int, CampaignTask],
    quality: dict,
    report: PullReport,
) -> None:
    wanted: dict[tuple[str, int], dict] = {}
    for a in state.values():
        t = rows[a["task_row_id"]]
        if a["status"] != "ok" or t.role != "item" or t.item_id is None:
            continue
        wanted[(a["annotator"], t.item_id)] = {
            "value": a["value"], "note": UNKNOWN_NOTE if a["unknown"] else None,
            "raw_answer": "unknown" if a["unknown"] else point_label(a["value"]) if a["value"] is not None else None,
        }  # fmt: skip
    raters = {r.config.get("annotator"): r for r in s.scalars(select(Rater).where(Rater.kind == "human"))
              if r.config and r.config.get("campaign") == name}  # fmt: skip
    for who in sorted({w for w, _ in wanted} | set(quality)):
        q = quality.get(who)
        config = {"campaign": name, "annotator": who, "excluded": q.excluded if q else None}
        if q is not None:
            config.update(ratings=q.ratings, controls=q.controls, failed_controls=q.failed_controls,
                          correlation=q.correlation, median_seconds=q.median_seconds)  # fmt: skip
        r = raters.get(who)
        if r is None:
            rname = _rater_name(name, who)
            if s.scalar(select(Rater.id).where(Rater.name == rname)) is not None:
                raise WorkbenchError(f"rater name {rname!r} is taken by another rater: rename it.")
            r = Rater(name=rname, kind="human", config=config)
            s.add(r)
            raters[who] = r
        elif r.config != config:
            r.config = config
    s.flush()
    rater_ids = {who: r.id for who, r in raters.items()}
    by_rater = {v: k for k, v in rater_ids.items()}
    have = {}
    if rater_ids:
        q = select(Rating.id, Rating.rater_id, Rating.item_id, Rating.value, Rating.note).where(
            Rating.rater_id.in_(list(rater_ids.values())), Rating.dimension_id == dimension_id, Rating.replicate == 0
        )
        have = {(by_rater[r], i): (rid, v, n) for rid, r, i, v, n in s.execute(q)}
    adds, changes, removes = [], [], []
    for key, w in wanted.items():
        old = have.get(key)
        if old is None:
            adds.append({"item_id": key[1], "dimension_id": dimension_id, "rater_id": rater_ids[key[0]], "replicate": 0,
                         "value": w["value"], "note": w["note"], "raw_answer": w["raw_answer"], "job_id": job_id, "n": 1})  # fmt: skip
        elif (old[1], old[2]) != (w["value"], w["note"]):
            changes.append({"id": old[0], "value": w["value"], "note": w["note"], "raw_answer": w["raw_answer"], "job_id": job_id})
    removes = [old[0] for key, old in have.items() if key not in wanted]
    if adds:
        s.execute(insert(Rating), adds)
    if changes:
        s.execute(update(Rating), changes)
    for start in range(0, len(removes), 5000):
        s.execute(delete(Rating).where(Rating.id.in_(removes[start : start + 5000])))
    report.ratings_added, report.ratings_changed, report.ratings_removed = len(adds), len(changes), len(removes)


def _write_aggregate(
    s: Session,
    name: str,
    spec: CampaignSpec,
    campaign_id: int,
    dimension_id: int,
    job_id: int,
    responses: list[Response],
    excluded: set[str],
) -> None:
    """The campaign's dataset: mean, sd, n and known-ness per word after exclusions, with a norm rater (usable as gold)."""
    ds_name = spec.dataset or name
    camp = s.get(Campaign, campaign_id)
    ds = s.get(Dataset, camp.dataset_id) if camp.dataset_id else None
    if ds is None:
        if s.scalar(select(Dataset.id).where(Dataset.name == ds_name)) is not None:
            raise WorkbenchError(
                f"campaign {name!r}: a dataset named {ds_name!r} exists already: give the campaign another `dataset:` name."
            )
        if s.scalar(select(Rater.id).where(Rater.name == ds_name)) is not None:
            raise WorkbenchError(f"campaign {name!r}: a rater named {ds_name!r} exists already: give the campaign another `dataset:` name.")
        ds = Dataset(name=ds_name, citation=f"workbench campaign {name!r} (Label Studio)", origin_url=camp.server_url,
                     details={"campaign": name})  # fmt: skip
        s.add(ds)
        s.flush()
        s.add(Rater(name=ds_name, kind="norm", dataset_id=ds.id, config={"campaign": name}))
        camp.dataset_id = ds.id
        s.flush()
    rater = s.scalar(select(Rater).where(Rater.dataset_id == ds.id, Rater.kind == "norm"))
    ds.details = {
        "campaign": name,
        "excluded_annotators": sorted(excluded),
        "annotators": len({r.annotator for r in responses}) - len(excluded),
    }
    ds.imported_at = utcnow()
    q = select(Rating.id, Rating.item_id, Rating.value, Rating.sd, Rating.n, Rating.distribution).where(
        Rating.rater_id == rater.id, Rating.dimension_id == dimension_id, Rating.replicate == 0
    )
    have = {r.item_id: r for r in s.execute(q)}
    adds, changes = [], []
    for w in aggregate(responses, excluded):
        row = {
            "value": w.mean, "sd": w.sd, "n": w.n, "distribution": {"known": round(w.known, 6), "n_unknown": w.n_unknown},
            "note": None if w.mean is not None else "no annotator knew this word", "job_id": job_id,
        }  # fmt: skip
        old = have.pop(w.item_id, None)
        if old is None:
            adds.append({"item_id": w.item_id, "dimension_id": dimension_id, "rater_id": rater.id, "replicate": 0, **row})
        elif (old.value, old.sd, old.n, old.distribution) != (row["value"], row["sd"], row["n"], row["distribution"]):
            changes.append({"id": old.id, **row})
    if adds:
        s.execute(insert(Rating), adds)
    if changes:
        s.execute(update(Rating), changes)
    gone = [r.id for r in have.values()]  # words no annotator's rating counts for any more
    for start in range(0, len(gone), 5000):
        s.execute(delete(Rating).where(Rating.id.in_(gone[start : start + 5000])))


def _sync_rows(s: Session, lists: list[tuple], fetched: list[Fetched]) -> None:
    by_no = {f.list_no: f for f in fetched}
    for cl_id, no, _pid, synced, _fp in lists:
        f = by_no.get(no)
        if f is None:
            continue
        newest = f.newest or synced
        s.execute(update(CampaignList).where(CampaignList.id == cl_id).values(synced_at=newest, fingerprint=f.fingerprint))


def _save_sync_state(engine: Engine, lists: list[tuple], fetched: list[Fetched], campaign_id: int, write_time: bool) -> None:
    with Session(engine) as s, s.begin():
        if fetched:
            _sync_rows(s, lists, fetched)
        s.get(Campaign, campaign_id).pulled_at = utcnow()  # a pull that brought nothing happened all the same
