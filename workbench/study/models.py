"""The study file: pydantic models. schemas/study.schema.json is generated from these."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100)]

# the widest scale a norm is on: years of age of acquisition, milliseconds of a naming latency, percentages
SCALE_LIMIT = 1e6


def _check_scale(v: tuple[float, float]) -> tuple[float, float]:
    lo, hi = v
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"scale [{lo}, {hi}]: both ends must be finite numbers, e.g. [1, 7]")
    if not lo < hi:
        raise ValueError(f"scale [{lo:g}, {hi:g}]: the minimum must be below the maximum")
    if max(abs(lo), abs(hi)) > SCALE_LIMIT:
        raise ValueError(f"scale [{lo:g}, {hi:g}]: ends beyond ±{SCALE_LIMIT:g} are not a rating scale")
    return v


Scale = Annotated[
    tuple[float, float],
    Field(description="[min, max] of the rating scale, e.g. [1, 7]: finite, min below max"),
    AfterValidator(_check_scale),
]


def _check_factor(v: float | None) -> float | None:
    if v is not None and not (math.isfinite(v) and 1e-9 <= v <= 1e9):
        raise ValueError(f"rescale factor {v}: must be a positive finite number such as 0.01")
    return v


Factor = Annotated[float, AfterValidator(_check_factor)]
NaMarkers = Annotated[
    list[Annotated[str, Field(max_length=100)]],
    Field(
        description="cell values that mean 'no value' besides the built-in ones (empty, NA, N/A, #N/A and its "
        "spreadsheet spellings such as #N/D, #NV, #N/B), e.g. ['0', '-']",
        max_length=100,
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DimensionSpec(Strict):
    """What is rated, on which scale."""

    scale: Scale
    step: float | None = Field(None, description="distance between scale points (1 for a Likert scale)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels of scale points, e.g. {1: abstract, 7: concrete}")
    instructions: str | None = Field(
        None, description="the instructions human raters got: a file path relative to the study, or the text itself"
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _label_keys(cls, v):
        return {str(k): str(val) for k, val in (v or {}).items()}

    @model_validator(mode="after")
    def _order(self):
        if not self.scale[0] < self.scale[1]:
            raise ValueError(f"scale minimum {self.scale[0]} must be below the maximum {self.scale[1]}")
        if self.step is not None:
            if not (math.isfinite(self.step) and self.step > 0):
                raise ValueError(f"step {self.step}: must be a positive number such as 1")
            points = (self.scale[1] - self.scale[0]) / self.step
            if points > 1000:
                raise ValueError(f"step {self.step:g} makes {points:.0f} scale points; at most 1000")
        return self


class ColumnSpec(Strict):
    """The columns of one dimension in a generic (non-preset) file."""

    mean: str = Field(description="column with the mean rating")
    sd: str | None = Field(None, description="column with the standard deviation")
    n: str | None = Field(None, description="column with the number of raters")
    scale: Scale | None = Field(None, description="scale the file uses, if not the dimension's")
    rescale: Factor | None = Field(None, gt=0, description="multiply values (and SDs) by this factor after checking the scale")


class DatasetSource(Strict):
    """A published norm file to import: by preset, or by naming its columns."""

    file: str = Field(
        description="path relative to the study file, or package:DIST/PATH for a file a Python package ships"
    )
    preset: str | None = Field(None, description="a known dataset layout: see `workbench import --help`")
    item_column: str | None = Field(None, description="column with the items (generic files)")
    ratings: dict[str, str | ColumnSpec] | None = Field(
        None, description="dimension -> mean column, or {mean, sd, n, scale, rescale} (generic files)"
    )
    language: str = Field("en", pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]+)?$")
    scale: dict[str, Scale] = Field(default_factory=dict, description="override a preset dimension's scale")
    rescale: dict[str, Factor] = Field(default_factory=dict, description="dimension -> factor, e.g. {familiarity: 0.01}")
    na: NaMarkers = Field(default_factory=list)
    encoding: str | None = Field(
        None,
        description="text encoding (default: detected; files mixing encodings are refused): utf-8, cp1252, "
        "latin-1, utf-16, or mixed to read each line in its own encoding",
    )
    separator: Literal[",", ";", "\t", "tab", "comma", "semicolon"] | None = None
    decimal: Literal[".", ","] = "."
    sheet: str | None = None
    skip_invalid: bool = Field(False, description="import valid rows and write rejected ones to a file")
    citation: str | None = None
    licence: str | None = None
    url: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v):
        if v is None or v.lower() == "mixed":
            return v
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}: use utf-8, cp1252, latin-1, utf-16 or mixed") from None
        return v

    @model_validator(mode="after")
    def _preset_or_columns(self):
        if self.preset and (self.item_column or self.ratings):
            raise ValueError("give either a preset or item_column + ratings, not both")
        if not self.preset and not (self.item_column and self.ratings):
            raise ValueError("give a preset, or item_column and ratings")
        return self


class ItemSetSpec(Strict):
    """A named set of items: the items of one or more datasets, optionally a seeded random sample."""

    from_: Name | list[Name] = Field(
        alias="from",
        description="dataset(s) or item set(s) whose items make the set; with several, only the items they all share",
    )
    sample: int | None = Field(None, gt=0, description="keep a random sample of this many items")
    seed: int = Field(0, description="seed of the random sample")
    exclude: Name | list[Name] = Field(default_factory=list, description="leave out the items of these datasets or item sets")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("from_", "exclude", mode="before")
    @classmethod
    def _listify(cls, v):
        return [v] if isinstance(v, str) else v


class FewShotSpec(Strict):
    """Few-shot examples: items from a set, shown with their gold values."""

    items: Name = Field(description="item set or dataset the examples are drawn from")
    gold: Name = Field(description="dataset whose ratings are shown as the examples' answers")
    n: int = Field(5, ge=1, le=200, description="number of examples")
    seed: int = Field(0, description="seed of the draw")
    format: str = Field(
        'Word: "{item}"\nRating: {value}',
        description="how one example is written; {item} and {value} are filled in",
    )
    round: bool = Field(True, description="round gold values to the nearest scale point (so answers are scale tokens)")


class Price(Strict):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


BACKENDS = ("openai", "openai-batch", "local", "wordfreq", "embedding")


class RaterSpec(Strict):
    """A rater: backend + model + prompt + read-out + parameters. Its identity is the hash of all of them."""

    backend: Literal["openai", "openai-batch", "local", "wordfreq", "embedding"] = Field(
        description="openai (any OpenAI-compatible server), openai-batch (the Batch API), local (an open-weight "
        "model in process), wordfreq or embedding (baselines)"
    )
    model: str | None = Field(
        None,
        description="model name on the server; for local, gemma3-270m (default) or a .gguf path; "
        "for embedding, all-MiniLM-L6-v2 (default)",
    )
    dimension: Name | None = Field(None, description="the dimension rated (default: the study's only dimension)")
    items: Name | None = Field(None, description="item set or dataset to rate (default: every item with a gold rating on the dimension)")
    prompt: str | None = Field(
        None,
        description="prompt template, a file relative to the study or the text; fills {item}, {examples}, "
        "{dimension}, {scale_min}, {scale_max}, {labels}, {instructions}",
    )
    system: str | None = Field(None, description="system prompt (chat backends), a file or the text")
    readout: Literal["expected", "greedy", "parsed", "samples"] = Field(
        "expected", description="how the answer becomes a rating"
    )
    few_shot: FewShotSpec | None = None
    # generation
    temperature: float | None = Field(None, ge=0, le=2, description="default 0, or 1 for the samples read-out")
    max_tokens: int = Field(5, ge=1, le=4096)
    top_logprobs: int = Field(20, ge=1, le=20)
    samples: int = Field(10, ge=2, le=128, description="answers per item for the samples read-out")
    min_mass: float = Field(0.5, ge=0, le=1, description="flag items with less probability mass on scale tokens")
    # server
    base_url: str | None = Field(None, description="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key (never stored)")
    price: Price | None = Field(None, description="price per million tokens, when the built-in table does not know the model")
    # how the job runs (not part of the rater's identity)
    concurrency: int = Field(16, ge=1, le=1024)
    timeout: float = Field(60, gt=0, description="seconds per request")
    max_retries: int = Field(5, ge=0, le=50)
    batch_size: int = Field(32, ge=1, le=1024, description="items per forward pass (local)")
    poll_seconds: float = Field(30, gt=0, description="seconds between batch status checks (openai-batch)")
    # baselines
    train: Name | None = Field(None, description="item set the baseline is fitted on")
    gold: Name | None = Field(None, description="dataset whose ratings the baseline is fitted to (and few-shot answers)")
    alpha: float | None = Field(None, gt=0, description="ridge penalty (embedding); default chosen by cross-validation")
    language: str = Field("en", description="language of the items (wordfreq)")

    @model_validator(mode="after")
    def _backend_needs(self):
        if self.backend in ("wordfreq", "embedding"):
            if self.backend == "embedding" and not (self.train and self.gold):
                raise ValueError("an embedding baseline needs train (an item set) and gold (a dataset)")
            if bool(self.train) != bool(self.gold):
                raise ValueError("give train and gold together")
        elif self.backend in ("openai", "openai-batch") and not self.model:
            raise ValueError(f"backend {self.backend} needs a model")
        return self


class CalibrateSpec(Strict):
    """Fit a linear map rater -> gold on one item set, report it on another."""

    train: Name
    test: Name


class ReportSpec(Strict):
    """A validation report that apply writes: raters against gold norms, beside the human ceiling."""

    gold: list[Name] | None = Field(None, description="gold datasets (default: every norm dataset of the dimension)")
    raters: list[Name] | None = Field(None, description="raters (default: every LLM and model rater)")
    dimension: Name | None = Field(None, description="one dimension (default: all)")
    items: Name | None = Field(None, description="restrict to an item set or dataset")
    calibrate: CalibrateSpec | None = None
    formats: list[Literal["html", "md", "json"]] = Field(["html", "md", "json"], description="files to write")
    out: str = Field("reports", description="folder for the files, relative to the study")
    seed: int = 0
    n_boot: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples")


class Study(Strict):
    """One study: what is rated, which norms come in. `workbench apply` makes the store match it."""

    study: Name = Field(description="the study's name")
    database: str | None = Field(
        None, description="sqlite:///PATH (relative to the study) or postgresql+psycopg://USER@HOST/DB; default: a SQLite file beside the study"
    )
    dimensions: dict[Name, DimensionSpec] = Field(default_factory=dict)
    datasets: dict[Name, DatasetSource] = Field(default_factory=dict)
    item_sets: dict[Name, ItemSetSpec] = Field(default_factory=dict, description="named sets of items")
    raters: dict[Name, RaterSpec] = Field(default_factory=dict, description="LLM raters and baselines")
    reports: dict[Name, ReportSpec] = Field(default_factory=dict, description="validation reports apply writes")
