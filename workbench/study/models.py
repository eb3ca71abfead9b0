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


class Study(Strict):
    """One study: what is rated, which norms come in. `workbench apply` makes the store match it."""

    study: Name = Field(description="the study's name")
    database: str | None = Field(
        None, description="sqlite:///PATH (relative to the study) or postgresql+psycopg://USER@HOST/DB; default: a SQLite file beside the study"
    )
    dimensions: dict[Name, DimensionSpec] = Field(default_factory=dict)
    datasets: dict[Name, DatasetSource] = Field(default_factory=dict)
