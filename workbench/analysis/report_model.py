"""The validation report's data: what `workbench report -o report.json` writes.

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


class NoGoldRow(Model):
    """A word no gold dataset rates, and what each rater says about it."""

    item: str
    values: list[float | None] = Field(
        description="each rater's value (as stored, on its own scale), in the order of Coverage.raters; null: not rated"
    )


class Coverage(Model):
    """Which of the report's words have a gold rating, and what the raters say about those that have none."""

    items: int = Field(description="words in the report: rated by a gold dataset or a rater, or in the report's item set")
    with_gold: int = Field(description="words with a value from at least one gold dataset")
    without_gold: int = Field(description="words no gold dataset rates: the agreement figures leave them out")
    raters: list[str] = Field(default_factory=list, description="the raters, in the order of each row's values")
    rated: list[int] = Field(default_factory=list, description="per rater, how many of the words without gold it rated")
    rows: list[NoGoldRow] = Field(default_factory=list, description="every word without gold, with the raters' values")


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


class PPIEstimate(Model):
    value: float | None
    value_interval: Interval


class PPIRow(Model):
    """A statistic over all the report's words: machine values everywhere, human values on some (prediction-powered)."""

    statistic: str = Field(description="mean, or correlation (Pearson) with another variable")
    machine: str = Field(description="the rater whose values every word has")
    humans: str = Field(description="the dataset whose values some words have")
    other: str | None = Field(None, description="the other variable of a correlation")
    n_labeled: int = Field(description="words with a human and a machine value")
    n_unlabeled: int = Field(description="words with a machine value only")
    naive: PPIEstimate = Field(description="all machine values taken as human ones (the all-machine interval)")
    classical: PPIEstimate = Field(description="the human-rated words alone")
    ppi: PPIEstimate = Field(description="prediction-powered: all machine values, corrected on the human-rated words")


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
    ppi: list[PPIRow] = Field(default_factory=list, description="statistics over machine and human values, prediction-powered")
    trained: list[TrainedOn] = Field(default_factory=list, description="raters trained on some items (fine-tunes, baselines)")
    heatmap: Heatmap
    coverage: Coverage | None = Field(None, description="words with and without gold, and the raters' values on those without")
    plots: dict[str, str] = Field(
        default_factory=dict,
        description="plot name -> file name: the figures drawn (HTML embeds them, Markdown writes them beside the .md); "
        "empty in JSON, which writes no figures",
    )


class DimensionMethod(Model):
    """A dimension as the store defines it: what raters and annotators were asked."""

    name: str
    scale: tuple[float | None, float | None]
    step: float | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="labels of scale points")
    instructions: str | None = Field(None, description="the instructions human annotators and the prompts' {instructions} got")


class DatasetMethod(Model):
    """A dataset in the store: a published norm, a word list or a campaign's aggregate."""

    name: str
    citation: str | None = None
    licence: str | None = None
    url: str | None = None
    file: str | None = Field(None, description="the file it was read from, as the study names it")
    checksum: str | None = Field(None, description="sha256 of that file")
    preset: str | None = None
    language: str | None = None
    imported: str | None = Field(None, description="date of the import (UTC, ISO 8601)")
    items: int = Field(0, description="items it has")
    dimensions: list[str] = Field(default_factory=list, description="dimensions it rates")
    role: str = Field("", description="how the report uses it: gold, campaign aggregate, or a source of items")


class RaterMethod(Model):
    """An LLM or model rater: everything that decides its ratings, read from the store."""

    name: str
    kind: str = Field(description="llm or model")
    backend: str | None = None
    dimension: str | None = None
    model: str | None = Field(None, description="the model asked for (name, file or folder)")
    model_version: str | None = Field(None, description="the model version the server reported answering with (from the calls)")
    weights: str | None = Field(None, description="fingerprint of the local weights (file size and hash)")
    readout: str | None = Field(None, description="how an answer became a rating: expected, greedy, parsed or samples")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="the rest of its configuration (temperature, top_logprobs, max_tokens, ...), each value as JSON text",
    )
    prompt: str | None = Field(None, description="the prompt as sent, filled in for `example_word`")
    example_word: str | None = Field(None, description="the word the prompt is shown for")
    few_shot: str | None = Field(None, description="where its few-shot examples came from")
    trained_on: str | None = Field(None, description="the items it was trained on (fine-tunes, baselines)")
    rated: int = Field(0, description="ratings it has on its dimension")
    jobs: int = Field(0, description="jobs that rated with it")
    calls: int = Field(0, description="calls to the model recorded in the store")
    first_run: str | None = Field(None, description="when its first job started (UTC, ISO 8601)")
    last_run: str | None = Field(None, description="when its last job started (UTC, ISO 8601)")


class CampaignMethod(Model):
    """A human norming campaign's design and what it gathered."""

    name: str
    dimension: str | None = None
    items: str | None = Field(None, description="the item set or dataset rated")
    n_items: int = Field(0, description="words rated (control items not counted)")
    raters_per_item: int | None = Field(None, description="k: independent annotators per word")
    list_size: int | None = None
    lists: int = Field(0, description="lists (Label Studio projects) pushed")
    controls: str | None = Field(None, description="control items mixed into every list")
    exclusions: str | None = Field(None, description="the exclusion rules applied to annotators")
    pre_annotations: str | None = None
    annotators: int = Field(0, description="annotators who rated at least one word")
    excluded: int = Field(0, description="annotators the exclusion rules left out")
    annotations: int = Field(0, description="annotations pulled (all statuses)")
    pushed: str | None = None
    pulled: str | None = None


class Methods(Model):
    """What a methods section needs, generated from the store: study, datasets, raters, campaigns."""

    study: str | None = Field(None, description="the study's name (recorded by `workbench apply`)")
    title: str | None = Field(None, description="the study's title")
    date: str = Field(description="the date the report was made (UTC; SOURCE_DATE_EPOCH when set)")
    workbench: str = Field(description="workbench version")
    cite: str = Field(description="how to cite the workbench")
    dimensions: list[DimensionMethod] = Field(default_factory=list)
    datasets: list[DatasetMethod] = Field(default_factory=list)
    raters: list[RaterMethod] = Field(default_factory=list)
    campaigns: list[CampaignMethod] = Field(default_factory=list)


class Report(Model):
    """A validation report: per dimension, how close each rater comes to the human norms."""

    title: str
    workbench: str = Field(description="workbench version")
    methods: Methods | None = Field(None, description="the methods section: study, datasets, raters, campaigns")
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
