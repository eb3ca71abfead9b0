"""Printing rows: the table, csv and json formats every command that prints data offers.

One renderer (`render`) and one option type (`OutputFormat`, the `--format`
of `sql`, `status`, `db current`), in the manner of sqlite-utils'
output_options. Standard library only, so the CLI starts fast.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from enum import Enum

from workbench.errors import WorkbenchError


class OutputFormat(str, Enum):
    """How a command prints rows."""

    table = "table"
    csv = "csv"
    json = "json"


FORMATS = tuple(f.value for f in OutputFormat)


def _text(value: object) -> str:
    """A cell for the "table" and "csv" formats ("" for NULL)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {"inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), "NaN")
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def json_value(value: object) -> object:
    """A value as JSON can hold it: non-finite floats as null, times as ISO 8601, Decimals as floats."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "as_integer_ratio"):  # Decimal
        return float(value)
    return str(value)


def _table_cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return _text(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def render(
    names: Sequence[str], rows: Sequence[Sequence[object]], fmt: OutputFormat | str, *, numeric: Sequence[bool] | None = None
) -> str:
    """The rows as text ending in a newline.

    "table": columns aligned under a header and a rule of dashes, numbers
    right-aligned, floats to 6 significant digits, NULL for missing values.
    "csv": RFC 4180 (CRLF line ends, quotes only where needed), a header
    row, floats in full precision, empty fields for missing values.
    "json": an array of objects, one per row on its own line, keyed by column
    name; floats as numbers, null for missing values, times as ISO 8601.
    `numeric` says which columns are numbers (default: those whose values all are).
    """
    fmt = fmt.value if isinstance(fmt, OutputFormat) else fmt
    if fmt not in FORMATS:
        raise WorkbenchError(f"Unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    names = list(names)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerows([_text(v) for v in row] for row in rows)
        return buf.getvalue()
    if fmt == "json":
        if not rows:
            return "[]\n"
        lines = [json.dumps({n: json_value(v) for n, v in zip(names, row)}, ensure_ascii=False) for row in rows]
        return "[\n" + ",\n".join(lines) + "\n]\n"
    if not names:
        return "\n"
    if numeric is None:
        numeric = [bool(rows) and all(r[i] is None or _is_number(r[i]) for r in rows) for i in range(len(names))]
    cells = [[_table_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out) + "\n"


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 dimension', '2 dimensions' (or the plural given: '2 word lists')."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
