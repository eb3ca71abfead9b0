"""What is in the store: datasets, dimensions, raters, item and rating counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from workbench.store.models import Dataset, DatasetItem, Dimension, Item, ItemSet, ItemSetMember, Job, Rater, Rating

RECENT_JOBS = 10


@dataclass
class Summary:
    items: int
    ratings: int
    datasets: list[dict]
    dimensions: list[dict]
    raters: list[dict]
    item_sets: list[dict]
    jobs: list[dict]  # the most recent rating jobs, newest first


def summarise(session: Session) -> Summary:
    per_rater = {
        rid: (n, k)
        for rid, n, k in session.execute(
            select(Rating.rater_id, func.count(), func.count(distinct(Rating.item_id))).group_by(Rating.rater_id)
        )
    }
    rater_dims: dict[int, list[str]] = {}
    for rid, dname in session.execute(
        select(Rating.rater_id, Dimension.name)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .group_by(Rating.rater_id, Dimension.name)
        .order_by(Dimension.name)
    ):
        rater_dims.setdefault(rid, []).append(dname)
    raters = []
    for r in session.scalars(select(Rater).order_by(Rater.kind, Rater.name)):
        n, k = per_rater.get(r.id, (0, 0))
        raters.append({"name": r.name, "kind": r.kind, "items": k, "ratings": n, "dimensions": rater_dims.get(r.id, [])})
    by_name = {r["name"]: r for r in raters}
    listed = dict(session.execute(select(DatasetItem.dataset_id, func.count()).group_by(DatasetItem.dataset_id)).all())
    datasets = []
    for ds in session.scalars(select(Dataset).order_by(Dataset.name)):
        r = by_name.get(ds.name, {"items": 0, "ratings": 0, "dimensions": []})
        words = (ds.details or {}).get("kind") == "words"  # a word list: items to rate, never gold
        if words:
            r = {"items": listed.get(ds.id, 0), "ratings": 0, "dimensions": []}
        datasets.append(
            {
                "name": ds.name,
                "kind": "word list" if words else ("norms" if ds.name in by_name and by_name[ds.name]["kind"] == "norm" else "ratings"),
                "preset": ds.preset,
                "language": ds.language,
                "file": ds.origin_file,
                "items": r["items"],
                "ratings": r["ratings"],
                "dimensions": r["dimensions"],
            }
        )
    dim_counts = dict(session.execute(select(Rating.dimension_id, func.count()).group_by(Rating.dimension_id)).all())
    dimensions = [
        {"name": d.name, "scale": [d.scale_min, d.scale_max], "ratings": dim_counts.get(d.id, 0)}
        for d in session.scalars(select(Dimension).order_by(Dimension.name))
    ]
    item_sets = [
        {"name": name, "items": n}
        for name, n in session.execute(
            select(ItemSet.name, func.count(ItemSetMember.item_id))
            .outerjoin(ItemSetMember, ItemSetMember.item_set_id == ItemSet.id)
            .group_by(ItemSet.name)
            .order_by(ItemSet.name)
        )
    ]
    return Summary(
        items=session.scalar(select(func.count()).select_from(Item)) or 0,
        ratings=session.scalar(select(func.count()).select_from(Rating)) or 0,
        datasets=datasets,
        dimensions=dimensions,
        raters=raters,
        item_sets=item_sets,
        jobs=_recent_jobs(session),
    )


def _recent_jobs(session: Session) -> list[dict]:
    q = (
        select(Job, Rater.name)
        .join(Rater, Rater.id == Job.rater_id)
        .where(Job.kind.like("rate:%"))
        .order_by(Job.id.desc())
        .limit(RECENT_JOBS)
    )
    jobs = []
    for job, rater in session.execute(q):
        counts = job.counts or {}
        jobs.append(
            {
                "id": job.id, "rater": rater, "backend": job.kind.removeprefix("rate:"), "status": job.status,
                "rated": counts.get("rated", 0), "failed": counts.get("failed", 0), "cost": job.cost,
                "started": job.started_at.isoformat(timespec="seconds") if job.started_at else None,
            }
        )  # fmt: skip
    return jobs
