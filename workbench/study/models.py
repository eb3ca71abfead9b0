"""The study file: pydantic models. schemas/study.schema.json is generated from these."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from workbench.errors import WorkbenchError, did_you_mean
from workbench.finetune.spec import FinetuneSpec, SplitSpec
from workbench.names import Name
from workbench.raters.backend import RaterOptions, backend_class, backend_names

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

    file: str = Field(description="path relative to the study file, or package:DIST/PATH for a file a Python package ships")
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

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v):
        # PostgreSQL text cannot hold NUL; SQLite would: refuse it on both
        texts = [v] if isinstance(v, str) else v if isinstance(v, list) else []
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("a NUL character (\\0) is not allowed here")
        return v

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


class WordListSource(Strict):
    """Words to rate that come with no ratings (new words, stimuli): a column of a table, or one word per line.

    The file's other columns become attributes of the words (part of speech, condition, frequency band),
    which item sets select on with ``where:``. A word list is never gold: it has no ratings.
    """

    file: str = Field(description="CSV, TSV, .xlsx, Parquet or .txt (one word per line), relative to the study")
    column: str | None = Field(None, description="the column with the words (default: the only column, or every line of a .txt file)")
    attributes: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, description="the columns kept as attributes (default: every other column)"
    )
    language: str = Field("en", pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]+)?$")
    na: NaMarkers = Field(default_factory=list)
    encoding: str | None = Field(None, description="text encoding (default: detected)")
    separator: Literal[",", ";", "\t", "tab", "comma", "semicolon"] | None = None
    sheet: str | None = None
    citation: str | None = None
    licence: str | None = None
    url: str | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v):
        return DatasetSource._no_nul(v)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v):
        return DatasetSource._known_encoding(v)


class UncertaintySpec(Strict):
    """Items where the models are least sure first: people rate those first."""

    by: Literal["spread", "mass", "disagreement"] = Field(
        description="spread: sd of an LLM rater's distribution over the scale points; mass: lowest probability on "
        "scale tokens; disagreement: sd of the values of several raters"
    )
    raters: Name | list[Name] = Field(description="the rater (spread, mass) or raters (disagreement, two or more)")
    top: int = Field(gt=0, description="keep this many items")

    @field_validator("raters", mode="before")
    @classmethod
    def _listify(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _enough_raters(self):
        if self.by == "disagreement" and len(self.raters) < 2:
            raise ValueError("disagreement needs two or more raters")
        if self.by != "disagreement" and len(self.raters) != 1:
            raise ValueError(f"{self.by} ranks by one rater: name one")
        return self


AttributeValue = Annotated[str, Field(max_length=500)]
AttributeValues = Annotated[
    AttributeValue | list[AttributeValue],
    BeforeValidator(lambda v: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v),
    AfterValidator(lambda v: [v] if isinstance(v, str) else v),
]


class ItemSetSpec(Strict):
    """A named set of items: the items of datasets, word lists or item sets (all of them: from; any of them:
    union), filtered by attributes (where), optionally a seeded random sample."""

    from_: Name | list[Name] = Field(
        default_factory=list,
        alias="from",
        description="dataset(s), word list(s) or item set(s) whose items make the set; with several, only the "
        "items they all share (an intersection)",
    )
    union: Name | list[Name] = Field(
        default_factory=list, description="dataset(s), word list(s) or item set(s) whose items are all in the set (a union)"
    )
    where: dict[Annotated[str, Field(max_length=200)], AttributeValues] = Field(
        default_factory=dict,
        description="keep the items whose word-list attributes match, e.g. {band: rare} or {pos: [noun, verb]}: "
        "every key, any of its values",
    )
    sample: int | None = Field(None, gt=0, description="keep a random sample of this many items")
    seed: int = Field(0, description="seed of the random sample")
    exclude: Name | list[Name] = Field(default_factory=list, description="leave out the items of these datasets or item sets")

    uncertainty: UncertaintySpec | None = Field(
        None, description="rank the items by how unsure models are about them and keep the top N (instead of a sample)"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _sample_or_rank(self):
        if self.uncertainty is not None and self.sample is not None:
            raise ValueError("give either sample or uncertainty, not both")
        return self

    @field_validator("from_", "union", "exclude", mode="before")
    @classmethod
    def _listify(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _some_source(self):
        if not self.from_ and not self.union:
            raise ValueError("say where the items come from: from: NAME (or several: the items they share), or union: [A, B]")
        return self


def _rater_options(value: Any) -> RaterOptions:
    """Validate a rater entry with the Options model of the backend it names."""
    if isinstance(value, RaterOptions):
        return value
    if not isinstance(value, dict):
        raise ValueError("a rater is a mapping with at least `backend:`")
    if "backend" not in value:
        raise ValueError(f"say which backend rates: backend: one of {', '.join(backend_names())}")
    try:
        cls = backend_class(str(value["backend"]))
    except WorkbenchError as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    try:
        return cls.Options.model_validate(value)
    except ValidationError as exc:
        raise _naming_the_backend(exc, cls) from None


def _naming_the_backend(exc: ValidationError, cls: type) -> ValidationError:
    """The same errors, where an option the backend does not take says so (and suggests the closest one)."""
    errors: list[Any] = []
    for error in exc.errors():
        if error["type"] == "extra_forbidden":
            field = str(error["loc"][-1])
            hint = did_you_mean(field, cls.Options.model_fields)
            message = PydanticCustomError(
                "option_not_taken", "the {backend} backend does not take this option.{hint}", {"backend": cls.name, "hint": hint}
            )
            errors.append({"type": message, "loc": error["loc"], "input": error["input"]})
        else:
            errors.append(error)
    return ValidationError.from_exception_data(exc.title, errors)


RaterSpec = Annotated[
    SerializeAsAny[RaterOptions],
    BeforeValidator(_rater_options),
    Field(description="a rater: backend: NAME and that backend's options (schemas/ lists each backend's)"),
]


class CalibrateSpec(Strict):
    """Fit a linear map rater -> gold on one item set, report it on another."""

    train: Name
    test: Name


class IntervalsSpec(Strict):
    """Calibrated (split-conformal) intervals for each rater of a report."""

    calibration: Name = Field(description="item set with gold values to calibrate on; never the reported items (give the report items:)")
    gold: Name | None = Field(None, description="the gold dataset (default: the report's first)")
    levels: list[Annotated[float, Field(gt=0, lt=1)]] = Field([0.8, 0.9, 0.95], min_length=1, description="nominal coverages")
    disagreement: list[Name] = Field(
        default_factory=list, description="raters whose disagreement with the rater (sd of the values) widens its intervals"
    )


class PPISpec(Strict):
    """Statistics over many machine values and a few human ones, with prediction-powered intervals."""

    machine: Name = Field(description="the rater whose values every word has (a report rater)")
    humans: Name | None = Field(None, description="the dataset whose values some words have (default: the report's first gold)")
    with_: list[Name] = Field(default_factory=list, alias="with", description="other variables (raters or gold) to correlate the norm with")
    level: float = Field(0.95, gt=0, lt=1, description="confidence level")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReportSpec(Strict):
    """A validation report that apply writes: raters against gold norms, beside the human ceiling."""

    gold: list[Name] | None = Field(None, description="gold datasets (default: every norm dataset of the dimension)")
    raters: list[Name] | None = Field(None, description="raters (default: every LLM and model rater)")
    dimension: Name | None = Field(None, description="one dimension (default: all)")
    items: Name | None = Field(None, description="restrict to an item set or dataset")
    calibrate: CalibrateSpec | None = None
    intervals: IntervalsSpec | None = Field(None, description="calibrated intervals per rater: coverage at each level, mean width")
    ppi: PPISpec | None = Field(None, description="the norm's mean and correlations over all words, prediction-powered beside naive")
    formats: list[Literal["html", "md", "json"]] = Field(["html", "md", "json"], description="files to write")
    out: str = Field("reports", description="folder for the files, relative to the study")
    seed: int = 0
    n_boot: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples")


class ControlsSpec(Strict):
    """Control items mixed into every list: words with known extreme values, and nonwords."""

    gold: Name | None = Field(None, description="dataset whose lowest and highest rated words become control items")
    per_list: int = Field(4, ge=0, le=100, description="known words per list, half from each end of the scale")
    tolerance: float | None = Field(
        None, gt=0, description="a known word fails when rated further than this from its gold value (default: a third of the scale)"
    )
    nonwords: list[str] | str = Field(
        default_factory=list,
        description='nonwords that should get "I don\'t know this word": a list, or a file with one per line',
    )
    nonwords_per_list: int = Field(2, ge=0, le=100)

    @model_validator(mode="after")
    def _some(self):
        if self.per_list and not self.gold:
            raise ValueError("known control words need gold: the dataset they come from (or per_list: 0)")
        return self


class ExclusionSpec(Strict):
    """Exclusion rules as norming studies apply them; excluded annotators stay in the store, with the reason."""

    max_failed_controls: float | None = Field(
        None, ge=0, le=1, description="exclude an annotator who fails more than this share of the control items"
    )
    min_correlation: float | None = Field(
        None, ge=-1, le=1, description="exclude an annotator whose ratings correlate less than this with the mean of the others (e.g. 0.2)"
    )
    min_median_seconds: float | None = Field(None, ge=0, description="exclude an annotator whose median time per word is below this")
    min_ratings: int = Field(10, ge=1, description="apply the rules only to annotators with at least this many ratings")


class LabelStudioServer(Strict):
    """Where the Label Studio server is; the key comes from the environment (never the study file or the store)."""

    url: str | None = Field(
        None, description="e.g. http://127.0.0.1:8080 (default: LABEL_STUDIO_URL, else the server `workbench annotate serve` started)"
    )
    api_key_env: str = Field("LABEL_STUDIO_API_KEY", description="environment variable holding the token (legacy or personal access token)")
    timeout: float = Field(60, gt=0, description="seconds per request")
    parallel: int | None = Field(
        None, ge=1, le=32,
        description="lists `annotate push` imports at once (default: 4 on a server known to run on PostgreSQL, such as "
        "`workbench annotate serve --database`; 1 otherwise: concurrent imports into Label Studio's SQLite lose work)",
    )  # fmt: skip


class CompletionSpec(Strict):
    """What annotators get when they finish a list: a code to paste into the recruiting panel, or a link back to it."""

    code: str | None = Field(None, min_length=1, max_length=100, description="a completion code, e.g. C1A2B3C4 (Prolific's)")
    url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="a link that returns the annotator to the panel, e.g. https://app.prolific.com/submissions/complete?cc=C1A2B3C4",
    )

    @model_validator(mode="after")
    def _some(self):
        if not self.code and not self.url:
            raise ValueError("give a completion code, a url, or both")
        return self


class AdaptiveSpec(Strict):
    """Rounds of human ratings sent only where a hybrid norm is still unsure: `workbench annotate round NAME`."""

    hybrid: Name = Field(description="the hybrid (under hybrids:) whose humans are this campaign and whose intervals decide")
    target_half_width: float = Field(gt=0, description="a word is settled when its interval's half-width is at most this")
    max_per_word: int = Field(10, ge=1, description="a word is settled after this many human ratings")
    budget: int = Field(gt=0, description="human ratings in all, over every round")
    first_sample: int = Field(50, ge=0, description="round 1: a seeded random sample of this many words (the calibration sample)")
    first_uncertain: int = Field(100, ge=0, description="round 1: plus this many words the prior is least sure of")
    seed: int = Field(0, description="seed of round 1's sample")


class CampaignSpec(Strict):
    """A human norming campaign: lists of items in Label Studio, k independent ratings per item."""

    backend: Literal["label-studio"] = "label-studio"
    dimension: Name | None = Field(None, description="the dimension rated (default: the study's only dimension); "
                                   "its instructions are the annotators' instructions")  # fmt: skip
    items: Name = Field(description="item set or dataset to rate")
    raters_per_item: int = Field(5, ge=1, le=100, description="independent annotators per item")
    list_size: int = Field(100, ge=1, le=10_000, description="items per list (one Label Studio project per list)")
    controls: ControlsSpec | None = None
    exclude: ExclusionSpec | None = None
    pre_annotations: Name | None = Field(
        None, description="show this rater's ratings as pre-annotations (off by default: they anchor human raters)"
    )
    dataset: Name | None = Field(None, description="name of the campaign's aggregate dataset (default: the campaign's name)")
    seed: int = Field(0, description="seed of the list assignment and control positions")
    completion: CompletionSpec | None = Field(
        None, description="shown in the instructions and at the end of each list: the code or link that gets annotators paid"
    )
    adaptive: AdaptiveSpec | None = Field(None, description="run the campaign in rounds against a hybrid (raters_per_item: each round's k)")
    server: LabelStudioServer = Field(default_factory=LabelStudioServer)


class HybridSpec(Strict):
    """A hybrid norm: a calibrated machine prior and human ratings, combined word by word (precision weighting)."""

    prior: Name = Field(description="the machine rater (e.g. a stack) whose values are the prior")
    calibration: Name = Field(description="item set with gold values the prior is calibrated on; never the hybrid's items")
    gold: Name = Field(description="the gold dataset of the calibration")
    humans: Name = Field(description="a campaign (its annotators' ratings) or a dataset (individual ratings, or mean/SD/n per word)")
    items: Name = Field(description="item set or dataset: the hybrid's words")
    level: float = Field(0.9, gt=0, lt=1, description="coverage of the per-word intervals")
    dimension: Name | None = Field(None, description="the dimension (default: the study's only dimension)")
    disagreement: list[Name] = Field(default_factory=list, description="raters whose disagreement with the prior widens its intervals")


def _trainer_takes(spec: FinetuneSpec) -> FinetuneSpec:
    """A fine-tune entry whose trainer (its ``backend:``) is registered and takes it."""
    from workbench.finetune.trainer import get_trainer

    try:
        trainer = get_trainer(spec.backend)
    except WorkbenchError as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    trainer.check_spec(spec)
    return spec


FinetuneEntry = Annotated[FinetuneSpec, AfterValidator(_trainer_takes)]


class Study(Strict):
    """One study: what is rated, which norms come in. `workbench apply` makes the store match it."""

    study: Name = Field(description="the study's name")
    title: str | None = Field(None, max_length=200, description="the study's title, shown to annotators and in reports")
    information: str | None = Field(
        None,
        description="what annotators are told about the study (who runs it, what it is for, how long it takes, "
        "contact): a file path relative to the study, or the text itself",
    )
    consent: str | None = Field(
        None, description="the consent text annotators agree to before they start: a file path relative to the study, or the text itself"
    )
    database: str | None = Field(
        None,
        description="sqlite:///PATH (relative to the study) or postgresql+psycopg://USER@HOST/DB; default: a SQLite file beside the study",
    )
    dimensions: dict[Name, DimensionSpec] = Field(default_factory=dict)
    datasets: dict[Name, DatasetSource] = Field(default_factory=dict)
    word_lists: dict[Name, WordListSource] = Field(
        default_factory=dict, description="words to rate that come with no ratings; their other columns become attributes"
    )
    item_sets: dict[Name, ItemSetSpec] = Field(default_factory=dict, description="named sets of items")
    raters: dict[Name, RaterSpec] = Field(default_factory=dict, description="LLM raters and baselines")
    splits: dict[Name, SplitSpec] = Field(
        default_factory=dict, description="train/test splits, stored as item sets NAME.train and NAME.test"
    )
    finetunes: dict[Name, FinetuneEntry] = Field(default_factory=dict, description="fine-tuning jobs; each makes a rater named like it")
    reports: dict[Name, ReportSpec] = Field(default_factory=dict, description="validation reports apply writes")
    campaigns: dict[Name, CampaignSpec] = Field(
        default_factory=dict, description="human norming campaigns in Label Studio: `workbench annotate push NAME`"
    )
    hybrids: dict[Name, HybridSpec] = Field(
        default_factory=dict, description="hybrid norms (a machine prior and human ratings): datasets apply writes"
    )

    # the sections of kinds registered from outside (workbench.study.kind): section -> name -> entry
    _sections: dict[str, dict[str, BaseModel]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _kind_sections(cls, data: Any, handler: Any) -> Any:
        """Validate the sections registered kinds bring (each with its own entry model) beside the built-in ones."""
        from workbench.study.kind import section_models

        models = {k: m for k, m in section_models().items() if k not in cls.model_fields} if isinstance(data, dict) else {}
        raw = {k: data[k] for k in models if k in data}
        if not raw:
            return handler(data)
        study = handler({k: v for k, v in data.items() if k not in raw})
        fields: dict[str, Any] = {k: (dict[Name, models[k]], Field(default_factory=dict)) for k in raw}  # type: ignore[valid-type]
        valid = create_model("KindSections", __config__=ConfigDict(extra="forbid"), **fields).model_validate(raw)
        study._sections = {k: dict(getattr(valid, k)) for k in raw}
        return study

    def entries(self, section: str) -> dict[str, Any]:
        """The entries under one section of the study file: a built-in one, or one a registered kind brings."""
        if section in type(self).model_fields:
            return getattr(self, section)
        return self._sections.get(section, {})

    @model_validator(mode="after")
    def _finetune_names(self):
        for name, ft in self.finetunes.items():
            if name in self.raters:
                raise ValueError(f"finetunes.{name}: a rater has this name; the fine-tune makes a rater of its own, give it another name")
            if ft.base and ft.base not in self.raters:
                raise ValueError(f"finetunes.{name}.base: no rater named {ft.base!r} in the study")
        for name in self.word_lists:
            if name in self.datasets or name in self.item_sets:
                what = "a dataset" if name in self.datasets else "an item set"
                raise ValueError(f"word_lists.{name}: {what} has this name too; give one of them another name")
        for name in self.splits:
            for part in ("train", "test"):
                if f"{name}.{part}" in self.item_sets:
                    raise ValueError(f"splits.{name}: the item set {name}.{part} is declared in item_sets too; rename one")
        return self
