"""The researcher's path, end to end: her own word list of new words (with part of speech and frequency
band), the Glasgow norms as gold, an item set by attribute, the local Gemma model in process and the
wordfreq and embedding baselines, the report, and a wide export read back with pandas column by column.

The study is applied once (module fixture); each test looks at one product of it, so later checks (the
report's methods section, a campaign) add a test on the same fixture.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import DATA
from tests.test_annotate import ls_server  # noqa: F401 (the Label Studio server fixture)
from workbench.cli.main import app
from workbench.store import connect
from workbench.store.models import Dimension, Item, Rater, Rating

pytest.importorskip("torch", reason="the local extra is not installed: pip install -e .[local]")
pd = pytest.importorskip("pandas")

# the README's example: her words (common ones the Glasgow norms rate, rare and new ones they do not:
# zorblet is no word at all), the Glasgow/MRC familiarity norms as gold
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "newwords"
RARE = ["quiver", "zorblet"]
RATERS = ["gemma", "frequency", "embedding"]


def run(*args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def newwords(tmp_path_factory):
    """The study folder, after validate, plan and apply (on a SQLite store beside it)."""
    folder = tmp_path_factory.mktemp("newwords")
    shutil.copy(EXAMPLE / "words.csv", folder / "words.csv")
    study = folder / "study.yaml"
    text = (EXAMPLE / "study.yaml").read_text(encoding="utf-8")
    study.write_text(text.replace("../../tests/data", str(DATA)).replace("[html, json, md]", "[json, md]"), encoding="utf-8")
    validated = run("validate", "--study", study).output
    assert "word list mywords: 6 words (attributes pos, band) from words.csv" in validated
    plan = run("plan", "--study", study).output
    assert "  import    word list mywords  (words.csv, words to rate, no ratings)\n" in plan
    assert "  create    item set rare  (items of mywords; where band = rare; after the steps above)\n" in plan
    applied = run("apply", "--study", study).output
    assert "  item set rare: created (2 items)\n" in applied
    for rater in RATERS:
        assert f"{rater} (" in applied and "0 failed" in applied
    assert run("apply", "--study", study).output == "Nothing to do: the store matches the study.\n"
    return folder


def store_values(folder: Path, rater: str) -> dict[str, tuple]:
    """item -> (value, sd, n, mass, note) of one rater, straight from the store."""
    engine = connect(f"sqlite:///{folder / 'workbench.db'}")
    try:
        with Session(engine) as s:
            q = (
                select(Item.text, Rating.value, Rating.sd, Rating.n, Rating.mass, Rating.note)
                .join(Item, Item.id == Rating.item_id)
                .join(Rater, Rater.id == Rating.rater_id)
                .join(Dimension, Dimension.id == Rating.dimension_id)
                .where(Rater.name == rater, Dimension.name == "familiarity")
            )
            return {t: tuple(rest) for t, *rest in s.execute(q)}
    finally:
        engine.dispose()


def test_the_word_list_is_rated_and_never_gold(newwords):
    status = json.loads(run("status", "--study", newwords / "study.yaml", "--format", "json").stdout)
    kinds = {d["name"]: d["kind"] for d in status["datasets"]}
    assert kinds["mywords"] == "word list"
    assert "mywords" not in {r["name"] for r in status["raters"]}  # no norm, no rater: never gold
    items = {i["name"]: i["items"] for i in status["item_sets"]}
    assert (items["rare"], items["targets"]) == (2, 18)
    for rater in RATERS:
        values = store_values(newwords, rater)
        assert {"apple", "zorblet", "quiver"} <= set(values)
        assert all(v[0] is not None and 1 <= v[0] <= 7 for v in values.values())
    assert store_values(newwords, "frequency")["zorblet"][4] == "unknown to wordfreq (en)"
    # a dry run works after apply too, and says there is nothing left to rate
    dry = run("rate", "gemma", "--dry-run", "--study", newwords / "study.yaml").output
    assert "gemma (local" in dry and ": 0 of 18 items to rate (18 already rated)." in dry


def test_the_report_is_written_without_the_word_list_as_gold(newwords):
    report = json.loads((newwords / "reports" / "main.json").read_text(encoding="utf-8"))
    rows = [row for dim in report["dimensions"] for row in dim.get("table", [])]
    assert {row["gold"] for row in rows} == {"toolbox-glasgow"}  # the word list is no gold
    assert "mywords" not in {row["rater"] for row in rows}
    assert {row["rater"] for row in rows} >= set(RATERS)
    assert (newwords / "reports" / "main.md").exists()


def test_the_wide_export_reads_back_column_by_column(newwords):
    out = newwords / "norms.csv"
    args = ["export", "--wide", "--items", "mywords", "-o", out, "--study", newwords / "study.yaml"]
    for rater in [*RATERS, "toolbox-glasgow"]:
        args += ["--rater", rater]
    said = run(*args).output
    assert said == f"Wrote 6 rows to {out}; its data dictionary: {newwords / 'norms.dictionary.csv'}.\n"
    table = pd.read_csv(out, keep_default_na=False, na_values=["NA"])
    # one row per word, in the word list's order; its columns, then a column per rater with its flags
    assert list(table["item"]) == ["apple", "river", "garden", "bread", "quiver", "zorblet"]
    assert list(table["language"]) == ["en"] * 6
    assert list(table["pos"]) == ["noun", "noun", "noun", "noun", "verb", "noun"]
    assert list(table["band"]) == ["common"] * 4 + ["rare"] * 2
    expected_columns = ["item", "language", "pos", "band"]
    for rater in sorted([*RATERS, "toolbox-glasgow"]):
        stored = store_values(newwords, rater)
        base = f"{rater}.familiarity"
        expected_columns.append(base)
        for word, got in zip(table["item"], table[base], strict=True):
            want = stored.get(word, (None,))[0]
            if want is None:
                assert math.isnan(got), (rater, word)
            else:
                assert got == round(want, 3), (rater, word)  # --digits 3 by default
        for k, flag in enumerate(("sd", "n", "mass", "note"), start=1):
            column = f"{base}.{flag}"
            values = [stored.get(w, (None,) * 5)[k] for w in table["item"]]
            if all(v is None for v in values):
                assert column not in table.columns
                continue
            expected_columns.append(column)
            for word, got, want in zip(table["item"], table[column], values, strict=True):
                if want is None:
                    assert (isinstance(got, float) and math.isnan(got)) or got == "", (column, word)
                elif flag == "note":
                    assert got == want, (column, word)
                else:
                    assert got == pytest.approx(round(want, 3) if flag != "n" else want), (column, word)
    assert list(table.columns) == expected_columns
    # the gold norms know only the common words; wordfreq says which words it did not know
    assert table["toolbox-glasgow.familiarity"].isna().tolist() == [False] * 4 + [True] * 2
    assert table.set_index("item").loc["zorblet", "frequency.familiarity.note"] == "unknown to wordfreq (en)"
    assert "gemma.familiarity.mass" in table.columns

    dictionary = pd.read_csv(newwords / "norms.dictionary.csv", keep_default_na=False)
    assert list(dictionary["column"]) == expected_columns  # every column described, in order
    assert all(dictionary["description"].str.len() > 10)
    row = dictionary.set_index("column").loc["gemma.familiarity"]
    assert (row["rater"], row["dimension"], row["scale"], row["type"]) == ("gemma", "familiarity", "1-7", "number")
    assert "local" in row["description"]


def test_the_report_opens_with_its_methods(newwords):
    """The methods a reviewer asks for, from the store: the study, the gold's citation, each rater's prompt for a word."""
    methods = json.loads((newwords / "reports" / "main.json").read_text(encoding="utf-8"))["methods"]
    assert methods["study"] == "newwords"
    datasets = {d["name"]: d for d in methods["datasets"]}
    assert datasets["toolbox-glasgow"]["citation"] and datasets["toolbox-glasgow"]["role"] == "gold"
    assert "mywords" in datasets and datasets["mywords"]["role"] != "gold"
    raters = {r["name"]: r for r in methods["raters"]}
    assert set(RATERS) <= set(raters)
    gemma = raters["gemma"]
    assert gemma["backend"] == "local" and gemma["readout"] and gemma["weights"]
    assert gemma["prompt"].endswith(f"Word: {gemma['example_word']}\nRating:") and "{item}" not in gemma["prompt"]
    assert "toolbox-glasgow" in gemma["few_shot"]
    md = (newwords / "reports" / "main.md").read_text(encoding="utf-8")
    assert "## Methods" in md and "No rows" not in md


@pytest.mark.parametrize("ls_server", ["development"], indirect=True)  # a pilot's server; both servers: test_annotate.py
def test_a_campaign_for_the_rare_words_is_pushed_and_in_the_methods(newwords, tmp_path, ls_server, monkeypatch):  # noqa: F811
    """The rare words go to human annotators in Label Studio; the report's methods describe the campaign's design."""
    folder = tmp_path / "study"
    shutil.copytree(newwords, folder)
    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    study = folder / "study.yaml"
    with study.open("a", encoding="utf-8") as f:
        f.write(
            "\ncampaigns:\n"
            "  rare-words:\n"
            "    items: rare\n"
            "    raters_per_item: 3\n"
            "    list_size: 10\n"
            f"    server: {{url: {ls_server.url}, api_key_env: TEST_LS_KEY}}\n"
        )
    run("validate", "--study", study)
    pushed = run("annotate", "push", "rare-words", "--study", study).output
    assert "1 list" in pushed, pushed
    status = run("annotate", "status", "rare-words", "--study", study).output
    assert ls_server.token not in pushed + status
    print(status)
    out = folder / "after-push.json"
    run("report", "--study", study, "--gold", "toolbox-glasgow", "--items", "targets", "-f", "json", "-o", out, "--n-boot", "100")
    (campaign,) = json.loads(out.read_text(encoding="utf-8"))["methods"]["campaigns"]
    assert (campaign["name"], campaign["items"], campaign["n_items"]) == ("rare-words", "rare", 2)
    assert (campaign["raters_per_item"], campaign["list_size"], campaign["lists"]) == (3, 10, 1)
