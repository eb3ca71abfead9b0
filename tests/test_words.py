"""Word lists: words to rate that come with no ratings, their other columns kept as attributes; item sets by
attribute, union and intersection; a word list is never gold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

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

    # in SQL: the words of each list and what its columns say about them
    sql = run(runner, "sql", "SELECT item, value FROM item_attributes WHERE key = 'band' ORDER BY item", "--db", db_url, "-f", "csv")
    assert sql.stdout.replace("\r\n", "\n").splitlines() == [
        "item,value", "apple,common", "happy,common", "house,common", "quindle,rare", "run,common", "zorblet,rare"
    ]  # fmt: skip
    sql = run(runner, "sql", "SELECT item FROM word_list_items WHERE dataset = 'mywords' ORDER BY position", "--db", db_url, "-f", "csv")
    assert sql.stdout.replace("\r\n", "\n").splitlines()[1:] == ["apple", "house", "run", "happy", "zorblet", "quindle", "flumph"]

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


GOLD = "word,fam\napple,6.1\nhouse,6.5\nrun,6.0\nhappy,6.3\nriver,5.9\n"


def gold_study(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "words.csv").write_text(WORDS_CSV, encoding="utf-8")
    (tmp_path / "gold.csv").write_text(GOLD, encoding="utf-8")
    study = tmp_path / "study.yaml"
    study.write_text(
        f"""study: agree
dimensions:
  familiarity: {{scale: [1, 7], step: 1}}
datasets:
  gold: {{file: gold.csv, item_column: word, ratings: {{familiarity: fam}}}}
word_lists:
  mywords: {{file: words.csv, column: word}}
{extra}""",
        encoding="utf-8",
    )
    return study


@pytest.mark.parametrize(
    ("extra", "files", "message"),
    [
        # an empty rating column: plan said "2 to do" and exited 0 while validate exited 1
        ("", {"gold.csv": "word,fam\napple,\nhouse,\n"}, "no usable rows for dataset 'gold': the file has a header but no data"),
        # a split whose word file names words nobody declared: validate passed, apply refused
        (
            "splits:\n  s: {train_file: train.txt, test_file: test.txt}\n",
            {"train.txt": "apple\nhouse\n", "test.txt": "zorblet\nnotaword\n"},
            "splits.s.test_file: 1 words are in no dataset or word list of the study ('notaword')",
        ),
        ("item_sets:\n  r: {from: mywords, where: {frequency: low}}\n", {}, "item_sets.r.where: no word list has a column 'frequency'"),
        (
            "item_sets:\n  r: {from: mywords, where: {band: medium}}\n",
            {},
            "no word of mywords has band = medium, so the item set would be empty",
        ),
        (
            "item_sets:\n  r: {union: [mywords, glod]}\n",
            {},
            "item_sets.r.union: no dataset, word list or item set named 'glod'. Did you mean 'gold'?",
        ),
        ("raters:\n  f: {backend: wordfreq, items: nowhere}\n", {}, "raters.f.items: no dataset, word list or item set named 'nowhere'"),
        (
            "campaigns:\n  c: {items: mywrods}\n",
            {},
            "campaigns.c.items: no dataset, word list or item set named 'mywrods'. Did you mean 'mywords'?",
        ),
    ],
)
def test_validate_and_plan_refuse_what_apply_would_refuse(runner, tmp_path, db_url, extra, files, message):
    study = gold_study(tmp_path, extra)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    for command in ("validate", "plan", "apply"):
        args = [command, "--study", study] + (["--db", db_url] if command != "validate" else [])
        err = run(runner, *args, code=1).stderr
        assert message in err, (command, err)
    engine = connect(db_url)
    try:
        with Session(engine) as s:  # apply refused before writing anything
            assert s.scalar(select(Dataset.id)) is None
    finally:
        engine.dispose()


def test_a_rater_without_items_is_refused_above_the_threshold(runner, tmp_path, db_url, monkeypatch):
    from workbench.jobs import runner as job_runner

    monkeypatch.setattr(job_runner, "DEFAULT_ITEMS_LIMIT", 3)  # the gold has 5 items
    study = gold_study(tmp_path, "raters:\n  f: {backend: wordfreq}\n")
    message = "raters.f: no items: given, so it would rate all 5 items with a gold rating on 'familiarity' (more than 3)"
    assert message in run(runner, "validate", "--study", study, code=1).stderr
    assert message in run(runner, "plan", "--study", study, "--db", db_url, code=1).stderr
    study.write_text(study.read_text().replace("{backend: wordfreq}", "{backend: wordfreq, items: all}"))
    run(runner, "apply", "--study", study, "--db", db_url)
    out = run(runner, "rate", "f", "--dry-run", "--study", study, "--db", db_url).output
    assert "0 of 5 items to rate (5 already rated)" in out


def test_dry_run_after_a_partial_apply_uses_the_study(runner, tmp_path, db_url):
    study = gold_study(tmp_path, "")
    run(runner, "apply", "--study", study, "--db", db_url)
    # later: an item set and a rater of it are declared, not yet applied
    study.write_text(
        study.read_text() + "item_sets:\n  rare: {from: mywords, where: {band: rare}}\nraters:\n  f: {backend: wordfreq, items: rare}\n"
    )
    out = run(runner, "rate", "f", "--dry-run", "--study", study, "--db", db_url).output
    assert "f (wordfreq): 2 of 2 items to rate (0 already rated)." in out
    assert "The store is behind the study (1 steps for apply to make first: item set rare)" in out


def test_plan_shows_what_a_paid_rater_would_cost(runner, tmp_path, db_url):
    study = gold_study(
        tmp_path,
        "raters:\n  gpt: {backend: openai, model: gpt-4o-mini, items: mywords, prompt: 'Rate {item} from 1 to 7.'}\n"
        "  local-server: {backend: openai, model: my-llama, base_url: 'http://127.0.0.1:9/v1', items: mywords, "
        "prompt: 'Rate {item}.'}\n"
        "  dear: {backend: openai, model: gpt-4o, price: {input: 50000, output: 50000}, items: mywords, prompt: 'Rate {item}.'}\n",
    )
    plan = run(runner, "plan", "--study", study, "--db", db_url).output
    assert re.search(r"rater dear  \(openai gpt-4o, 7 items, about \$\d+\.\d\d \(7 requests\), after the steps above\)", plan)
    assert "  rate      rater gpt  (openai gpt-4o-mini, 7 items, less than $0.01 (7 requests), after the steps above)\n" in plan
    assert (
        "rater local-server  (openai my-llama, 7 items, cost unknown: give the rater price: {input, output}, after the steps above)" in plan
    )
    run(runner, "apply", "--study", study, "--db", db_url, code=1)  # no key: nothing rated, but the words are in
    plan = run(runner, "plan", "--study", study, "--db", db_url).output
    assert "  rate      rater gpt  (openai gpt-4o-mini, 7 of 7 items, less than $0.01 (7 requests))\n" in plan
