"""How a report shows a number, and the table cells both renderers (HTML, Markdown) build from it.

Number formatting (`format_number`), decided by the field name: the last
segment of the key that is not a list index.

- missing (None or NaN): "–" (en dash); +-infinity: "∞" and "-∞"
- counts (n, n_items, n_splits, icc_items, n_train, low_mass, counts, seed,
  n_boot, outside): integer with thousands separators, "2,545"
- p values (williams_p): 3 decimals, "< 0.001" below 0.001
- signed quantities (bias, residual, mean_residual, difference,
  williams_t): 3 decimals with a sign, "+0.244", "-0.101" ("0.000" for zero)
- bin edges (low, high, bins): up to 3 decimals, trailing zeros dropped, "3.5"
- the interval level (ci): percent, "95%"
- intervals (fields ending _ci or _interval, scale and value_scale):
  "[low, high]", each end by the rule of the field without the suffix
  (spearman_ci as spearman, difference_ci as difference, scales as edges),
  "[0.781, 0.823]"; "–" when both ends are missing
- any other number (correlations, reliabilities, mae, rmse, sd_ratio, rating
  values, mass, intercept, slope): 3 decimals, "0.742"

Rounding is Python's (round half to even on the binary value); a value that
rounds to zero has no minus sign.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any

MISSING = "–"

INT_FIELDS = frozenset({
    "n", "n_calibration", "n_labeled", "n_unlabeled", "n_items", "n_splits", "icc_items", "n_train", "low_mass", "counts", "seed", "n_boot", "outside",
    "items", "with_gold", "without_gold", "rated", "jobs", "calls", "raters_per_item", "list_size", "lists", "annotators",
    "excluded", "annotations",
})  # fmt: skip
P_FIELDS = frozenset({"williams_p"})
SIGNED_FIELDS = frozenset({"bias", "residual", "mean_residual", "difference", "williams_t"})
EDGE_FIELDS = frozenset({"low", "high", "bins", "scale", "value_scale", "step"})
INTERVAL_SUFFIXES = ("_ci", "_interval")


# --------------------------------------------------------------------------- numbers


def _field(key: str) -> str:
    for part in reversed(str(key).split(".")):
        if not part.isdigit():
            return part
    return ""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _unsigned_zero(text: str) -> str:
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _scalar(value: Any, field: str) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if field in INT_FIELDS or isinstance(value, int):  # a count, or an integer option (top_logprobs: 20)
        return f"{int(value):,}"
    v = float(value)
    if field in P_FIELDS:
        return "< 0.001" if v < 0.001 else f"{v:.3f}"
    if field in SIGNED_FIELDS:
        text = _unsigned_zero(f"{v:.3f}")
        return text if text.startswith("-") or float(text) == 0 else "+" + text
    if field in EDGE_FIELDS:
        text = f"{v:.3f}".rstrip("0").rstrip(".")
        return _unsigned_zero(text)
    if field == "ci":
        return f"{v * 100:g}%"
    return _unsigned_zero(f"{v:.3f}")


def format_number(value: Any, key: str) -> str:
    """The text of a number (or interval) at `key` (a dotted JSON path, or just the field name): see the module docstring."""
    field = _field(key)
    base = next((field[: -len(s)] for s in INTERVAL_SUFFIXES if field.endswith(s)), None)
    if base is not None or field in ("scale", "value_scale"):
        if _missing(value):
            return MISSING
        low, high = value
        if _missing(low) and _missing(high):
            return MISSING
        rule = base if base is not None else field
        return f"[{_scalar(low, rule)}, {_scalar(high, rule)}]"
    return _scalar(value, field)


# --------------------------------------------------------------------------- HTML


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any, key: str, cls: str = "num", style: str = "") -> str:
    style_attr = f' style="{_e(style)}"' if style else ""
    return f'<td class="{cls}" data-key="{_e(key)}"{style_attr}>{_e(format_number(value, key))}</td>'


def _txt(text: Any, cls: str = "") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<td{cls_attr}>{_e(MISSING if text is None else text)}</td>"


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: Any) -> str:
    """Inline Markdown text: whitespace collapsed, HTML escaped (GitHub renders raw HTML), Markdown punctuation escaped."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    line = "| " + " | ".join(headers) + " |"
    rule = "|" + "|".join("---:" if num else "---" for num in numeric) + "|"
    return "\n".join([line, rule] + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
