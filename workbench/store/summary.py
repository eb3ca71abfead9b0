"""What is in the store: datasets, dimensions, raters, item and rating counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from workbench.store.models import Dataset, Dimension, Item, Rater, Rating


@dataclass
class Summary:
    items: int
    ratings: int
    datasets: list[dict]
    dimensions: list[dict]
    raters: list[dict]


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
    datasets = []
    for ds in session.scalars(select(Dataset).order_by(Dataset.name)):
        r = by_name.get(ds.name, {"items": 0, "ratings": 0, "dimensions": []})
        datasets.append(
            {
                "name": ds.name,
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
    return Summary(
        items=session.scalar(select(func.count()).select_from(Item)) or 0,
        ratings=session.scalar(select(func.count()).select_from(Rating)) or 0,
        datasets=datasets,
        dimensions=dimensions,
        raters=raters,
    )
