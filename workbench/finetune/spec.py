"""The study file's `splits:` and `finetunes:` entries (pydantic models; study/models.py uses them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.names import Name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


# The study file checks `backend` against the trainer registry (finetune/trainer.py) and lets the trainer refuse
# what it cannot run (study/models.py); this module stays below the registry.
class FinetuneSpec(Strict):
    """A fine-tuning job whose result is a new rater (named like the fine-tune) rating the held-out items."""

    backend: str = Field(
        description="the trainer: openai (the fine-tuning API) or local (LoRA on the local model), or one a plugin registers"
    )
    base: Name | None = Field(None, description="a declared rater to start from: its model, prompt, server and dimension")
    model: str | None = Field(
        None, description="the model to tune when there is no base rater (openai: e.g. gpt-4o-mini-2024-07-18; local: gemma3-270m)"
    )
    train: Name = Field(description="item set (e.g. a split's NAME.train) or dataset to train on")
    validation: Name | None = Field(None, description="item set for validation (openai)")
    gold: Name = Field(description="dataset whose ratings are the training targets")
    dimension: Name | None = Field(None, description="the dimension (default: the base rater's, or the study's only one)")
    rate: Name | None = Field(None, description="item set the tuned rater rates once trained (e.g. NAME.test); must not overlap train")
    prompt: str | None = Field(
        None,
        description="training and rating prompt, a file or the text, with {item} (default: the base rater's; local: 'Word: {item}\nRating: ')",
    )
    readout: Literal["expected", "parsed"] | None = Field(
        None, description="read-out of the tuned rater (default: expected; parsed reads the number an openai model answers)"
    )
    local: LocalTraining = Field(default_factory=LocalTraining, description="LoRA settings (backend local)")
    openai: OpenAITraining = Field(default_factory=OpenAITraining, description="job hyperparameters (backend openai)")
    poll_seconds: float = Field(10, gt=0, description="seconds between job status checks (openai)")
