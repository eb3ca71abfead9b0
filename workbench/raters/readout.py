"""Rating read-outs: from an LLM's answer to one number on the rating scale.

An LLM is asked to rate a word on a scale (e.g. 1-7) and to answer with one
number. This module turns what the model returned into a :class:`Readout`:

``expected``  (:func:`expected_from_top_logprobs`)
    The probability-weighted mean over the scale points, computed from the
    top logprobs of the *first* answer token: ``sum_k k p(k) / sum_k p(k)``.
    Only valid for scales whose points are single tokens (see
    :func:`single_token_scale`); other scales are refused with a
    :class:`~workbench.errors.WorkbenchError`.
``expected`` for a local backend (:func:`expected_from_continuation_logprobs`)
    Each point's full text is scored as a continuation (sum of its token
    logprobs); softmax over the points. Works for any scale.
``greedy``    (:func:`greedy_from_answer`)
    The first number in the answer text ("Rating: 6", "6/7", " 5.").
``parsed``    (:func:`parsed_from_answer`)
    A strict parse of a decimal ("5.41") or a JSON object with one numeric
    field or a field named rating/value/score ('{"rating": 5.41}').
``samples``   (:func:`mean_of_samples`)
    n answers sampled at temperature > 0, each parsed like greedy (or
    parsed), averaged over the valid ones.

Token matching for the expected read-out (a conscious, conservative choice):
a token counts as scale point ``k`` when, after stripping whitespace and the
tokenizer space/newline markers ``▁`` (SentencePiece), ``Ġ`` and ``Ċ``
(byte-level BPE), its text is exactly the point's canonical label (``"5"``).
So ``"5"``, ``" 5"``, ``"5\\n"`` and ``"▁5"`` are merged into 5, while
``"05"``, ``"5."``, ``"5.0"`` and ``"５"`` (full-width) are *not* scale points:
they are ignored, and their probability is not part of the covered mass (a
model that puts much mass there is flagged ``low_mass``).

All functions are pure; probabilities are combined in log space
(logsumexp), so very negative logprobs neither underflow nor lose precision.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from workbench.errors import WorkbenchError
from workbench.scale import Number, is_number, point_label

__all__ = [
    "READOUTS",
    "Readout",
    "SamplesReadout",
    "expected_from_continuation_logprobs",
    "expected_from_top_logprobs",
    "greedy_from_answer",
    "mean_of_samples",
    "parsed_from_answer",
    "single_token_scale",
]

READOUTS: tuple[str, ...] = ("expected", "greedy", "parsed", "samples")
"""The read-out names, as used in study files."""

DEFAULT_MIN_MASS = 0.5
"""Covered probability mass below which an expected read-out is flagged ``low_mass``."""

_MASS_TOLERANCE = 1e-3  # APIs round logprobs; a total a little above 1 is accepted
_TOKEN_STRIP = " \t\r\n\f\v\u00a0\u2581\u0120\u010a"  # whitespace, ▁, Ġ, Ċ
_FIRST_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_STRICT_FLOAT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_CODE_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.DOTALL)
_NAMED_FIELDS = ("rating", "value", "score")

LogprobsInput = Mapping[str, float] | Iterable[Any]


@dataclass(frozen=True, kw_only=True)
class Readout:
    """One rating read out of a model's answer.

    value: the rating, or None when no valid rating could be read (see reason).
    distribution: probability of each scale point, keyed by the point's label
        (``"5"``; JSON-friendly), in scale order, summing to 1; None when the
        read-out has no distribution (greedy, parsed).
    mass: for the expected read-out, the raw probability on scale-point tokens
        before renormalisation (1.0 by construction for continuation scoring);
        for samples, the fraction of valid answers; None otherwise.
    low_mass: True when mass is below the chosen threshold.
    answer: the answer text the value was parsed from (greedy, parsed).
    reason: why value is None, or a warning (low mass); None when all is well.
    """

    value: float | None
    distribution: dict[str, float] | None = None
    mass: float | None = None
    low_mass: bool = False
    answer: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when a rating was read (value is not None)."""
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class Refusal(Readout):
    """No rating because the model refused (a ``refusal`` and no answer) or the server's content filter
    stopped the answer (``finish_reason: content_filter``): kept with its own note and counted as refused."""


@dataclass(frozen=True, kw_only=True)
class SamplesReadout(Readout):
    """The samples read-out: a :class:`Readout` plus the per-sample details.

    n: number of answers given; n_valid: how many gave a rating on the scale.
    sd: sample standard deviation (ddof=1) of the valid values; None when
        n_valid < 2.
    values: the valid values, in answer order.
    invalid: (index, answer, reason) for every answer that gave no rating.
    """

    n: int
    n_valid: int
    sd: float | None
    values: tuple[float, ...]
    invalid: tuple[tuple[int, str | None, str], ...]


# --------------------------------------------------------------------------- scales


def single_token_scale(points: Sequence[Number]) -> bool:
    """True only when every point is an integer 0-9, written with one character.

    A conservative rule that needs no tokenizer: every tokenizer in use has a
    token for each single digit, while "10", "100" or "2.5" may be split into
    several tokens, so their first token does not identify the point.
    """
    return all(len(label) == 1 and label.isdigit() for label in _check_points(points))


def _check_points(points: Sequence[Number]) -> list[str]:
    """Validate the scale points; return their labels (cached for tuples: a job reads thousands of answers)."""
    if isinstance(points, tuple) and not any(isinstance(p, bool | np.bool_) for p in points):  # True == 1
        try:
            return list(_checked_labels(points))
        except TypeError:  # unhashable members: checked below, uncached
            pass
    return _labels_of(points)


@functools.lru_cache(maxsize=64)
def _checked_labels(points: tuple) -> tuple[str, ...]:
    return tuple(_labels_of(points))


def _labels_of(points: Sequence[Number]) -> list[str]:
    if isinstance(points, str | bytes) or not isinstance(points, Sequence):
        raise WorkbenchError(f"scale points must be a sequence of numbers, got {points!r}")
    if len(points) < 2:
        raise WorkbenchError(f"a scale needs at least two points, got {list(points)!r}")
    labels = [point_label(p) for p in points]
    if len(set(labels)) != len(labels):
        raise WorkbenchError(f"scale points are not distinct: {labels}")
    return labels


def _scale_name(points: Sequence[Number]) -> str:
    return f"{point_label(min(points))}-{point_label(max(points))}"


# --------------------------------------------------------------------------- log-space helpers


def _logsumexp(values: Sequence[float]) -> float:
    # plain Python: the lists are short (a few top logprobs), where numpy's call overhead dominates
    if not values:
        return -math.inf
    m = max(values)
    if m == -math.inf:
        return -math.inf
    if len(values) == 1:
        return float(m)
    return m + math.log(math.fsum(math.exp(v - m) for v in values))


def _check_logprob(token: str, lp: object, *, allow_positive: bool = False) -> float:
    if not is_number(lp):
        raise WorkbenchError(f"logprob of {token!r} must be a number, got {lp!r}")
    x = float(lp)  # type: ignore[arg-type]
    if math.isnan(x) or x == math.inf:
        raise WorkbenchError(f"logprob of {token!r} is {x}: expected a finite number or -inf")
    if not allow_positive and x > math.log1p(_MASS_TOLERANCE):
        raise WorkbenchError(f"logprob of {token!r} is {x} > 0: these must be natural-log probabilities")
    return x


def _pairs(top_logprobs: LogprobsInput) -> list[tuple[str, float]]:
    """(token, logprob) pairs from a dict, a list of pairs, or OpenAI-style dicts/objects."""
    if isinstance(top_logprobs, Mapping):
        items: Iterable[Any] = top_logprobs.items()
    elif isinstance(top_logprobs, str | bytes) or not isinstance(top_logprobs, Iterable):
        raise WorkbenchError(
            f"top logprobs must be a dict token -> logprob or a list of (token, logprob) pairs, got {type(top_logprobs).__name__}"
        )
    else:
        items = top_logprobs
    out: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, Mapping) and "token" in item and "logprob" in item:
            token, lp = item["token"], item["logprob"]
        elif hasattr(item, "token") and hasattr(item, "logprob"):
            token, lp = item.token, item.logprob
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 2:
            token, lp = item
        else:
            raise WorkbenchError(f"top logprob entry {item!r} is not a (token, logprob) pair")
        if not isinstance(token, str):
            raise WorkbenchError(f"top logprob token {token!r} is not a string")
        out.append((token, _check_logprob(token, lp)))
    return out


def _distribution(labels: list[str], logp: dict[str, float], total: float) -> dict[str, float]:
    return {lab: (math.exp(logp[lab] - total) if lab in logp else 0.0) for lab in labels}


def _expected(points: Sequence[Number], labels: list[str], dist: dict[str, float]) -> float:
    value = sum(float(p) * dist[lab] for p, lab in zip(points, labels, strict=True))
    return min(max(value, float(min(points))), float(max(points)))  # guard rounding


# --------------------------------------------------------------------------- expected


def expected_from_top_logprobs(
    top_logprobs: LogprobsInput,
    points: Sequence[Number],
    *,
    min_mass: float = DEFAULT_MIN_MASS,
) -> Readout:
    """The expected rating from the top logprobs of the first answer token.

    top_logprobs: natural-log probabilities of the candidate first tokens, as a
        dict ``{token: logprob}``, a list of ``(token, logprob)`` pairs, or a
        list of OpenAI-style ``{"token": ..., "logprob": ...}`` entries/objects.
        A token listed twice has its probabilities summed.
    points: the scale points, e.g. ``scale_points(1, 7)``; must be single tokens
        (:func:`single_token_scale`), otherwise a WorkbenchError is raised.
    min_mass: flag ``low_mass`` when the covered mass is below this.

    Tokens are merged into scale points as described in the module docstring;
    tokens that are not scale points (words, "9" on a 1-7 scale, "05") are
    ignored. The distribution is renormalised over the scale points (points
    not seen get 0.0), ``mass`` is the raw probability on scale-point tokens.
    With no scale-point token at all, value is None with a reason.
    """
    labels = _check_points(points)
    if not single_token_scale(points):
        raise WorkbenchError(
            f"scale {_scale_name(points)} has points that are not single tokens: "
            "use readout greedy/parsed, or the local backend's full continuation scoring"
        )
    if not is_number(min_mass) or not 0.0 <= float(min_mass) <= 1.0:
        raise WorkbenchError(f"min_mass must be a number between 0 and 1, got {min_mass!r}")

    by_token: dict[str, list[float]] = {}
    for token, lp in _pairs(top_logprobs):
        by_token.setdefault(token, []).append(lp)
    token_logp = {tok: _logsumexp(lps) for tok, lps in by_token.items()}
    all_total = _logsumexp(list(token_logp.values()))
    if all_total > math.log1p(_MASS_TOLERANCE):
        raise WorkbenchError(
            f"the top logprobs add up to a probability of {math.exp(all_total):.4f} > 1: were logprobs of different positions mixed?"
        )

    wanted = set(labels)
    grouped: dict[str, list[float]] = {}
    for token, lp in token_logp.items():
        key = token.strip(_TOKEN_STRIP)
        if key in wanted:
            grouped.setdefault(key, []).append(lp)
    logp = {lab: _logsumexp(lps) for lab, lps in grouped.items()}
    logp = {lab: lp for lab, lp in logp.items() if lp > -math.inf}
    if not logp:
        return Readout(value=None, mass=0.0, low_mass=True, reason="no scale point among the top logprobs")

    total = _logsumexp(list(logp.values()))
    mass = min(1.0, math.exp(total))
    dist = _distribution(labels, logp, total)
    low = mass < float(min_mass)
    reason = f"only {mass:.1%} of the probability is on scale points (threshold {float(min_mass):.0%})" if low else None
    return Readout(value=_expected(points, labels, dist), distribution=dist, mass=mass, low_mass=low, reason=reason)


def expected_from_continuation_logprobs(
    points: Sequence[Number],
    logprob_of_point: Mapping[Any, float],
) -> Readout:
    """The expected rating from full-continuation scores (local backend).

    logprob_of_point: for every scale point (keyed by the point or its label,
        ``5`` or ``"5"``), the log probability of the whole continuation that
        writes it (the sum of its token logprobs). Every point must be scored
        exactly once; -inf is allowed, NaN and +inf are not.

    The distribution is the softmax over the points. Since every point is
    scored, the distribution is complete by construction: ``mass`` is 1.0 and
    ``low_mass`` is False (the probability of answers that are no point at all
    is not measured by this read-out). Works for any scale, 100-700 included.
    """
    labels = _check_points(points)
    if not isinstance(logprob_of_point, Mapping):
        raise WorkbenchError("logprob_of_point must be a dict point -> logprob")
    logp: dict[str, float] = {}
    for key, lp in logprob_of_point.items():
        if isinstance(key, str):
            try:
                lab = point_label(float(key))
            except ValueError:
                raise WorkbenchError(f"continuation key {key!r} is not a scale point") from None
        else:
            lab = point_label(key)
        if lab not in labels:
            raise WorkbenchError(f"continuation key {key!r} is not a point of the scale {_scale_name(points)}")
        if lab in logp:
            raise WorkbenchError(f"scale point {lab} is scored twice")
        logp[lab] = _check_logprob(lab, lp, allow_positive=True)
    missing = [lab for lab in labels if lab not in logp]
    if missing:
        raise WorkbenchError(f"no continuation logprob for scale point(s) {', '.join(missing)}")
    total = _logsumexp(list(logp.values()))
    if total == -math.inf:
        raise WorkbenchError("every scale point has logprob -inf: nothing to normalise")
    dist = _distribution(labels, logp, total)
    return Readout(value=_expected(points, labels, dist), distribution=dist, mass=1.0)


# --------------------------------------------------------------------------- greedy / parsed


def _on_scale(value: float, points: Sequence[Number], answer: str) -> Readout:
    lo, hi = float(min(points)), float(max(points))
    if not lo <= value <= hi:
        return Readout(value=None, answer=answer, reason=f"{point_label(value)} is outside the scale {_scale_name(points)}")
    return Readout(value=value, answer=answer)


def greedy_from_answer(answer: str | None, points: Sequence[Number]) -> Readout:
    """The first number in the answer text, checked to lie on the scale.

    ``"5"``, ``" 5."``, ``"Rating: 6"`` and ``"6/7"`` read as 5, 5, 6 and 6; a
    number glued to a word ("Q1") is skipped. The value must lie between the
    scale's min and max inclusive (it need not be one of the points); otherwise,
    or when there is no number, value is None with a reason.
    """
    _check_points(points)
    if answer is None:
        return Readout(value=None, reason="no answer")
    if not isinstance(answer, str):
        raise WorkbenchError(f"the answer must be text, got {type(answer).__name__}")
    match = _FIRST_NUMBER.search(answer)
    if match is None:
        return Readout(value=None, answer=answer, reason="no number in the answer")
    return _on_scale(float(match.group()), points, answer)


def _number_from_json(obj: object) -> tuple[float | None, str | None]:
    """(value, reason) from a parsed JSON value."""
    if is_number(obj):
        return float(obj), None  # type: ignore[arg-type]
    if not isinstance(obj, dict):
        return None, "the JSON answer is neither a number nor an object"
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for name in _NAMED_FIELDS:  # a named field wins over any other numeric field
        v = lowered.get(name)
        if is_number(v):
            return float(v), None  # type: ignore[arg-type]
        if isinstance(v, str) and _STRICT_FLOAT.fullmatch(v.strip()):
            return float(v), None
    numeric = {k: float(v) for k, v in obj.items() if is_number(v)}
    if len(numeric) == 1:
        return next(iter(numeric.values())), None
    if not numeric:
        return None, "the JSON object has no numeric field"
    return None, f"the JSON object has several numeric fields ({', '.join(map(str, numeric))}) and none named rating/value/score"


def parsed_from_answer(answer: str | None, points: Sequence[Number]) -> Readout:
    """A decimal or JSON answer, parsed strictly and checked to lie on the scale.

    Accepted: a bare number (``"5.41"``, ``" 3 "``, ``"5e0"``); a JSON number;
    a JSON object with a field named rating/value/score, tried in that order
    and case-insensitively (``'{"rating": 5.41, "n": 2}'``; a numeric string
    there is accepted too), else with exactly one numeric field
    (``'{"familiarity": 3}'``); the same inside a Markdown code fence or
    after some text ('Answer: {"rating": 5}'). Anything else, NaN/infinity, or
    a value outside [min, max] gives value None with a reason.
    """
    _check_points(points)
    if answer is None:
        return Readout(value=None, reason="no answer")
    if not isinstance(answer, str):
        raise WorkbenchError(f"the answer must be text, got {type(answer).__name__}")
    text = answer.strip()
    fence = _CODE_FENCE.match(text)
    if fence:
        text = fence.group(1).strip()
    if not text:
        return Readout(value=None, answer=answer, reason="empty answer")
    if _STRICT_FLOAT.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):
            return Readout(value=None, answer=answer, reason="the number is not finite")
        return _on_scale(value, points, answer)
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 < start < end:
        candidates.append(text[start : end + 1])
    reason = "not a number or a JSON object with one numeric field"
    for candidate in candidates:
        try:
            obj = json.loads(candidate, parse_constant=lambda c: None)  # NaN/Infinity -> None
        except (json.JSONDecodeError, RecursionError):
            continue
        value, why = _number_from_json(obj)
        if value is None:
            reason = why or reason
            continue
        if not math.isfinite(value):
            return Readout(value=None, answer=answer, reason="the number is not finite")
        return _on_scale(value, points, answer)
    return Readout(value=None, answer=answer, reason=reason)


# --------------------------------------------------------------------------- samples


def mean_of_samples(
    answers: Sequence[str | None],
    points: Sequence[Number],
    *,
    parser: Literal["greedy", "parsed"] = "greedy",
    min_valid: float = DEFAULT_MIN_MASS,
) -> SamplesReadout:
    """The mean of n answers sampled at temperature > 0.

    Each answer is read with :func:`greedy_from_answer` (or
    :func:`parsed_from_answer` with ``parser="parsed"``); the valid values are
    averaged. ``mass`` is the fraction of valid answers and ``low_mass`` is set
    when it is below min_valid. ``distribution`` is the share of valid answers
    on each scale point when every valid value is a scale point, else None.
    With no valid answer, value is None with a reason.
    """
    labels = _check_points(points)
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise WorkbenchError("samples must be a list of answer texts")
    if not answers:
        raise WorkbenchError("no samples given: the samples read-out needs at least one answer")
    if parser not in ("greedy", "parsed"):
        raise WorkbenchError(f"unknown samples parser {parser!r}: use greedy or parsed")
    if not is_number(min_valid) or not 0.0 <= float(min_valid) <= 1.0:
        raise WorkbenchError(f"min_valid must be a number between 0 and 1, got {min_valid!r}")
    read = greedy_from_answer if parser == "greedy" else parsed_from_answer

    values: list[float] = []
    invalid: list[tuple[int, str | None, str]] = []
    for i, answer in enumerate(answers):
        r = read(answer, points)
        if r.value is None:
            invalid.append((i, answer, r.reason or "invalid"))
        else:
            values.append(r.value)
    n, n_valid = len(answers), len(values)
    mass = n_valid / n
    low = mass < float(min_valid)
    if not values:
        return SamplesReadout(
            value=None, mass=0.0, low_mass=True, reason=f"no valid answer among {n} samples",
            n=n, n_valid=0, sd=None, values=(), invalid=tuple(invalid),
        )  # fmt: skip
    arr = np.asarray(values, dtype=float)
    value = float(np.clip(arr.mean(), float(min(points)), float(max(points))))
    sd = float(arr.std(ddof=1)) if n_valid >= 2 else None
    value_labels = [point_label(v) for v in values]
    dist: dict[str, float] | None = None
    if set(value_labels) <= set(labels):
        dist = {lab: value_labels.count(lab) / n_valid for lab in labels}
    reason = f"only {n_valid} of {n} samples gave a rating on the scale" if low else None
    return SamplesReadout(
        value=value, distribution=dist, mass=mass, low_mass=low, reason=reason,
        n=n, n_valid=n_valid, sd=sd, values=tuple(values), invalid=tuple(invalid),
    )  # fmt: skip
