"""The checks apply makes on the study's inputs, made before anything is written: `workbench validate`
runs them without a store, `workbench plan` (and apply, before its first step) against the store.

The study file's models already refuse bad scales, names and options; this reads each dataset and word
list file the way apply will (encoding, quotes, columns, values, scales, items), checks that every name an
item set, split or rater uses is declared (or in the store), that ``where:`` names a word list's column,
that a split's word files name known words, and that a rater without ``items:`` would not rate thousands
of items by default. One code path: what apply would refuse, these refuse first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.ingest.readers import RawTable, read_table
from workbench.ingest.validate import build_norms, normalise_item
from workbench.ingest.words import WordTable, read_word_list
from workbench.jobs.runner import ALL_ITEMS, check_default_items
from workbench.study.load import LoadedStudy, dataset_specs, is_outside, resolve_file, separator_of, word_list_spec


@dataclass
class DatasetCheck:
    name: str
    file: str
    items: int
    ratings: int
    rejected_rows: int
    outside: bool


@dataclass
class WordListCheck:
    name: str
    file: str
    words: int
    attributes: list[str]
    outside: bool


@dataclass
class StudyCheck:
    datasets: list[DatasetCheck] = field(default_factory=list)
    word_lists: list[WordListCheck] = field(default_factory=list)
    # what was read, so apply imports it without reading the file again
    raw: dict[Path, RawTable] = field(default_factory=dict)
    words: dict[str, WordTable] = field(default_factory=dict)


def check_datasets(loaded: LoadedStudy) -> list[DatasetCheck]:
    """Read and validate every dataset file of the study; raise the first problem apply would meet."""
    return check_study(loaded).datasets


def check_study(loaded: LoadedStudy, session: Session | None = None, *, skip: frozenset[str] | set[str] = frozenset()) -> StudyCheck:
    """Every check apply would make on the study's inputs; raises the first problem. ``skip``: the datasets
    and word lists the store already holds from these files (apply will not read them again)."""
    study = loaded.study
    out = StudyCheck()
    items: set[tuple[str, str]] = set()  # (language, text) of every declared item
    gold_items: dict[str, set[tuple[str, str]]] = {}  # dimension -> items some declared norm rates
    for name, src in study.datasets.items():
        path = resolve_file(src.file, loaded.base_dir)
        if not path.exists():
            raise WorkbenchError(f"{loaded.path}: datasets.{name}.file: no file at {path}.")
        specs = [s for s in dataset_specs(name, src, study.dimensions) if s.name not in skip]
        if not specs:
            continue
        raw = out.raw.get(path) or read_table(
            path, encoding=src.encoding, separator=separator_of(src), sheet=src.sheet, language=src.language
        )
        out.raw[path] = raw
        outside = not src.file.startswith("package:") and is_outside(path, loaded.base_dir)
        for spec in specs:
            table = build_norms(raw, spec, skip_invalid=src.skip_invalid)
            if not table.items:
                raise WorkbenchError(f"{path}: no usable rows for dataset {spec.name!r}: the file has a header but no data.")
            shown = str(path.resolve()) if outside else src.file
            out.datasets.append(DatasetCheck(spec.name, shown, len(table.items), table.n_ratings, len(table.rejected), outside))
            items.update((spec.language, t) for t in table.items)
            if spec.rater_kind == "norm":
                for d in table.dimensions:
                    gold_items.setdefault(d.columns.dimension, set()).update((spec.language, table.items[i]) for i in d.item_index)
    for name, wsrc in study.word_lists.items():
        if name in skip:
            continue
        path = resolve_file(wsrc.file, loaded.base_dir)
        if not path.exists():
            raise WorkbenchError(f"{loaded.path}: word_lists.{name}.file: no file at {path}.")
        words = read_word_list(path, word_list_spec(name, wsrc), encoding=wsrc.encoding, separator=separator_of(wsrc), sheet=wsrc.sheet)
        out.words[name] = words
        outside = is_outside(path, loaded.base_dir)
        out.word_lists.append(
            WordListCheck(name, str(path.resolve()) if outside else wsrc.file, len(words.words), list(words.attributes), outside)
        )
        items.update((wsrc.language, w) for w in words.words)
    _check_names(loaded, session, out)
    _check_split_words(loaded, session, items)
    _check_rater_items(loaded, session, gold_items)
    return out


def _store_names(session: Session | None) -> set[str]:
    if session is None:
        return set()
    from workbench.store.models import Dataset, ItemSet

    return set(session.scalars(select(Dataset.name))) | set(session.scalars(select(ItemSet.name)))


def _check_names(loaded: LoadedStudy, session: Session | None, out: StudyCheck) -> None:
    """Every name an item set, split or rater uses names a declared (or stored) dataset, word list or item set;
    every ``where:`` key is a column of a word list."""
    study = loaded.study
    from workbench.study.kind import provided_names

    # datasets, word lists, item sets, hybrids, a split's NAME.train and NAME.test: what each kind makes
    declared = provided_names(study)
    known = declared | _store_names(session)

    def need(name: str, where: str) -> None:
        if name not in known:
            listing = ", ".join(sorted(declared)) or "none"
            raise WorkbenchError(
                f"{loaded.path}: {where}: no dataset, word list or item set named {name!r}.{did_you_mean(name, known)} "
                f"The study declares: {listing}."
            )

    keys = {k for w in out.words.values() for k in w.attributes}
    if session is not None:
        from workbench.store.itemsets import attribute_keys

        keys |= set(attribute_keys(session))
    for name, spec in study.item_sets.items():
        for part in ("from_", "union", "exclude"):
            for ref in getattr(spec, part):
                need(ref, f"item_sets.{name}.{part.rstrip('_')}")
        for key in spec.where:
            if key not in keys:
                have = ", ".join(sorted(keys)) or "none (declare a word list whose file has more columns than the words)"
                raise WorkbenchError(
                    f"{loaded.path}: item_sets.{name}.where: no word list has a column {key!r}.{did_you_mean(key, keys)} "
                    f"The word lists' columns: {have}."
                )
        _check_where_matches(loaded, name, spec, out)
    for name, spec in study.splits.items():
        for ref in [*spec.from_, *spec.exclude, *(v for v in (spec.train, spec.test) if isinstance(v, str))]:
            need(ref, f"splits.{name}")
    for name, rater in study.raters.items():
        if rater.items and rater.items != ALL_ITEMS:
            need(rater.items, f"raters.{name}.items")
    for name, report in study.reports.items():
        if report.items:
            need(report.items, f"reports.{name}.items")
    for name, campaign in study.campaigns.items():
        need(campaign.items, f"campaigns.{name}.items")


def _check_where_matches(loaded: LoadedStudy, name: str, spec, out: StudyCheck) -> None:
    """An item set drawn only from word lists, filtered by where, that would be empty: apply refuses it."""
    sources = [*spec.from_, *spec.union]
    if not spec.where or not sources or any(s not in out.words for s in sources):
        return

    def matching(words: WordTable) -> set[str]:
        keep = set(words.words)
        for key, values in spec.where.items():
            col = words.attributes.get(key)
            keep &= {w for w, v in zip(words.words, col, strict=True) if v in values} if col is not None else set()
        return keep

    chosen: set[str] = set()
    if spec.from_:
        chosen = set.intersection(*(set(out.words[s].words) for s in spec.from_))
    for s in spec.union:
        chosen |= set(out.words[s].words)
    hits = set().union(*(matching(out.words[s]) for s in sources))
    if not chosen & hits:
        wanted = " and ".join(f"{k} = {' or '.join(v)}" for k, v in spec.where.items())
        raise WorkbenchError(
            f"{loaded.path}: item_sets.{name}: no word of {', '.join(sources)} has {wanted}, so the item set would be empty."
        )


def _check_split_words(loaded: LoadedStudy, session: Session | None, items: set[tuple[str, str]]) -> None:
    """A split's word files name words the study's datasets and word lists (or the store) hold."""
    from workbench.finetune.splits import _file, _read_words
    from workbench.store.models import Item

    for name, spec in loaded.study.splits.items():
        if not spec.train_file:
            continue
        where = f"splits.{name}"
        for part in ("train_file", "test_file"):
            value = getattr(spec, part)
            if value is None:
                continue
            words = [normalise_item(w) for w in _read_words(_file(value, loaded.base_dir), spec.column, where)]
            missing = [w for w in dict.fromkeys(words) if (spec.language, w) not in items]
            if missing and session is not None:
                stored = set()
                for start in range(0, len(missing), 5000):
                    chunk = missing[start : start + 5000]
                    stored |= set(session.scalars(select(Item.text).where(Item.language == spec.language, Item.text.in_(chunk))))
                missing = [w for w in missing if w not in stored]
            if missing:
                shown = ", ".join(repr(w) for w in missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise WorkbenchError(
                    f"{loaded.path}: {where}.{part}: {len(missing)} words are in no dataset or word list of the study "
                    f"({shown}): declare the words under word_lists: (or import the dataset they come from)."
                )


def _check_rater_items(loaded: LoadedStudy, session: Session | None, gold_items: dict[str, set[tuple[str, str]]]) -> None:
    """A rater without items: rates every gold item of its dimension: refused above a threshold."""
    study = loaded.study
    for name, rater in study.raters.items():
        if rater.items:
            continue
        dimension = rater.dimension or (next(iter(study.dimensions)) if len(study.dimensions) == 1 else None)
        if dimension is None:
            continue  # the rater's resolution says which dimension to name
        count = len(gold_items.get(dimension, set()))
        if session is not None:
            from workbench.jobs.runner import default_items

            stored = len(default_items(session, dimension))
            count = max(count, stored)
        check_default_items(name, dimension, count)
