"""What to read from a table: which column holds the item, which hold each dimension's mean, SD and n.

Column names are matched after folding case and whitespace, and each may
have aliases, because the same dataset circulates with slightly different
headers (the published Glasgow file spells "Familiarty.M").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field

from workbench.errors import WorkbenchError

# Cells that mean "no value". Spreadsheets write Excel's #N/A (the NA() error) in the user's language:
# #N/D (Spanish, Portuguese, Italian), #N/D! (Polish), #NV (German), #N/B (Dutch), #N/V (Slovenian),
# #I/T (Danish, Norwegian), #SAKNAS! (Swedish), #PUUTTUU! (Finnish), #HIÁNYZIK (Hungarian),
# #NENÍ_K_DISPOZICI (Czech), #NEDOSTUPNÝ (Slovak), #YOK (Turkish), #Н/Д (Russian, Ukrainian),
# #Δ/Υ (Greek); data terminals write "#N/A N/A"; R and pandas write NA, NaN, <NA>, 1.#QNAN, ...
# Users add their own (MRC's 0, "-", "?") with --na or `na:` in the study.
NA_MARKERS = (
    "", "NA", "N/A", "#N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None", "#NA", "<NA>", "-NaN", "-nan",
    "#N/A N/A", "#N/A!", "#N/D", "#N/D!", "#NV", "#N/B", "#N/V", "#I/T", "#SAKNAS!", "#PUUTTUU!", "#HIÁNYZIK",
    "#NENÍ_K_DISPOZICI", "#NEDOSTUPNÝ", "#YOK", "#Н/Д", "#Δ/Υ", "1.#QNAN", "-1.#QNAN", "1.#IND", "-1.#IND",
)  # fmt: skip


def clip(value: object, limit: int = 200) -> str:
    """A cell or name as shown in a message: at most `limit` characters, so no error prints a file's contents."""
    value = str(value)
    return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"


def header_key(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).replace("\ufeff", "")).strip().casefold()


@dataclass(frozen=True)
class RatingColumns:
    """The columns of one dimension: mean (required), SD and n (optional)."""

    dimension: str
    mean: tuple[str, ...]
    sd: tuple[str, ...] = ()
    n: tuple[str, ...] = ()
    # n = n column minus this column (Brysbaert 2014: Total - Unknown)
    n_minus: tuple[str, ...] = ()
    scale: tuple[float, float] | None = None
    rescale: float | None = None
    na_values: tuple[str, ...] = ()
    optional: bool = False
    # a measure such as years, not a rating scale: `scale` only bounds it, and reports
    # compare it with other datasets by correlation only (no linear map onto a 1-7 scale)
    open_scale: bool = False

    def stored_scale(self) -> tuple[float, float] | None:
        if self.scale is None:
            return None
        f = self.rescale or 1.0
        return (self.scale[0] * f, self.scale[1] * f)


@dataclass(frozen=True)
class DatasetSpec:
    """How one dataset is read from a file."""

    name: str
    item: tuple[str, ...]
    ratings: tuple[RatingColumns, ...]
    language: str = "en"
    preset: str | None = None
    citation: str | None = None
    licence: str | None = None
    url: str | None = None
    decimal: str = "."
    extra_na: tuple[str, ...] = field(default=())
    # norm: a published dataset (gold); llm or model: ratings produced elsewhere, imported as a rater
    rater_kind: str = "norm"

    def fingerprint(self) -> str:
        """A hash of everything that changes what is imported."""
        d = asdict(self)
        d.pop("citation"), d.pop("licence"), d.pop("url")
        if d["rater_kind"] == "norm":  # the key of datasets imported before raters could be imported
            d.pop("rater_kind")
        for r in d["ratings"]:  # likewise before open scales were recorded
            if not r["open_scale"]:
                r.pop("open_scale")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def parse_rating_option(text: str) -> tuple[str, dict[str, str]]:
    """`DIM=MEAN_COL[,sd=COL][,n=COL]` -> (dimension, {"mean": .., "sd": .., "n": ..})."""
    if "=" not in text:
        raise WorkbenchError(
            f"--rating {text!r}: write it as DIM=MEAN_COLUMN[,sd=COLUMN][,n=COLUMN], e.g. --rating familiarity=FAM.M,sd=FAM.SD"
        )
    dim, rest = text.split("=", 1)
    parts = [p for p in _split_commas(rest)]
    cols = {"mean": parts[0].strip()}
    for p in parts[1:]:
        if "=" not in p:
            raise WorkbenchError(f"--rating {text!r}: {p!r} should be sd=COLUMN or n=COLUMN.")
        k, v = p.split("=", 1)
        k = k.strip().lower()
        if k not in ("sd", "n"):
            raise WorkbenchError(f"--rating {text!r}: unknown part {k!r}; use sd=COLUMN or n=COLUMN.")
        cols[k] = v.strip()
    if not dim.strip() or not cols["mean"]:
        raise WorkbenchError(f"--rating {text!r}: both the dimension and the mean column are needed.")
    return dim.strip(), cols


def _split_commas(text: str) -> list[str]:
    # a column name may itself contain a comma if quoted: "Conc, mean"
    out, cur, q = [], "", False
    for ch in text:
        if ch == '"':
            q = not q
        elif ch == "," and not q:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_scale_option(text: str) -> tuple[str, tuple[float, float]]:
    """`DIM=MIN:MAX` -> (dimension, (min, max))."""
    try:
        dim, rng = text.split("=", 1)
        lo, hi = rng.split(":", 1)
        lo_f, hi_f = float(lo), float(hi)
    except ValueError:
        raise WorkbenchError(f"--scale {text!r}: write it as DIM=MIN:MAX, e.g. --scale familiarity=1:7") from None
    if not (math.isfinite(lo_f) and math.isfinite(hi_f)) or max(abs(lo_f), abs(hi_f)) > 1e6:
        raise WorkbenchError(f"--scale {text!r}: both ends must be finite numbers within ±1e6, e.g. 1:7.")
    if not lo_f < hi_f:
        raise WorkbenchError(f"--scale {text!r}: the minimum must be below the maximum.")
    return dim.strip(), (lo_f, hi_f)


def parse_rescale_option(text: str) -> tuple[str, float]:
    """`DIM=FACTOR` -> (dimension, factor)."""
    try:
        dim, f = text.split("=", 1)
        factor = float(f)
    except ValueError:
        raise WorkbenchError(f"--rescale {text!r}: write it as DIM=FACTOR, e.g. --rescale familiarity=0.01") from None
    if not (math.isfinite(factor) and factor > 0):
        raise WorkbenchError(f"--rescale {text!r}: the factor must be a positive number.")
    return dim.strip(), factor
