"""Split-conformal intervals: coverage on synthetic raters with known noise, the minimum calibration size, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.analysis.conformal import ConformalModel, check_calibration, coverage, fit_conformal, min_calibration
from workbench.errors import WorkbenchError


def _rater(n: int, seed: int, *, hetero: bool = True):
    """A rater on its own scale (gold = 1 + 1.3 value + error) whose error sd is its reported spread (0.2 to 1.5)."""
    rng = np.random.default_rng(seed)
    value = rng.uniform(0.4, 4.2, n)
    spread = rng.uniform(0.2, 1.5, n) if hetero else np.full(n, 0.7)
    gold = 1.0 + 1.3 * value + rng.normal(0, spread)
    mass = rng.uniform(0.5, 1.0, n)  # unrelated to the error: the difficulty model must learn to ignore it
    return value, gold, np.column_stack([spread, 1 - mass])


@pytest.mark.parametrize("hetero", [True, False])
def test_coverage_is_nominal_on_held_out_items(hetero: bool) -> None:
    """Over many draws the average coverage is within a point of nominal at 80, 90 and 95%."""
    achieved = {0.8: [], 0.9: [], 0.95: []}
    for seed in range(40):
        x, y, s = _rater(500, seed, hetero=hetero)
        model = fit_conformal(x[:200], y[:200], s[:200], signal_names=["spread", "unsure_mass"], seed=seed)
        for c in coverage(model, x[200:], y[200:], s[200:]):
            achieved[c.level].append(c.covered)
    for level, got in achieved.items():
        assert abs(np.mean(got) - level) < 0.01, (level, np.mean(got))


def test_intervals_follow_the_raters_spread() -> None:
    """Normalised by the spread, intervals are narrower where the rater is sure, wider where it is not, and
    hold their coverage among the sure and the unsure words alike (plain split-conformal does not)."""
    x, y, s = _rater(3000, 1)
    model = fit_conformal(x[:1000], y[:1000], s[:1000], signal_names=["spread", "unsure_mass"])
    plain = fit_conformal(x[:1000], y[:1000])
    _, lo, hi = model.interval(x[1000:], s[1000:], 0.9)
    width = hi - lo
    sure = s[1000:, 0] < 0.5
    assert width[sure].mean() < 0.5 * width[~sure].mean()
    assert abs(model.slope - 1.3) < 0.1 and abs(model.intercept - 1.0) < 0.2  # the line back onto gold
    cov, cov_plain = coverage(model, x[1000:], y[1000:], s[1000:], [0.9])[0], coverage(plain, x[1000:], y[1000:], None, [0.9])[0]
    # one calibration draw of 1,000: coverage varies by about 0.012 (sd) around nominal
    assert abs(cov.covered - 0.9) < 0.04 and abs(cov_plain.covered - 0.9) < 0.04
    # conditional on the spread, the normalised intervals hold their level; the plain ones over-cover the sure
    # words and under-cover the unsure ones
    sure_unsure = [s[1000:, 0] < 0.5, s[1000:, 0] > 1.2]
    for part in sure_unsure:
        got = coverage(model, x[1000:][part], y[1000:][part], s[1000:][part], [0.9])[0].covered
        assert abs(got - 0.9) < 0.05, got
    flat = [coverage(plain, x[1000:][p], y[1000:][p], None, [0.9])[0].covered for p in sure_unsure]
    assert flat[0] > 0.97 and flat[1] < 0.82, flat
    # the mass signal carries nothing: its coefficient is small beside the spread's
    assert abs(model.difficulty.coef[2]) < 0.25 * abs(model.difficulty.coef[1])


def test_missing_signals_count_as_average() -> None:
    x, y, s = _rater(400, 2)
    s[::3, 0] = np.nan
    model = fit_conformal(x[:200], y[:200], s[:200], signal_names=["spread", "unsure_mass"])
    _, lo, hi = model.interval(x[200:], s[200:], 0.9)
    assert np.isfinite(lo).all() and np.isfinite(hi).all()


def test_minimum_calibration_size_per_level() -> None:
    assert min_calibration(0.95) == 19
    assert min_calibration(0.8) == 4
    check_calibration(19, [0.8, 0.9, 0.95])
    with pytest.raises(WorkbenchError, match="at 95% coverage needs at least 19"):
        check_calibration(18, [0.8, 0.95])
    x, y, _ = _rater(12, 3)
    with pytest.raises(WorkbenchError, match="has 12 items .* needs at least 19"):
        fit_conformal(x, y, levels=[0.9, 0.95])
    # with exactly the minimum the interval is finite
    x, y, _ = _rater(19, 4)
    _, lo, hi = fit_conformal(x, y, levels=[0.95]).interval(x, None, 0.95)
    assert np.isfinite(hi - lo).all()
    with pytest.raises(WorkbenchError, match="between 0 and 1"):
        min_calibration(1.0)


def test_round_trip_and_scale_clipping() -> None:
    x, y, s = _rater(300, 5)
    model = fit_conformal(x, y, s, signal_names=["spread", "unsure_mass"], scale=(1.0, 7.0))
    again = ConformalModel.from_dict(model.to_dict())
    for a, b in zip(model.interval(x, s, 0.9), again.interval(x, s, 0.9), strict=True):
        np.testing.assert_allclose(a, b)
    _, lo, hi = model.interval(x, s, 0.95)
    assert lo.min() >= 1.0 and hi.max() <= 7.0
