"""Named sets of items, and the gold values a dataset gives them.

A name that a study or a command uses for "these items" is either an item set
(made by the study's ``item_sets:``) or a dataset (its rated items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.store.engine import bump_generation
from workbench.store.models import Dataset, DatasetItem, Dimension, Item, ItemAttribute, ItemSet, ItemSetMember, Rater, Rating
from workbench.store.uncertainty import scores


def _dataset_items(session: Session, dataset: Dataset) -> list[int]:
    """A dataset's items: those it rates, and those it lists without rating (a word list's words)."""
    q = (
        select(Rating.item_id)
        .join(Rater, Rater.id == Rating.rater_id)
        .where(Rater.dataset_id == dataset.id, Rating.value.is_not(None))
        .distinct()
    )
    listed = select(DatasetItem.item_id).where(DatasetItem.dataset_id == dataset.id)
    return sorted(set(session.scalars(q)) | set(session.scalars(listed)))


def resolve_items(session: Session, name: str) -> list[int]:
    """The ids of the items an item set or a dataset names, sorted; a clear error for an unknown name."""
    item_set = session.scalar(select(ItemSet).where(ItemSet.name == name))
    if item_set is not None:
        q = select(ItemSetMember.item_id).where(ItemSetMember.item_set_id == item_set.id)
        return sorted(session.scalars(q))
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is not None:
        return _dataset_items(session, dataset)
    known = sorted(session.scalars(select(ItemSet.name))) + sorted(session.scalars(select(Dataset.name)))
    hint = f" Known: {', '.join(known)}." if known else " The store has none yet: run `workbench apply`."
    raise WorkbenchError(f"no item set or dataset named {name!r}.{did_you_mean(name, known)}{hint}")


@dataclass(frozen=True)
class Gold:
    """A dataset's rating of one item on one dimension: the mean, and what the dataset says of its spread."""

    value: float
    sd: float | None = None
    n: int | None = None
    distribution: dict[str, Any] | None = None


def gold_ratings(session: Session, dataset: str, dimension: str, *, kind: str | None = None) -> dict[int, Gold]:
    """item id -> the dataset's rating on the dimension (its rater's rows; kind: only a rater of that kind).

    The one query for a dataset's gold ratings; empty when the dataset has none on the dimension.
    """
    ds = session.scalar(select(Dataset).where(Dataset.name == dataset))
    if ds is None:
        known = session.scalars(select(Dataset.name))
        raise WorkbenchError(f"no dataset named {dataset!r} in the store.{did_you_mean(dataset, known)} Import it first.")
    q = (
        select(Rating.item_id, Rating.value, Rating.sd, Rating.n, Rating.distribution)
        .join(Rater, Rater.id == Rating.rater_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .where(Rater.dataset_id == ds.id, Dimension.name == dimension, Rating.value.is_not(None))
    )
    if kind is not None:
        q = q.where(Rater.kind == kind)
    return {i: Gold(float(v), None if sd is None else float(sd), None if n is None else int(n), d) for i, v, sd, n, d in session.execute(q)}


def gold_values(session: Session, dataset: str, dimension: str) -> dict[int, float]:
    """item id -> the dataset's rating on the dimension (its norm rater's values); refused when there are none."""
    values = {i: g.value for i, g in gold_ratings(session, dataset, dimension).items()}
    if not values:
        raise WorkbenchError(f"dataset {dataset!r} has no ratings on {dimension!r}.")
    return values


def item_texts(session: Session, item_ids: list[int]) -> dict[int, str]:
    """item id -> text, for the given ids (queried in chunks)."""
    out: dict[int, str] = {}
    for start in range(0, len(item_ids), 5000):
        chunk = item_ids[start : start + 5000]
        out.update({i: t for i, t in session.execute(select(Item.id, Item.text).where(Item.id.in_(chunk)))})
    return out


def top_uncertain(session: Session, candidates: list[int], spec: dict[str, Any]) -> list[int]:
    """The top N candidates by how unsure the models are about them, sorted by id; ties go by the word's
    text, so the set does not depend on the order items were stored in."""
    sc = scores(session, candidates, spec)
    texts = item_texts(session, list(sc))
    ranked = sorted(sc, key=lambda i: (-sc[i], texts[i]))
    return sorted(ranked[: spec["top"]])


def select_members(session: Session, definition: dict[str, Any]) -> list[int]:
    """The items a definition {from, union, where, exclude, sample, seed} selects, sorted by id.

    Several ``from`` sources give the items they share (intersection); ``union`` adds the items of any of
    its sources; ``where`` keeps the items whose attributes (a word list's columns) match. The sample is
    drawn from the candidates ordered by their text, so it does not depend on insertion order.
    """
    sources = [set(resolve_items(session, name)) for name in definition["from"]]
    chosen = set.intersection(*sources) if sources else set()
    for name in definition.get("union", []):
        chosen |= set(resolve_items(session, name))
    if definition.get("where"):
        chosen = items_where(session, chosen, definition["where"])
    for name in definition.get("exclude", []):
        chosen -= set(resolve_items(session, name))
    ordered = sorted(chosen)
    if definition.get("uncertainty"):  # the top N by how unsure models are (workbench.store.uncertainty)
        return top_uncertain(session, ordered, definition["uncertainty"])
    sample = definition.get("sample")
    if sample is not None and sample < len(ordered):
        ordered = sorted(sample_items(session, ordered, sample, definition.get("seed", 0)))
    return ordered


def items_where(session: Session, candidates: set[int], where: dict[str, list[str]]) -> set[int]:
    """The candidates whose attributes match: every key, any of its values (a value some word list gives)."""
    chosen = set(candidates)
    for key, values in where.items():
        q = select(ItemAttribute.item_id).where(ItemAttribute.key == key, ItemAttribute.value.in_([str(v) for v in values]))
        chosen &= set(session.scalars(q.distinct()))
    return chosen


def attribute_keys(session: Session) -> list[str]:
    """The attribute names the store's word lists give."""
    return sorted(session.scalars(select(ItemAttribute.key).distinct()))


def sample_items(session: Session, item_ids: list[int], n: int, seed: int) -> list[int]:
    """n of the items drawn without replacement, seeded, in draw order.

    The candidates are ordered by their text first, so the draw does not
    depend on the order items were inserted (or on their ids).
    """
    texts = item_texts(session, item_ids)
    by_text = sorted(item_ids, key=lambda i: texts[i])
    rng = np.random.default_rng(seed)
    return [by_text[i] for i in rng.choice(len(by_text), size=n, replace=False)]


def item_set_action(session: Session, name: str, definition: dict[str, Any]) -> str:
    """create, update or unchanged: what saving this definition would do."""
    current = session.scalar(select(ItemSet).where(ItemSet.name == name))
    if current is None:
        return "create"
    return "unchanged" if current.definition == definition else "update"


def check_item_set(session: Session, name: str, definition: dict[str, Any]) -> list[int]:
    """The members saving this definition would give; the errors saving it would raise (plan asks this too)."""
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise WorkbenchError(f"item set {name!r} has the name of a dataset: give it another name.")
    members = select_members(session, definition)
    if not members:
        parts = "/".join(k for k in ("from", "union", "where", "exclude") if definition.get(k))
        raise WorkbenchError(f"item set {name!r} would be empty: check its {parts}.")
    return members


def save_item_set(session: Session, name: str, definition: dict[str, Any], description: str | None = None) -> int:
    """Create or replace the item set; returns its size. The caller owns the transaction."""
    members = check_item_set(session, name, definition)
    item_set = session.scalar(select(ItemSet).where(ItemSet.name == name))
    if item_set is None:
        item_set = ItemSet(name=name)
        session.add(item_set)
    item_set.definition, item_set.description = definition, description
    session.flush()
    session.execute(delete(ItemSetMember).where(ItemSetMember.item_set_id == item_set.id))
    session.execute(insert(ItemSetMember), [{"item_set_id": item_set.id, "item_id": i} for i in members])
    bump_generation(session)
    return len(members)
