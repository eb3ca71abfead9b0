"""Read norm tables as labs publish them.

CSV/TSV in UTF-8 (with or without BOM), UTF-16, Windows-1252 or Latin-1;
LF, CRLF or CR-only line endings; comma, tab or semicolon separators;
blank lines; trailing separators; .xlsx sheets; Parquet.

A reader returns a RawTable: the header as written, one Arrow column per
header cell, and a way to find the file line of any row for error messages.
Every cell of a text file is kept as a string; nothing is guessed about
missing values here (the word "null" is a word).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from workbench.errors import WorkbenchError

TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".tab", ".dat"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon"}


def separator_char(value: str) -> str:
    """A separator given by name (comma, tab, semicolon) or as the character itself ("\\t" for tab)."""
    names = {name: char for char, name in SEPARATORS.items()}
    char = names.get(value, "\t" if value == "\\t" else value)
    if char not in SEPARATORS:
        raise WorkbenchError(f"Unknown separator {value!r}: use comma, tab or semicolon.")
    return char


@dataclass
class RawTable:
    path: Path
    header: list[str]
    columns: list[pa.ChunkedArray | pa.Array]
    n_rows: int
    encoding: str | None = None
    separator: str | None = None
    # maps row index -> line/row number in the file; computed on demand (error path)
    _line_numbers: Callable[[], list[int]] | None = None
    _lines_cache: list[int] | None = field(default=None, repr=False)

    def line_of(self, row: int) -> int:
        if self._lines_cache is None:
            self._lines_cache = self._line_numbers() if self._line_numbers else list(range(2, self.n_rows + 2))
        return self._lines_cache[row]


def detect_encoding(data: bytes) -> str:
    """The encoding of a text file: BOM first, then UTF-16 without BOM, UTF-8, Windows-1252, Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = data[:4096]
    if sample and sample.count(b"\x00") > len(sample) // 4:
        # UTF-16 without BOM: ASCII text has a zero in every other byte
        zeros_even = sample[0::2].count(0)
        zeros_odd = sample[1::2].count(0)
        return "utf-16-be" if zeros_even > zeros_odd else "utf-16-le"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def decode(path: Path, data: bytes, encoding: str | None) -> tuple[str, str]:
    enc = encoding or detect_encoding(data)
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise WorkbenchError(
            f"{path}: cannot read the file as {enc} ({exc}). Pass --encoding with the file's encoding "
            "(e.g. utf-8, utf-16, cp1252, latin-1)."
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, enc


_BLANKISH = re.compile(r"(?m)^[ \t]+$")


def normalise_lines(text: str) -> str:
    """LF line endings (from CRLF or old-Mac CR), whitespace-only lines emptied."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if " \n" in text or "\t\n" in text or text.startswith((" ", "\t")):
        text = _BLANKISH.sub("", text)
    return text


def sniff_separator(header_line: str) -> str:
    counts = {}
    for sep in SEPARATORS:
        in_quotes = False
        n = 0
        for ch in header_line:
            if ch == '"':
                in_quotes = not in_quotes
            elif ch == sep and not in_quotes:
                n += 1
        counts[sep] = n
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def read_text_table(path: Path, *, encoding: str | None = None, separator: str | None = None) -> RawTable:
    data = path.read_bytes()
    text, enc = decode(path, data, encoding)
    text = normalise_lines(text)
    stripped = text.lstrip("\n")
    if not stripped.strip():
        raise WorkbenchError(f"{path}: the file is empty: it needs a header row and at least one data row.")
    first_line = stripped.split("\n", 1)[0]
    sep = separator or sniff_separator(first_line)
    header = next(csv.reader([first_line], delimiter=sep))
    ncols = len(header)
    names = [f"c{i}" for i in range(ncols)]
    invalid: list[str] = []

    def on_invalid(row) -> str:
        invalid.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(stripped.encode("utf-8")),
            read_options=pacsv.ReadOptions(
                use_threads=True, block_size=1 << 24, skip_rows=1, column_names=names
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                true_values=[],
                false_values=[],
                auto_dict_encode=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise WorkbenchError(f"{path}: cannot parse the file as a {SEPARATORS.get(sep, sep)}-separated table: {exc}.") from None
    columns = [table.column(i).cast(pa.string()) for i in range(table.num_columns)]
    leading_blank = len(text) - len(stripped)
    line_offset = text[:leading_blank].count("\n")

    def line_numbers() -> list[tuple[int, list[str]]]:
        """(line, fields) of every non-blank record after the header, by a csv.reader pass."""
        reader = csv.reader(io.StringIO(stripped), delimiter=sep)
        out = []
        for i, rec in enumerate(reader):
            if i == 0 or not rec:
                continue
            out.append((reader.line_num + line_offset, rec))
        return out

    if invalid:
        # ragged rows: trailing separators, or missing trailing cells. Rebuild the table from a csv.reader
        # pass, so rows stay in file order (row order decides which duplicate is "first" and the order of
        # problems in messages) and each keeps its line number.
        records = line_numbers()
        cells: list[list[str]] = []
        for ln, rec in records:
            if len(rec) > ncols:
                extra = rec[ncols:]
                if any(cell.strip() for cell in extra):
                    raise WorkbenchError(
                        f"{path}: row {ln} has {len(rec)} cells but the header has {ncols} columns "
                        f"(extra value {next(c for c in extra if c.strip())!r}). Fix the row or the header."
                    )
                rec = rec[:ncols]
            elif len(rec) < ncols:
                rec = rec + [""] * (ncols - len(rec))
            cells.append(rec)
        by_column = list(zip(*cells)) if cells else [()] * ncols
        columns = [pa.array(list(col), type=pa.string()) for col in by_column]
        all_lines = [ln for ln, _ in records]
        return RawTable(path, header, columns, len(all_lines), enc, sep, lambda: all_lines)

    return RawTable(
        path, header, columns, table.num_rows, enc, sep, lambda: [ln for ln, _ in line_numbers()]
    )


def read_excel_table(path: Path, *, sheet: str | None = None) -> RawTable:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise WorkbenchError(f"{path}: cannot open the workbook ({exc}). Is it an .xlsx file?") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise WorkbenchError(f"{path}: no sheet {sheet!r}; the workbook has {', '.join(wb.sheetnames)}. Pass --sheet.")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        header: list[str] | None = None
        rows: list[tuple] = []
        lines: list[int] = []
        for rownum, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if values is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            if header is None:
                header = ["" if v is None else str(v) for v in values]
                while header and not header[-1].strip():
                    header.pop()
                continue
            rows.append(values)
            lines.append(rownum)
    finally:
        wb.close()
    if header is None:
        raise WorkbenchError(f"{path}: the sheet is empty: it needs a header row and at least one data row.")
    ncols = len(header)
    columns = []
    for j in range(ncols):
        cells = [r[j] if j < len(r) else None for r in rows]
        if all(c is None or isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells):
            columns.append(pa.array([None if c is None else float(c) for c in cells], type=pa.float64()))
        else:
            columns.append(pa.array(["" if c is None else _cell_str(c) for c in cells], type=pa.string()))
    for ln, r in zip(lines, rows):
        extra = [v for v in r[ncols:] if v is not None and str(v).strip()]
        if extra:
            raise WorkbenchError(
                f"{path}: row {ln} has a value {extra[0]!r} beyond the last headed column. Add a header or remove it."
            )
    return RawTable(path, header, columns, len(rows), None, None, lambda: lines)


def _cell_str(c) -> str:
    if isinstance(c, float) and c.is_integer():
        return repr(c)
    return str(c)


def read_parquet_table(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise WorkbenchError(f"{path}: cannot read the Parquet file ({exc}).") from None
    return RawTable(
        path, list(table.column_names), [table.column(i) for i in range(table.num_columns)], table.num_rows,
        _line_numbers=lambda: list(range(1, table.num_rows + 1)),
    )


def read_table(
    path: Path, *, encoding: str | None = None, separator: str | None = None, sheet: str | None = None
) -> RawTable:
    """Read any supported file into a RawTable."""
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"{path}: no such file. Check the path (relative paths are from the study's folder).")
    if path.is_dir():
        raise WorkbenchError(f"{path}: is a folder, not a table file.")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return read_excel_table(path, sheet=sheet)
    if suffix == ".xls":
        raise WorkbenchError(f"{path}: old .xls workbooks are not read; save the sheet as .xlsx or CSV.")
    if suffix in PARQUET_SUFFIXES:
        return read_parquet_table(path)
    if separator is None and suffix in {".tsv", ".tab"}:
        separator = "\t"
    return read_text_table(path, encoding=encoding, separator=separator)
