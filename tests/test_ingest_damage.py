"""Damaged files: each way a file could lose or garble rows without a word is one clear error instead.

Stray quotes, mixed encodings and mojibake, .xlsx formulas without a saved
value, duplicate and non-scalar columns, unstorable items, NA spellings,
--rejects paths, and --as-rater values off their scale. Through the CLI
(one line on stderr, exit 1, nothing stored) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import cli

FAM = ["--item-column", "Word", "--rating", "familiarity=Fam", "--scale", "familiarity=1:7"]


def rows_in_store(db_url: str) -> dict:
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            return {
                "items": c.execute(text("SELECT count(*) FROM items")).scalar(),
                "ratings": c.execute(text("SELECT count(*) FROM ratings")).scalar(),
                "datasets": c.execute(text("SELECT count(*) FROM datasets")).scalar(),
                "values": dict(c.execute(text("SELECT i.text, r.value FROM ratings r JOIN items i ON i.id = r.item_id")).all()),
            }
    finally:
        eng.dispose()


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def refused(runner, db_url, path, *extra, want: str):
    out = cli(runner, "import", path, "--dataset", "d0", *FAM, *extra, "--db", db_url, code=1)
    assert want in out.stderr, out.stderr
    assert rows_in_store(db_url)["ratings"] == 0
    return out.stderr


# --------------------------------------------------------------------------- quotes


@pytest.mark.parametrize(
    "body, line, what",
    [
        ('cat,3\n"apple,5\ndog,4\neel,2\nfox,1\n', 3, "never closed"),
        ('cat,3\n"apple,5\ndog,4\n"eel",2\nfox,1\n', 3, "runs over 3 lines, to line 5"),
        ('cat,3\ndog,"4\n', 3, "never closed"),
        ('cat,3\n"' + "x" * 20_000 + '",4\n', 3, "of 20002 characters"),
    ],
)
def test_a_stray_quote_is_an_error_naming_the_line_it_opened_on(runner, db_url, tmp_path, body, line, what):
    path = write(tmp_path / "norms.csv", "Word,Fam\n" + body)
    err = refused(runner, db_url, path, want=f"{path}: line {line}: a quote opens a quoted field")
    assert what in err
    assert len(err) < 600  # the swallowed rows are not printed


def test_quoted_fields_on_one_line_are_fine(runner, db_url, tmp_path):
    path = write(tmp_path / "norms.csv", 'Word,Fam\n"cat, the animal",3\n"say ""hi""",4\n"dog","5"\n')
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"cat, the animal": 3.0, 'say "hi"': 4.0, "dog": 5.0}


# --------------------------------------------------------------------------- encodings


def test_a_file_mixing_utf8_and_cp1252_lines_is_refused_with_line_numbers(runner, db_url, tmp_path):
    data = "Word,Fam\ncafé,3\ndog,4\nnaïve,5\n".encode() + "crème,2\n".encode("cp1252")
    path = write(tmp_path / "mixed.csv", data)
    err = refused(runner, db_url, path, want="mixes encodings: line(s) 2, 4 are UTF-8 and line(s) 5 are not")
    assert "--encoding mixed" in err
    # asked for, each line is read in its own encoding
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--encoding", "mixed", "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"café": 3.0, "dog": 4.0, "naïve": 5.0, "crème": 2.0}


def test_mojibake_in_valid_utf8_is_refused_or_repaired_on_request(runner, db_url, tmp_path):
    path = write(tmp_path / "moji.csv", "Word,Fam\ncafÃ©,3\ndog,4\ndonâ€™t,5\n")
    err = refused(runner, db_url, path, want="line(s) 2, 4 hold UTF-8 text that was decoded twice")
    assert "'cafÃ©' where 'café' was meant" in err
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--encoding", "mixed", "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"café": 3.0, "dog": 4.0, "don\u2019t": 5.0}


def test_a_whole_cp1252_file_still_imports(runner, db_url, tmp_path):
    path = write(tmp_path / "w.csv", "Word;Fam\ncafé;3\nSão;4\n".encode("cp1252"))
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"café": 3.0, "São": 4.0}


# --------------------------------------------------------------------------- xlsx, columns


def test_an_xlsx_formula_without_a_saved_value_names_the_cell(runner, db_url, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "norms"
    for row in (["Word", "Fam"], ["cat", 3], ["dog", "=B2+1"], ["eel", 4]):
        ws.append(row)
    path = tmp_path / "f.xlsx"
    wb.save(path)
    refused(runner, db_url, path, want="cell norms!B3 holds the formula '=B2+1' with no saved value")


def test_a_formula_that_is_a_whole_row_is_not_dropped(runner, db_url, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["Word", "Fam"], ["cat", 3], ['=LOWER("DOG")', "=B2+1"]):
        ws.append(row)
    path = tmp_path / "f.xlsx"
    wb.save(path)
    refused(runner, db_url, path, want="cell Sheet!A3 holds the formula")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_column_named_twice_is_an_error_naming_it(runner, db_url, tmp_path, suffix):
    rows = [["Word", "Fam", "fam "], ["cat", "3", "6"], ["dog", "4", "2"]]
    path = tmp_path / f"dup{suffix}"
    if suffix == ".csv":
        write(path, "".join(",".join(r) + "\n" for r in rows))
    else:
        wb = openpyxl.Workbook()
        for r in rows:
            wb.active.append(r)
        wb.save(path)
    refused(runner, db_url, path, want="the header has 2 columns named 'Fam' (columns 2, 3)")


def test_a_duplicated_column_that_is_not_read_is_fine(runner, db_url, tmp_path):
    path = write(tmp_path / "d.csv", "Word,Fam,Note,Note\ncat,3,a,b\n")
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"cat": 3.0}


def test_a_parquet_list_column_is_one_line(runner, db_url, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"Word": ["cat", "dog"], "Fam": [[1, 2], [3]]}), path)
    refused(runner, db_url, path, want="column 'Fam' holds list<element: int64> values, not single numbers")


# --------------------------------------------------------------------------- items


@pytest.mark.parametrize(
    "item, reason",
    [
        ("ca\x00t", "the item holds a NUL character"),
        ("\u200b\u200d", "the item has no visible characters"),
        ("\ufeff\u2060", "the item has no visible characters"),
        ("w" * 501, "the item is 501 characters long; the store keeps items of up to 500"),
    ],
)
def test_unstorable_items_are_the_same_error_on_both_databases(runner, db_url, tmp_path, item, reason):
    path = write(tmp_path / "i.csv", f"Word,Fam\ncat,3\n{item},4\n")
    err = refused(runner, db_url, path, want="1 problem: row 3, column 'Word', value ")
    assert reason in err
    assert len(err) < 700  # a long value is cut
    # --skip-invalid sets the row aside and imports the rest
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--skip-invalid", "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"cat": 3.0}


def test_an_item_of_exactly_500_characters_is_stored(runner, db_url, tmp_path):
    path = write(tmp_path / "i.csv", f"Word,Fam\n{'w' * 500},4\n")
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"w" * 500: 4.0}


# --------------------------------------------------------------------------- NA markers


def test_spreadsheet_spellings_of_na_and_user_markers(runner, db_url, tmp_path):
    lines = ["cat,3", "dog,#N/D", "eel,#NV", "fox,#N/B", "gnu,#N/V", "hen,#N/A N/A", "ibis,#NA", "jay,-", "kiwi,#N/D!"]
    path = write(tmp_path / "na.csv", "Word,Fam\n" + "\n".join(lines) + "\n")
    err = refused(runner, db_url, path, want="1 problem: row 9, column 'Fam', value '-': not a number")
    assert err
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--na", "-", "--db", db_url)
    assert rows_in_store(db_url)["values"] == {"cat": 3.0}


# --------------------------------------------------------------------------- --rejects


def test_rejects_never_overwrites_the_store_the_input_or_a_folder(runner, tmp_path):
    store = tmp_path / "store.db"
    db = f"sqlite:///{store}"
    path = write(tmp_path / "n.csv", "Word,Fam\ncat,3\ndog,x\n")
    cli(runner, "import", write(tmp_path / "ok.csv", "Word,Fam\neel,1\n"), "--dataset", "d9", *FAM, "--db", db)
    before = store.read_bytes(), path.read_bytes()
    cases = [
        (store, "is the store"),
        (path, "is the file being imported"),
        (tmp_path, "is a folder"),
        (tmp_path / "missing" / "r.csv", "the folder " + str(tmp_path / "missing") + " does not exist"),
    ]
    for target, want in cases:
        out = cli(runner, "import", path, "--dataset", "d0", *FAM, "--skip-invalid", "--rejects", target, "--db", db, code=1)
        assert f"--rejects {target}: {want}" in out.stderr
    assert (store.read_bytes(), path.read_bytes()) == before
    assert not (tmp_path / "missing").exists()
    cli(runner, "import", path, "--dataset", "d0", *FAM, "--skip-invalid", "--rejects", tmp_path / "r.csv", "--db", db)
    assert "d0,3,Fam,x,not a number" in (tmp_path / "r.csv").read_text()


# --------------------------------------------------------------------------- --as-rater


def test_as_rater_values_off_the_dimensions_scale_are_reported(runner, db_url, tmp_path):
    cli(runner, "import", write(tmp_path / "gold.csv", "Word,Fam\ncat,3\ndog,4\n"), "--dataset", "gold", *FAM, "--db", db_url)
    model = write(tmp_path / "model.csv", "Word,Fam\ncat,3.5\ndog,1.7e308\n")
    args = ["import", model, "--as-rater", "m", "--item-column", "Word", "--rating", "familiarity=Fam", "--db", db_url]
    out = cli(runner, *args, code=1)
    assert "row 3, column 'Fam', value '1.7e308': outside the familiarity scale 1-7" in out.stderr
    cli(runner, *args, "--skip-invalid")
    assert rows_in_store(db_url)["ratings"] == 3


# --------------------------------------------------------------------------- names


def test_unknown_dataset_names_get_a_suggestion(runner, db_url, tmp_path):
    from sqlalchemy.orm import Session

    from workbench.errors import WorkbenchError
    from workbench.store import connect
    from workbench.store.itemsets import gold_values, resolve_items

    cli(runner, "import", write(tmp_path / "g.csv", "Word,Fam\ncat,3\n"), "--dataset", "glasgow", *FAM, "--db", db_url)
    eng = connect(db_url)
    try:
        with Session(eng) as s:
            with pytest.raises(WorkbenchError, match=r"no item set or dataset named 'glasgw'\. Did you mean 'glasgow'\?"):
                resolve_items(s, "glasgw")
            with pytest.raises(WorkbenchError, match=r"no dataset named 'Glasgow' in the store\. Did you mean 'glasgow'\?"):
                gold_values(s, "Glasgow", "familiarity")
    finally:
        eng.dispose()
    out = cli(runner, "export", "--dataset", "glasow", "-o", tmp_path / "o.csv", "--db", db_url, code=1)
    assert "Unknown dataset 'glasow'. Did you mean 'glasgow'?" in out.stderr


@pytest.mark.parametrize(
    "args, want",
    [
        (["--dataset", "d" * 201], "dataset name 'ddd"),
        (["--dataset", "d0", "--language", "english-as-spoken-in-scotland"], "language 'english-as-spoken-in-scotland'"),
    ],
)
def test_names_the_store_cannot_hold_are_one_line_on_both_databases(runner, db_url, tmp_path, args, want):
    path = write(tmp_path / "n.csv", "Word,Fam\ncat,3\n")
    out = cli(runner, "import", path, *args, *FAM, "--db", db_url, code=1)
    assert want in out.stderr


def test_as_rater_values_with_rescale_are_checked_before_it(runner, db_url, tmp_path):
    cli(runner, "import", write(tmp_path / "gold.csv", "Word,Fam\ncat,3\ndog,4\n"), "--dataset", "gold", *FAM, "--db", db_url)
    model = write(tmp_path / "model.csv", "Word,Fam\ncat,350\ndog,900\n")
    args = ["import", model, "--as-rater", "m", "--item-column", "Word", "--rating", "familiarity=Fam"]
    out = cli(runner, *args, "--rescale", "familiarity=0.01", "--db", db_url, code=1)
    assert "row 3, column 'Fam', value '900': outside the familiarity scale 100-700" in out.stderr
    write(model, "Word,Fam\ncat,350\ndog,600\n")
    cli(runner, *args, "--rescale", "familiarity=0.01", "--db", db_url)
    assert rows_in_store(db_url)["ratings"] == 4
