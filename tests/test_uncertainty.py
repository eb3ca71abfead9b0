"""Item sets chosen by uncertainty: the spread of an LLM rater's distribution, low mass, disagreement."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.store import connect
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dimension, Item, ItemSet, Rater, Rating
from workbench.study.apply import apply_study, make_plan
from workbench.study.load import load_study

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
# word -> (distribution of llm-a, mass of llm-a, value of llm-a, value of llm-b)
MODEL = {
    "alpha": ({"1": 0.5, "7": 0.5}, 0.9, 4.0, 4.0),      # widest spread
    "bravo": ({"3": 1.0}, 0.2, 3.0, 6.0),                # least mass, most disagreement
    "charlie": ({"3": 0.5, "4": 0.5}, 0.95, 3.5, 3.0),
    "delta": ({"2": 0.25, "6": 0.75}, 0.5, 5.0, 1.5),    # second in spread and in disagreement
    "echo": ({"5": 1.0}, 0.99, 5.0, 5.0),
    "foxtrot": ({"6": 0.9, "7": 0.1}, 0.4, 6.1, 6.0),
}  # fmt: skip


def study(tmp_path, uncertainty: str):
    (tmp_path / "norms.csv").write_text("word,fam\n" + "".join(f"{w},{k + 1}\n" for k, w in enumerate(WORDS)))
    (tmp_path / "study.yaml").write_text(f"""
study: unsure
dimensions:
  familiarity: {{scale: [1, 7]}}
datasets:
  norms: {{file: norms.csv, item_column: word, ratings: {{familiarity: fam}}}}
item_sets:
  unsure: {{from: norms, uncertainty: {uncertainty}}}
""")
    return load_study(tmp_path / "study.yaml")


def add_model_ratings(engine):
    with Session(engine) as s, s.begin():
        dim = s.scalar(select(Dimension).where(Dimension.name == "familiarity"))
        a, b = Rater(name="llm-a", kind="llm"), Rater(name="llm-b", kind="llm")
        s.add_all([a, b])
        s.flush()
        for word, (dist, mass, va, vb) in MODEL.items():
            item = s.scalar(select(Item).where(Item.text == word))
            s.add(Rating(item_id=item.id, dimension_id=dim.id, rater_id=a.id, value=va, distribution=dist, mass=mass))
            s.add(Rating(item_id=item.id, dimension_id=dim.id, rater_id=b.id, value=vb))


def members(engine, name="unsure") -> list[str]:
    with Session(engine) as s:
        ids = resolve_items(s, name)
        return sorted(s.scalars(select(Item.text).where(Item.id.in_(ids))))


@pytest.mark.parametrize(
    ("uncertainty", "expected"),
    [
        ("{by: spread, raters: llm-a, top: 2}", ["alpha", "delta"]),
        ("{by: mass, raters: llm-a, top: 2}", ["bravo", "foxtrot"]),
        ("{by: disagreement, raters: [llm-a, llm-b], top: 2}", ["bravo", "delta"]),
    ],
)
def test_top_n_by_uncertainty(tmp_path, db_url, uncertainty, expected):
    loaded = study(tmp_path, uncertainty)
    engine = connect(db_url)
    try:
        # the ranked set waits for ratings: without them apply says what to do
        with pytest.raises(WorkbenchError, match="no rater 'llm-a' in the store"):
            apply_study(engine, loaded)
        add_model_ratings(engine)
        apply_study(engine, loaded)
        assert members(engine) == expected
        with Session(engine) as s:
            assert [st.action for st in make_plan(s, loaded).steps if st.kind == "item set"] == ["unchanged"]
            assert s.scalar(select(ItemSet.definition).where(ItemSet.name == "unsure"))["uncertainty"]["top"] == 2
    finally:
        engine.dispose()


def test_uncertainty_spec_is_checked(tmp_path):
    with pytest.raises(WorkbenchError, match="disagreement needs two or more raters"):
        study(tmp_path, "{by: disagreement, raters: llm-a, top: 2}")
    with pytest.raises(WorkbenchError, match="give either sample or uncertainty"):
        (tmp_path / "x").mkdir()
        loaded = study(tmp_path / "x", "{by: mass, raters: llm-a, top: 2}, sample: 3")
        del loaded
