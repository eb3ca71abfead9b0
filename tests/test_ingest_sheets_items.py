"""Workbooks read whole and said about, items normalised and said about.

An .xlsx whose stored <dimension ref> is smaller than its used range, hidden
rows, "Mean" rows under the data, columns on another sheet (--sheet hint);
invisible characters in items (no-break space, soft hyphen, zero-width
characters, a stray BOM, decomposed accents).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import create_engine, text

from workbench.cli.main import app
from workbench.errors import WorkbenchError
from workbench.ingest.readers import read_table
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.ingest.validate import build_norms

SPEC = DatasetSpec("d", item=("Word",), ratings=(RatingColumns("familiarity", mean=("Fam",), scale=(1, 7)),))
FAM = ["--item-column", "Word", "--rating", "familiarity=Fam", "--scale", "familiarity=1:7"]


def workbook(path: Path, rows: list[list], *, sheets: dict[str, list[list]] | None = None, hidden: tuple[int, ...] = ()) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "norms"
    for r in rows:
        ws.append(r)
    for r in hidden:
        ws.row_dimensions[r].hidden = True
    for name, body in (sheets or {}).items():
        other = wb.create_sheet(name)
        for r in body:
            other.append(r)
    wb.save(path)
    return path


def shrink_dimension(path: Path, ref: str) -> None:
    """Rewrite every sheet's stored <dimension ref> to `ref`, as some writers leave it."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data, n = re.subn(rb'<dimension ref="[^"]*"', f'<dimension ref="{ref}"'.encode(), data)
                assert n == 1
            dst.writestr(info, data)
    shutil.move(tmp, path)


def values(table) -> dict[str, float]:
    (d,) = table.dimensions
    return {table.items[i]: float(v) for i, v in zip(d.item_index, d.value)}


# --------------------------------------------------------------------------- workbooks


def test_an_xlsx_with_a_stored_dimension_smaller_than_its_data_is_read_whole(tmp_path):
    rows = [["Word", "Fam", "Note"], ["cat", 3, "x"], ["dog", 4, ""], ["eel", 5, ""], ["fox", 6, ""], ["gnu", 2, "y"]]
    path = workbook(tmp_path / "w.xlsx", rows)
    shrink_dimension(path, "A1:B2")
    with zipfile.ZipFile(path) as z:
        assert b'<dimension ref="A1:B2"' in z.read("xl/worksheets/sheet1.xml")
    raw = read_table(path)
    assert raw.n_rows == 5 and raw.header == ["Word", "Fam", "Note"]
    assert values(build_norms(raw, SPEC)) == {"cat": 3.0, "dog": 4.0, "eel": 5.0, "fox": 6.0, "gnu": 2.0}


def test_a_formula_beyond_the_stored_dimension_is_still_checked(tmp_path):
    path = workbook(tmp_path / "f.xlsx", [["Word", "Fam"], ["cat", 3], ["dog", "=B2+1"]])
    shrink_dimension(path, "A1:B2")
    with pytest.raises(WorkbenchError, match=r"cell norms!B3 holds the formula '=B2\+1' with no saved value"):
        read_table(path)


def test_hidden_rows_are_imported_with_a_note(tmp_path):
    rows = [["Word", "Fam"], ["cat", 3], ["dog", 4], ["eel", 5], ["fox", 6]]
    path = workbook(tmp_path / "h.xlsx", rows, hidden=(3, 5))
    raw = read_table(path)
    assert raw.n_rows == 4
    (note,) = raw.notes
    assert note.startswith("2 hidden rows of sheet 'norms' imported like the others (rows 3, 5)")
    assert read_table(workbook(tmp_path / "v.xlsx", rows)).notes == []


def test_a_mean_row_under_the_data_gets_a_note(tmp_path):
    rows = [["Word", "Fam"], ["cat", 3], ["mean", 4], ["dog", 5], [None, None], ["Mean:", 4], ["SD", 1]]
    table = build_norms(read_table(workbook(tmp_path / "m.xlsx", rows)), SPEC)
    assert table.items == ["cat", "mean", "dog", "Mean:", "SD"]  # imported as items, as written
    (note,) = table.notes
    assert note.startswith("the last rows 6 ('Mean:'), 7 ('SD') look like a summary")
    # the word "mean" among the items is an item
    plain = build_norms(read_table(workbook(tmp_path / "p.xlsx", rows[:4])), SPEC)
    assert plain.notes == []


def test_the_same_in_a_csv_export(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("Word,Fam\ncat,3\ndog,5\nAverage,4\n", encoding="utf-8")
    (note,) = build_norms(read_table(path), SPEC).notes
    assert "4 ('Average') looks like a summary" in note


def test_columns_on_another_sheet_get_a_sheet_hint(tmp_path):
    path = workbook(tmp_path / "s.xlsx", [["About"], ["These norms ..."]], sheets={"data": [["Word", "Fam"], ["cat", 3]]})
    with pytest.raises(WorkbenchError) as exc:
        build_norms(read_table(path), SPEC)
    assert "The workbook's sheet 'data' has it: pass --sheet 'data'" in str(exc.value)
    assert values(build_norms(read_table(path, sheet="data"), SPEC)) == {"cat": 3.0}
    # an empty first sheet names the ones with data
    path = workbook(tmp_path / "e.xlsx", [], sheets={"data": [["Word", "Fam"], ["cat", 3]]})
    with pytest.raises(WorkbenchError, match="the sheet 'norms' is empty.*other sheets 'data' have data: pass --sheet NAME"):
        read_table(path)


# --------------------------------------------------------------------------- invisible characters


def test_four_words_with_invisible_variants_come_in_as_four_items(tmp_path):
    variants = {
        "ice cream": ["ice cream", "ice\u00a0cream", "ice\u202fcream", "\u2060ice cream"],
        "software": ["software", "soft\u00adware", "software\u200b", "soft\u200cware"],
        "café": ["café", "cafe\u0301", "\ufeffcafé", "caf\u200de\u0301"],
        "dog": ["dog", "\ufeffdog", "dog\u200b", "do\u200eg"],
    }
    lines = ["Word,Fam"] + [f"{v},{i + 2}" for i, vs in enumerate(variants.values()) for v in vs]
    path = tmp_path / "inv.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = build_norms(read_table(path), SPEC)
    assert table.items == list(variants)
    assert values(table) == {"ice cream": 2.0, "software": 3.0, "café": 4.0, "dog": 5.0}
    assert table.duplicates_merged == 12
    (note,) = table.notes
    assert note == (
        "items normalised: 9 zero-width or format characters removed (zero-width space or joiner, soft hyphen, "
        "BOM, direction marks); 2 no-break or other special spaces made plain spaces; "
        "2 decomposed accents composed (NFC)"
    )


def test_joiners_that_shape_a_script_are_kept(tmp_path):
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645"  # ZWNJ is spelling in Persian
    emoji = "\U0001f469\u200d\U0001f4bb"
    path = tmp_path / "fa.csv"
    path.write_text(f"Word,Fam\n{persian},3\n{emoji},4\n", encoding="utf-8")
    table = build_norms(read_table(path), SPEC)
    assert table.items == [persian, emoji] and table.notes == []


def test_the_import_summary_says_what_was_normalised_and_refuses_nothing_visible(runner, db_url, tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("Word,Fam\ndog,3\n\ufeffdog,3\nsoft\u00adware,4\nsoftware,4\n", encoding="utf-8")
    out = runner.invoke(app, [str(a) for a in ["import", path, "--dataset", "d0", *FAM, "--db", db_url]])
    assert out.exit_code == 0, out.output
    assert "imported 2 items, 2 ratings" in out.stdout
    assert "note: items normalised: 2 zero-width or format characters removed" in out.stdout
    eng = create_engine(db_url)
    with eng.connect() as c:
        assert sorted(c.execute(text("SELECT text FROM items")).scalars()) == ["dog", "software"]
    eng.dispose()
    # an item of only invisible characters is still refused, with its row
    path.write_text("Word,Fam\ncat,3\n\u200b\u00ad,4\n", encoding="utf-8")
    out = runner.invoke(app, [str(a) for a in ["import", path, "--dataset", "d1", *FAM, "--db", db_url]])
    assert out.exit_code == 1 and "row 3, column 'Word'" in out.stderr and "no visible characters" in out.stderr
