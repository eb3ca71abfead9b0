"""Train/test splits, stored as two item sets: NAME.train and NAME.test.

Three ways to make one (:class:`~workbench.study.models.SplitSpec`):

- random: ``{from: toolbox-glasgow, train: 1500, seed: 42}`` draws the
  training items (a count, or a fraction below 1) from a dataset's or item
  set's items; the test set is the rest, or ``test`` of them.
- stratified: add ``stratify: GOLD`` (and ``bins``, default 5): the candidates
  are cut into quantile bins of GOLD's values and each bin gives its share, so
  both sets span the scale alike.
- given: ``{train: train-glasgow, test: test-glasgow}`` takes two existing
  datasets or item sets, or ``{train_file: data/train.csv, test_file: ...}``
  reads word lists (one per line, or a table with a ``column``; the words
  must be items of the store), e.g. the paper's split files.

Draws are seeded and made from the candidates ordered by their text, so the
same study gives the same split on any store. A training item in the test set
is an error, whichever way the split is made.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store.engine import bump_generation
from workbench.store.itemsets import gold_values, item_texts, resolve_items
from workbench.store.models import Dataset, Item, ItemSet, ItemSetMember

PARTS = ("train", "test")


def part_name(split: str, part: str) -> str:
    return f"{split}.{part}"


def split_definition(spec: Any, base_dir: Path) -> dict[str, Any]:
    """What decides the split (stored with its item sets: equal means "already made")."""
    d = spec.model_dump(by_alias=True, exclude_none=True)
    for key in ("train_file", "test_file"):
        if key in d:
            path = _file(d[key], base_dir)
            d[key + "_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"split": d}


def _file(value: str, base_dir: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base_dir / p


def _draw(session: Session, ids: list[int], n: int, seed: int) -> list[int]:
    texts = item_texts(session, ids)
    by_text = sorted(ids, key=lambda i: texts[i])
    rng = np.random.default_rng(seed)
    return [by_text[i] for i in rng.choice(len(by_text), size=n, replace=False)]


def _count(value: float | int, total: int, what: str, where: str) -> int:
    n = int(round(value * total)) if isinstance(value, float) and value < 1 else int(value)
    if n < 1:
        raise WorkbenchError(f"{where}: {what} would have no items ({value} of {total}).")
    return n


def _read_words(path: Path, column: str | None, where: str) -> list[str]:
    from workbench.ingest.readers import read_table

    if not path.is_file():
        raise WorkbenchError(f"{where}: no file at {path}.")
    if path.suffix.lower() in (".txt", ".lst", ""):
        words = [w.strip() for w in path.read_text(encoding="utf-8-sig").splitlines()]
        return [w for w in words if w]
    table = read_table(path)
    names = [h.strip() for h in table.header]
    wanted = column or next((c for c in ("item", "Item", "word", "Word", "Words") if c in names), names[0])
    if wanted not in names:
        raise WorkbenchError(f"{where}: {path.name} has no column {wanted!r} (its columns: {', '.join(names)}).")
    values = table.columns[names.index(wanted)].to_pylist()
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def _items_of_words(session: Session, words: list[str], language: str, where: str) -> list[int]:
    import unicodedata

    words = [unicodedata.normalize("NFC", w) for w in words]
    found: dict[str, int] = {}
    for start in range(0, len(words), 5000):
        chunk = words[start : start + 5000]
        q = select(Item.text, Item.id).where(Item.language == language, Item.text.in_(chunk))
        found.update(dict(session.execute(q).all()))
    missing = [w for w in words if w not in found]
    if missing:
        shown = ", ".join(repr(w) for w in missing[:5])
        raise WorkbenchError(
            f"{where}: {len(missing)} words are not items of the store ({shown}{', ...' if len(missing) > 5 else ''}): "
            "import the dataset they come from first."
        )
    return sorted({found[w] for w in words})


def split_members(session: Session, name: str, spec: Any, base_dir: Path) -> tuple[list[int], list[int]]:
    """(train item ids, test item ids) of the split, sorted; an error when they overlap."""
    where = f"splits.{name}"
    if spec.from_:
        pool = set(resolve_items(session, spec.from_[0]))
        for other in spec.from_[1:]:
            pool &= set(resolve_items(session, other))
        for other in spec.exclude:
            pool -= set(resolve_items(session, other))
        if spec.stratify:
            gold = gold_values(session, spec.stratify, spec.dimension) if spec.dimension else _any_gold(session, spec.stratify)
            pool = {i for i in pool if i in gold}
        candidates = sorted(pool)
        if len(candidates) < 2:
            raise WorkbenchError(f"{where}: {', '.join(spec.from_)} has {len(candidates)} items; a split needs at least 2.")
        n_train = _count(spec.train, len(candidates), "the training set", where)
        n_test = _count(spec.test, len(candidates), "the test set", where) if spec.test is not None else len(candidates) - n_train
        if n_train + n_test > len(candidates) or n_test < 1:
            raise WorkbenchError(
                f"{where}: {n_train} training + {max(n_test, 0)} test items, but only {len(candidates)} to split: "
                "make train or test smaller."
            )
        if spec.stratify:
            train, test = _stratified(session, candidates, gold, n_train, n_test, spec.bins, spec.seed)
        else:
            order = _draw(session, candidates, n_train + n_test, spec.seed)
            train, test = order[:n_train], order[n_train:]
        return sorted(train), sorted(test)
    if spec.train_file:
        train = _items_of_words(session, _read_words(_file(spec.train_file, base_dir), spec.column, where), spec.language, where)
        test = _items_of_words(session, _read_words(_file(spec.test_file, base_dir), spec.column, where), spec.language, where)
    else:
        train, test = resolve_items(session, spec.train), resolve_items(session, spec.test)
    check_disjoint(session, train, test, f"{where}: the training and test sets")
    return sorted(train), sorted(test)


def _any_gold(session: Session, dataset: str) -> dict[int, float]:
    """The dataset's values on its only dimension (stratify without a dimension)."""
    from workbench.store.models import Dimension, Rater, Rating

    ds = session.scalar(select(Dataset).where(Dataset.name == dataset))
    if ds is None:
        raise WorkbenchError(f"no dataset named {dataset!r} in the store: import it first.")
    dims = sorted(set(session.scalars(
        select(Dimension.name).join(Rating, Rating.dimension_id == Dimension.id).join(Rater, Rater.id == Rating.rater_id)
        .where(Rater.dataset_id == ds.id).distinct()
    )))  # fmt: skip
    if len(dims) != 1:
        raise WorkbenchError(f"dataset {dataset!r} rates {len(dims)} dimensions: say which one stratifies with dimension:.")
    return gold_values(session, dataset, dims[0])


def _allocate(want: int, sizes: list[int]) -> list[int]:
    """want split over groups in proportion to their sizes (largest remainders)."""
    total = sum(sizes)
    shares = [want * n / total for n in sizes]
    counts = [int(s) for s in shares]
    for k in sorted(range(len(sizes)), key=lambda k: shares[k] - counts[k], reverse=True)[: want - sum(counts)]:
        counts[k] += 1
    return counts


def _stratified(session, candidates, gold, n_train, n_test, bins, seed) -> tuple[list[int], list[int]]:
    """Quantile bins of the gold values; each bin gives its share of train and test."""
    texts = item_texts(session, candidates)
    ordered = sorted(candidates, key=lambda i: (gold[i], texts[i]))
    groups = [[int(i) for i in g] for g in np.array_split(np.array(ordered), min(bins, len(ordered))) if len(g)]
    sizes = [len(g) for g in groups]
    train_counts, test_counts = _allocate(n_train, sizes), _allocate(n_test, sizes)
    train: list[int] = []
    test: list[int] = []
    for k, ids in enumerate(groups):
        nt = min(train_counts[k], len(ids))
        ns = min(test_counts[k], len(ids) - nt)
        order = _draw(session, ids, nt + ns, seed + k)
        train += order[:nt]
        test += order[nt:]
    return train, test


def check_disjoint(session: Session, train: list[int], test: list[int], what: str) -> None:
    """Overlapping training and test items are an error naming a few of them."""
    both = sorted(set(train) & set(test))
    if both:
        texts = item_texts(session, both[:5])
        shown = ", ".join(repr(texts[i]) for i in both[:5])
        raise WorkbenchError(
            f"{what} share {len(both)} items ({shown}{', ...' if len(both) > 5 else ''}): "
            "a training item must never be scored as a test item; make the sets disjoint."
        )


def split_action(session: Session, name: str, definition: dict[str, Any]) -> str:
    """create, update or unchanged."""
    sets = {s.name: s for s in session.scalars(select(ItemSet).where(ItemSet.name.in_([part_name(name, p) for p in PARTS])))}
    if len(sets) < len(PARTS):
        return "create"
    return (
        "unchanged"
        if all(s.definition == {**definition, "part": p} for p, s in ((p, sets[part_name(name, p)]) for p in PARTS))
        else "update"
    )


def save_split(session: Session, name: str, spec: Any, base_dir: Path) -> tuple[int, int]:
    """Make (or remake) the split's two item sets; returns their sizes. The caller owns the transaction."""
    definition = split_definition(spec, base_dir)
    train, test = split_members(session, name, spec, base_dir)
    for part, members in (("train", train), ("test", test)):
        set_name = part_name(name, part)
        if session.scalar(select(Dataset.id).where(Dataset.name == set_name)) is not None:
            raise WorkbenchError(f"splits.{name}: the item set {set_name!r} would have the name of a dataset: rename the split.")
        item_set = session.scalar(select(ItemSet).where(ItemSet.name == set_name))
        if item_set is None:
            item_set = ItemSet(name=set_name)
            session.add(item_set)
        item_set.definition = {**definition, "part": part}
        item_set.description = f"split {name}: {part} ({len(members)} items)"
        session.flush()
        session.execute(delete(ItemSetMember).where(ItemSetMember.item_set_id == item_set.id))
        session.execute(insert(ItemSetMember), [{"item_set_id": item_set.id, "item_id": i} for i in members])
    bump_generation(session)
    return len(train), len(test)


def members_digest(item_ids: list[int], texts: dict[int, str]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(sorted(texts[i] for i in item_ids)).encode()).hexdigest()
