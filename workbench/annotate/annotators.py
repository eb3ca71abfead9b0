"""Paying and tracking annotators: per annotator (a pseudonym), the lists done, annotations and time spent.

Read from the campaign's sync state as the last pull left it (`workbench
annotate pull` first): one row per annotator, in the order of their
pseudonyms. A list is *done* when the annotator answered (rated, "I don't
know", or skipped) every task of it that is still in Label Studio. Time
spent is the sum of Label Studio's lead times (seconds the annotator spent
on each task, as its interface measured them). Names and emails stay on the
server: a panel's participant id is matched to a pseudonym through the
server's user list, by whoever runs it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.annotate.campaign import stored_campaign
from workbench.store.models import CampaignAnnotation, CampaignList, CampaignTask, Rater

COLUMNS = (
    "annotator", "rater", "lists_done", "lists_started", "lists", "annotations", "rated", "unknown", "skipped",
    "seconds", "median_seconds", "first", "last", "excluded", "completion_code",
)  # fmt: skip
NUMERIC = [False, False, True, True, False, True, True, True, True, True, True, False, False, False, False]
ANSWERED = ("ok", "skipped", "off_scale")  # what counts towards a list being done: anything but a repeat


@dataclass
class AnnotatorWork:
    annotator: str  # the pseudonym
    rater: str  # the store's human rater for it ("" before its ratings were stored)
    lists_done: int
    lists_started: int
    lists: str  # the list numbers done, "1;3"
    annotations: int  # every annotation but repeats of a task
    rated: int  # annotations with a rating on the scale
    unknown: int  # "I don't know this word"
    skipped: int
    seconds: float  # total lead time
    median_seconds: float | None
    first: str | None  # the earliest and latest annotation times Label Studio reported
    last: str | None
    excluded: str  # the reason an exclusion rule gave, or ""
    completion_code: str  # the campaign's completion code, or ""

    def row(self) -> list[object]:
        return [getattr(self, c) for c in COLUMNS]


def annotator_work(session: Session, name: str) -> list[AnnotatorWork]:
    """One row per annotator of the campaign, from what the last pull stored."""
    camp = stored_campaign(session, name)
    code = ((camp.config or {}).get("completion") or {}).get("code") or ""
    list_no = {cl.id: cl.list_no for cl in session.scalars(select(CampaignList).where(CampaignList.campaign_id == camp.id))}
    tasks = {t.id: t for t in session.scalars(select(CampaignTask).where(CampaignTask.campaign_id == camp.id))}
    live: dict[int, set[int]] = {}
    for t in tasks.values():
        if not t.deleted:
            live.setdefault(t.list_id, set()).add(t.id)
    anns = session.scalars(select(CampaignAnnotation).where(CampaignAnnotation.campaign_id == camp.id).order_by(CampaignAnnotation.id))
    per: dict[str, list[CampaignAnnotation]] = {}
    for a in anns:
        per.setdefault(a.annotator, []).append(a)
    raters = {(r.config or {}).get("annotator"): r for r in session.scalars(select(Rater).where(Rater.kind == "human"))
              if (r.config or {}).get("campaign") == name}  # fmt: skip
    out = []
    for who in sorted(per):
        mine = [a for a in per[who] if a.status in ANSWERED]
        answered: dict[int, set[int]] = {}
        for a in mine:
            t = tasks.get(a.task_row_id)
            if t is not None:
                answered.setdefault(t.list_id, set()).add(t.id)
        done = sorted(list_no[lid] for lid, ids in answered.items() if live.get(lid) and live[lid] <= ids)
        times = [a.lead_time for a in mine if a.lead_time is not None and a.lead_time >= 0]
        stamps = sorted(a.updated_at for a in per[who] if a.updated_at)
        rater = raters.get(who)
        out.append(AnnotatorWork(
            annotator=who, rater=rater.name if rater is not None else "", lists_done=len(done), lists_started=len(answered),
            lists=";".join(str(n) for n in done), annotations=len(mine),
            rated=sum(a.status == "ok" and a.value is not None for a in mine), unknown=sum(a.status == "ok" and a.unknown for a in mine),
            skipped=sum(a.status == "skipped" for a in mine), seconds=round(sum(times), 3),
            median_seconds=round(statistics.median(times), 3) if times else None,
            first=stamps[0] if stamps else None, last=stamps[-1] if stamps else None,
            excluded=str((rater.config or {}).get("excluded") or "") if rater is not None else "", completion_code=code,
        ))  # fmt: skip
    return out
