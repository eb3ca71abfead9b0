"""Quality control of a campaign: the exclusion rules norming studies apply, and the aggregate per word.

Rules (each optional, for annotators with at least ``min_ratings`` ratings):
failed control items (a known word rated further than the tolerance from its
gold value, a nonword given a rating instead of "I don't know"); correlation
with the leave-one-out mean of the other annotators below a threshold; a
median time per word that is implausibly fast. Excluded annotators stay in
the store; their reason is kept on their rater.

Why not crowd-kit's annotator models (tried with crowd-kit 1.4.2 on this
module's test annotators): its classification models treat the scale points
as unordered labels, so one-coin Dawid-Skene gave an annotator who is always
one point above the others (r = 0.89 with them) a skill of 0.10, below a
random clicker's 0.15; its noisy Bradley-Terry over the pairs each annotator
ordered did not identify the skills (random clicker 0.64, a good annotator
0.07) and took 12 s for 3,000 pairs. Ratings on a scale with annotator
offsets need the order, hence the correlation with the others' mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workbench.numeric import pearson
from workbench.study.models import ExclusionSpec


@dataclass(frozen=True)
class Response:
    annotator: str
    role: str  # item | control | nonword
    item_id: int | None
    value: float | None
    unknown: bool
    lead_time: float | None
    gold: float | None = None


@dataclass
class AnnotatorQuality:
    annotator: str
    ratings: int = 0  # items (not controls) answered, known or not
    controls: int = 0
    failed_controls: int = 0
    correlation: float | None = None
    median_seconds: float | None = None
    excluded: str | None = None
    reasons: list[str] = field(default_factory=list)


def control_failed(r: Response, tolerance: float) -> bool | None:
    """True/False for a control item, None when it tells nothing (a known word the annotator does not know)."""
    if r.role == "nonword":
        return not r.unknown
    if r.role == "control":
        if r.unknown or r.value is None or r.gold is None:
            return None
        return abs(r.value - r.gold) > tolerance
    return None


def evaluate(responses: list[Response], rules: ExclusionSpec | None, tolerance: float) -> dict[str, AnnotatorQuality]:
    out: dict[str, AnnotatorQuality] = {}
    values: dict[str, dict[int, float]] = {}
    times: dict[str, list[float]] = {}
    for r in responses:
        q = out.setdefault(r.annotator, AnnotatorQuality(r.annotator))
        if r.lead_time is not None:
            times.setdefault(r.annotator, []).append(r.lead_time)
        if r.role == "item":
            q.ratings += 1
            if r.value is not None and r.item_id is not None:
                values.setdefault(r.annotator, {})[r.item_id] = r.value
        else:
            failed = control_failed(r, tolerance)
            if failed is not None:
                q.controls += 1
                q.failed_controls += int(failed)
    # leave-one-out: each annotator against the mean of the others on the same items
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for vals in values.values():
        for i, v in vals.items():
            sums[i] = sums.get(i, 0.0) + v
            counts[i] = counts.get(i, 0) + 1
    for a, vals in values.items():
        pairs = [(v, (sums[i] - v) / (counts[i] - 1)) for i, v in vals.items() if counts[i] > 1]
        if pairs:
            r = pearson(*zip(*pairs, strict=True))  # NaN under 3 pairs or for a constant side
            if not math.isnan(r):
                out[a].correlation = r
    for a, ts in times.items():
        out[a].median_seconds = float(np.median(ts))
    if rules is None:
        return out
    for q in out.values():
        if q.ratings < rules.min_ratings:
            continue
        if rules.max_failed_controls is not None and q.controls and q.failed_controls / q.controls > rules.max_failed_controls:
            q.reasons.append(f"failed {q.failed_controls} of {q.controls} control items (more than {rules.max_failed_controls:.0%})")
        if rules.min_correlation is not None and q.correlation is not None and q.correlation < rules.min_correlation:
            q.reasons.append(f"r = {q.correlation:.2f} with the mean of the other annotators (below {rules.min_correlation:g})")
        if rules.min_median_seconds is not None and q.median_seconds is not None and q.median_seconds < rules.min_median_seconds:
            q.reasons.append(f"median {q.median_seconds:.2f} s per word (below {rules.min_median_seconds:g} s)")
        q.excluded = "; ".join(q.reasons) or None
    return out


@dataclass(frozen=True)
class WordAggregate:
    item_id: int
    mean: float | None
    sd: float | None
    n: int  # annotators who rated the word on the scale
    n_unknown: int  # annotators who did not know it

    @property
    def known(self) -> float:
        total = self.n + self.n_unknown
        return self.n / total if total else float("nan")


def aggregate(responses: list[Response], excluded: set[str]) -> list[WordAggregate]:
    """Mean, sd, n and known-ness per word over the annotators who are not excluded (items only, not controls)."""
    vals: dict[int, list[float]] = {}
    unknown: dict[int, int] = {}
    for r in responses:
        if r.role != "item" or r.annotator in excluded or r.item_id is None:
            continue
        if r.unknown:
            unknown[r.item_id] = unknown.get(r.item_id, 0) + 1
            vals.setdefault(r.item_id, [])
        elif r.value is not None:
            vals.setdefault(r.item_id, []).append(r.value)
    out = []
    for i in sorted(vals):
        v = vals[i]
        mean = float(np.mean(v)) if v else None
        sd = float(np.std(v, ddof=1)) if len(v) > 1 else None
        out.append(WordAggregate(i, mean, sd, len(v), unknown.get(i, 0)))
    return out
