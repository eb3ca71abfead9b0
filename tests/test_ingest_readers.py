"""Files as labs publish them: every encoding, line ending, separator and mess must read the same.

The variants are generated in tmp_path from the real Glasgow Norms file
(CRLF, 5,553 rows, "Familiarty.M" typo in the header) plus a few non-ASCII
words, and each must give the same items and values as a pandas read of
the original.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.ingest.encoding import EncodingUnclear
from workbench.ingest.load import import_file
from workbench.ingest.presets import preset_specs
from workbench.ingest.readers import detect_encoding, read_table
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.ingest.validate import ImportProblems, NormTable, build_norms
from workbench.store import connect

# dimension -> (mean, sd, n) columns as headed in the published file
GLASGOW_COLUMNS = {
    "arousal": ("Arousal.M", "Arousal.SD", "Arousal.N"),
    "valence": ("Valence.M", "Valence.SD", "Valence.N"),
    "dominance": ("Dominance.M", "Dominance.SD", "Dominance.N"),
    "concreteness": ("Concreteness.M", "Concreteness.SD", "Concreteness.N"),
    "imageability": ("Imag.M", "Imag.SD", "Imag.N"),
    "familiarity": ("Familiarty.M", "Familiarty.SD", "Familiarity.N"),
    "aoa": ("AoA.M", "AoA.SD", "AoA.N"),
    "size": ("Size.M", "Size.SD", "Size.N"),
    "gender": ("Gender.M", "Gender.SD", "Gender.N"),
}
# extra rows, each copying the values of the published row at the same position
EXTRA_WORDS = ["café", "naïve", "façade", "Zoë", "o\u2019clock", "日本語"]
GLASGOW_ROWS = 5553


def glasgow_path(shared_data: Path) -> Path:
    return shared_data / "glasgow" / "glasgow_norms.csv"


@functools.cache
def published(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the original file, cells exactly as written."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@functools.cache
def pandas_original(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def extras_for(encoding: str) -> list[str]:
    out = []
    for w in EXTRA_WORDS:
        try:
            w.encode(encoding)
        except UnicodeEncodeError:
            continue
        out.append(w)
    return out


def with_extras(path: Path, words: list[str]) -> tuple[list[str], list[list[str]], pd.DataFrame]:
    """(header, rows, expected frame) for the published file plus `words`."""
    header, rows = published(path)
    rows = [list(r) for r in rows]
    expected = pandas_original(path)
    add = []
    for k, w in enumerate(words):
        rows.append([w, *rows[k][1:]])
        r = expected.iloc[k].copy()
        r["Words"] = w
        add.append(r)
    if add:
        expected = pd.concat([expected, pd.DataFrame(add)], ignore_index=True)
    return header, rows, expected


def render(
    header: list[str],
    rows: list[list[str]],
    *,
    sep: str = ",",
    eol: str = "\r\n",
    decimal_comma: bool = False,
    junk: dict[int, list[str]] | None = None,
    leading: list[str] = (),
    trailing_every: int = 0,
    header_trailing: bool = False,
    final_eol: bool = True,
) -> tuple[str, list[int]]:
    """The text of a table, and the file line (1-based) of each data row.

    junk[i] are lines (blank, whitespace-only) put before data row i
    (i == len(rows) puts them at the end); trailing_every=k adds a trailing
    separator to every k-th data row.
    """
    junk = junk or {}

    def fmt(cells: list[str]) -> str:
        buf = io.StringIO()
        csv.writer(buf, delimiter=sep, lineterminator="").writerow(cells)
        return buf.getvalue()

    lines = list(leading)
    lines.append(fmt(header) + (sep if header_trailing else ""))
    where = []
    for i, r in enumerate(rows):
        lines.extend(junk.get(i, []))
        cells = list(r)
        if decimal_comma:
            cells = [cells[0], *(c.replace(".", ",") for c in cells[1:])]
        line = fmt(cells)
        if header_trailing or (trailing_every and i % trailing_every == 0):
            line += sep
        where.append(len(lines) + 1)
        lines.append(line)
    lines.extend(junk.get(len(rows), []))
    return eol.join(lines) + (eol if final_eol else ""), where


def glasgow_spec(decimal: str = ".") -> DatasetSpec:
    return preset_specs("glasgow", "glasgow", decimal=decimal)[0]


def frame_of(table: NormTable, dimension: str) -> pd.DataFrame:
    d = next(d for d in table.dimensions if d.columns.dimension == dimension)
    items = np.array(table.items, dtype=object)[d.item_index]
    return pd.DataFrame(
        {
            "value": d.value,
            "sd": np.full(len(d.value), np.nan) if d.sd is None else d.sd,
            "n": np.full(len(d.value), np.nan) if d.n is None else d.n,
        },
        index=pd.Index(items, dtype=object),
    ).sort_index()


def assert_same_norms(table: NormTable, expected: pd.DataFrame, missing: dict[str, set[str]] | None = None) -> None:
    """The table holds exactly the expected items and, per dimension, the same means, SDs and ns."""
    missing = missing or {}
    assert len(table.items) == len(expected)
    assert sorted(table.items) == sorted(expected["Words"].tolist())
    assert {d.columns.dimension for d in table.dimensions} == set(GLASGOW_COLUMNS)
    for dim, (m, sd, n) in GLASGOW_COLUMNS.items():
        got = frame_of(table, dim)
        exp = expected.set_index("Words")[[m, sd, n]]
        exp = exp[~exp.index.isin(missing.get(dim, set()))]
        exp = exp.set_axis(["value", "sd", "n"], axis=1)
        exp.index = pd.Index(exp.index.tolist(), dtype=object)
        exp = exp.sort_index()
        assert got.index.tolist() == exp.index.tolist(), dim
        for col in ("value", "sd", "n"):
            np.testing.assert_array_equal(got[col].to_numpy(), exp[col].to_numpy(dtype=float), err_msg=f"{dim} {col}")


def read_norms(path: Path, spec: DatasetSpec | None = None, **kw) -> NormTable:
    return build_norms(read_table(path, **kw), spec or glasgow_spec())


# --------------------------------------------------------------------------- the original


def test_original_file_reads_as_published(shared_data):
    path = glasgow_path(shared_data)
    data = path.read_bytes()
    # CRLF between lines, none after the last one
    assert data.count(b"\r\n") == data.count(b"\n") == GLASGOW_ROWS and not data.endswith(b"\n")
    raw = read_table(path)
    assert raw.n_rows == GLASGOW_ROWS
    assert "Familiarty.M" in raw.header and "Familiarity.N" in raw.header
    assert raw.encoding == "utf-8" and raw.separator == ","
    table = build_norms(raw, glasgow_spec())
    assert table.n_ratings == 49_977
    assert "address (postal)" in table.items and "Apple (brand)" in table.items
    assert_same_norms(table, pandas_original(path))


# --------------------------------------------------------------------------- encodings

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_reads_the_same(shared_data, tmp_path, encoding):
    words = extras_for(encoding)
    assert {"café", "naïve"} <= set(words)
    header, rows, expected = with_extras(glasgow_path(shared_data), words)
    text_, _ = render(header, rows)
    data = text_.encode(encoding)
    if encoding == "utf-16":
        assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if encoding in ("utf-16-le", "utf-16-be", "utf-8", "cp1252", "latin-1"):
        assert not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"))
    path = tmp_path / f"glasgow-{encoding}.csv"
    path.write_bytes(data)

    raw = read_table(path)
    table = build_norms(raw, glasgow_spec())
    assert_same_norms(table, expected)
    assert table.items[0] == "abattoir"  # a BOM must not stick to the first cell or the header
    assert raw.header[0] == "Words"
    if encoding == "cp1252":
        # the curly apostrophe is 0x92, which Latin-1 would read as a control character
        assert "o\u2019clock" in table.items
        assert raw.encoding == "cp1252"


def test_detect_encoding_names():
    sample = "Word,X\r\ncafé,1\r\n"
    assert detect_encoding(sample.encode("utf-8")) == "utf-8"
    assert detect_encoding(sample.encode("utf-8-sig")) == "utf-8-sig"
    assert detect_encoding(sample.encode("utf-16")) == "utf-16"
    assert detect_encoding(sample.encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding(sample.encode("utf-16-be")) == "utf-16-be"
    # one word alone ("o’clock") also reads as Mac Roman "oíclock", "café" and "naïve" as Slovak-looking
    # Windows-1250 ("naďve"): a few words tell them apart (test_ingest_encoding.py checks code pages in depth)
    assert detect_encoding("Word,X\r\no\u2019clock,1\r\ncafé,2\r\ncrêpe,3\r\n".encode("cp1252")) == "cp1252"
    # 0x81 is undefined in Windows-1252 and a control character in Latin-1; the code pages that read it
    # give "abÅc", "ab│c" or "abЃc", none clearly words: refused rather than guessed
    with pytest.raises(EncodingUnclear):
        detect_encoding(b"Word,X\r\nab\x81c,1\r\n")


def test_explicit_encoding_is_used_and_a_wrong_one_is_a_clear_error(shared_data, tmp_path):
    header, rows, expected = with_extras(glasgow_path(shared_data), ["café", "naïve"])
    text_, _ = render(header, rows)
    path = tmp_path / "latin.csv"
    path.write_bytes(text_.encode("latin-1"))
    assert_same_norms(read_norms(path, encoding="latin-1"), expected)
    with pytest.raises(WorkbenchError) as exc:
        read_table(path, encoding="utf-8")
    msg = str(exc.value)
    assert msg.startswith(f"{path}: cannot read the file as utf-8")
    assert "--encoding" in msg


# --------------------------------------------------------------------------- line endings, separators, mess


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("final_eol", [True, False], ids=["final-eol", "no-final-eol"])
def test_every_line_ending_reads_the_same(shared_data, tmp_path, eol, final_eol):
    header, rows, expected = with_extras(glasgow_path(shared_data), extras_for("utf-8"))
    text_, _ = render(header, rows, eol=eol, final_eol=final_eol)
    path = tmp_path / "glasgow.csv"
    path.write_bytes(text_.encode("utf-8"))
    assert_same_norms(read_norms(path), expected)


@pytest.mark.parametrize(
    "name, sep, decimal_comma, separator_arg",
    [
        ("glasgow.tsv", "\t", False, None),  # tab from the suffix
        ("glasgow.txt", "\t", False, None),  # tab sniffed from the header
        ("glasgow.csv", ";", True, None),  # European: semicolons and decimal commas
        ("glasgow.txt", ";", False, ";"),  # separator given explicitly
    ],
    ids=["tsv", "tab-sniffed", "semicolon-decimal-comma", "semicolon-explicit"],
)
def test_separators_read_the_same(shared_data, tmp_path, name, sep, decimal_comma, separator_arg):
    header, rows, expected = with_extras(glasgow_path(shared_data), extras_for("utf-8"))
    text_, _ = render(header, rows, sep=sep, decimal_comma=decimal_comma, eol="\n")
    if decimal_comma:
        assert "4,2;2,4;25" in text_  # abattoir's arousal mean and SD as a European spreadsheet writes them
    path = tmp_path / name
    path.write_bytes(text_.encode("utf-8"))
    raw = read_table(path, separator=separator_arg)
    assert raw.separator == sep
    table = build_norms(raw, glasgow_spec(decimal="," if decimal_comma else "."))
    assert_same_norms(table, expected)


def test_decimal_commas_are_numbers_only_where_declared(shared_data, tmp_path):
    header, rows, _ = with_extras(glasgow_path(shared_data), [])
    text_, lines = render(header, rows, sep=";", decimal_comma=True, eol="\n")
    path = tmp_path / "glasgow.csv"
    path.write_bytes(text_.encode("utf-8"))
    with pytest.raises(ImportProblems) as exc:
        read_norms(path, glasgow_spec(decimal="."))
    assert f"{path}: " in str(exc.value)
    assert f"row {lines[0]}, column 'Arousal.M', value '4,2': not a number" in str(exc.value)


MESS = {
    0: ["", "   "],
    7: [""],
    100: ["\t", " \t "],
    2000: ["", "", ""],
    GLASGOW_ROWS: ["", "  "],  # after the last published row, before the extras
}


@pytest.mark.parametrize(
    "options",
    [
        dict(junk=MESS),
        dict(junk=MESS, leading=["", "  "]),
        dict(trailing_every=1),  # every data row ends in a separator, the header does not
        dict(trailing_every=7, junk=MESS),  # some rows do
        dict(header_trailing=True),  # header and rows end in a separator: an empty extra column
        dict(junk=MESS, trailing_every=3, eol="\r", final_eol=False),
        dict(junk=MESS, trailing_every=5, sep="\t", eol="\n"),
    ],
    ids=["blank-lines", "leading-blank-lines", "trailing-separators", "some-trailing", "header-trailing", "cr-mess", "tab-mess"],
)
def test_blank_and_whitespace_lines_and_trailing_separators(shared_data, tmp_path, options):
    header, rows, expected = with_extras(glasgow_path(shared_data), extras_for("utf-8"))
    text_, _ = render(header, rows, **options)
    path = tmp_path / "messy.csv"
    path.write_bytes(text_.encode("utf-8"))
    raw = read_table(path)
    assert raw.n_rows == len(rows)
    table = build_norms(raw, glasgow_spec())
    assert table.blank_rows == 0
    assert_same_norms(table, expected)


def test_items_are_trimmed_and_quoted_cells_kept(shared_data, tmp_path):
    header, rows, expected = with_extras(glasgow_path(shared_data), [])
    rows = [list(r) for r in rows]
    rows[0][0] = "  abattoir\t"
    rows[1][0] = "abbey "
    rows[2].append("")  # one trailing empty cell
    text_, _ = render(header, rows)
    # a quoted item holding the separator and a quote
    text_ = text_.replace("\r\nabduction,", '\r\n"abduction, ""quoted""",', 1)
    path = tmp_path / "quoted.csv"
    path.write_bytes(text_.encode("utf-8"))
    table = read_norms(path)
    assert 'abduction, "quoted"' in table.items
    assert "abattoir" in table.items and "abbey" in table.items
    assert "abduction" not in table.items
    assert len(table.items) == GLASGOW_ROWS


def test_na_markers_are_missing_values(shared_data, tmp_path):
    header, rows, expected = with_extras(glasgow_path(shared_data), [])
    rows = [list(r) for r in rows]
    markers = ["", "NA", "N/A", "#N/A", "n/a", " NA "]
    col = header.index("Arousal.M")
    gone = set()
    for k, marker in enumerate(markers):
        rows[10 + k][col] = marker
        gone.add(rows[10 + k][0])
    text_, _ = render(header, rows)
    path = tmp_path / "na.csv"
    path.write_bytes(text_.encode("utf-8"))
    table = read_norms(path)
    assert table.n_ratings == 49_977 - len(markers)
    assert_same_norms(table, expected, missing={"arousal": gone})


def test_header_typo_or_its_correction_both_read(shared_data, tmp_path):
    header, rows, expected = with_extras(glasgow_path(shared_data), [])
    fixed = [h.replace("Familiarty", "Familiarity") for h in header]
    assert fixed != header
    text_, _ = render(fixed, rows)
    path = tmp_path / "fixed.csv"
    path.write_bytes(text_.encode("utf-8"))
    expected = expected.rename(columns={"Familiarty.M": "Familiarity.M", "Familiarty.SD": "Familiarity.SD"})
    table = read_norms(path)
    fam = frame_of(table, "familiarity")
    np.testing.assert_array_equal(fam["value"].to_numpy(), expected.set_index("Words")["Familiarity.M"].sort_index().to_numpy())
    # header names are matched after folding case and surrounding whitespace
    loose = [f" {h.upper()} " if h.endswith(".M") else h for h in header]
    text_, _ = render(loose, rows)
    path.write_bytes(text_.encode("utf-8"))
    assert read_norms(path).n_ratings == 49_977


# --------------------------------------------------------------------------- row numbers in messages


def test_messages_name_the_file_line_in_a_messy_file(shared_data, tmp_path):
    header, rows, _ = with_extras(glasgow_path(shared_data), extras_for("utf-8"))
    rows = [list(r) for r in rows]
    col = header.index("Arousal.M")
    bad = [3, 14, 150, 2499, len(rows) - 1]  # rows 14 and 2499 also carry a trailing separator (every 7th)
    for i in bad:
        rows[i][col] = "x"
    rows[3][col] = "12"
    text_, lines = render(header, rows, junk=MESS, leading=["", " "], trailing_every=7, eol="\r", final_eol=False)
    path = tmp_path / "messy.csv"
    path.write_bytes(text_.encode("utf-16"))
    with pytest.raises(ImportProblems) as exc:
        read_norms(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: 5 problems: ")
    expected = [
        f"row {lines[3]}, column 'Arousal.M', value '12': outside the arousal scale 1-9",
        *(f"row {lines[i]}, column 'Arousal.M', value 'x': not a number" for i in bad[1:]),
    ]
    # in file order, with the physical line numbers (header = line 3 here)
    positions = [msg.index(e) for e in expected]
    assert positions == sorted(positions)
    assert lines[3] == 3 + 2 + 3 + 1  # two leading lines, header, two junk lines before row 0, three rows
    # problems carry the same lines when set aside
    table = build_norms(read_table(path), glasgow_spec(), skip_invalid=True)
    assert [line for line, _ in table.rejected] == [lines[i] for i in bad]
    assert len(table.items) == len(rows) - len(bad)


def test_ragged_row_with_an_extra_value_is_refused_with_its_line(shared_data, tmp_path):
    header, rows, _ = with_extras(glasgow_path(shared_data), [])
    text_, lines = render(header, rows, junk=MESS, trailing_every=11, eol="\n")
    text_lines = text_.split("\n")
    text_lines[lines[40] - 1] += ",99,extra"
    path = tmp_path / "ragged.csv"
    path.write_bytes("\n".join(text_lines).encode("utf-8"))
    with pytest.raises(WorkbenchError) as exc:
        read_table(path)
    assert str(exc.value).startswith(f"{path}: row {lines[40]} has 31 cells but the header has 29 columns")


def test_empty_files_are_refused(tmp_path):
    for name, data in [("empty.csv", b""), ("blank.csv", b"\r\n  \r\n\t\r\n"), ("bom.csv", "\ufeff".encode("utf-8"))]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WorkbenchError, match=re.escape(f"{path}: the file is empty")):
            read_table(path)
    with pytest.raises(WorkbenchError, match=re.escape(f"{tmp_path / 'nope.csv'}: no such file")):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(WorkbenchError, match="old .xls workbooks are not read"):
        read_table(tmp_path / "old.xls")


# --------------------------------------------------------------------------- xlsx


def write_xlsx(path: Path, header, rows, *, as_text: bool = False, top_blank: int = 0, blank_every: int = 0, sheet_first=None):
    """Rows as a sheet; numbers as numbers unless as_text. Returns the sheet row of each data row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    if sheet_first is not None:
        ws.title = "readme"
        ws.append(["This workbook holds the norms on the next sheet"])
        ws = wb.create_sheet(sheet_first)
    r = 1 + top_blank
    for j, h in enumerate(header, start=1):
        ws.cell(row=r, column=j, value=h)
    where = []
    for i, row in enumerate(rows):
        r += 1
        if blank_every and i % blank_every == 0 and i:
            r += 1  # leave a blank row
        for j, v in enumerate(row, start=1):
            if j > 1 and not as_text and v not in ("", None):
                try:
                    v = float(v) if "." in v else int(v)
                except ValueError:
                    pass
            if v != "":
                ws.cell(row=r, column=j, value=v)
        where.append(r)
    wb.save(path)
    return where


@pytest.mark.parametrize(
    "options",
    [dict(), dict(as_text=True), dict(top_blank=2, blank_every=500, sheet_first="norms")],
    ids=["numbers", "numbers-as-text", "blank-rows-second-sheet"],
)
def test_xlsx_reads_the_same(shared_data, tmp_path, options):
    header, rows, expected = with_extras(glasgow_path(shared_data), extras_for("utf-8"))
    path = tmp_path / "glasgow.xlsx"
    write_xlsx(path, header, rows, **options)
    sheet = options.get("sheet_first")
    assert_same_norms(read_norms(path, sheet=sheet), expected)


def test_xlsx_messages_name_the_sheet_row(shared_data, tmp_path):
    header, rows, _ = with_extras(glasgow_path(shared_data), [])
    rows = [list(r) for r in rows]
    col = header.index("Gender.M")
    rows[1000][col] = "lots"
    rows[4000][col] = "8"
    path = tmp_path / "bad.xlsx"
    where = write_xlsx(path, header, rows, top_blank=2, blank_every=700)
    with pytest.raises(ImportProblems) as exc:
        read_norms(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: 2 problems: row {where[1000]}, column 'Gender.M', value 'lots': not a number; ")
    assert f"row {where[4000]}, column 'Gender.M', value '8': outside the gender scale 1-7" in msg
    assert where[1000] == 1000 + 2 + 1 + 1 + 1000 // 700  # two blank rows on top, header, one blank row every 700
    with pytest.raises(WorkbenchError, match=re.escape(f"{path}: no sheet 'norms'; the workbook has Sheet")):
        read_table(path, sheet="norms")


@pytest.mark.parametrize("name, n_items", [("glasgow_mrc_familiarity.xlsx", 2545), ("train_1500.xlsx", 1500), ("test_1045.xlsx", 1045)])
def test_real_toolbox_workbooks(shared_data, name, n_items):
    path = shared_data / "glasgow_mrc" / name
    expected = pd.read_excel(path, engine="openpyxl")
    assert len(expected) == n_items
    raw = read_table(path)
    assert raw.n_rows == n_items and raw.header[:4] == ["Word", "FAM_Glas", "FAM_MRC_OLD", "FAM_MRC"]
    specs = preset_specs("glasgow_mrc", "toolbox")
    glas, mrc = (build_norms(raw, s) for s in specs)
    for table, col in ((glas, "FAM_Glas"), (mrc, "FAM_MRC")):
        assert table.items == expected["Word"].tolist()
        (d,) = table.dimensions
        assert d.columns.dimension == "familiarity"
        np.testing.assert_array_equal(np.asarray(table.items, dtype=object)[d.item_index], expected["Word"].to_numpy())
        np.testing.assert_array_equal(d.value, expected[col].to_numpy(dtype=float))
    # the old MRC column on its 100-700 scale, rescaled by 0.01, is the published FAM_MRC to the last digit
    old = DatasetSpec(
        "mrc-old",
        item=("Word",),
        ratings=(RatingColumns("familiarity", mean=("FAM_MRC_OLD",), scale=(100, 700), rescale=0.01),),
    )
    (d,) = build_norms(raw, old).dimensions
    np.testing.assert_array_equal(d.value, expected["FAM_MRC"].to_numpy(dtype=float))


# --------------------------------------------------------------------------- through the store


def test_messy_variants_import_into_the_store_alike(shared_data, tmp_path):
    """The same norms from three messy files land in the store as the same numbers."""
    header, rows, expected = with_extras(glasgow_path(shared_data), extras_for("cp1252"))
    files = {}
    t, _ = render(header, rows, junk=MESS, eol="\r", trailing_every=3)
    files["cr"] = (tmp_path / "cr.csv", t.encode("utf-16-le"), ".")
    t, _ = render(header, rows, sep=";", decimal_comma=True, junk=MESS)
    files["semi"] = (tmp_path / "semi.csv", t.encode("cp1252"), ",")
    files["xlsx"] = (tmp_path / "g.xlsx", None, ".")
    write_xlsx(files["xlsx"][0], header, rows, top_blank=1, blank_every=999)
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        for name, (path, data, decimal) in files.items():
            if data is not None:
                path.write_bytes(data)
            with Session(engine) as s, s.begin():
                (res,) = import_file(s, path, preset_specs("glasgow", name, decimal=decimal))
            assert (res.status, res.items, res.ratings) == ("imported", len(expected), 9 * len(expected))
        with engine.connect() as c:
            got = {
                name: sorted(
                    c.execute(
                        text(
                            "SELECT i.text, d.name, r.value, r.sd, r.n FROM ratings r JOIN items i ON i.id = r.item_id "
                            "JOIN dimensions d ON d.id = r.dimension_id JOIN raters ra ON ra.id = r.rater_id "
                            "WHERE ra.name = :n"
                        ),
                        {"n": name},
                    ).all()
                )
                for name in files
            }
            n_items = c.execute(text("SELECT count(*) FROM items")).scalar_one()
        assert n_items == len(expected)
        assert got["cr"] == got["semi"] == got["xlsx"]
        want = sorted(
            (row["Words"], dim, float(row[m]), float(row[sd]), int(row[n]))
            for _, row in expected.iterrows()
            for dim, (m, sd, n) in GLASGOW_COLUMNS.items()
        )
        assert [tuple(r) for r in got["cr"]] == want
    finally:
        engine.dispose()
