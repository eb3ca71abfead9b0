"""push: create or update a campaign's Label Studio projects (one per list) and import the tasks.

Idempotent and resumable: each list is one transaction in the store, made
after Label Studio has the list's project and tasks. A push cut short (the
server went down) leaves projects or tasks the store does not know yet;
the next push finds them by the key each carries (the project's
description, the task's ``wb_key``) and adopts them instead of making them
again. Pushing twice imports nothing twice; new items of the campaign's
item set are added (to the last list while it has room, then to new lists);
a changed scale, labels, instructions or ratings per item update every
project.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.annotate.campaign import ResolvedCampaign, resolve_campaign
from workbench.annotate.connection import Connection
from workbench.annotate.labelconfig import annotator_instructions, label_config, label_mismatches, prediction, settings_hash
from workbench.errors import WorkbenchError
from workbench.store.engine import bump_generation
from workbench.store.models import Campaign, CampaignList, CampaignTask, Rater, Rating, utcnow
from workbench.study.load import LoadedStudy

PAGE = 1000


@dataclass
class PushReport:
    campaign: str
    url: str
    items: int = 0
    lists: int = 0
    projects_created: int = 0
    projects_updated: int = 0
    projects_adopted: int = 0
    tasks_imported: int = 0
    tasks_adopted: int = 0
    tasks_recreated: int = 0
    predictions: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"{self.campaign}: {self.items} items in {self.lists} lists on {self.url}.",
            f"  projects: {self.projects_created} created, {self.projects_updated} updated, {self.projects_adopted} adopted; "
            f"tasks: {self.tasks_imported} imported, {self.tasks_adopted} adopted, {self.tasks_recreated} recreated"
            + (f"; {self.predictions} pre-annotations" if self.predictions else "")
            + ".",
        ]
        return out + [f"  {n}" for n in self.notes]


@dataclass
class NewTask:
    role: str
    item_id: int | None
    text: str
    gold: float | None = None
    position: int = 0

    @property
    def key(self) -> str:
        return f"{self.role}:{self.text}"


def project_key(study: str, campaign: str, list_no: int) -> str:
    return f"[workbench:{study}/{campaign}/{list_no}]"


def project_settings(rc: ResolvedCampaign, list_no: int) -> dict:
    """A list's project as annotators meet it: the study's title (not the workbench key, which lives in a comment of
    the label config), instructions with the study's information, consent, scale and completion code."""
    dim = rc.dimension
    name = rc.title or rc.name
    title = f"{name} list {list_no}"
    if len(title) > 50:
        title = f"{name[: 50 - len(f' list {list_no}') - 1]}~ list {list_no}"
    completion = rc.spec.completion
    instructions = annotator_instructions(
        rc.instructions, points=rc.points, labels=dim.labels, title=rc.title, information=rc.information, consent=rc.consent,
        completion_code=completion.code if completion else None, completion_url=completion.url if completion else None,
    )  # fmt: skip
    return {
        "title": title,
        "description": f"Rate the {dim.name} of each word.",
        "label_config": label_config(dim.name, rc.points, dim.labels, key=project_key(rc.study, rc.name, list_no)),
        "expert_instruction": instructions,
        "show_instruction": True,
        "maximum_annotations": rc.spec.raters_per_item,
        "overlap_cohort_percentage": 100,
        "sampling": "Sequential sampling",
        "show_skip_button": True,
        "enable_empty_annotation": False,
        "show_annotation_history": False,
        "show_collab_predictions": bool(rc.spec.pre_annotations),
    }


def assign(
    rc: ResolvedCampaign, placed: dict[int, int], list_sizes: dict[int, int], next_position: dict[int, int]
) -> dict[int, list[NewTask]]:
    """The tasks to add, by list number: items not in a list yet fill the last list, then new lists;
    a new list gets its control items at seeded positions."""
    spec = rc.spec
    # one seeded order of all the campaign's items, so a push cut short and run again assigns the same lists
    every = sorted(rc.items, key=lambda i: (rc.items[i], i))
    order = np.random.default_rng(spec.seed).permutation(len(every))
    fresh = [every[k] for k in order if every[k] not in placed]
    if not fresh:
        return {}
    out: dict[int, list[NewTask]] = {}
    last = max(list_sizes, default=0)
    if last and list_sizes[last] < spec.list_size:
        room = spec.list_size - list_sizes[last]
        take, fresh = fresh[:room], fresh[room:]
        pos = next_position.get(last, 0)
        out[last] = [NewTask("item", i, rc.items[i], position=pos + k) for k, i in enumerate(take)]
    list_no = last
    c = spec.controls
    while fresh:
        list_no += 1
        chunk, fresh = fresh[: spec.list_size], fresh[spec.list_size :]
        tasks = [NewTask("item", i, rc.items[i]) for i in chunk]
        rng = np.random.default_rng([spec.seed, list_no])
        controls = [NewTask("control", i, text, gold) for i, text, gold in rc.known_controls]
        if c is not None and c.nonwords_per_list:
            picked = rng.choice(len(rc.nonwords), size=c.nonwords_per_list, replace=False)
            controls += [NewTask("nonword", None, rc.nonwords[k]) for k in sorted(picked)]
        total = len(tasks) + len(controls)
        slots = set(rng.choice(total, size=len(controls), replace=False).tolist()) if controls else set()
        ordered, it, ct = [], iter(tasks), iter(controls)
        for p in range(total):
            ordered.append(next(ct) if p in slots else next(it))
        for p, t in enumerate(ordered):
            t.position = p
        out[list_no] = ordered
    return out


def _pre_annotations(session: Session, rc: ResolvedCampaign) -> dict[int, float]:
    name = rc.spec.pre_annotations
    if not name:
        return {}
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        raise WorkbenchError(f"campaigns.{rc.name}.pre_annotations: no rater {name!r} in the store: run it first.")
    q = select(Rating.item_id, Rating.value).where(
        Rating.rater_id == rater.id, Rating.dimension_id == rc.dimension.id, Rating.replicate == 0, Rating.value.is_not(None)
    )
    return {i: float(v) for i, v in session.execute(q)}


def _nearest(value: float, points: list[float]) -> float:
    return min(points, key=lambda p: abs(p - value))


PULL_FIELDS = ("description", "task_number", "total_annotations_number", "skipped_annotations_number")
PUSH_FIELDS = (*PULL_FIELDS, "label_config", "maximum_annotations", "expert_instruction", "show_instruction", "show_skip_button")
CHECKED = ("label_config", "maximum_annotations", "expert_instruction", "show_instruction", "show_skip_button")
"""The settings push compares with what the server has: one edited by hand is put back."""


def server_projects(conn: Connection, fields: tuple[str, ...] = PULL_FIELDS) -> dict[int, dict]:
    """Every project the token can see: id -> the fields asked for (one request per 1000 projects)."""
    include = ",".join(("id", *fields))
    out: dict[int, dict] = {}
    page = 1
    while True:
        body = conn.call("list projects", lambda: conn.request(
            "GET", "/api/projects/", params={"page_size": PAGE, "page": page, "include": include}))  # fmt: skip
        for p in body.get("results") or []:
            out[p["id"]] = {k: p.get(k) if k in CHECKED else (p.get(k) or (0 if k != "description" else "")) for k in fields}
        if not body.get("next"):
            return out
        page += 1


_KEY = re.compile(r"\[workbench:[^\]]*\]")


def project_keys(projects: dict[int, dict]) -> dict[str, int]:
    """workbench key -> project id, from the key comment in each project's label config (as server_projects read it)."""
    out: dict[str, int] = {}
    for pid, p in projects.items():  # in the server's order, as listed
        found = _KEY.search(p.get("label_config") or "")
        if found:
            out.setdefault(found.group(0).replace("%2D", "-"), pid)
    return out


def server_task_keys(conn: Connection, project_id: int) -> dict[str, int]:
    """wb_key -> task id of a project's tasks (the first task of a key, should a key appear twice).

    Read as plain JSON (the SDK's ``tasks.list`` request without parsing every task into its models).
    """
    out: dict[str, int] = {}
    page, seen = 1, 0
    while True:
        params = {"project": project_id, "fields": "task_only", "include": "id,data", "page_size": PAGE, "page": page}
        body = conn.call(f"list the tasks of project {project_id}", lambda: conn.request("GET", "/api/tasks/", params=params))
        tasks = body.get("tasks") or []
        for t in tasks:
            key = (t.get("data") or {}).get("wb_key")
            if key and key not in out:
                out[key] = t["id"]
        seen += len(tasks)
        if not tasks or seen >= int(body.get("total") or 0):
            return out
        page += 1


DEFAULT_PARALLEL = 4


def push_workers(spec_parallel: int | None, conn: Connection) -> int:
    """Lists imported at once: the campaign's server.parallel, else 4 on a server known to run on PostgreSQL, else 1
    (concurrent imports into Label Studio's SQLite lose work)."""
    if spec_parallel:
        return spec_parallel
    return DEFAULT_PARALLEL if conn.database == "postgresql" else 1


@dataclass
class _ListWork:
    """What the server has for one list after its part of the push; the store records it afterwards."""

    list_no: int
    list_row_id: int | None
    project_id: int
    digest: str | None
    to_import: list[NewTask]
    new_ids: list[int]
    adopt: dict[str, int]
    recreate: list[str]
    wanted: list[NewTask]
    known: dict[str, tuple[int, int, bool]]
    remade: bool = False  # the project was made again (deleted by hand): pull reads it whole next time
    created: int = 0
    updated: int = 0
    adopted: int = 0
    predictions: int = 0
    notes: list[str] = field(default_factory=list)


def push_campaign(
    engine: Engine,
    loaded: LoadedStudy,
    name: str,
    conn: Connection,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    wait_s: float | None = None,
) -> PushReport:
    """Push a campaign; one push of a campaign at a time per store (a second waits `wait_s`, then says so)."""
    from workbench.annotate.locking import LOCK_WAIT_S, campaign_lock

    with campaign_lock(engine, f"annotate push:{name}", f"annotate push {name}", LOCK_WAIT_S if wait_s is None else wait_s):
        return _push(engine, loaded, name, conn, on_progress, workers)


def _push(
    engine: Engine, loaded: LoadedStudy, name: str, conn: Connection, on_progress: Callable[[int, int], None] | None, workers: int | None
) -> PushReport:
    report = PushReport(name, conn.url)
    with Session(engine) as s:
        rc = resolve_campaign(s, loaded, name)
        report.notes += [f"{m}: the dimension's labels: are the buttons; say the same in its instructions." for m in label_mismatches(rc.instructions, rc.points, rc.dimension.labels)]  # fmt: skip
        predictions = _pre_annotations(s, rc)
        row = s.scalar(select(Campaign).where(Campaign.name == name))
        if row is not None and row.server_url.rstrip("/") != conn.url:
            raise WorkbenchError(
                f"campaign {name!r} was pushed to {row.server_url}, not {conn.url}: point server.url (or LABEL_STUDIO_URL) "
                "at that server, or give the campaign another name."
            )
        lists: dict[int, tuple[int, int, str | None]] = {}
        tasks: dict[int, dict[str, tuple[int, int, bool]]] = {}  # list_no -> key -> (row id, task id, deleted)
        placed: dict[int, int] = {}
        next_position: dict[int, int] = {}
        if row is not None:
            for cl in s.scalars(select(CampaignList).where(CampaignList.campaign_id == row.id)):
                lists[cl.list_no] = (cl.id, cl.project_id, cl.settings_hash)
            by_list = {v[0]: k for k, v in lists.items()}
            q = select(CampaignTask).where(CampaignTask.campaign_id == row.id).order_by(CampaignTask.id)
            for t in s.scalars(q):
                no = by_list[t.list_id]
                key = f"{t.role}:{t.text}"
                mine = tasks.setdefault(no, {})
                if key not in mine or mine[key][2] or not t.deleted:  # a live row wins over one a recreation retired
                    mine[key] = (t.id, t.task_id, t.deleted)
                next_position[no] = max(next_position.get(no, 0), t.position + 1)
                if t.role == "item" and t.item_id is not None:
                    placed[t.item_id] = no
    list_sizes = {no: sum(1 for k in tasks.get(no, {}) if k.startswith("item:")) for no in lists}
    new = assign(rc, placed, list_sizes, next_position)
    all_lists = sorted(set(lists) | set(new))
    report.items, report.lists = len(rc.items), len(all_lists)
    on_server = server_projects(conn, PUSH_FIELDS)
    by_key = {}
    for pid, p in on_server.items():
        start = p["description"].rfind("[workbench:")
        if start >= 0:
            by_key.setdefault(p["description"][start:], pid)
    by_key = {**project_keys(on_server), **by_key}  # projects pushed since the key moved into the label config

    with Session(engine) as s, s.begin():
        row = s.scalar(select(Campaign).where(Campaign.name == name))
        if row is None:
            row = Campaign(name=name, dimension_id=rc.dimension.id, server_url=conn.url)
            s.add(row)
        row.config = rc.spec.model_dump(mode="json")
        s.flush()
        campaign_id = row.id

    def server_side(list_no: int) -> _ListWork:
        settings = project_settings(rc, list_no)
        digest = settings_hash(settings)
        list_row_id, project_id, old_hash = lists.get(list_no, (None, None, None))
        known = tasks.get(list_no, {})
        work = _ListWork(list_no, list_row_id, 0, digest, [], [], {}, [], list(new.get(list_no, [])), known)
        gone = project_id is not None and project_id not in on_server
        if gone:
            work.notes.append(f"list {list_no}: project {project_id} was deleted in Label Studio; made again with its tasks "
                              "(the ratings pulled from it stay in the store).")  # fmt: skip
            project_id, work.remade = None, True
        adopted = False
        if project_id is None:
            project_id = by_key.get(project_key(rc.study, name, list_no))
            adopted = project_id is not None
            work.adopted += adopted
        fresh = project_id is None
        if fresh:
            project = conn.call(f"create the project of list {list_no}", lambda: conn.client.projects.create(**settings))
            project_id = project.id
            work.created += 1
        else:
            have = on_server.get(project_id, {})
            drift = [k for k in CHECKED if k in have and have[k] != settings[k]]
            if old_hash != digest or drift:
                try:
                    conn.call(f"update project {project_id}", lambda: conn.client.projects.update(id=project_id, **settings))
                    work.updated += 1
                    if drift and old_hash == digest:
                        work.notes.append(f"list {list_no}: project {project_id}'s {', '.join(drift)} had been changed in Label Studio; "
                                          "put back as the study declares.")  # fmt: skip
                except WorkbenchError as exc:
                    if not drift:
                        raise
                    work.digest = old_hash  # try again next push
                    work.notes.append(f"list {list_no}: project {project_id}'s {', '.join(drift)} had been changed in Label Studio "
                                      f"and could not be put back: {exc}")  # fmt: skip
        work.project_id = project_id
        live = {k: v for k, v in known.items() if not v[2]}
        count = 0 if fresh else int(on_server.get(project_id, {}).get("task_number") or 0)
        if fresh or adopted or work.remade or count != len(live) or len(live) != len(known):
            there = {} if fresh else server_task_keys(conn, project_id)
            for key, (_rid, task_id, _deleted) in known.items():
                if key in there and there[key] != task_id:
                    work.adopt[key] = there[key]
                elif key not in there:
                    work.recreate.append(key)
            for t in work.wanted:
                if t.key in there:
                    work.adopt[t.key] = there[t.key]
        work.to_import = [t for t in work.wanted if t.key not in work.adopt]
        body = []
        for t in work.to_import:
            task = {"data": {"word": t.text, "wb_key": t.key}}
            if t.role == "item" and t.item_id in predictions:
                task["predictions"] = [prediction(_nearest(predictions[t.item_id], rc.points), rc.spec.pre_annotations)]
                work.predictions += 1
            body.append(task)
        for key in work.recreate:
            body.append({"data": {"word": key.partition(":")[2], "wb_key": key}})
        if body:
            result = conn.call(
                f"import the tasks of list {list_no}",
                lambda: conn.client.projects.import_tasks(id=project_id, request=body, return_task_ids=True),
            )
            work.new_ids = list(result.task_ids or [])
            if len(work.new_ids) != len(body):
                raise WorkbenchError(f"{conn.url} imported {len(work.new_ids)} of {len(body)} tasks into project {project_id}; push again.")
        return work

    def record(works: list[_ListWork]) -> None:
        """The store learns what the server has for lists whose server side is done, in one transaction (lists that
        finished while the last ones were being recorded are recorded together: one commit, not one per list)."""
        with Session(engine) as s, s.begin():
            for work in works:
                list_row_id = work.list_row_id
                if list_row_id is None:
                    cl = CampaignList(campaign_id=campaign_id, list_no=work.list_no, project_id=work.project_id, settings_hash=work.digest)
                    s.add(cl)
                    s.flush()
                    list_row_id = cl.id
                else:
                    cl = s.get(CampaignList, list_row_id)
                    cl.project_id, cl.settings_hash = work.project_id, work.digest
                if work.remade:
                    cl.synced_at = cl.fingerprint = None
                ids = iter(work.new_ids)
                for t in work.to_import:
                    s.add(CampaignTask(campaign_id=campaign_id, list_id=list_row_id, task_id=next(ids), position=t.position,
                                       role=t.role, item_id=t.item_id, text=t.text, gold=t.gold))  # fmt: skip
                for t in work.wanted:
                    if t.key in work.adopt and t.key not in work.known:
                        s.add(CampaignTask(campaign_id=campaign_id, list_id=list_row_id, task_id=work.adopt[t.key],
                                           position=t.position, role=t.role, item_id=t.item_id, text=t.text, gold=t.gold))  # fmt: skip
                for key, task_id in work.adopt.items():
                    if key in work.known:
                        tr = s.get(CampaignTask, work.known[key][0])
                        tr.task_id, tr.deleted = task_id, False
                for key in work.recreate:
                    # the old row keeps the annotations pulled from the task that is gone (retired: deleted); the new task
                    # gets a row of its own, so a later pull never takes the old annotations for ones deleted from the new task
                    old = s.get(CampaignTask, work.known[key][0])
                    old.deleted = True
                    s.add(CampaignTask(campaign_id=campaign_id, list_id=list_row_id, task_id=next(ids), position=old.position,
                                       role=old.role, item_id=old.item_id, text=old.text, gold=old.gold))  # fmt: skip
            bump_generation(s)
        for work in works:
            report.projects_created += work.created
            report.projects_updated += work.updated
            report.projects_adopted += work.adopted
            report.tasks_imported += len(work.to_import)
            report.tasks_adopted += len(work.adopt)
            report.tasks_recreated += len(work.recreate)
            report.predictions += work.predictions
            report.notes.extend(work.notes)

    n_workers = max(1, min(workers or push_workers(rc.spec.server.parallel, conn), len(all_lists) or 1))
    failed: list[BaseException] = []
    stop = threading.Event()

    def guarded(list_no: int) -> _ListWork | None:
        if stop.is_set():
            return None
        try:
            return server_side(list_no)
        except BaseException:
            stop.set()  # lists not started yet are left for the next push
            raise

    if n_workers == 1:  # one list after the other: a failure leaves the lists after it to the next push
        for done, list_no in enumerate(all_lists, 1):
            record([server_side(list_no)])
            if on_progress:
                on_progress(done, len(all_lists))
        with Session(engine) as s, s.begin():
            s.get(Campaign, campaign_id).pushed_at = utcnow()
        report.notes.sort()
        return report
    done = 0
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        pending = {pool.submit(guarded, no) for no in all_lists}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            works = []
            for fut in finished:
                try:
                    work = fut.result()
                except BaseException as exc:  # noqa: BLE001 - the first error is raised once the others are recorded
                    failed.append(exc)
                    continue
                if work is not None:
                    works.append(work)
            if not works:
                continue
            try:
                record(sorted(works, key=lambda w: w.list_no))
            except BaseException as exc:  # noqa: BLE001
                stop.set()
                failed.append(exc)
                continue
            done += len(works)
            if on_progress and not failed:
                on_progress(done, len(all_lists))
    if failed:
        raise failed[0]
    with Session(engine) as s, s.begin():
        s.get(Campaign, campaign_id).pushed_at = utcnow()
    report.notes.sort()
    return report
