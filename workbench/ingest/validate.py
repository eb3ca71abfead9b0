"""Turn a RawTable into validated norms, or say exactly what is wrong.

Every cell that cannot be used becomes a Problem (row, column, value,
reason). Without --skip-invalid any problem fails the import with one
message; with it, the rows with problems are set aside and written to a
rejects file.
"""

from __future__ import annotations

import difflib
import re
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
# values this close to a scale bound (relative to the scale's range) are on the scale: clipped to the bound
SCALE_TOLERANCE = 1e-6


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
    # people who said they did not know the word (the n_minus column, e.g. Brysbaert 2014's Unknown); n excludes them
    n_unknown: np.ndarray | None = None


@dataclass
class NormTable:
    spec: DatasetSpec
    items: list[str]
    dimensions: list[DimensionValues]
    rows_read: int
    duplicates_merged: int = 0
    blank_rows: int = 0
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)  # (file line, problems)
    # what was read other than as written, or looks wrong but was imported: one sentence each
    notes: list[str] = field(default_factory=list)

    @property
    def n_ratings(self) -> int:
        return sum(len(d.value) for d in self.dimensions)


class ImportProblems(WorkbenchError):
    def __init__(self, path: Path, problems: list[tuple[int, Problem]], hints: tuple[str, ...] = ()):
        self.path = path
        self.problems = problems
        self.hints = hints
        shown = "; ".join(
            f"row {line}, column {clip(p.column, 80)!r}, value {clip(p.value)!r}: {p.reason}" for line, p in problems[:SHOWN_PROBLEMS]
        )
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        noun = "problem" if len(problems) == 1 else "problems"
        hint = "".join(f" {h}" for h in hints)
        super().__init__(
            f"{path}: {len(problems)} {noun}: {shown}{more}. Nothing was imported.{hint} Fix the file, or pass "
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
    keys = {header_key(a) for a in aliases}
    on_sheets = [name for name, header in raw.other_sheets.items() if keys & {header_key(h) for h in header}]
    if on_sheets:
        hint += f" The workbook's sheet {clip(on_sheets[0], 80)!r} has it: pass --sheet {clip(on_sheets[0], 80)!r} (sheet: in the study)."
    elif any(raw.other_sheets.values()):
        names = ", ".join(repr(clip(n, 40)) for n, h in raw.other_sheets.items() if h)
        hint += f" The workbook has other sheets with data ({clip(names)}): pass --sheet NAME to read one."
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


def number_patterns(decimal: str) -> tuple[str, str]:
    """(plain, grouped) patterns of a number written with `decimal` as its decimal mark: plain is sign, digits
    with an optional decimal mark, optional exponent; grouped has the other mark between groups of three
    digits (1.500 or 1.234.567,5 with a decimal comma; 1,500 or 1,234.5 with a decimal point)."""
    d = re.escape(decimal)
    t = re.escape("," if decimal == "." else ".")
    plain = rf"^[+-]?([0-9]+{d}?[0-9]*|{d}[0-9]+)([eE][+-]?[0-9]+)?$"
    grouped = rf"^[+-]?[1-9][0-9]{{0,2}}({t}[0-9]{{3}})+({d}[0-9]*)?$"
    return plain, grouped


def parse_numbers(col, na_values: tuple[str, ...], decimal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values with NaN for missing, missing mask, invalid mask) of one column.

    The one number syntax of every reader's text cells (Python's float() would also take "1_0" or non-ASCII
    digits). `decimal` is the decimal mark; the other mark may only group thousands (1.500 is 1500 with a
    decimal comma; 1.5 is then an error). A cell grouped with one mark but no decimal part (1,500) could
    also be a decimal with the other mark; with the default decimal point it is taken as grouped only
    when the column shows that mark is not a decimal mark (another cell with a decimal point), and with
    either mark never when another cell of the column uses the other mark as a decimal mark (4,5).
    Nulls (Parquet, Arrow) are missing values.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type):
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
    missing_arr = pc.or_kleene(pc.is_null(trimmed), pc.fill_null(pc.is_in(trimmed, value_set=markers), True))
    missing = np.asarray(missing_arr.to_numpy(zero_copy_only=False), dtype=bool)
    other = "," if decimal == "." else "."
    plain_re, grouped_re = number_patterns(decimal)
    plain = pc.fill_null(pc.match_substring_regex(trimmed, plain_re), False)
    grouped = pc.fill_null(pc.match_substring_regex(trimmed, grouped_re), False)
    # a cell that cannot be grouped but reads with the other mark as its decimal mark (4,5 or 1.5)
    other_decimal = pc.and_(pc.invert(grouped), pc.fill_null(pc.match_substring_regex(trimmed, number_patterns(other)[0]), False))
    other_decimal = pc.and_(other_decimal, pc.match_substring(trimmed, other))
    has_decimal = pc.fill_null(pc.match_substring(trimmed, decimal), False)
    ambiguous = pc.and_(grouped, pc.invert(has_decimal))
    ambiguous = pc.and_(
        ambiguous, pc.invert(pc.fill_null(pc.match_substring_regex(trimmed, rf"[{re.escape(other)}].*[{re.escape(other)}]"), False))
    )
    col_other_decimal = pc.any(pc.and_(other_decimal, pc.invert(missing_arr))).as_py()
    if col_other_decimal or (decimal == "." and not pc.any(pc.and_(pc.and_(plain, has_decimal), pc.invert(missing_arr))).as_py()):
        grouped = pc.and_(grouped, pc.invert(ambiguous))
    syntax_ok = pc.or_(plain, grouped)
    text = pc.replace_substring(trimmed, other, "")
    if decimal == ",":
        text = pc.replace_substring(text, ",", ".")
    candidates = pc.if_else(pc.and_(syntax_ok, pc.invert(missing_arr)), text, pa.scalar(None, pa.string()))
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


def column_numbers(raw: RawTable, j: int, na_values: tuple[str, ...], decimal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """parse_numbers of column j; a workbook's number cells among text cells keep the value they hold."""
    vals, missing, invalid = parse_numbers(raw.columns[j], na_values, decimal)
    nums = raw.cell_numbers.get(j)
    if nums is not None:
        is_num = ~np.isnan(nums)
        vals[is_num] = nums[is_num]
        missing[is_num] = False
        invalid[is_num] = False
        for marker in na_values:
            try:
                missing |= is_num & (nums == float(marker))
            except ValueError:
                pass
        vals[missing] = np.nan
    return vals, missing, invalid


def number_reason(value: str, decimal: str) -> str:
    """Why a text cell is not a number, with the way out when the decimal mark is the likely cause."""
    v = value.strip()
    other = "," if decimal == "." else "."
    if other in v and re.match(number_patterns(other)[0], v):
        if re.match(number_patterns(decimal)[1], v):  # 1,500 or 1.500: grouped, or a decimal with the other mark
            return (
                f"not a number: {other!r} could group thousands or be a decimal mark here, and the column does not say "
                f"which (write it without {other!r}, or pass --decimal {other} if it is the decimal mark)"
            )
        if decimal == ".":
            return "not a number with a decimal point (a decimal comma? pass --decimal , or set decimal: ',' in the study)"
        return "not a number with a decimal comma (--decimal ,): a dot can only group thousands, as in 1.500 (drop --decimal , if the file has decimal points)"
    if decimal in v and re.match(number_patterns(other)[1], v):
        return f"not a number with {decimal!r} as the decimal mark; it reads as one with {other!r} (pass --decimal {other})"
    return "not a number"


# Format characters (Unicode Cf) kept in items: the prepended concatenation marks (Arabic number signs and
# the like, which show) and tag characters (parts of emoji flags); zero-width joiners are kept only between
# characters of scripts that join (Arabic, Indic, emoji), where they change what is shown
_KEPT_FORMAT = {*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD}
_JOINERS = {"\u200c", "\u200d"}
INVISIBLE_KINDS = {
    "format": "zero-width or format characters removed (zero-width space or joiner, soft hyphen, BOM, direction marks)",
    "space": "no-break or other special spaces made plain spaces",
    "nfc": "decomposed accents composed (NFC)",
}


def _joins(ch: str | None) -> bool:
    """A character of a script where zero-width (non-)joiners matter: not ASCII, Latin, Greek or Cyrillic."""
    if ch is None or ch.isspace():
        return False
    o = ord(ch)
    return not (o < 0x0530 or 0x1D00 <= o < 0x2000 or 0x2C60 <= o < 0x2C80 or 0xA640 <= o < 0xA800)


def clean_item(text: str) -> tuple[str, frozenset[str]]:
    """(the item as stored, what was normalised beyond trimming: keys of INVISIBLE_KINDS).

    Trimmed; invisible format characters removed; no-break and other special spaces made plain spaces
    (ASCII spaces and tabs inside stay as written); NFC. So "ice\u00a0cream", "soft\u00adware", "cat\u200b", "\ufeffdog"
    and a decomposed "cafe\u0301" are the items "ice cream", "software", "cat", "dog" and "café".
    """
    kinds: set[str] = set()
    if not text.isascii():
        out = []
        n = len(text)
        for i, ch in enumerate(text):
            if unicodedata.category(ch) == "Cf":
                o = ord(ch)
                if o in _KEPT_FORMAT or 0xE0020 <= o <= 0xE007F:
                    out.append(ch)
                    continue
                if ch in _JOINERS and _joins(out[-1] if out else None) and _joins(text[i + 1] if i + 1 < n else None):
                    out.append(ch)
                    continue
                kinds.add("format")
                continue
            out.append(ch)
        text = "".join(out)
        composed = unicodedata.normalize("NFC", text)
        if composed != text:
            kinds.add("nfc")
            text = composed
    stripped = text.strip()
    if not stripped.isascii() and any(c.isspace() and not c.isascii() for c in stripped):
        # no-break, thin, ideographic ... spaces inside: plain spaces (ASCII spaces and tabs stay as written)
        stripped = "".join(" " if c.isspace() and not c.isascii() else c for c in stripped)
        kinds.add("space")
    joined = stripped
    return joined, frozenset(kinds)


def normalise_item(text: str) -> str:
    return clean_item(text)[0]


# what str.strip() removes from an ASCII string
_ASCII_EDGE_SPACE = r"^[\t-\r\x1c-\x1f ]|[\t-\r\x1c-\x1f ]$"


@dataclass
class CleanItems:
    texts: list[str]
    # rows whose cell had characters but nothing visible (all removed as invisible)
    invisible_only: set[int]
    # rows normalised beyond trimming, by kind (keys of INVISIBLE_KINDS)
    changed: dict[str, int]

    def note(self) -> str | None:
        if not self.changed:
            return None
        parts = "; ".join(f"{k} {INVISIBLE_KINDS[kind]}" for kind, k in self.changed.items())
        return f"items normalised: {parts}"


def clean_items(col) -> CleanItems:
    """clean_item of every cell; only the cells that need it (non-ASCII or with odd spaces) go through Python."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return CleanItems([normalise_item(s) for s in _column_strings(col)], set(), {})
    col = pc.fill_null(col, "")
    texts = col.to_pylist()
    needs = pc.or_(pc.invert(pc.string_is_ascii(col)), pc.match_substring_regex(col, _ASCII_EDGE_SPACE))
    invisible_only: set[int] = set()
    changed: dict[str, int] = {}
    for i in np.flatnonzero(needs.to_numpy(zero_copy_only=False)).tolist():
        before = texts[i]
        texts[i], kinds = clean_item(before)
        if not texts[i] and before.strip():
            invisible_only.add(i)
            continue
        for kind in kinds:
            changed[kind] = changed.get(kind, 0) + 1
    return CleanItems(texts, invisible_only, dict(sorted(changed.items(), key=lambda kv: list(INVISIBLE_KINDS).index(kv[0]))))


def item_strings(col) -> list[str]:
    """normalise_item of every cell."""
    return clean_items(col).texts


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
    cleaned = clean_items(raw.columns[item_idx])
    items = cleaned.texts
    problems: list[Problem] = []
    notes: list[str] = []
    hints: list[str] = []

    parsed = []
    all_blank_values = np.ones(n, dtype=bool)
    for rc, m, sd, nn, nm in resolved:
        na = (*rc.na_values, *spec.extra_na)
        mean, m_missing, m_bad = column_numbers(raw, m, na, spec.decimal)
        all_blank_values &= m_missing
        for i in np.flatnonzero(m_bad):
            cell = _cell(raw, m, i)
            problems.append(Problem(int(i), raw.header[m], cell, number_reason(cell, spec.decimal)))
        if rc.scale is not None:
            lo, hi = rc.scale
            # within rounding of a bound is on the scale (a weighted mean of 7.000000023 on 1-7): set to the bound
            tol = SCALE_TOLERANCE * (hi - lo)
            with np.errstate(invalid="ignore"):
                near_lo = (mean < lo) & (mean >= lo - tol)
                near_hi = (mean > hi) & (mean <= hi + tol)
            if near_lo.any() or near_hi.any():
                example = float(mean[np.flatnonzero(near_lo | near_hi)[0]])
                mean[near_lo], mean[near_hi] = lo, hi
                k = int(near_lo.sum() + near_hi.sum())
                notes.append(
                    f"{rc.dimension}: {k} value{'s' if k > 1 else ''} within rounding of the scale's bounds "
                    f"({_fmt(lo)}-{_fmt(hi)}) set to the bound (e.g. {example!r} -> {_fmt(lo if example < lo else hi)})"
                )
            out = ~np.isnan(mean) & ((mean < lo) | (mean > hi))
            for i in np.flatnonzero(out):
                problems.append(Problem(int(i), raw.header[m], _cell(raw, m, i), f"outside the {rc.dimension} scale {_fmt(lo)}-{_fmt(hi)}"))
            if out.any():
                hints.append(
                    f"If {rc.dimension}'s values are on another scale, declare it: --scale {rc.dimension}=MIN:MAX "
                    f"(scale: in the study; --rescale {rc.dimension}=FACTOR maps it onto the dimension's)."
                )
        sd_v = n_v = minus = None
        if sd is not None:
            sd_v, _, sd_bad = column_numbers(raw, sd, na, spec.decimal)
            with np.errstate(invalid="ignore"):
                bad = sd_bad | (sd_v < 0)
            for i in np.flatnonzero(bad):
                problems.append(
                    Problem(int(i), raw.header[sd], _cell(raw, sd, i), _value_reason(raw, sd, i, spec, "not a non-negative number"))
                )
        if nn is not None:
            n_v, _, n_bad = column_numbers(raw, nn, na, spec.decimal)
            if nm is not None:
                minus, _, minus_bad = column_numbers(raw, nm, na, spec.decimal)
                for i in np.flatnonzero(minus_bad):
                    problems.append(Problem(int(i), raw.header[nm], _cell(raw, nm, i), _value_reason(raw, nm, i, spec, "not a number")))
                n_v = n_v - np.nan_to_num(minus)
            with np.errstate(invalid="ignore"):
                bad = n_bad | (n_v < 0) | (~np.isnan(n_v) & (n_v != np.round(n_v)))
            for i in np.flatnonzero(bad):
                problems.append(
                    Problem(
                        int(i), raw.header[nn], _cell(raw, nn, i), _value_reason(raw, nn, i, spec, "not a count (a whole number of raters)")
                    )
                )
        parsed.append((rc, raw.header[m], mean, sd_v, n_v, minus))

    blank_item = np.array([not s for s in items], dtype=bool)
    blank_row = blank_item & all_blank_values
    for i in np.flatnonzero(blank_item & ~blank_row):
        if int(i) in cleaned.invisible_only:
            problems.append(
                Problem(
                    int(i),
                    item_col_name,
                    _cell(raw, item_idx, i),
                    "the item has no visible characters (only zero-width, format or space characters)",
                )
            )
        else:
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
            for _, _, mean, sd_v, n_v, _minus in parsed:
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
            raise ImportProblems(raw.path, [(raw.line_of(p.row), p) for p in ordered], tuple(dict.fromkeys(hints)))
        for r in sorted(by_row):
            keep[r] = False
            rejected.append((raw.line_of(r), by_row[r]))
    kept_idx = np.flatnonzero(keep)
    if cleaned.changed:
        notes.insert(0, cleaned.note())
    summary = summary_rows([items[i] for i in kept_idx.tolist()])
    if summary:
        shown = ", ".join(f"{raw.line_of(int(kept_idx[k]))} ({clip(items[kept_idx[k]], 40)!r})" for k in summary[:5])
        notes.append(
            f"the last row{'s' if len(summary) > 1 else ''} {shown} look{'' if len(summary) > 1 else 's'} like a summary "
            "(a mean or total under the data), not an item, and came in as an item: delete "
            f"{'them' if len(summary) > 1 else 'it'} from the file and import again with --replace if so"
        )
    # every kept row names a different item: later rows of an item were merged into the first or are problems
    uniq = [items[i] for i in kept_idx.tolist()]
    row_item = np.arange(len(uniq), dtype=np.int64)
    dims = []
    for rc, mean_col, mean, sd_v, n_v, minus in parsed:
        m = mean[kept_idx]
        has = ~np.isnan(m)
        f = rc.rescale or 1.0
        value = rescaled(m[has], f)
        sd_out = None if sd_v is None else rescaled(sd_v[kept_idx][has], f)
        n_out = None if n_v is None else n_v[kept_idx][has]
        unknown = None if minus is None or n_v is None else minus[kept_idx][has]
        dims.append(DimensionValues(rc, row_item[has], value, sd_out, n_out, mean_col, unknown))
    return NormTable(
        spec=spec,
        items=uniq,
        dimensions=dims,
        rows_read=n,
        duplicates_merged=merged,
        blank_rows=int(blank_row.sum()),
        rejected=rejected,
        notes=notes,
    )


# what a spreadsheet's summary rows under the data are called, in the languages of the norms
def _summary_label(text: str) -> bool:
    key = " ".join(text.casefold().strip().rstrip(":.").split())
    return key in _SUMMARY_KEYS


_SUMMARY_KEYS = frozenset(
    [
        *"mean means average avg total totals sum sd s.d std stdev median min minimum max maximum count n overall".split(),
        *"subtotal range variance var se sem all mittelwert durchschnitt summe gesamt insgesamt".split(),
        *"standardabweichung moyenne somme médiane écart-type media promedio suma mediana średnia razem".split(),
        *"odchylenie průměr celkem součet medián среднее итого всего сумма медиана середнє разом сума".split(),
        *"σύνολο άθροισμα ortalama toplam medyan gemiddelde totaal som".split(),
        "grand total", "std dev", "std. dev", "standard deviation", "desviación típica", "desviación estándar",
        "total general", "μέσος όρος", "écart type", "sub-total",
    ]
)  # fmt: skip


def summary_rows(items: list[str]) -> list[int]:
    """Positions of the trailing run of items that read as a summary label ("Mean", "Total", "SD", ...)."""
    k = len(items)
    while k > 0 and _summary_label(items[k - 1]):
        k -= 1
    return list(range(k, len(items))) if k > 0 else []


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


def _value_reason(raw: RawTable, col: int, row: int, spec: DatasetSpec, reason: str) -> str:
    """`reason`, or the decimal mark's story when that is why the cell is no number."""
    cell = _cell(raw, col, row)
    why = number_reason(cell, spec.decimal) if isinstance(raw.columns[col][int(row)].as_py(), str) else "not a number"
    return reason if why == "not a number" else why


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
