"""Read norm tables as labs publish them.

CSV/TSV in UTF-8 (with or without BOM), UTF-16 (with or without BOM), or a
single-byte code page (Windows-1250/1251/1252/1253/1254/1257, ISO-8859-2/7/15,
KOI8-R/U, Mac Roman, DOS 866: see ingest.encoding), or refused naming --encoding;
LF, CRLF or CR-only line endings; comma, tab or semicolon separators;
blank lines; trailing separators; .xlsx sheets; Parquet.

A reader returns a RawTable: the header as written, one Arrow column per
header cell, and a way to find the file line of any row for error messages.
Every cell of a text file is kept as a string; nothing is guessed about
missing values here (the word "null" is a word).
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from workbench.errors import WorkbenchError
from workbench.ingest.encoding import CODE_PAGES, NAMES, EncodingUnclear, detect, reads_as_utf8
from workbench.ingest.spec import clip

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
    # what the reader saw that the import summary should say (a detected code page, hidden rows): one sentence each
    notes: list[str] = field(default_factory=list)
    # other sheets of a workbook, for hints when the columns are not on the one read
    other_sheets: dict[str, list[str]] = field(default_factory=dict)
    # a column of text cells mixed with number cells (.xlsx): its number cells' values (NaN elsewhere), so
    # they are not read again as text under the file's decimal mark
    cell_numbers: dict[int, np.ndarray] = field(default_factory=dict)

    def line_of(self, row: int) -> int:
        if self._lines_cache is None:
            self._lines_cache = self._line_numbers() if self._line_numbers else list(range(2, self.n_rows + 2))
        return self._lines_cache[row]


# a quoted field longer than this is a stray quote, not a cell of a norm table
MAX_QUOTED_FIELD = 10_000
# user-asked repair of a file that mixes UTF-8 and Windows-1252 lines
MIXED = "mixed"


def detect_encoding(data: bytes, language: str | None = None) -> str:
    """The encoding of a text file: BOM first, then UTF-16 without BOM, UTF-8, then the single-byte code page
    that reads clearly best as words (Windows-1250/1251/1252/..., KOI8-R, Mac Roman; see ingest.encoding).
    Raises EncodingUnclear when no code page reads clearly best."""
    return detect(data, language)


def decode(path: Path, data: bytes, encoding: str | None, language: str | None = None) -> tuple[str, str]:
    """The file's text. A detected encoding is checked: a file that mixes UTF-8 and Windows-1252 lines, or
    UTF-8 text that carries mojibake ("cafÃ©"), is refused with its line numbers unless --encoding says
    how to read it (`mixed` reads each line in the encoding it is in and repairs mojibake). A file in no
    encoding that can be told apart with confidence is refused, naming the candidates and --encoding."""
    if encoding is not None and encoding.lower() == MIXED:
        return decode_mixed(data), MIXED
    try:
        enc = encoding or detect_encoding(data, language)
    except EncodingUnclear as exc:
        check_mixed(path, data, "cp1252")
        raise WorkbenchError(
            f"{path}: cannot tell the file's encoding: {exc}. Pass --encoding with the right one (encoding: in the "
            "study), or --language with the items' language (e.g. pl, ru, tr) if it is not English."
        ) from None
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise WorkbenchError(
            f"{path}: cannot read the file as {enc} ({clip(str(exc))}). Pass --encoding with the file's encoding "
            "(e.g. utf-8, utf-16, cp1252, cp1250, cp1251, koi8-r, mac-roman, latin-1, or mixed for a file mixing "
            "UTF-8 and Windows-1252 lines)."
        ) from None
    if encoding is None:
        check_encoding(path, data, text, enc)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, enc


# a UTF-8 sequence read as Windows-1252 (or Latin-1): a lead byte C2-F4 then continuation bytes 80-BF
_CONT = "\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
_MOJIBAKE = re.compile(f"[\u00c2-\u00f4][{_CONT}]{{1,3}}")


def _mojibake_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, repaired) of every run that is UTF-8 bytes decoded as Windows-1252/Latin-1."""
    out = []
    for m in _MOJIBAKE.finditer(text):
        s = m.group()
        for enc in ("cp1252", "latin-1"):
            try:
                fixed = s.encode(enc).decode("utf-8")
            except UnicodeError:
                continue
            out.append((m.start(), m.end(), fixed))
            break
    return out


def _line_list(lines: list[int], n: int = 8) -> str:
    shown = ", ".join(str(x) for x in lines[:n])
    return shown + (f" and {len(lines) - n} more" if len(lines) > n else "")


def check_mixed(path: Path, data: bytes, enc: str) -> None:
    """Refuse a file where some non-ASCII lines are UTF-8 and others are not: one of them would be garbled."""
    utf8_lines, other_lines = [], []
    for i, line in enumerate(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), start=1):
        if line.isascii():
            continue
        (utf8_lines if reads_as_utf8(line, enc) else other_lines).append(i)
    name = NAMES.get(enc, enc)
    if utf8_lines and other_lines:
        raise WorkbenchError(
            f"{path}: the file mixes encodings: line(s) {_line_list(utf8_lines)} are UTF-8 and line(s) "
            f"{_line_list(other_lines)} are not ({name}?), so one of them would come in garbled "
            "(caf\u00c3\u00a9 for caf\u00e9). Save the file in one encoding, or pass --encoding mixed to read each "
            "line in its own encoding (or --encoding utf-8 / cp1252 to force one)."
        )


def check_encoding(path: Path, data: bytes, text: str, enc: str) -> None:
    """Refuse a detected decoding that would store mojibake."""
    if enc in (*CODE_PAGES, "latin-1"):
        # UTF-8 failed somewhere; lines that are valid (non-ASCII) UTF-8 would become mojibake
        check_mixed(path, data, enc)
        return
    if text.isascii() or not _MOJIBAKE.search(text):
        return
    spans = _mojibake_spans(text)
    if spans:
        ends = [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
        bad = sorted({bisect.bisect_right(ends, start) + 1 for start, _, _ in spans})
        start, end, fixed = spans[0]
        a, b = start, end  # the word around the first one, as an example
        while a > 0 and start - a < 40 and text[a - 1] not in ' \t\r\n,;"':
            a -= 1
        while b < len(text) and b - end < 40 and text[b] not in ' \t\r\n,;"':
            b += 1
        raise WorkbenchError(
            f"{path}: line(s) {_line_list(bad)} hold UTF-8 text that was decoded twice "
            f"({text[a:b]!r} where {text[a:start] + fixed + text[end:b]!r} was meant), so it would be stored garbled. Fix the file, "
            "or pass --encoding mixed to repair it (or --encoding utf-8 to keep it as it is)."
        )


def decode_mixed(data: bytes) -> str:
    """Each line in its own encoding (UTF-8, else Windows-1252), with double-decoded UTF-8 repaired."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    parts = []
    for line in data.split(b"\n"):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                parts.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                parts.append(line.decode("latin-1"))
    text = "\n".join(parts)
    spans = _mojibake_spans(text)
    if spans:
        out, pos = [], 0
        for start, end, fixed in spans:
            out.append(text[pos:start])
            out.append(fixed)
            pos = end
        out.append(text[pos:])
        text = "".join(out)
    return text


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


def check_quotes(path: Path, text: str, sep: str, first_line: int) -> None:
    """Refuse a quoted field that spans lines, never closes or is longer than any cell of a norm table.

    A stray opening quote (`"apple,5`) would otherwise swallow the following rows into one cell and the
    import would report success with fewer rows. `first_line` is the file line of text's first line.
    """
    if '"' not in text:
        return
    opening = re.compile(f'(?m)(?:^|(?<={re.escape(sep)}))"[^"]*(?:""[^"]*)*("?)')
    for m in opening.finditer(text):
        field = m.group()
        closed = bool(m.group(1))
        after = text[m.end() : m.end() + 1]
        ends_cell = after in ("", "\n", sep)
        if closed and ends_cell and len(field) <= MAX_QUOTED_FIELD and "\n" not in field:
            continue
        line = first_line + text.count("\n", 0, m.start())
        if closed and not ends_cell and "\n" not in field:
            what = "opens a quoted field that closes before the end of its cell (text follows the closing quote)"
        elif not closed:
            what = "opens a quoted field that is never closed"
        elif "\n" in field:
            what = f"opens a quoted field that runs over {field.count(chr(10)) + 1} lines, to line {line + field.count(chr(10))}"
        else:
            what = f"opens a quoted field of {len(field)} characters"
        raise WorkbenchError(
            f"{path}: line {line}: a quote {what}, so the rows after it would be swallowed into one cell "
            f"(the field starts {clip(field, 40)!r}). Remove the stray quote or close it on the same line."
        )


def read_text_table(path: Path, *, encoding: str | None = None, separator: str | None = None, language: str | None = None) -> RawTable:
    data = path.read_bytes()
    text, enc = decode(path, data, encoding, language)
    text = normalise_lines(text)
    stripped = text.lstrip("\n")
    if not stripped.strip():
        raise WorkbenchError(f"{path}: the file is empty: it needs a header row and at least one data row.")
    first_line = stripped.split("\n", 1)[0]
    sep = separator or sniff_separator(first_line)
    leading_blank = len(text) - len(stripped)
    line_offset = text[:leading_blank].count("\n")
    check_quotes(path, stripped, sep, line_offset + 1)
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
            read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24, skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid),
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
        raise WorkbenchError(f"{path}: cannot parse the file as a {SEPARATORS.get(sep, sep)}-separated table: {clip(str(exc))}.") from None
    # every record is one line (check_quotes refused fields that span lines): a parser that saw another
    # number of rows than the file has lines lost some of them
    data_lines = stripped.count("\n") + (not stripped.endswith("\n")) - len(re.findall("\n(?=\n)", stripped)) - 1
    if table.num_rows + len(invalid) != data_lines:
        raise WorkbenchError(
            f"{path}: the file has {data_lines} data lines but {table.num_rows + len(invalid)} rows were read: "
            "a quote or separator is out of place. Check the file with a spreadsheet, or pass --separator."
        )
    columns = [table.column(i).cast(pa.string()) for i in range(table.num_columns)]

    def line_numbers() -> list[tuple[int, list[str]]]:
        """(line, fields) of every non-blank record after the header, by a csv.reader pass."""
        # a cell may be longer than the csv module's default limit (128 KiB): the checks that follow say why
        # it is wrong, naming its line, which needs this pass to get through it
        csv.field_size_limit(max(csv.field_size_limit(), len(stripped) + 1))
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
                        f"(extra value {clip(next(c for c in extra if c.strip()))!r}). Fix the row or the header."
                    )
                rec = rec[:ncols]
            elif len(rec) < ncols:
                rec = rec + [""] * (ncols - len(rec))
            cells.append(rec)
        by_column = list(zip(*cells)) if cells else [()] * ncols
        columns = [pa.array(list(col), type=pa.string()) for col in by_column]
        all_lines = [ln for ln, _ in records]
        return RawTable(path, header, columns, len(all_lines), enc, sep, lambda: all_lines, notes=encoding_notes(encoding, enc))

    raw = RawTable(path, header, columns, table.num_rows, enc, sep, lambda: [ln for ln, _ in line_numbers()])
    raw.notes = encoding_notes(encoding, enc)
    return raw


def encoding_notes(asked: str | None, enc: str) -> list[str]:
    """The import summary's word on a detected code page (UTF-8 and UTF-16 go without saying)."""
    if asked is None and enc in CODE_PAGES:
        return [f"read as {NAMES[enc]}, detected (pass --encoding to read it otherwise)"]
    return []


def read_excel_table(path: Path, *, sheet: str | None = None) -> RawTable:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise WorkbenchError(f"{path}: cannot open the workbook ({clip(str(exc))}). Is it an .xlsx file?") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise WorkbenchError(f"{path}: no sheet {sheet!r}; the workbook has {clip(', '.join(wb.sheetnames))}. Pass --sheet.")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        header: list[str] | None = None
        rows: list[tuple] = []
        lines: list[int] = []
        for rownum, values in enumerate(sheet_rows(ws), start=1):
            if values is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            if header is None:
                header = ["" if v is None else str(v) for v in values]
                while header and not header[-1].strip():
                    header.pop()
                continue
            rows.append(values)
            lines.append(rownum)
        # the first rows of the other sheets, for a --sheet hint when the columns are not on this one
        others = {}
        if sheet is None:
            for other in wb.worksheets[1:]:
                others[other.title] = first_row(other)
        if header is not None:
            check_formulas(path, ws.title, rows, lines)
        hidden = hidden_rows(wb, ws, set(lines))
    finally:
        wb.close()
    if header is None:
        with_data = [name for name, h in others.items() if h]
        hint = (
            f" The workbook's other sheets {', '.join(repr(n) for n in with_data[:5])} have data: pass --sheet NAME." if with_data else ""
        )
        raise WorkbenchError(f"{path}: the sheet {ws.title!r} is empty: it needs a header row and at least one data row.{hint}")
    ncols = len(header)
    columns = []
    numbers = {}
    for j in range(ncols):
        cells = [r[j] if j < len(r) else None for r in rows]
        is_num = [isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells]
        if all(c is None or k for c, k in zip(cells, is_num)):
            columns.append(pa.array([None if c is None else float(c) for c in cells], type=pa.float64()))
        else:
            columns.append(pa.array(["" if c is None else _cell_str(c) for c in cells], type=pa.string()))
            if any(is_num):
                numbers[j] = np.array([float(c) if k else np.nan for c, k in zip(cells, is_num)], dtype=np.float64)
    for ln, r in zip(lines, rows):
        extra = [v for v in r[ncols:] if v is not None and str(v).strip()]
        if extra:
            raise WorkbenchError(
                f"{path}: row {ln} has a value {clip(extra[0])!r} beyond the last headed column. Add a header or remove it."
            )
    raw = RawTable(path, header, columns, len(rows), None, None, lambda: lines, other_sheets=others, cell_numbers=numbers)
    if hidden:
        shown = ", ".join(str(x) for x in hidden[:8]) + (f" and {len(hidden) - 8} more" if len(hidden) > 8 else "")
        raw.notes.append(
            f"{len(hidden)} hidden row{'s' if len(hidden) > 1 else ''} of sheet {ws.title!r} imported like the others "
            f"(row{'s' if len(hidden) > 1 else ''} {shown}): delete them from the sheet if they are not data"
        )
    return raw


def sheet_rows(ws):
    """Every row of a read-only worksheet, to the real end: the stored `<dimension ref>` can be smaller than
    the used range (files written by other programs), and openpyxl's read-only mode would stop there."""
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()
    return ws.iter_rows(values_only=True)


def first_row(ws, limit: int = 50) -> list[str]:
    """The first non-empty row of a sheet (looking at most `limit` rows down), as strings."""
    for i, values in enumerate(sheet_rows(ws)):
        if i >= limit:
            break
        if values and any(v is not None and str(v).strip() for v in values):
            return ["" if v is None else str(v) for v in values]
    return []


_ROW_TAG = re.compile(rb"<(?:\w+:)?row\b[^>]*>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_HIDDEN = re.compile(rb'\bhidden="(1|true)"')


def hidden_rows(wb, ws, data_rows: set[int]) -> list[int]:
    """The rows among `data_rows` that the sheet hides (`<row hidden="1">`): read-only openpyxl drops row properties."""
    import zipfile

    part, archive = getattr(ws, "_worksheet_path", None), getattr(wb, "_archive", None)
    if not part or archive is None:
        return []
    try:
        xml = archive.read(part)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return []
    out = []
    n = 0
    for m in _ROW_TAG.finditer(xml):
        tag = m.group()
        num = _ROW_NUMBER.search(tag)
        n = int(num.group(1)) if num else n + 1
        if _HIDDEN.search(tag) and n in data_rows:
            out.append(n)
    return out


def check_formulas(path: Path, sheet: str, rows: list[tuple], lines: list[int]) -> None:
    """Refuse formula cells that have no value saved with them.

    A workbook written by a program (not saved by Excel) keeps formulas without their results; openpyxl
    reads those cells as empty, which would drop values or whole rows without a word.
    """
    import zipfile

    import openpyxl
    from openpyxl.utils import get_column_letter

    try:
        with zipfile.ZipFile(path) as z:
            sheets = [z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        has_formulas = any(b"<f>" in x or b"<f " in x for x in sheets)
    except (zipfile.BadZipFile, OSError):
        return
    if not has_formulas:
        return
    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        ws = wb[sheet]
        cached = {ln: r for ln, r in zip(lines, rows)}
        for rownum, values in enumerate(sheet_rows(ws), start=1):
            for j, v in enumerate(values or ()):
                if isinstance(v, str) and v.startswith("="):
                    row = cached.get(rownum)
                    if row is None or j >= len(row) or row[j] is None:
                        raise WorkbenchError(
                            f"{path}: cell {sheet}!{get_column_letter(j + 1)}{rownum} holds the formula "
                            f"{clip(v, 80)!r} with no saved value. Open the workbook in a spreadsheet and save it "
                            "(so the values are computed), or export the sheet as CSV."
                        )
    finally:
        wb.close()


def _cell_str(c) -> str:
    if isinstance(c, float) and c.is_integer():
        return repr(c)
    return str(c)


def read_parquet_table(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise WorkbenchError(f"{path}: cannot read the Parquet file ({clip(str(exc))}).") from None
    return RawTable(
        path,
        list(table.column_names),
        [table.column(i) for i in range(table.num_columns)],
        table.num_rows,
        _line_numbers=lambda: list(range(1, table.num_rows + 1)),
    )


def read_table(
    path: Path, *, encoding: str | None = None, separator: str | None = None, sheet: str | None = None, language: str | None = None
) -> RawTable:
    """Read any supported file into a RawTable. `language` (the items' ISO code) helps tell code pages apart."""
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
    return read_text_table(path, encoding=encoding, separator=separator, language=language)
