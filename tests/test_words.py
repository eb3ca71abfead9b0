"""Word lists: words to rate that come with no ratings, their other columns kept as attributes; item sets by
attribute, union and intersection; a word list is never gold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.store import connect
from workbench.store.itemsets import resolve_items
from workbench.store.models import Dataset, DatasetItem, Item, ItemAttribute, Rater

WORDS_CSV = """word,pos,band,condition
apple,noun,common,A
house,noun,common,B
run,verb,common,A
happy,adjective,common,B
zorblet,noun,rare,A
quindle,verb,rare,B
flumph,noun,NA,A
"""


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.stderr if code == 0 else "", result.exception)
    return result


def word_study(tmp_path: Path, extra: str = "", words: str = WORDS_CSV, name: str = "words.csv") -> Path:
    (tmp_path / name).write_text(words, encoding="utf-8")
    study = tmp_path / "study.yaml"
    study.write_text(
        f"""study: newwords
dimensions:
  familiarity: {{scale: [1, 7], step: 1}}
word_lists:
  mywords: {{file: {name}, column: word}}
item_sets:
  rare: {{from: mywords, where: {{band: rare}}}}
  nouns-or-rare: {{union: [rare, nouns]}}
  nouns: {{from: mywords, where: {{pos: noun}}}}
  rare-nouns: {{from: [rare, nouns]}}
  a-or-b-verbs: {{from: mywords, where: {{pos: verb, condition: [A, B]}}}}
{extra}""",
        encoding="utf-8",
    )
    return study


def texts(session: Session, name: str) -> list[str]:
    ids = resolve_items(session, name)
    return sorted(session.scalars(select(Item.text).where(Item.id.in_(ids))))


def test_a_word_list_comes_in_without_ratings_and_item_sets_select_on_its_columns(runner, tmp_path, db_url):
    study = word_study(tmp_path)
    out = run(runner, "validate", "--study", study)
    assert "word list mywords: 7 words (attributes pos, band, condition) from words.csv" in out.output
    assert out.output.endswith("valid (1 dimension, 0 datasets, 1 word list).\n")
    plan = run(runner, "plan", "--study", study, "--db", db_url).output
    assert "  import    word list mywords  (words.csv, words to rate, no ratings)\n" in plan
    applied = run(runner, "apply", "--study", study, "--db", db_url).output
    assert "  word list mywords: imported (7 words)\n" in applied
    assert "  item set rare: created (2 items)\n" in applied
    assert run(runner, "apply", "--study", study, "--db", db_url).output == "Nothing to do: the store matches the study.\n"

    engine = connect(db_url)
    try:
        with Session(engine) as s:
            assert texts(s, "mywords") == ["apple", "flumph", "happy", "house", "quindle", "run", "zorblet"]
            assert texts(s, "rare") == ["quindle", "zorblet"]
            assert texts(s, "nouns") == ["apple", "flumph", "house", "zorblet"]
            assert texts(s, "nouns-or-rare") == ["apple", "flumph", "house", "quindle", "zorblet"]  # union
            assert texts(s, "rare-nouns") == ["zorblet"]  # intersection
            assert texts(s, "a-or-b-verbs") == ["quindle", "run"]
            ds = s.scalar(select(Dataset).where(Dataset.name == "mywords"))
            # the words in file order; NA is no attribute, not the value "NA"
            order = s.execute(select(Item.text).join(DatasetItem, DatasetItem.item_id == Item.id).order_by(DatasetItem.position))
            assert [t for (t,) in order] == ["apple", "house", "run", "happy", "zorblet", "quindle", "flumph"]
            flumph = s.scalar(select(Item.id).where(Item.text == "flumph"))
            attrs = dict(s.execute(select(ItemAttribute.key, ItemAttribute.value).where(ItemAttribute.item_id == flumph)).all())
            assert attrs == {"pos": "noun", "condition": "A"}
            assert all(a.dataset_id == ds.id for a in s.scalars(select(ItemAttribute)))
            # never gold: no rater, no ratings
            assert s.scalar(select(Rater).where(Rater.name == "mywords")) is None
    finally:
        engine.dispose()

    status = run(runner, "status", "--study", study, "--db", db_url, "--format", "json").stdout
    datasets = json.loads(status)["datasets"]
    assert [(d["name"], d["kind"], d["items"], d["ratings"]) for d in datasets] == [("mywords", "word list", 7, 0)]
    assert json.loads(status)["raters"] == []
    table = run(runner, "status", "--study", study, "--db", db_url).output
    assert "mywords  word list  -       en            7        0  -\n" in table
    assert "NULL" not in table

    # a changed file replaces the list (and its attributes); the item sets follow
    (tmp_path / "words.csv").write_text(WORDS_CSV.replace("quindle,verb,rare", "quindle,verb,common"), encoding="utf-8")
    applied = run(runner, "apply", "--study", study, "--db", db_url).output
    assert "  word list mywords: replaced (7 words)\n" in applied
    engine = connect(db_url)
    try:
        with Session(engine) as s:
            assert s.scalar(select(Dataset.name).where(Dataset.name == "mywords")) == "mywords"
    finally:
        engine.dispose()


def test_word_lists_from_txt_tsv_and_xlsx(runner, tmp_path, db_url):
    import openpyxl

    (tmp_path / "plain.txt").write_bytes("apple\r\n\r\n  zorblet \r\ncafé\r\napple\r\n".encode("cp1252"))
    (tmp_path / "stim.tsv").write_text("Word\tCond\nzorblet\tnew\nhouse\told\n", encoding="utf-8")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["item", "band"])
    sheet.append(["flumph", "rare"])
    sheet.append(["run", "common"])
    book.save(tmp_path / "list.xlsx")
    study = tmp_path / "study.yaml"
    study.write_text(
        """study: lists
dimensions: {familiarity: {scale: [1, 7]}}
word_lists:
  plain: {file: plain.txt}
  stim: {file: stim.tsv, column: Word}
  book: {file: list.xlsx, column: item}
item_sets:
  all-new: {union: [plain, stim, book]}
  new-cond: {union: [stim, book], where: {Cond: new}}
""",
        encoding="utf-8",
    )
    run(runner, "apply", "--study", study, "--db", db_url)
    engine = connect(db_url)
    try:
        with Session(engine) as s:
            assert texts(s, "plain") == ["apple", "café", "zorblet"]
            assert texts(s, "all-new") == ["apple", "café", "flumph", "house", "run", "zorblet"]
            assert texts(s, "new-cond") == ["zorblet"]
            assert s.scalar(select(Dataset.details).where(Dataset.name == "plain"))["duplicates_merged"] == 1
    finally:
        engine.dispose()


def test_word_list_problems_are_named_with_their_lines(runner, tmp_path):
    study = word_study(tmp_path, words=WORDS_CSV + "zorblet,verb,rare,A\n,noun,rare,B\n")
    err = run(runner, "validate", "--study", study, code=1).stderr
    assert "2 problems" in err
    assert "row 9, column 'pos', value 'verb': 'zorblet' is also on line 6, with pos 'noun': keep one row per word" in err
    assert "row 10, column 'word', value '': no word in this row" in err

    study.write_text(study.read_text().replace("column: word", "column: Wort"))
    err = run(runner, "validate", "--study", study, code=1).stderr
    assert "missing required column 'Wort' (the words of word list 'mywords')" in err
    study.write_text(study.read_text().replace(", column: Wort", ""))
    err = run(runner, "validate", "--study", study, code=1).stderr
    assert "the word list 'mywords' has 4 columns ('word', 'pos', 'band', 'condition'): say which holds the words with column: NAME" in err


def test_a_word_list_and_a_dataset_cannot_share_a_name(runner, tmp_path):
    study = word_study(tmp_path, extra="datasets:\n  mywords: {file: words.csv, item_column: word, ratings: {familiarity: band}}\n")
    err = run(runner, "validate", "--study", study, code=1).stderr
    assert "word_lists.mywords: a dataset has this name too" in err
