"""The study file: pydantic models. schemas/study.schema.json is generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100)]
Scale = Annotated[
    tuple[float, float],
    Field(description="[min, max] of the rating scale, e.g. [1, 7]"),
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
        return self


class ColumnSpec(Strict):
    """The columns of one dimension in a generic (non-preset) file."""

    mean: str = Field(description="column with the mean rating")
    sd: str | None = Field(None, description="column with the standard deviation")
    n: str | None = Field(None, description="column with the number of raters")
    scale: Scale | None = Field(None, description="scale the file uses, if not the dimension's")
    rescale: float | None = Field(None, gt=0, description="multiply values (and SDs) by this factor after checking the scale")


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
    rescale: dict[str, float] = Field(default_factory=dict, description="dimension -> factor, e.g. {familiarity: 0.01}")
    encoding: str | None = None
    separator: Literal[",", ";", "\t", "tab", "comma", "semicolon"] | None = None
    decimal: Literal[".", ","] = "."
    sheet: str | None = None
    skip_invalid: bool = Field(False, description="import valid rows and write rejected ones to a file")
    citation: str | None = None
    licence: str | None = None
    url: str | None = None

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


class SplitSpec(Strict):
    """A train/test split, stored as the item sets NAME.train and NAME.test.

    Random: from + train (+ test, seed); stratified by gold quantiles: add
    stratify; given: train and test as item sets/datasets, or train_file and
    test_file (word lists).
    """

    from_: list[Name] = Field(default_factory=list, alias="from", description="dataset(s) or item set(s) to split (their shared items)")
    train: int | float | Name | None = Field(
        None, description="with from: training items, a count or a fraction below 1; else an item set or dataset"
    )
    test: int | float | Name | None = Field(
        None, description="with from: test items (default: all the others); else an item set or dataset"
    )
    exclude: list[Name] = Field(default_factory=list, description="leave out the items of these datasets or item sets")
    stratify: Name | None = Field(None, description="a gold dataset: draw each quantile bin of its values in proportion")
    dimension: Name | None = Field(None, description="the dimension whose gold values stratify (default: the dataset's only one)")
    bins: int = Field(5, ge=2, le=100, description="quantile bins for stratify")
    seed: int = Field(0, description="seed of the draw")
    train_file: str | None = Field(None, description="a word list (one per line, or a table) of the training items, relative to the study")
    test_file: str | None = Field(None, description="a word list of the test items")
    column: str | None = Field(None, description="the column of the words in train_file/test_file tables (default: item or Word)")
    language: str = Field("en", description="language of the words in the files")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("from_", "exclude", mode="before")
    @classmethod
    def _listify(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_way(self):
        if self.from_:
            if self.train_file or self.test_file:
                raise ValueError("give from (a random split) or train_file/test_file, not both")
            for key in ("train", "test"):
                v = getattr(self, key)
                if isinstance(v, str):
                    raise ValueError(f"with from, {key} is a count or a fraction, not a name")
                if v is not None and (v <= 0 or (isinstance(v, float) and v >= 1 and not v.is_integer())):
                    raise ValueError(f"{key} must be a positive count or a fraction between 0 and 1")
            if self.train is None:
                raise ValueError("a random split needs train (a count or a fraction)")
        elif self.train_file or self.test_file:
            if not (self.train_file and self.test_file):
                raise ValueError("give train_file and test_file together")
            if self.train is not None or self.test is not None or self.stratify:
                raise ValueError("train_file/test_file take no train, test or stratify")
        else:
            if not (isinstance(self.train, str) and isinstance(self.test, str)):
                raise ValueError("give from and train (a random split), train and test as item set names, or train_file and test_file")
            if self.stratify:
                raise ValueError("stratify needs from")
        return self


class LocalTraining(Strict):
    """LoRA settings of a local fine-tune."""

    objective: Literal["soft", "text"] = Field(
        "soft", description="soft: cross-entropy on the scale tokens against the gold distribution; text: the value as text (two decimals)"
    )
    r: int = Field(16, ge=1, le=256)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    epochs: float = Field(1.0, gt=0, le=100)
    learning_rate: float = Field(1e-3, gt=0, lt=1)
    batch_size: int = Field(16, ge=1, le=1024)
    label_sd: float = Field(1.0, gt=0, description="SD of the soft target where the gold has none")
    seed: int = 0
    checkpoint_every: int = Field(20, ge=1, description="steps between checkpoints (not part of the adapter's identity)")
    device: str | None = Field(None, description="cpu, cuda, ... (default: a GPU when torch sees one)")


class OpenAITraining(Strict):
    """Hyperparameters of an OpenAI fine-tuning job (omitted: the server's defaults)."""

    n_epochs: int | None = Field(None, ge=1, le=50)
    batch_size: int | None = Field(None, ge=1, le=256)
    learning_rate_multiplier: float | None = Field(None, gt=0, le=10)
    suffix: str | None = Field(None, max_length=64, description="added to the fine-tuned model's name")
    seed: int | None = None


class FinetuneSpec(Strict):
    """A fine-tuning job whose result is a new rater (named like the fine-tune) rating the held-out items."""

    backend: Literal["openai", "local"] = Field(description="openai (the fine-tuning API) or local (LoRA on the local model)")
    base: Name | None = Field(None, description="a declared rater to start from: its model, prompt, server and dimension")
    model: str | None = Field(None, description="the model to tune when there is no base rater (openai: e.g. gpt-4o-mini-2024-07-18; local: gemma3-270m)")
    train: Name = Field(description="item set (e.g. a split's NAME.train) or dataset to train on")
    validation: Name | None = Field(None, description="item set for validation (openai)")
    gold: Name = Field(description="dataset whose ratings are the training targets")
    dimension: Name | None = Field(None, description="the dimension (default: the base rater's, or the study's only one)")
    rate: Name | None = Field(None, description="item set the tuned rater rates once trained (e.g. NAME.test); must not overlap train")
    prompt: str | None = Field(
        None, description="training and rating prompt, a file or the text, with {item} (default: the base rater's; local: 'Word: {item}\nRating: ')"
    )
    readout: Literal["expected", "parsed"] | None = Field(
        None, description="read-out of the tuned rater (default: expected; parsed reads the number an openai model answers)"
    )
    local: LocalTraining = Field(default_factory=LocalTraining, description="LoRA settings (backend local)")
    openai: OpenAITraining = Field(default_factory=OpenAITraining, description="job hyperparameters (backend openai)")
    poll_seconds: float = Field(10, gt=0, description="seconds between job status checks (openai)")

    @model_validator(mode="after")
    def _needs(self):
        if self.backend == "openai" and not (self.base or self.model):
            raise ValueError("an openai fine-tune needs base (a declared openai rater) or model")
        return self


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
    splits: dict[Name, SplitSpec] = Field(default_factory=dict, description="train/test splits, stored as item sets NAME.train and NAME.test")
    finetunes: dict[Name, FinetuneSpec] = Field(default_factory=dict, description="fine-tuning jobs; each makes a rater named like it")
    reports: dict[Name, ReportSpec] = Field(default_factory=dict, description="validation reports apply writes")

    @model_validator(mode="after")
    def _finetune_names(self):
        for name, ft in self.finetunes.items():
            if name in self.raters:
                raise ValueError(f"finetunes.{name}: a rater has this name; the fine-tune makes a rater of its own, give it another name")
            if ft.base and ft.base not in self.raters:
                raise ValueError(f"finetunes.{name}.base: no rater named {ft.base!r} in the study")
        for name in self.splits:
            for part in ("train", "test"):
                if f"{name}.{part}" in self.item_sets:
                    raise ValueError(f"splits.{name}: the item set {name}.{part} is declared in item_sets too; rename one")
        return self
