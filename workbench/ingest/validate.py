"""Turn a RawTable into validated norms, or say exactly what is wrong.

Every cell that cannot be used becomes a Problem (row, column, value,
reason). Without --skip-invalid any problem fails the import with one
message; with it, the rows with problems are set aside and written to a
rejects file.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import WorkbenchError
from workbench.ingest.readers import RawTable
from workbench.ingest.spec import NA_MARKERS, DatasetSpec, RatingColumns, clip, header_key

SHOWN_PROBLEMS = 5
# a decimal number as written in a table: sign, digits with an optional point, optional exponent
NUMBER_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


@dataclass(frozen=True)
class Problem:
    row: int  # row index in the RawTable
    column: str
    value: str
    reason: str


@dataclass
class DimensionValues:
    columns: RatingColumns
    item_index: np.ndarray  # index into NormTable.items
    value: np.ndarray
    sd: np.ndarray | None
    n: np.ndarray | None
    mean_column: str


@dataclass
class NormTable:
    spec: DatasetSpec
    items: list[str]
    dimensions: list[DimensionValues]
    rows_read: int
    duplicates_merged: int = 0
    blank_rows: int = 0
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)  # (file line, problems)

    @property
    def n_ratings(self) -> int:
        return sum(len(d.value) for d in self.dimensions)


class ImportProblems(WorkbenchError):
    def __init__(self, path: Path, problems: list[tuple[int, Problem]]):
        self.path = path
        self.problems = problems
        shown = "; ".join(
            f"row {line}, column {clip(p.column, 80)!r}, value {clip(p.value)!r}: {p.reason}" for line, p in problems[:SHOWN_PROBLEMS]
        )
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"{path}: {len(problems)} {noun}: {shown}{more}. Nothing was imported. Fix the file, or pass "
            "--skip-invalid to import the other rows and write the rejected ones with their reasons to a file."
        )


# the longest item the store keeps (items.text is VARCHAR(500))
MAX_ITEM_LENGTH = 500
# an item made only of these has nothing to show: control and format characters (zero-width space, joiners,
# BOM, direction marks), separators and other white space
_INVISIBLE = r"^[\p{Cc}\p{Cf}\p{Z}\s]+$"


def find_column(raw: RawTable, aliases: tuple[str, ...]) -> int | None:
    """The index of the first alias in the header. A name heading two columns is an error, not a guess."""
    keys = [header_key(h) for h in raw.header]
    for alias in aliases:
        k = header_key(alias)
        if k in keys:
            at = [i for i, key in enumerate(keys) if key == k]
            if len(at) > 1:
                raise WorkbenchError(
                    f"{raw.path}: the header has {len(at)} columns named {clip(raw.header[at[0]], 80)!r} (columns "
                    f"{', '.join(str(i + 1) for i in at)}), so which one holds the values is a guess. "
                    "Rename or remove the extra ones."
                )
            col = raw.columns[at[0]]
            if pa.types.is_nested(col.type) or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
                raise WorkbenchError(
                    f"{raw.path}: column {clip(raw.header[at[0]], 80)!r} holds {col.type} values, not single numbers "
                    "or texts. Write one value per cell (e.g. one column per list element)."
                )
            return at[0]
    return None


def missing_column_error(raw: RawTable, what: str, aliases: tuple[str, ...]) -> WorkbenchError:
    wanted = " or ".join(repr(clip(a, 80)) for a in aliases)
    close = difflib.get_close_matches(aliases[0], raw.header, n=1, cutoff=0.6)
    hint = f" Did you mean {clip(close[0], 80)!r}?" if close else ""
    shown = clip(", ".join(repr(clip(h, 60)) for h in raw.header[:30]) + (", ..." if len(raw.header) > 30 else ""))
    return WorkbenchError(
        f"{raw.path}: missing required column {wanted} ({what}); the header has {shown}.{hint} "
        "Name the right column (e.g. --item-column, --rating DIM=COLUMN) or fix the header."
    )


def _column_strings(col) -> list[str]:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.to_pylist()
    return ["" if v is None else _num_str(v) for v in col.to_pylist()]


def _num_str(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def parse_numbers(col, na_values: tuple[str, ...], decimal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values with NaN for missing, missing mask, invalid mask) of one column."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        vals = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
        missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        for marker in na_values:
            try:
                missing |= vals == float(marker)
            except ValueError:
                pass
        invalid = ~missing & ~np.isfinite(vals)
        vals[missing] = np.nan
        return vals, missing, invalid
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    trimmed = pc.utf8_trim_whitespace(col)
    markers = pa.array(list(dict.fromkeys((*NA_MARKERS, *na_values))), type=pa.string())
    missing_arr = pc.fill_null(pc.is_in(trimmed, value_set=markers), True)
    missing = np.asarray(missing_arr.to_numpy(zero_copy_only=False), dtype=bool)
    if decimal == ",":
        trimmed = pc.replace_substring(trimmed, ",", ".")
    # one number syntax for every cell (Python's float() would also take "1_0" or non-ASCII digits)
    syntax_ok = pc.fill_null(pc.match_substring_regex(trimmed, NUMBER_PATTERN), False)
    candidates = pc.if_else(pc.and_(syntax_ok, pc.invert(missing_arr)), trimmed, pa.scalar(None, pa.string()))
    vals = pc.cast(candidates, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    ok = np.asarray(syntax_ok.to_numpy(zero_copy_only=False), dtype=bool)
    with np.errstate(invalid="ignore"):
        invalid = ~missing & (~ok | ~np.isfinite(vals))
        for marker in na_values:  # a numeric marker (MRC's 0) is missing however it is written: 0, 0.0
            try:
                missing |= ~invalid & (vals == float(marker))
            except ValueError:
                pass
    vals[missing | invalid] = np.nan
    return vals, missing, invalid


def normalise_item(text: str) -> str:
    text = text.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).strip()
    return text


# what str.strip() removes from an ASCII string
_ASCII_EDGE_SPACE = r"^[\t-\r\x1c-\x1f ]|[\t-\r\x1c-\x1f ]$"


def item_strings(col) -> list[str]:
    """normalise_item of every cell; only the cells that need it (non-ASCII or padded) go through Python."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return [normalise_item(s) for s in _column_strings(col)]
    col = pc.fill_null(col, "")
    texts = col.to_pylist()
    needs = pc.or_(pc.invert(pc.string_is_ascii(col)), pc.match_substring_regex(col, _ASCII_EDGE_SPACE))
    for i in np.flatnonzero(needs.to_numpy(zero_copy_only=False)).tolist():
        texts[i] = normalise_item(texts[i])
    return texts


def unstorable_items(items: list[str]) -> list[tuple[int, str]]:
    """(index, reason) of the items the store cannot keep as text, the same on SQLite and PostgreSQL:
    a NUL character, nothing visible (only zero-width, format or space characters), or too long."""
    if not items:
        return []
    arr = pa.array(items, type=pa.string())
    nul = pc.match_substring(arr, "\x00")
    invisible = pc.match_substring_regex(arr, _INVISIBLE)
    long = pc.greater(pc.utf8_length(arr), MAX_ITEM_LENGTH)
    bad = pc.or_(pc.or_(nul, invisible), long).to_numpy(zero_copy_only=False)
    out = []
    for i in np.flatnonzero(bad).tolist():
        text = items[i]
        if "\x00" in text:
            out.append((i, "the item holds a NUL character (\\x00): remove it"))
        elif len(text) > MAX_ITEM_LENGTH:
            out.append((i, f"the item is {len(text)} characters long; the store keeps items of up to {MAX_ITEM_LENGTH}"))
        else:
            out.append((i, "the item has no visible characters (only zero-width, format or space characters)"))
    return out


def build_norms(raw: RawTable, spec: DatasetSpec, *, skip_invalid: bool = False) -> NormTable:
    """Validate one dataset's columns of a table. Raises ImportProblems unless skip_invalid."""
    item_idx = find_column(raw, spec.item)
    if item_idx is None:
        raise missing_column_error(raw, "the item", spec.item)
    item_col_name = raw.header[item_idx]

    # resolve every dimension's columns first, so a missing column is reported before any value
    resolved: list[tuple[RatingColumns, int, int | None, int | None, int | None]] = []
    for rc in spec.ratings:
        m = find_column(raw, rc.mean)
        if m is None:
            if rc.optional:
                continue
            raise missing_column_error(raw, f"the mean of {rc.dimension}", rc.mean)
        sd = find_column(raw, rc.sd) if rc.sd else None
        nn = find_column(raw, rc.n) if rc.n else None
        nm = find_column(raw, rc.n_minus) if rc.n_minus else None
        resolved.append((rc, m, sd, nn, nm))
    if not resolved:
        wanted = ", ".join(repr(r.mean[0]) for r in spec.ratings)
        raise WorkbenchError(f"{raw.path}: none of the rating columns {wanted} is in the header.")

    n = raw.n_rows
    items = item_strings(raw.columns[item_idx])
    problems: list[Problem] = []

    parsed = []
    all_blank_values = np.ones(n, dtype=bool)
    for rc, m, sd, nn, nm in resolved:
        na = (*rc.na_values, *spec.extra_na)
        mean, m_missing, m_bad = parse_numbers(raw.columns[m], na, spec.decimal)
        all_blank_values &= m_missing
        for i in np.flatnonzero(m_bad):
            problems.append(Problem(int(i), raw.header[m], _cell(raw, m, i), "not a number"))
        if rc.scale is not None:
            lo, hi = rc.scale
            out = ~np.isnan(mean) & ((mean < lo) | (mean > hi))
            for i in np.flatnonzero(out):
                problems.append(Problem(int(i), raw.header[m], _cell(raw, m, i), f"outside the {rc.dimension} scale {_fmt(lo)}-{_fmt(hi)}"))
        sd_v = n_v = None
        if sd is not None:
            sd_v, _, sd_bad = parse_numbers(raw.columns[sd], na, spec.decimal)
            bad = sd_bad | (sd_v < 0)
            for i in np.flatnonzero(bad):
                problems.append(Problem(int(i), raw.header[sd], _cell(raw, sd, i), "not a non-negative number"))
        if nn is not None:
            n_v, _, n_bad = parse_numbers(raw.columns[nn], na, spec.decimal)
            if nm is not None:
                minus, _, minus_bad = parse_numbers(raw.columns[nm], na, spec.decimal)
                for i in np.flatnonzero(minus_bad):
                    problems.append(Problem(int(i), raw.header[nm], _cell(raw, nm, i), "not a number"))
                n_v = n_v - np.nan_to_num(minus)
            with np.errstate(invalid="ignore"):
                bad = n_bad | (n_v < 0) | (~np.isnan(n_v) & (n_v != np.round(n_v)))
            for i in np.flatnonzero(bad):
                problems.append(Problem(int(i), raw.header[nn], _cell(raw, nn, i), "not a count (a whole number of raters)"))
        parsed.append((rc, raw.header[m], mean, sd_v, n_v))

    blank_item = np.array([not s for s in items], dtype=bool)
    blank_row = blank_item & all_blank_values
    for i in np.flatnonzero(blank_item & ~blank_row):
        problems.append(Problem(int(i), item_col_name, "", "the item is empty"))
    for i, reason in unstorable_items(items):
        if not all_blank_values[i]:
            problems.append(Problem(i, item_col_name, items[i], reason))

    # rows with an item but no value in any of this dataset's columns are not part of it
    # (a file can hold several datasets side by side, each rating a subset of the items)
    keep = ~blank_row & ~all_blank_values
    merged = 0

    # duplicates: identical rows are merged, conflicting ones are problems. A row is only merged into a
    # first row without problems: merged into a rejected row it would vanish from both the store and the
    # rejects file, so it is reported (and with skip_invalid, rejected) as a conflicting duplicate.
    problem_rows = np.zeros(n, dtype=bool)
    problem_rows[[p.row for p in problems]] = True
    cand = np.flatnonzero(keep & ~blank_item)
    if len(cand):
        codes, _ = factorize([items[i] for i in cand])
        _, first_pos = np.unique(codes, return_index=True)  # position in cand of each item's first row
        first_row = cand[first_pos[codes]]
        dup = first_row != cand
        if dup.any():
            i_rows, j_rows = cand[dup], first_row[dup]
            same = ~problem_rows[i_rows] & ~problem_rows[j_rows]
            for _, _, mean, sd_v, n_v in parsed:
                for arr in (mean, sd_v, n_v):
                    if arr is not None:
                        a, b = arr[i_rows], arr[j_rows]
                        same &= (a == b) | (np.isnan(a) & np.isnan(b))
            keep[i_rows[same]] = False
            merged = int(same.sum())
            for i, j in zip(i_rows[~same].tolist(), j_rows[~same].tolist()):
                problems.append(
                    Problem(i, item_col_name, items[i], f"duplicate item with different values (first on row {raw.line_of(j)})")
                )

    rejected: list[tuple[int, list[Problem]]] = []
    if problems:
        by_row: dict[int, list[Problem]] = {}
        for p in problems:
            by_row.setdefault(p.row, []).append(p)
        if not skip_invalid:
            ordered = sorted(problems, key=lambda p: p.row)
            raise ImportProblems(raw.path, [(raw.line_of(p.row), p) for p in ordered])
        for r in sorted(by_row):
            keep[r] = False
            rejected.append((raw.line_of(r), by_row[r]))
    kept_idx = np.flatnonzero(keep)
    # every kept row names a different item: later rows of an item were merged into the first or are problems
    uniq = [items[i] for i in kept_idx.tolist()]
    row_item = np.arange(len(uniq), dtype=np.int64)
    dims = []
    for rc, mean_col, mean, sd_v, n_v in parsed:
        m = mean[kept_idx]
        has = ~np.isnan(m)
        f = rc.rescale or 1.0
        value = rescaled(m[has], f)
        sd_out = None if sd_v is None else rescaled(sd_v[kept_idx][has], f)
        n_out = None if n_v is None else n_v[kept_idx][has]
        dims.append(DimensionValues(rc, row_item[has], value, sd_out, n_out, mean_col))
    return NormTable(
        spec=spec,
        items=uniq,
        dimensions=dims,
        rows_read=n,
        duplicates_merged=merged,
        blank_rows=int(blank_row.sum()),
        rejected=rejected,
    )


def rescaled(x: np.ndarray, factor: float) -> np.ndarray:
    """x * factor; a factor of 1/k (0.01) divides by k, so 613 becomes 6.13 and not 6.130000000000001."""
    if factor == 1.0:
        return x
    if factor < 1.0:
        k = round(1.0 / factor)
        if k and 1.0 / k == factor:
            return x / k
    return x * factor


def factorize(texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """(code of each text, the distinct texts in order of first appearance): texts == distinct[codes]."""
    if not texts:
        return np.zeros(0, dtype=np.int64), []
    encoded = pa.array(texts, type=pa.string()).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _cell(raw: RawTable, col: int, row: int) -> str:
    v = raw.columns[col][int(row)].as_py()
    return "" if v is None else (_num_str(v) if not isinstance(v, str) else v)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
