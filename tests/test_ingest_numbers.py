"""Numbers read as written: decimal marks and thousands separators, values within rounding of a scale's
bounds, off-scale values that name --scale, Parquet nulls, and the decimal-comma hint.

One number parser serves every reader (text cells of CSV, .xlsx and Parquet alike).
"""

from __future__ import annotations

import decimal

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import cli
from workbench.ingest.readers import read_table
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.ingest.validate import ImportProblems, build_norms, parse_numbers

FAM = ["--item-column", "Word", "--rating", "familiarity=Fam", "--scale", "familiarity=1:7"]


def spec(decimal=".", scale=(1, 7), sd=False, n=False) -> DatasetSpec:
    return DatasetSpec(
        "d",
        item=("Word",),
        ratings=(RatingColumns("familiarity", mean=("Fam",), sd=("SD",) if sd else (), n=("N",) if n else (), scale=scale),),
        decimal=decimal,
    )


def values(table) -> dict[str, float]:
    (d,) = table.dimensions
    return {table.items[i]: float(v) for i, v in zip(d.item_index, d.value)}


def parsed(cells: list[str], decimal: str) -> list[float | str]:
    vals, missing, invalid = parse_numbers(pa.array(cells, type=pa.string()), (), decimal)
    return ["bad" if b else ("na" if m else float(v)) for v, m, b in zip(vals, missing, invalid)]


def db_values(db_url: str) -> dict[str, float]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            return dict(c.execute(text("SELECT i.text, r.value FROM ratings r JOIN items i ON i.id = r.item_id")).all())
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- decimal marks


def test_with_a_decimal_comma_a_dot_groups_thousands_or_is_an_error():
    assert parsed(["1.500", "4,5", "1.234.567,25", "-2.000", "7", ""], ",") == [1500.0, 4.5, 1234567.25, -2000.0, 7.0, "na"]
    # a dot that cannot group thousands is not a decimal point with --decimal ,
    assert parsed(["4,5", "1.5", "12.34", "1.5000", ".5"], ",") == [4.5, "bad", "bad", "bad", "bad"]


def test_with_a_decimal_point_a_comma_groups_thousands_when_the_column_says_so():
    # a column with decimal points: 1,500 is grouped
    assert parsed(["1,500", "2.25", "1,234,567.5", "12,345"], ".") == [1500.0, 2.25, 1234567.5, 12345.0]
    # unambiguous groupings stand on their own: two groups, or a decimal part
    assert parsed(["1,234,567", "1,234.5", "3"], ".") == [1234567.0, 1234.5, 3.0]
    # a lone 1,500 in a column without decimal points could be a decimal comma: refused, not guessed
    assert parsed(["1,500", "3"], ".") == ["bad", 3.0]
    # a column that uses the comma as a decimal mark (4,5) makes 1,500 ambiguous too
    assert parsed(["1,500", "4,5", "2.5"], ".") == ["bad", "bad", 2.5]


def test_a_decimal_comma_file_with_thousands_is_stored_right(runner, db_url, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Word;Fam;N\ncat;4,5;1.500\ndog;3,25;2.000\neel;6;1.234\n", encoding="utf-8")
    cli(runner, "import", path, "--dataset", "d1", "--item-column", "Word", "--rating", "familiarity=Fam,n=N",
        "--decimal", ",", "--db", db_url)  # fmt: skip
    eng = create_engine(db_url)
    with eng.connect() as c:
        got = dict(c.execute(text("SELECT i.text, r.n FROM ratings r JOIN items i ON i.id = r.item_id")).all())
    eng.dispose()
    assert got == {"cat": 1500, "dog": 2000, "eel": 1234}
    assert db_values(db_url) == {"cat": 4.5, "dog": 3.25, "eel": 6.0}


def test_a_dot_that_cannot_group_thousands_is_refused_with_a_decimal_comma(runner, db_url, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Word;Fam\ncat;4,5\ndog;1.5\n", encoding="utf-8")
    out = cli(runner, "import", path, "--dataset", "d0", *FAM, "--decimal", ",", "--db", db_url, code=1)
    assert "row 3, column 'Fam', value '1.5': not a number with a decimal comma" in out.stderr
    assert db_values(db_url) == {}


def test_decimal_commas_without_decimal_get_the_hint(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Word;Fam\ncat;4,5\ndog;3,25\n", encoding="utf-8")
    with pytest.raises(ImportProblems) as exc:
        build_norms(read_table(path), spec())
    assert "value '4,5': not a number with a decimal point (a decimal comma? pass --decimal ," in str(exc.value)
    assert values(build_norms(read_table(path), spec(","))) == {"cat": 4.5, "dog": 3.25}


def test_one_parser_for_xlsx_text_cells(tmp_path):
    path = tmp_path / "n.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["Word", "Fam", "N"], ["cat", "4,5", "1.500"], ["dog", 3.5, 20]):
        ws.append(row)
    wb.save(path)
    table = build_norms(read_table(path), spec(",", n=True))
    assert values(table) == {"cat": 4.5, "dog": 3.5}
    assert sorted(table.dimensions[0].n.tolist()) == [20.0, 1500.0]


# --------------------------------------------------------------------------- Parquet nulls


def test_parquet_nulls_in_string_and_decimal_columns_are_missing(tmp_path):
    path = tmp_path / "n.parquet"
    dec = pa.array([decimal.Decimal("4.50"), None, decimal.Decimal("6.25")], type=pa.decimal128(5, 2))
    pq.write_table(
        pa.table({"Word": ["cat", "dog", "eel"], "Fam": pa.array(["4.5", None, "6"]), "SD": dec}),
        path,
    )
    table = build_norms(read_table(path), spec(sd=True))
    assert values(table) == {"cat": 4.5, "eel": 6.0}
    assert table.dimensions[0].sd.tolist() == [4.5, 6.25]
    # a null in the mean of a row that has an SD is a missing mean, not "value '': not a number"
    pq.write_table(pa.table({"Word": ["cat", "dog"], "Fam": pa.array([None, "5"]), "SD": dec[:2]}), path)
    assert values(build_norms(read_table(path), spec(sd=True))) == {"dog": 5.0}
    # decimals as the mean, with nulls, read as numbers
    pq.write_table(pa.table({"Word": ["cat", "dog", "eel"], "Fam": dec}), path)
    assert values(build_norms(read_table(path), spec())) == {"cat": 4.5, "eel": 6.25}


def test_parquet_dictionary_strings_with_nulls(tmp_path):
    path = tmp_path / "d.parquet"
    fam = pa.array(["4,5", None, "2"]).dictionary_encode()
    pq.write_table(pa.table({"Word": ["cat", "dog", "eel"], "Fam": fam}), path)
    assert values(build_norms(read_table(path), spec(","))) == {"cat": 4.5, "eel": 2.0}


# --------------------------------------------------------------------------- scale bounds


def test_values_within_rounding_of_a_bound_are_on_the_scale(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("Word,Fam\ncat,7.000000023104452\ndog,0.9999999999\neel,4\nfox,7.0000001\n", encoding="utf-8")
    table = build_norms(read_table(path), spec())
    assert values(table) == {"cat": 7.0, "dog": 1.0, "eel": 4.0, "fox": 7.0}
    (note,) = table.notes
    assert note.startswith("familiarity: 3 values within rounding of the scale's bounds (1-7) set to the bound")


def test_values_really_off_the_scale_are_refused_naming_scale(runner, db_url, tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("Word,Fam\ncat,7.00001\ndog,3\n", encoding="utf-8")
    out = cli(runner, "import", path, "--dataset", "d0", *FAM, "--db", db_url, code=1)
    assert "value '7.00001': outside the familiarity scale 1-7" in out.stderr
    assert "--scale familiarity=MIN:MAX" in out.stderr
    assert db_values(db_url) == {}


def test_a_rater_in_years_is_refused_naming_scale_and_imports_with_it(runner, db_url, tmp_path):
    path = tmp_path / "aoa.csv"
    path.write_text("Word,AoA\ncat,3.5\ndog,12\neel,6.2\n", encoding="utf-8")
    norms = tmp_path / "norms.csv"
    norms.write_text("Word,AoA\ncat,2\ndog,5\n", encoding="utf-8")
    aoa = ["--item-column", "Word", "--rating", "aoa=AoA"]
    cli(runner, "import", norms, "--dataset", "gold", *aoa, "--scale", "aoa=1:7", "--db", db_url)
    out = cli(runner, "import", path, "--as-rater", "m", *aoa, "--db", db_url, code=1)
    assert "value '12': outside the aoa scale 1-7" in out.stderr and "--scale aoa=MIN:MAX" in out.stderr
    cli(runner, "import", path, "--as-rater", "m", *aoa, "--scale", "aoa=0:25", "--db", db_url)


def test_the_tolerance_is_relative_to_the_scale_range(tmp_path):
    path = tmp_path / "mrc.csv"
    path.write_text("Word,Fam\ncat,700.00005\ndog,99.9999\n", encoding="utf-8")
    assert values(build_norms(read_table(path), spec(scale=(100, 700)))) == {"cat": 700.0, "dog": 100.0}
    path.write_text("Word,Fam\ncat,700.001\n", encoding="utf-8")
    with pytest.raises(ImportProblems, match="outside the familiarity scale 100-700"):
        build_norms(read_table(path), spec(scale=(100, 700)))
