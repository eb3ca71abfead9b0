"""Study resources are registered kinds: a kind defined here, in the test, plans and applies with the rest.

The `constant` kind below is a dataset whose every item gets one value: the
items of another dataset or word list, rated `value` on a dimension. It is
declared in the study file under its own section (`constants:`), with its own
entry model, and takes its place in the order from what it needs; nothing in
the workbench package knows of it. Then: the order of the kinds comes from
their needs, and kinds needing each other in a circle are refused in one line.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store.engine import bump_generation, generation
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dataset, DatasetItem, Dimension, Item, ItemSetMember, Rater, Rating
from workbench.study.apply import apply_study, make_plan, plan_rows
from workbench.study.kind import ResourceKind, kind_names, ordered_kinds, register_kind, unregister_kind
from workbench.study.load import load_study


class ConstantSpec(BaseModel):
    """One `constants:` entry: every item of `of` gets `value` on `dimension`."""

    model_config = ConfigDict(extra="forbid")

    of: str = Field(description="the dataset or word list whose items get the value")
    dimension: str
    value: float


def _fingerprint(spec: ConstantSpec, items: list[int]) -> str:
    return hashlib.sha256(json.dumps([spec.model_dump(), items]).encode()).hexdigest()


class Constant(ResourceKind):
    section = "constants"
    Spec = ConstantSpec
    needs = ("dimension", "word list", "dataset")
    before = ("inputs",)  # its datasets are inputs that item sets may draw on
    makes_datasets = True
    planned = 0  # times the kind was asked for its steps

    def provides(self, study):
        return list(study.entries("constants"))

    def _action(self, session, name, spec):
        ds = session.scalar(select(Dataset).where(Dataset.name == name))
        if ds is None:
            return "create"
        return "unchanged" if ds.import_key == _fingerprint(spec, resolve_items(session, spec.of)) else "update"

    def plan(self, ctx):
        type(self).planned += 1
        for name, spec in self.entries(ctx.study):
            detail = f"{spec.value:g} for every item of {spec.of}"
            if ctx.pending:  # the items it rates may not be in the store yet: decided when apply gets here
                yield self.step(name, "create", detail, deferred=True)
            else:
                yield self.step(name, self._action(ctx.session, name, spec), detail)

    def apply(self, ctx, steps):
        for step in steps:
            if step.action == "unchanged":
                continue
            spec = ctx.study.entries("constants")[step.name]
            with Session(ctx.engine) as s, s.begin():
                action = self._action(s, step.name, spec) if step.deferred else step.action
                if action == "unchanged":
                    continue
                items = resolve_items(s, spec.of)
                ds = s.scalar(select(Dataset).where(Dataset.name == step.name)) or Dataset(name=step.name, language="en")
                ds.import_key = _fingerprint(spec, items)
                s.add(ds)
                s.flush()
                rater = s.scalar(select(Rater).where(Rater.name == step.name))
                if rater is None:
                    rater = Rater(name=step.name, kind="norm", dataset_id=ds.id)
                    s.add(rater)
                    s.flush()
                s.execute(delete(Rating).where(Rating.rater_id == rater.id))
                s.execute(delete(DatasetItem).where(DatasetItem.dataset_id == ds.id))
                dim = s.scalar(select(Dimension.id).where(Dimension.name == spec.dimension))
                s.add_all(DatasetItem(dataset_id=ds.id, item_id=i, position=n) for n, i in enumerate(items))
                s.add_all(Rating(item_id=i, dimension_id=dim, rater_id=rater.id, replicate=0, value=spec.value) for i in items)
                bump_generation(s)
            ctx.done(self.step(step.name, action, f"{len(items)} items"))


@pytest.fixture
def constant_kind():
    register_kind("constant")(Constant)
    try:
        yield Constant
    finally:
        unregister_kind("constant")


STUDY = """study: kinds
dimensions:
  familiarity: {scale: [1, 7]}
word_lists:
  words: {file: words.txt}
constants:
  middle: {of: words, dimension: familiarity, value: VALUE}
item_sets:
  some: {from: middle, sample: 3}
"""


def _study(tmp_path, value: float = 4):
    (tmp_path / "words.txt").write_text("apple\nbanana\ncherry\ndate\nelder\n", encoding="utf-8")
    (tmp_path / "study.yaml").write_text(STUDY.replace("VALUE", str(value)), encoding="utf-8")
    return load_study(tmp_path / "study.yaml")


def _rows(engine, loaded):
    with Session(engine) as s:
        return [(r["kind"], r["name"], r["action"], r["detail"]) for r in plan_rows(s, loaded)]


def _values(engine) -> dict[str, float]:
    with Session(engine) as s:
        q = select(Item.text, Rating.value).join(Rating, Rating.item_id == Item.id).join(Rater, Rater.id == Rating.rater_id)
        return dict(s.execute(q.where(Rater.name == "middle")).all())


def test_a_kind_defined_outside_the_package_plans_and_applies(constant_kind, engine, tmp_path):
    assert kind_names().index("word list") < kind_names().index("constant") < kind_names().index("item set")
    loaded = _study(tmp_path)
    assert list(loaded.study.entries("constants")) == ["middle"]
    assert loaded.study.entries("constants")["middle"].value == 4.0
    assert _rows(engine, loaded) == [
        ("dimension", "familiarity", "create", "scale 1-7"),
        ("word list", "words", "import", "words.txt, words to rate, no ratings"),
        ("constant", "middle", "create", "4 for every item of words"),
        ("item set", "some", "create", "items of middle; a sample of 3; after the steps above"),
    ]

    done = []
    asked = Constant.planned
    plan = apply_study(engine, loaded, on_step=lambda st, _res: done.append((st.kind, st.name, st.action, st.detail)))
    assert [st.action for st in plan.changes] == ["create", "import", "create", "create"]
    assert Constant.planned == asked + 1  # apply planned once, then carried out the plan's steps
    assert ("constant", "middle", "create", "5 items") in done
    assert _values(engine) == {"apple": 4.0, "banana": 4.0, "cherry": 4.0, "date": 4.0, "elder": 4.0}
    with Session(engine) as s:
        members = s.scalar(select(func.count()).select_from(ItemSetMember))
        assert members == 3  # the item set drew on the constant dataset, made before it
        before = generation(s)

    # the second apply is a no-op: every row unchanged, nothing written
    assert {r[2] for r in _rows(engine, loaded)} == {"unchanged"}
    again = []
    plan = apply_study(engine, loaded, on_step=lambda st, _res: again.append(st))
    assert plan.changes == [] and all(st.action == "unchanged" for st in again)
    with Session(engine) as s:
        assert generation(s) == before
        assert s.scalar(select(func.count()).select_from(Rating)) == 5

    # a changed value is an update, decided against the store (nothing before it changes)
    loaded = _study(tmp_path, value=6.5)
    assert ("constant", "middle", "update", "6.5 for every item of words") in _rows(engine, loaded)
    apply_study(engine, loaded)
    assert set(_values(engine).values()) == {6.5}
    with Session(engine) as s:
        assert not make_plan(s, loaded).changes

    # a constant the study no longer declares stays in the store, and the plan says so
    (tmp_path / "study.yaml").write_text(STUDY.split("constants:")[0], encoding="utf-8")
    assert _rows(engine, load_study(tmp_path / "study.yaml"))[-1] == ("dataset", "middle", "keep", "in the store, not in the study")


def test_a_section_of_a_kind_is_validated_with_its_model(constant_kind, tmp_path):
    (tmp_path / "words.txt").write_text("apple\n", encoding="utf-8")
    (tmp_path / "study.yaml").write_text(STUDY.replace("VALUE", "high"), encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"constants\.middle\.value: Input should be a valid number"):
        load_study(tmp_path / "study.yaml")


def test_without_the_kind_its_section_is_refused(tmp_path):
    assert "constant" not in kind_names()
    (tmp_path / "words.txt").write_text("apple\n", encoding="utf-8")
    (tmp_path / "study.yaml").write_text(STUDY.replace("VALUE", "4"), encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"constants: Extra inputs are not permitted"):
        load_study(tmp_path / "study.yaml")


def _kind(name: str, needs: tuple[str, ...] = (), before: tuple[str, ...] = ()) -> type[ResourceKind]:
    return type(name.title(), (ResourceKind,), {"name": name, "needs": needs, "before": before})


def test_the_order_comes_from_what_each_kind_needs():
    # by name alone a would go first: it needs z, which needs m
    a, m, z = _kind("a", needs=("z",)), _kind("m"), _kind("z", needs=("m",))
    assert [k.name for k in ordered_kinds([a, m, z])] == ["m", "z", "a"]
    # free to go at once: by name
    assert [k.name for k in ordered_kinds([_kind("b"), _kind("a")])] == ["a", "b"]
    # before: puts a kind ahead of one that does not name it
    assert [k.name for k in ordered_kinds([_kind("a"), _kind("b", before=("a",))])] == ["b", "a"]
    # the built-in kinds: each after what it needs
    names = kind_names()
    for cls in ordered_kinds():
        for need in cls.needs:
            assert names.index(need) < names.index(cls.name), (cls.name, need)
    assert names[:2] == ["dimension", "dataset"] and names[-1] == "report"


def test_kinds_needing_each_other_in_a_circle_are_refused():
    x, y, z = _kind("x", needs=("z",)), _kind("y", needs=("x",)), _kind("z", needs=("y",))
    with pytest.raises(WorkbenchError, match=r"^resource kinds x -> z -> y -> x need each other in a circle"):
        ordered_kinds([x, y, z, _kind("free")])
    with pytest.raises(WorkbenchError, match=r"'a' needs 'nothing-here', which no registered kind is"):
        ordered_kinds([_kind("a", needs=("nothing-here",))])


def test_a_registered_kind_in_a_circle_stops_the_plan(engine, tmp_path):
    (tmp_path / "study.yaml").write_text("study: s\ndimensions:\n  familiarity: {scale: [1, 7]}\n", encoding="utf-8")
    loaded = load_study(tmp_path / "study.yaml")
    register_kind("looped")(_kind("looped", needs=("report",), before=("dimension",)))
    try:
        with Session(engine) as s, pytest.raises(WorkbenchError, match=r"need each other in a circle"):
            make_plan(s, loaded)
    finally:
        unregister_kind("looped")
    with Session(engine) as s:
        assert [st.action for st in make_plan(s, loaded).steps] == ["create"]
