"""status: a campaign's progress as the last pull saw it: per list, per annotator, items short of ratings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.annotate.campaign import stored_campaign
from workbench.store.models import CampaignAnnotation, CampaignList, CampaignTask, Rater


@dataclass
class ListProgress:
    list_no: int
    project_id: int
    items: int
    controls: int
    done: int  # tasks (items and controls) with k annotations
    annotations: int
    annotators: int


@dataclass
class AnnotatorProgress:
    annotator: str
    rater: str
    answered: int
    lists: int
    failed_controls: int | None
    controls: int | None
    correlation: float | None
    median_seconds: float | None
    excluded: str | None


@dataclass
class CampaignStatus:
    campaign: str
    url: str
    k: int
    pushed_at: str | None
    pulled_at: str | None
    lists: list[ListProgress] = field(default_factory=list)
    annotators: list[AnnotatorProgress] = field(default_factory=list)
    short: list[tuple[str, int]] = field(default_factory=list)  # (word, ratings) of items short of k
    problems: dict[str, int] = field(default_factory=dict)  # status -> count (skipped, off_scale, duplicate)
    deleted_tasks: int = 0

    def lines(self) -> list[str]:
        out = [
            f"{self.campaign} on {self.url}: {len(self.lists)} lists, {self.k} ratings per item; "
            f"pushed {self.pushed_at or 'never'}, pulled {self.pulled_at or 'never'}.",
            "",
            f"{'list':>4} {'project':>7} {'items':>6} {'controls':>8} {'complete':>9} {'annotations':>11} {'annotators':>10}",
        ]
        for lp in self.lists:
            total = lp.items + lp.controls
            out.append(f"{lp.list_no:>4} {lp.project_id:>7} {lp.items:>6} {lp.controls:>8} {f'{lp.done}/{total}':>9} "
                       f"{lp.annotations:>11} {lp.annotators:>10}")  # fmt: skip
        out.append("")
        if self.annotators:
            out.append(f"{'annotator':<14} {'answered':>8} {'lists':>5} {'controls failed':>15} {'r':>6} {'median s':>8}  excluded")
            for a in self.annotators:
                ctl = f"{a.failed_controls}/{a.controls}" if a.controls else "-"
                r = f"{a.correlation:.2f}" if a.correlation is not None else "-"
                med = f"{a.median_seconds:.1f}" if a.median_seconds is not None else "-"
                out.append(f"{a.annotator:<14} {a.answered:>8} {a.lists:>5} {ctl:>15} {r:>6} {med:>8}  {a.excluded or ''}")
        else:
            out.append("No annotations pulled yet: `workbench annotate pull " + self.campaign + "`.")
        out.append("")
        if self.short:
            shown = ", ".join(f"{w} ({n})" for w, n in self.short[:10])
            more = f" and {len(self.short) - 10} more" if len(self.short) > 10 else ""
            out.append(f"{len(self.short)} items short of {self.k} ratings: {shown}{more}.")
        else:
            out.append(f"Every item has its {self.k} ratings.")
        if self.problems:
            out.append("Not counted: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(self.problems.items())) + ".")
        if self.deleted_tasks:
            out.append(f"{self.deleted_tasks} tasks were deleted in Label Studio: push again to put them back.")
        return out


def campaign_status(session: Session, name: str) -> CampaignStatus:
    camp = stored_campaign(session, name)
    k = int((camp.config or {}).get("raters_per_item", 1))
    st = CampaignStatus(name, camp.server_url, k, _t(camp.pushed_at), _t(camp.pulled_at))
    lists = {cl.id: cl for cl in session.scalars(select(CampaignList).where(CampaignList.campaign_id == camp.id))}
    tasks = {t.id: t for t in session.scalars(select(CampaignTask).where(CampaignTask.campaign_id == camp.id))}
    anns = list(session.scalars(select(CampaignAnnotation).where(CampaignAnnotation.campaign_id == camp.id)))
    per_task: dict[int, set[str]] = {}
    per_item: dict[int, set[str]] = {}
    per_list_ann: dict[int, int] = {}
    per_list_who: dict[int, set[str]] = {}
    who_lists: dict[str, set[int]] = {}
    answered: dict[str, int] = {}
    for a in anns:
        t = tasks[a.task_row_id]
        if a.status != "ok":
            st.problems[a.status] = st.problems.get(a.status, 0) + 1
            continue
        per_task.setdefault(t.id, set()).add(a.annotator)
        if t.role == "item":
            per_item.setdefault(t.item_id, set()).add(a.annotator)
            answered[a.annotator] = answered.get(a.annotator, 0) + 1
        per_list_ann[t.list_id] = per_list_ann.get(t.list_id, 0) + 1
        per_list_who.setdefault(t.list_id, set()).add(a.annotator)
        who_lists.setdefault(a.annotator, set()).add(t.list_id)
    for cl in sorted(lists.values(), key=lambda c: c.list_no):
        mine = [t for t in tasks.values() if t.list_id == cl.id and not t.deleted]
        st.lists.append(ListProgress(
            cl.list_no, cl.project_id, sum(t.role == "item" for t in mine), sum(t.role != "item" for t in mine),
            sum(len(per_task.get(t.id, ())) >= k for t in mine), per_list_ann.get(cl.id, 0), len(per_list_who.get(cl.id, ())),
        ))  # fmt: skip
    st.deleted_tasks = sum(t.deleted for t in tasks.values())
    st.short = sorted(
        ((t.text, len(per_item.get(t.item_id, ()))) for t in tasks.values() if t.role == "item" and len(per_item.get(t.item_id, ())) < k),
        key=lambda x: (x[1], x[0]),
    )
    raters = {r.config.get("annotator"): r for r in session.scalars(select(Rater).where(Rater.kind == "human"))
              if r.config and r.config.get("campaign") == name}  # fmt: skip
    for who in sorted(set(who_lists) | set(raters)):
        cfg = raters[who].config if who in raters else {}
        st.annotators.append(AnnotatorProgress(
            who, raters[who].name if who in raters else "", answered.get(who, 0), len(who_lists.get(who, ())),
            cfg.get("failed_controls"), cfg.get("controls"), cfg.get("correlation"), cfg.get("median_seconds"), cfg.get("excluded"),
        ))  # fmt: skip
    return st


def _t(value) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None
