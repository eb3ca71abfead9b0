"""The statistics of validation reports, each against a reference implementation.

References: scipy.stats (spearmanr, pearsonr, linregress), a plain per-resample
loop over the same bootstrap indices, pingouin.intraclass_corr, the
`krippendorff` package, and published values for Williams' t and Steiger's z.
Data: the Glasgow norms and the Glasgow/MRC familiarity words in
tests/data; individual ratings (for reliability) are simulated from the
Glasgow familiarity means and SDs, since the norms publish no raw ratings.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as sps

from workbench.analysis import stats as S
from workbench.analysis.stats import (
    agreement,
    agreement_many,
    bootstrap_indices,
    calibrate,
    compare_dependent,
    icc,
    krippendorff_alpha_interval,
    rating_matrix,
    residual_bands,
    split_half,
    steiger_z,
    williams_t,
)

DATA = Path(__file__).resolve().parent / "data"  # the norm files in the repository (tests/data/README.md)
EXACT = 1e-9
NO_WARNINGS = pytest.mark.filterwarnings("error")


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def glasgow_mrc() -> pd.DataFrame:
    """2,545 words: Glasgow familiarity (FAM_Glas, 1-7) and MRC familiarity (FAM_MRC, 1-7)."""
    return pd.read_excel(DATA / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx")


@pytest.fixture(scope="module")
def glasgow() -> pd.DataFrame:
    """5,553 words, nine dimensions; FAM_MRC joined where the word is in the Glasgow/MRC set (NaN elsewhere)."""
    g = pd.read_csv(DATA / "glasgow" / "glasgow_norms.csv")
    mrc = pd.read_excel(DATA / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx")
    return g.merge(mrc[["Word", "FAM_MRC"]], left_on="Words", right_on="Word", how="left")


def panel(glasgow: pd.DataFrame, n_words: int, n_raters: int, p_rated: float, seed: int) -> np.ndarray:
    """Simulated individual 1-7 ratings of Glasgow words: round(M + SD z + rater bias), NaN where not rated."""
    rng = np.random.default_rng(seed)
    words = glasgow.sample(n_words, random_state=seed)
    mean, sd = words["Familiarty.M"].to_numpy()[:, None], words["Familiarty.SD"].to_numpy()[:, None]
    bias = rng.normal(0, 0.4, size=n_raters)
    ratings = np.clip(np.rint(mean + sd * rng.standard_normal((n_words, n_raters)) + bias), 1, 7)
    ratings[rng.random(ratings.shape) >= p_rated] = np.nan
    return ratings


# --------------------------------------------------------------------------- reference loop


def loop_correlations(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample (row of idx): scipy Spearman and Pearson over the drawn pairs with x present; NaN if undefined."""
    rho, r = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    for b, rows in enumerate(idx):
        xs, ys = x[rows], y[rows]
        ok = ~np.isnan(xs)
        xs, ys = xs[ok], ys[ok]
        if len(xs) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:
            rho[b], r[b] = sps.spearmanr(xs, ys).statistic, sps.pearsonr(xs, ys).statistic
    return rho, r


def percentile(samples: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    s = samples[~np.isnan(samples)]
    lo, hi = np.quantile(s, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- agreement


def test_bootstrap_indices_are_deterministic_rows_drawn_one_by_one():
    idx = bootstrap_indices(50, 30, seed=7)
    assert idx.shape == (30, 50) and idx.min() >= 0 and idx.max() < 50
    assert np.array_equal(idx, bootstrap_indices(50, 30, seed=7))
    assert not np.array_equal(idx, bootstrap_indices(50, 30, seed=8))
    assert np.array_equal(np.concatenate(list(S._index_chunks(50, 30, 7, chunk=4))), idx)  # chunking changes nothing


def test_agreement_glasgow_vs_mrc_matches_scipy_and_the_published_rho(glasgow_mrc):
    x, y = glasgow_mrc["FAM_MRC"].to_numpy(), glasgow_mrc["FAM_Glas"].to_numpy()
    a = agreement(x, y, n_boot=200, seed=1)
    assert a.n == 2545 and a.note is None
    assert a.spearman == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert a.pearson == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
    assert round(a.spearman, 2) == 0.80  # the toolbox paper's Glasgow vs MRC figure
    err = x - y
    assert a.mae == pytest.approx(np.abs(err).mean()) and a.bias == pytest.approx(err.mean())
    assert a.rmse == pytest.approx(np.sqrt((err**2).mean()))
    assert a.sd_ratio == pytest.approx(np.std(x, ddof=1) / np.std(y, ddof=1))
    assert a.spearman_ci[0] < a.spearman < a.spearman_ci[1] and a.pearson_ci[0] < a.pearson < a.pearson_ci[1]


def test_vectorised_bootstrap_equals_the_per_resample_loop_on_real_data(glasgow_mrc):
    x, y = glasgow_mrc["FAM_MRC"].to_numpy(), glasgow_mrc["FAM_Glas"].to_numpy()
    idx = bootstrap_indices(len(y), 40, seed=3)
    rho, r = S._boot_correlations(x[:, None], y, 40, seed=3, chunk=7)
    loop_rho, loop_r = loop_correlations(x, y, idx)
    np.testing.assert_allclose(rho[:, 0], loop_rho, rtol=0, atol=EXACT)
    np.testing.assert_allclose(r[:, 0], loop_r, rtol=0, atol=EXACT)
    a = agreement(x, y, n_boot=40, seed=3)
    np.testing.assert_allclose(a.spearman_ci, percentile(loop_rho), rtol=0, atol=EXACT)
    np.testing.assert_allclose(a.pearson_ci, percentile(loop_r), rtol=0, atol=EXACT)


def test_agreement_many_with_missing_values_equals_the_loop(glasgow):
    """Gold: Glasgow familiarity, 5,553 words. Raters: MRC familiarity (2,545 words), and rounded
    imageability and age of acquisition (heavy ties) with 10% of values removed."""
    rng = np.random.default_rng(0)
    raters = pd.DataFrame({"mrc": glasgow["FAM_MRC"], "imag": glasgow["Imag.M"].round(0), "aoa": glasgow["AoA.M"].round(0)})
    for col in ("imag", "aoa"):
        raters.loc[rng.random(len(raters)) < 0.1, col] = np.nan
    y = glasgow["Familiarty.M"].to_numpy()
    results = agreement_many(raters, y, n_boot=25, seed=5)
    assert [a.rater for a in results] == ["mrc", "imag", "aoa"]

    rated = raters.notna().any(axis=1).to_numpy()  # items no rater rated are not resampled
    assert 0 < (~rated).sum() < 100
    y = y[rated]
    idx = bootstrap_indices(len(y), 25, seed=5)
    for k, a in enumerate(results):
        x = raters.iloc[:, k].to_numpy()[rated]
        ok = ~np.isnan(x)
        assert a.n == ok.sum()
        assert a.spearman == pytest.approx(sps.spearmanr(x[ok], y[ok]).statistic, abs=1e-12)
        assert a.pearson == pytest.approx(sps.pearsonr(x[ok], y[ok]).statistic, abs=1e-12)
        loop_rho, loop_r = loop_correlations(x, y, idx)
        np.testing.assert_allclose(a.spearman_ci, percentile(loop_rho), rtol=0, atol=EXACT)
        np.testing.assert_allclose(a.pearson_ci, percentile(loop_r), rtol=0, atol=EXACT)
    assert results[2].spearman < 0 < results[1].spearman  # later-acquired words are less familiar


def test_agreement_many_on_complete_columns_equals_agreement_per_column(glasgow):
    X = glasgow[["Imag.M", "Concreteness.M", "AoA.M"]].to_numpy()[:800]
    y = glasgow["Familiarty.M"].to_numpy()[:800]
    for k, a in enumerate(agreement_many(X, y, n_boot=30, seed=2)):
        single = agreement(X[:, k], y, n_boot=30, seed=2).to_dict()
        assert a.to_dict() == {**single, "pearson_ci": pytest.approx(single["pearson_ci"], abs=1e-14)}


def test_agreement_drops_incomplete_pairs():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=60), rng.normal(size=60)
    x[[1, 5]], y[[5, 9]] = np.nan, np.nan
    keep = ~(np.isnan(x) | np.isnan(y))
    assert agreement(x, y, n_boot=20).to_dict() == agreement(x[keep], y[keep], n_boot=20).to_dict()
    assert agreement(x, y, n_boot=20).n == 57


def test_agreement_is_deterministic_for_a_seed():
    rng = np.random.default_rng(9)
    y = rng.normal(size=300)
    x = y + rng.normal(size=300)
    assert agreement(x, y, seed=11, n_boot=100) == agreement(x, y, seed=11, n_boot=100)
    assert agreement(x, y, seed=11, n_boot=100).spearman_ci != agreement(x, y, seed=12, n_boot=100).spearman_ci


@NO_WARNINGS
@pytest.mark.parametrize(
    "x, y, note",
    [
        ([], [], "0 complete pairs"),
        ([1.0], [2.0], "1 complete pair:"),
        ([1.0, 2.0, np.nan], [2.0, 3.0, 4.0], "2 complete pairs"),
        ([3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0], "rater values are constant"),
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], "gold values are constant"),
        ([np.nan] * 4, [1.0, 2.0, 3.0, 4.0], "0 complete pairs"),
    ],
)
def test_degenerate_inputs_give_nan_and_a_note(x, y, note):
    a = agreement(x, y, n_boot=50)
    assert math.isnan(a.spearman) and math.isnan(a.pearson) and all(map(math.isnan, a.spearman_ci + a.pearson_ci))
    assert note in a.note
    json.dumps(a.to_dict(), allow_nan=False)  # NaN became None


@NO_WARNINGS
def test_tiny_samples_leave_out_undefined_resamples():
    # 4 items: about 1 resample in 8 draws a constant side; too many to trust what is left
    a = agreement([1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0], n_boot=200)
    assert a.spearman == pytest.approx(sps.spearmanr([1, 2, 1, 2], [1, 2, 3, 4]).statistic)
    assert re.fullmatch(r"\d+ of 200 resamples had an undefined correlation \(more than 5%\): interval undefined", a.note)
    assert all(map(math.isnan, a.spearman_ci + a.pearson_ci))
    many = agreement_many(np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan], [5.0, 1.0]]), [1.0, 2.0, 4.0, 3.0])
    assert "resamples had an undefined correlation" in many[0].note and "1 complete pair" in many[1].note
    # 12 items: a few resamples left out (under 5%) still give an interval
    x = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    few = agreement(x, np.arange(12.0), n_boot=400)
    assert re.fullmatch(r"\d+ of 400 resamples had an undefined correlation and were left out", few.note)
    assert few.spearman_ci[0] < few.spearman_ci[1]


@NO_WARNINGS
def test_near_constant_rater_has_no_interval():
    """199 of 200 values equal: most resamples miss the odd one; the interval over the rest would exclude 0."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    x = np.full(200, 3.0)
    x[int(np.argmax(y))] = 4.0  # the one different value sits on the highest gold value
    a = agreement(x, y, n_boot=500, seed=0)
    assert a.spearman > 0 and a.n == 200
    assert all(map(math.isnan, a.spearman_ci + a.pearson_ci))
    assert "(more than 5%): interval undefined" in a.note
    assert a.to_dict()["spearman_ci"] == [None, None]
    many = agreement_many(np.c_[x, y + rng.normal(size=200)], y, n_boot=500)
    assert math.isnan(many[0].spearman_ci[0]) and many[1].spearman_ci[0] > 0.5 and many[1].note is None
    cmp = compare_dependent(x, y + rng.normal(size=200), y, n_boot=300)
    assert "interval undefined" in cmp.note and cmp.verdict.startswith("cannot compare")


values = st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(3, 25), raters=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_property_bootstrap_equals_the_loop_with_ties_and_missing_values(data, n, raters, seed):
    X = data.draw(arrays(np.float64, (n, raters), elements=values))
    y = data.draw(arrays(np.float64, n, elements=st.sampled_from([1.0, 2.0, 3.0, 4.0])))
    rho, r = S._boot_correlations(X, y, 12, seed, chunk=5)
    idx = bootstrap_indices(n, 12, seed)
    for k in range(raters):
        loop_rho, loop_r = loop_correlations(X[:, k], y, idx)
        np.testing.assert_allclose(rho[:, k], loop_rho, rtol=0, atol=EXACT)
        np.testing.assert_allclose(r[:, k], loop_r, rtol=0, atol=EXACT)


@NO_WARNINGS
@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float64, st.integers(0, 12), elements=values), seed=st.integers(0, 99))
def test_property_agreement_never_warns_and_stays_in_range(x, seed):
    y = np.arange(len(x), dtype=np.float64) % 4
    a = agreement(x, y, n_boot=20, seed=seed)
    for v in (a.spearman, a.pearson, *a.spearman_ci, *a.pearson_ci):
        assert math.isnan(v) or -1 <= v <= 1
    assert a.note or not math.isnan(a.spearman)


# --------------------------------------------------------------------------- dependent correlations


@pytest.mark.parametrize(
    "r_ay, r_by, r_ab, n, test, stat, p",
    [  # published values, as in the cocor package's tests (Steiger 1980 case A; Silver, Hittner & May 2006)
        (0.3, 0.4, 0.5, 100, williams_t, -1.0767, 0.2843),
        (0.3, 0.4, 0.5, 100, steiger_z, -1.0718, 0.2838),
        (0.4, 0.5, 0.1, 103, steiger_z, -0.8887185, None),
    ],
)
def test_dependent_correlation_tests_reproduce_published_values(r_ay, r_by, r_ab, n, test, stat, p):
    value, pvalue = test(r_ay, r_by, r_ab, n)
    assert value == pytest.approx(stat, abs=10 ** -(len(str(stat).split(".")[1])) / 2)
    if p is not None:
        assert pvalue == pytest.approx(p, abs=5e-5)


def test_compare_dependent_on_real_data(glasgow_mrc):
    """Gold: Glasgow familiarity. A: MRC familiarity; B: MRC familiarity with noise added (worse by construction)."""
    y = glasgow_mrc["FAM_Glas"].to_numpy()
    a = glasgow_mrc["FAM_MRC"].to_numpy()
    b = a + np.random.default_rng(1).normal(0, 0.8, size=len(a))
    b[:10] = np.nan
    c = compare_dependent(a, b, y, names=("MRC", "noisy MRC"), n_boot=60, seed=4)
    keep = slice(10, None)
    assert c.n == 2535
    for method, f in (("spearman", sps.spearmanr), ("pearson", sps.pearsonr)):
        d = getattr(c, method)
        assert d.r_a == pytest.approx(f(a[keep], y[keep]).statistic, abs=1e-12)
        assert d.r_b == pytest.approx(f(b[keep], y[keep]).statistic, abs=1e-12)
        assert d.r_ab == pytest.approx(f(a[keep], b[keep]).statistic, abs=1e-12)
        assert (d.williams_t, d.williams_p) == williams_t(d.r_a, d.r_b, d.r_ab, 2535)
    idx = bootstrap_indices(2535, 60, seed=4)
    rho_a, r_a = loop_correlations(a[keep], y[keep], idx)
    rho_b, r_b = loop_correlations(b[keep], y[keep], idx)
    np.testing.assert_allclose(c.spearman.difference_ci, percentile(rho_a - rho_b), rtol=0, atol=EXACT)
    np.testing.assert_allclose(c.pearson.difference_ci, percentile(r_a - r_b), rtol=0, atol=EXACT)
    assert re.fullmatch(
        r"MRC correlates more strongly with gold than noisy MRC \(Spearman difference 0\.\d{3}, "
        r"95% CI 0\.\d{3} to 0\.\d{3}, Williams t = \d+\.\d, p (<|=) 0\.\d{3}\)",
        c.verdict,
    )
    swapped = compare_dependent(b, a, y, names=("noisy MRC", "MRC"), n_boot=60, seed=4)
    assert swapped.verdict == c.verdict


@NO_WARNINGS
def test_compare_dependent_without_a_difference_or_with_degenerate_data():
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    x = y + rng.normal(size=200)
    same = compare_dependent(x, x, y, n_boot=50)
    assert same.verdict.startswith("no reliable difference between A and B") and same.spearman.williams_p == 1
    tiny = compare_dependent(x[:3], x[3:6], y[:3], n_boot=50)
    assert tiny.verdict == "cannot compare A and B: 3 complete items: comparing dependent correlations needs at least 4"
    flat = compare_dependent(np.ones(20), x[:20], y[:20], n_boot=50)
    assert flat.note == "A values are constant" and flat.verdict.startswith("cannot compare")
    json.dumps(flat.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- human reliability


@pytest.fixture(scope="module")
def two_norms(glasgow_mrc) -> np.ndarray:
    """The Glasgow and MRC familiarity norms as two 'raters' of 2,545 words (rounded to 0.1 for krippendorff)."""
    return glasgow_mrc[["FAM_Glas", "FAM_MRC"]].to_numpy().round(1)


def pingouin_icc(matrix: np.ndarray) -> pd.Series:
    pg = pytest.importorskip("pingouin")
    long = pd.DataFrame(matrix).rename_axis("item").reset_index().melt(id_vars="item", var_name="rater", value_name="value")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword")  # pingouin 0.7 under pandas 3
        table = pg.intraclass_corr(long, targets="item", raters="rater", ratings="value", nan_policy="omit")
    return table.set_index("Type")["ICC"]


def assert_icc_matches_pingouin(ours: S.ICC, ref: pd.Series) -> None:
    # pingouin 0.7 labels McGraw & Wong's: A = absolute agreement (Shrout & Fleiss ICC2), C = consistency (ICC3)
    for field, label in (("icc2_1", "ICC(A,1)"), ("icc2_k", "ICC(A,k)"), ("icc3_1", "ICC(C,1)"), ("icc3_k", "ICC(C,k)")):
        assert getattr(ours, field) == pytest.approx(ref[label], abs=1e-10)


def test_icc_matches_pingouin_on_the_two_norms(two_norms):
    ours = icc(two_norms)
    assert_icc_matches_pingouin(ours, pingouin_icc(two_norms))
    assert (ours.n_items, ours.n_raters, ours.n_dropped, ours.note) == (2545, 2, 0, None)


def test_icc_drops_items_with_missing_ratings_like_pingouin(glasgow):
    ratings = panel(glasgow, 300, 8, p_rated=0.995, seed=1)
    ours = icc(ratings)
    dropped = int(np.isnan(ratings).any(axis=1).sum())
    assert dropped > 0 and ours.n_dropped == dropped and ours.n_items == 300 - dropped
    assert ours.note == f"dropped {dropped} items with missing ratings (ICC needs complete data)"
    assert_icc_matches_pingouin(ours, pingouin_icc(ratings))


def test_krippendorff_alpha_matches_the_package(two_norms, glasgow):
    kd = pytest.importorskip("krippendorff")
    ratings = panel(glasgow, 400, 30, p_rated=0.6, seed=2)
    for matrix in (two_norms, ratings):  # the package takes raters x items
        assert krippendorff_alpha_interval(matrix) == pytest.approx(kd.alpha(matrix.T, level_of_measurement="interval"), abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(m=arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(2, 5)), elements=values))
def test_property_krippendorff_alpha_matches_the_package_with_missing_values(m):
    kd = pytest.importorskip("krippendorff")
    ours = krippendorff_alpha_interval(m)
    rated = ~np.isnan(m)
    pairable = m[rated.sum(axis=1) >= 2]
    if len(pairable) == 0 or np.nanmax(pairable) == np.nanmin(pairable):  # the package raises
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(kd.alpha(m.T, level_of_measurement="interval"), abs=1e-10)


def test_split_half_equals_a_loop_over_splits(glasgow):
    ratings = panel(glasgow, 250, 21, p_rated=0.7, seed=3)
    ours = split_half(ratings, n_splits=40, seed=6)
    rng = np.random.default_rng(6)
    rs = []
    for _ in range(40):
        perm = rng.permutation(21)
        halves = ratings[:, perm[:10]], ratings[:, perm[10:]]
        counts = [(~np.isnan(h)).sum(axis=1) for h in halves]
        valid = (counts[0] > 0) & (counts[1] > 0)
        means = [np.nansum(h[valid], axis=1) / c[valid] for h, c in zip(halves, counts)]
        rs.append(sps.pearsonr(*means).statistic)
    rs = np.array(rs)
    rel = 2 * rs / (1 + rs)
    assert ours.reliability == pytest.approx(rel.mean(), abs=EXACT)
    assert ours.r_halves == pytest.approx(rs.mean(), abs=EXACT)
    np.testing.assert_allclose(ours.reliability_interval, np.quantile(rel, [0.025, 0.975]), rtol=0, atol=EXACT)
    assert (ours.n_raters, ours.n_splits, ours.note) == (21, 40, None) and 0 < ours.coverage <= 1
    assert split_half(ratings, n_splits=40, seed=6) == ours


@NO_WARNINGS
def test_reliability_on_degenerate_matrices():
    assert "split-half needs 2 raters" in split_half(np.ones((10, 1))).note
    assert math.isnan(icc(np.full((5, 3), np.nan)).icc2_k)
    assert icc(np.tile([[1.0, 2.0, 3.0]], (5, 1))).note == "items do not differ: ICC undefined"
    assert math.isnan(krippendorff_alpha_interval(np.array([[1.0, np.nan], [np.nan, 2.0]])))
    assert math.isnan(krippendorff_alpha_interval(np.array([[1.0, 1.0], [1.0, 1.0]])))


def test_rating_matrix_from_a_long_table():
    long = pd.DataFrame({"item": ["a", "a", "b", "c"], "rater": ["r1", "r2", "r1", "r2"], "value": [1, 2, 3, 4]})
    m = rating_matrix(long)
    assert m.loc["a", "r2"] == 2 and math.isnan(m.loc["b", "r2"]) and m.shape == (3, 2)
    with pytest.raises(ValueError, match="more than once"):
        rating_matrix(pd.concat([long, long.iloc[:1]]))


# --------------------------------------------------------------------------- calibration and residuals


def test_calibrate_matches_linregress_on_the_train_split():
    train = pd.read_excel(DATA / "glasgow_mrc" / "train_1500.xlsx")
    test = pd.read_excel(DATA / "glasgow_mrc" / "test_1045.xlsx")
    x = train["FAM_MRC"].to_numpy().copy()
    x[0] = np.nan
    cal = calibrate(x, train["FAM_Glas"])
    ref = sps.linregress(x[1:], train["FAM_Glas"].to_numpy()[1:])
    assert (cal.slope, cal.intercept, cal.n) == (pytest.approx(ref.slope), pytest.approx(ref.intercept), 1499)
    predicted = cal.apply(test["FAM_MRC"])
    assert np.abs(predicted - test["FAM_Glas"]).mean() < np.abs(test["FAM_MRC"] - test["FAM_Glas"]).mean()
    with pytest.raises(ValueError, match="cannot calibrate"):
        calibrate([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])


def test_residual_bands_by_word_length_match_pandas(glasgow):
    sub = glasgow.dropna(subset=["FAM_MRC"])
    residuals = (sub["FAM_MRC"] - sub["Familiarty.M"]).to_numpy()
    length = sub["Length"].to_numpy(dtype=float)
    edges = [2, 5, 7, 9, 16]
    bands = residual_bands(residuals, length, edges)
    ref = pd.DataFrame({"r": residuals, "band": pd.cut(length, edges, right=False)})
    ref.loc[length == 16, "band"] = ref["band"].cat.categories[-1]  # the last band is closed, as numpy.histogram
    grouped = ref.groupby("band", observed=False)["r"]
    assert [b.n for b in bands] == grouped.size().tolist() and sum(b.n for b in bands) == len(sub)
    np.testing.assert_allclose([b.mean_residual for b in bands], grouped.mean(), rtol=1e-12)
    np.testing.assert_allclose([b.mae for b in bands], grouped.apply(lambda r: r.abs().mean()), rtol=1e-12)
    assert [(b.low, b.high) for b in bands] == list(zip(edges[:-1], edges[1:]))


@NO_WARNINGS
def test_residual_bands_with_missing_values_and_empty_bands():
    bands = residual_bands([1.0, -1.0, np.nan, 3.0, 9.0], [0.5, 0.7, 0.8, np.nan, 5.0], [0, 1, 2, np.inf])
    assert [b.n for b in bands] == [2, 0, 1]
    assert bands[0].mean_residual == 0 and bands[0].mae == 1 and math.isnan(bands[1].mae)
    with pytest.raises(ValueError, match="increasing"):
        residual_bands([1.0], [1.0], [2, 1])
