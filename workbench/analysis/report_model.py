"""The validation report's data: what `workbench report --format json` writes.

schemas/report.schema.json is generated from these models
(``python -m workbench.analysis.report_model``). Numbers that cannot be
computed (too few items, a constant rater) are null, with a note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

Interval = tuple[float | None, float | None]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgreementRow(Model):
    """One rater (or gold dataset) against one gold dataset, on the items both rated."""

    rater: str
    rater_kind: str = Field(description="norm, human, llm or model")
    gold: str
    n: int = Field(description="items both rated")
    spearman: float | None
    spearman_ci: Interval = Field(description="percentile bootstrap interval over items")
    pearson: float | None
    pearson_ci: Interval
    mae: float | None = Field(description="mean absolute error, rater - gold")
    rmse: float | None
    bias: float | None = Field(description="mean signed error: positive when the rater rates higher than gold")
    sd_ratio: float | None = Field(description="sd(rater) / sd(gold): below 1, the rater compresses the scale")
    note: str | None = None


class Reliability(Model):
    """How well human annotators agree with each other (from individual ratings)."""

    raters: list[str]
    n_items: int
    split_half: float | None = Field(description="Spearman-Brown corrected split-half reliability, mean over random splits")
    split_half_interval: Interval
    n_splits: int
    icc2_1: float | None = Field(description="ICC(2,1): two-way random, absolute agreement, one rater")
    icc2_k: float | None = Field(description="ICC(2,k): two-way random, absolute agreement, mean of k raters")
    icc3_k: float | None = Field(description="ICC(3,k): two-way mixed, consistency, mean of k raters")
    icc_items: int = Field(description="complete items the ICCs use")
    krippendorff_alpha: float | None = Field(description="Krippendorff's alpha, interval metric")
    note: str | None = None
    excluded: dict[str, str] = Field(
        default_factory=dict, description="annotators a campaign's exclusion rules left out (not in the figures above): the reason"
    )


class Comparison(Model):
    """Does rater A agree with gold more than rater B, on the same items?"""

    rater_a: str
    rater_b: str
    gold: str
    n: int
    spearman_a: float | None
    spearman_b: float | None
    difference: float | None = Field(description="spearman_a - spearman_b")
    difference_ci: Interval = Field(description="paired bootstrap interval of the difference")
    williams_t: float | None
    williams_p: float | None
    verdict: str


class Disagreement(Model):
    item: str
    value: float = Field(description="the rater's value on the report's value scale")
    gold_value: float = Field(description="the gold value on the report's value scale")
    residual: float = Field(description="value - gold_value")
    answer: str | None = Field(None, description="the model's raw answer")
    mass: float | None = Field(None, description="probability on scale tokens")


class ResidualBand(Model):
    band: str
    low: float
    high: float
    n: int
    mean_residual: float | None
    mae: float | None


class MassSummary(Model):
    """How much probability an LLM rater put on scale tokens."""

    n: int
    median: float | None
    low_mass: int = Field(description="items under the rater's min_mass threshold")
    bins: list[float] = Field(description="histogram bin edges")
    counts: list[int]


class ErrorAnalysis(Model):
    rater: str
    gold: str
    largest: list[Disagreement] = Field(description="the items with the largest absolute residuals")
    by_frequency: list[ResidualBand] = Field(description="residuals by Zipf word frequency band (wordfreq)")
    by_length: list[ResidualBand] = Field(description="residuals by word length in characters")
    mass: MassSummary | None = None


class CalibrationRow(Model):
    """A linear map gold ~ a + b * rater fitted on the train items, applied to the test items."""

    rater: str
    gold: str
    train: str
    test: str
    intercept: float
    slope: float
    n_train: int
    raw: AgreementRow = Field(description="the rater on the test items before calibration")
    calibrated: AgreementRow = Field(description="after calibration: correlations are unchanged, errors shrink")


class Heatmap(Model):
    """Spearman rho between every two raters and gold sets on the items both rated."""

    labels: list[str]
    rho: list[list[float | None]]
    n: list[list[int]]


class ColumnScale(Model):
    """A gold dataset's or rater's own scale, and how its values enter the scale-dependent figures."""

    name: str
    scale: tuple[float | None, float | None] | None = Field(
        description="its own scale, as recorded at import (datasets.details) or in the rater's configuration; null: not recorded"
    )
    open: bool = Field(False, description="an open scale (a measure such as years): the bounds only limit the values")
    mapped: bool = Field(
        description="mapped linearly onto the report's value scale for MAE, RMSE, bias, SD ratio, residuals and plots; "
        "false: correlations only"
    )
    factor: float | None = Field(None, description="value on the report's scale = offset + factor * own value")
    offset: float | None = None
    outside: int = Field(0, description="values outside its own scale")
    note: str | None = None


class TrainedOn(Model):
    """The items a rater was trained on (a fine-tune, or a fitted baseline), and how many of the reported items are among them."""

    rater: str
    items: str = Field(description="the item set or dataset it was trained on")
    n: int | None = Field(None, description="training items")
    gold: str | None = Field(None, description="the dataset whose values it was trained to predict")
    overlap: int = Field(0, description="reported items that were training items: figures on them overstate the rater")


class CoverageAt(Model):
    """Achieved coverage of the calibrated intervals at one nominal level."""

    level: float = Field(description="nominal coverage, e.g. 0.9")
    covered: float | None = Field(description="share of held-out items whose gold value lies inside their interval")
    mean_width: float | None = Field(description="mean interval width, on the gold scale")


class IntervalRow(Model):
    """A rater's split-conformal intervals: fitted on a calibration item set, checked on the reported items."""

    rater: str
    gold: str
    calibration: str = Field(description="the item set the intervals were calibrated on (never the reported items)")
    n_calibration: int
    n: int = Field(description="reported items with a gold and a rater value: where coverage is measured")
    signals: list[str] = Field(description="the uncertainty signals the widths follow (empty: one width for every item)")
    coverage: list[CoverageAt]


class DimensionReport(Model):
    dimension: str
    scale: tuple[float | None, float | None]
    value_scale: tuple[float, float] | None = Field(
        None, description="the scale of MAE, RMSE, bias, residuals and plots: the dimension's (else the first gold's)"
    )
    scale_note: str | None = Field(None, description="which columns were mapped onto value_scale, which get correlations only")
    scales: list[ColumnScale] = Field(default_factory=list, description="each gold dataset's and rater's own scale")
    gold: list[str]
    raters: list[str]
    table: list[AgreementRow] = Field(description="every rater against every gold dataset")
    ceiling: list[AgreementRow] = Field(description="gold datasets against each other: the human ceiling")
    reliability: Reliability | None = None
    comparisons: list[Comparison] = Field(default_factory=list)
    errors: list[ErrorAnalysis] = Field(default_factory=list)
    calibration: list[CalibrationRow] = Field(default_factory=list)
    intervals: list[IntervalRow] = Field(default_factory=list, description="calibrated (conformal) intervals per rater")
    trained: list[TrainedOn] = Field(default_factory=list, description="raters trained on some items (fine-tunes, baselines)")
    heatmap: Heatmap
    plots: dict[str, str] = Field(
        default_factory=dict,
        description="plot name -> file name: the figures drawn (HTML embeds them, Markdown writes them beside the .md); "
        "empty in JSON, which writes no figures",
    )


class Report(Model):
    """A validation report: per dimension, how close each rater comes to the human norms."""

    title: str
    workbench: str = Field(description="workbench version")
    seed: int
    n_boot: int
    ci: float
    items: str | None = Field(description="the item set the report is restricted to, if any")
    dimensions: list[DimensionReport]


def schema() -> dict:
    return Report.model_json_schema()


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json"


def main(argv: list[str]) -> int:
    text = json.dumps(schema(), indent=2) + "\n"
    if "--check" in argv:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run python -m workbench.analysis.report_model", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
