"""Rating read-outs: expected (top logprobs / continuations), greedy, parsed, samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.raters.readout import (
    Readout,
    SamplesReadout,
    expected_from_continuation_logprobs,
    expected_from_top_logprobs,
    greedy_from_answer,
    mean_of_samples,
    parsed_from_answer,
    single_token_scale,
)
from workbench.scale import point_label, scale_points

L = math.log
S17 = scale_points(1, 7)


# ----------------------------------------------------------------- scales


def test_scale_points():
    assert S17 == (1, 2, 3, 4, 5, 6, 7)
    assert scale_points(10, 70, 10) == (10, 20, 30, 40, 50, 60, 70)
    assert scale_points(100, 700, 100) == (100, 200, 300, 400, 500, 600, 700)
    assert scale_points(1, 2, 0.25) == (1.0, 1.25, 1.5, 1.75, 2.0)
    assert scale_points(0, 1, 0.1)[3] == 0.3  # rounded, not 0.30000000000000004


@pytest.mark.parametrize(
    "args, message",
    [((1, 7, 0), "step must be positive"), ((7, 1), "below its min"), ((1, 7, 4), "cannot be divided"), ((1, math.inf), "finite")],
)
def test_scale_points_rejects_bad_scales(args, message):
    with pytest.raises(WorkbenchError, match=message):
        scale_points(*args)


def test_single_token_scale():
    assert single_token_scale(S17)
    assert single_token_scale(scale_points(0, 9))
    assert single_token_scale((1.0, 2.0, 3.0))  # integral floats are written "1", "2", "3"
    assert not single_token_scale(scale_points(1, 10))
    assert not single_token_scale(scale_points(10, 70, 10))
    assert not single_token_scale(scale_points(100, 700, 100))
    assert not single_token_scale(scale_points(1, 5, 0.5))
    assert not single_token_scale((-1, 0, 1))


def test_point_label():
    assert point_label(5) == "5"
    assert point_label(5.0) == "5"
    assert point_label(2.5) == "2.5"
    assert point_label(np.int64(3)) == "3"
    with pytest.raises(WorkbenchError):
        point_label(True)


# ----------------------------------------------------------------- expected from top logprobs


def test_expected_hand_computed_with_merged_variants():
    r = expected_from_top_logprobs({"5": L(0.6), " 5": L(0.1), "6": L(0.2), "hello": L(0.1)}, S17)
    assert r.value == pytest.approx((5 * 0.7 + 6 * 0.2) / 0.9)
    assert r.distribution is not None
    assert list(r.distribution) == ["1", "2", "3", "4", "5", "6", "7"]
    assert r.distribution["5"] == pytest.approx(0.7 / 0.9)
    assert r.distribution["6"] == pytest.approx(0.2 / 0.9)
    assert r.distribution["1"] == 0.0
    assert sum(r.distribution.values()) == pytest.approx(1.0)
    assert r.mass == pytest.approx(0.9)
    assert not r.low_mass and r.reason is None and r.ok
    json.dumps(r.to_dict())  # JSON-friendly


def test_expected_accepts_pairs_and_openai_entries_and_sums_duplicates():
    as_dict = expected_from_top_logprobs({"5": L(0.6), " 5": L(0.1), "6": L(0.2)}, S17)
    pairs = expected_from_top_logprobs([("5", L(0.3)), ("5", L(0.3)), (" 5", L(0.1)), ("6", L(0.2))], S17)
    entries = expected_from_top_logprobs(
        [{"token": "5", "logprob": L(0.6), "bytes": [53]}, {"token": " 5", "logprob": L(0.1)}, {"token": "6", "logprob": L(0.2)}], S17
    )
    for r in (pairs, entries):
        assert r.value == pytest.approx(as_dict.value)
        assert r.mass == pytest.approx(as_dict.mass)


def test_expected_merges_whitespace_and_tokenizer_space_markers():
    r = expected_from_top_logprobs({"5\n": L(0.2), "\t5": L(0.2), "\u25815": L(0.2), "\u01205": L(0.1), "3": L(0.3)}, S17)
    assert r.distribution["5"] == pytest.approx(0.7)
    assert r.distribution["3"] == pytest.approx(0.3)
    assert r.value == pytest.approx(5 * 0.7 + 3 * 0.3)
    assert r.mass == pytest.approx(1.0)


def test_expected_ignores_tokens_outside_the_scale():
    r = expected_from_top_logprobs({"9": L(0.3), "0": L(0.1), "4": L(0.6)}, S17)
    assert r.value == 4.0
    assert r.distribution["4"] == 1.0
    assert "9" not in r.distribution
    assert r.mass == pytest.approx(0.6)


def test_expected_does_not_merge_leading_zero_or_decimal_tokens():
    # Conscious choice: only the canonical label (after stripping whitespace) is a
    # scale point. "05", "5.", "5.0" and full-width "５" are ignored, not counted in mass.
    r = expected_from_top_logprobs({"05": L(0.2), "5.": L(0.1), "5.0": L(0.1), "\uff15": L(0.05), "3": L(0.5)}, S17)
    assert r.value == 3.0
    assert r.mass == pytest.approx(0.5)
    assert not r.low_mass  # 0.5 is not below the 0.5 threshold


def test_low_mass_flag_and_threshold():
    top = {"6": L(0.3), "Sure": L(0.6)}
    r = expected_from_top_logprobs(top, S17)
    assert r.value == 6.0 and r.low_mass and r.mass == pytest.approx(0.3)
    assert "30.0%" in r.reason
    r2 = expected_from_top_logprobs(top, S17, min_mass=0.25)
    assert not r2.low_mass and r2.reason is None
    with pytest.raises(WorkbenchError, match="min_mass"):
        expected_from_top_logprobs(top, S17, min_mass=1.5)


def test_no_scale_point_at_all():
    for top in ({"hello": L(0.9), "9": L(0.1)}, {}, [], {"5": -math.inf, "x": 0.0}):
        r = expected_from_top_logprobs(top, S17)
        assert r.value is None and r.distribution is None and not r.ok
        assert r.mass == 0.0 and r.low_mass
        assert r.reason == "no scale point among the top logprobs"


def test_expected_is_stable_for_very_negative_logprobs():
    # exp(-1000) underflows to 0 in linear space; in log space the ratio survives.
    r = expected_from_top_logprobs({"2": -1000.0, "4": -1000.0 + L(3.0)}, S17)
    assert r.value == pytest.approx((2 * 1 + 4 * 3) / 4)
    assert r.distribution["4"] == pytest.approx(0.75)
    assert r.low_mass and r.mass == 0.0


@pytest.mark.parametrize(
    "top, message",
    [
        ({"5": float("nan")}, "logprob of '5' is nan"),
        ({"5": 0.5}, "natural-log probabilities"),
        ({"5": "x"}, "must be a number"),
        ({"5": L(0.8), "6": L(0.8)}, "add up to a probability"),
        ([("5",)], "not a \\(token, logprob\\) pair"),
        ([(5, -1.0)], "is not a string"),
        ("5", "must be a dict"),
    ],
)
def test_expected_rejects_bad_logprobs(top, message):
    with pytest.raises(WorkbenchError, match=message):
        expected_from_top_logprobs(top, S17)


@pytest.mark.parametrize("points, name", [(scale_points(100, 700, 100), "100-700"), (scale_points(10, 70, 10), "10-70")])
def test_expected_refuses_scales_that_are_not_single_tokens(points, name):
    with pytest.raises(WorkbenchError) as info:
        expected_from_top_logprobs({"1": L(0.5), "100": L(0.5)}, points)
    assert str(info.value) == (
        f"scale {name} has points that are not single tokens: use readout greedy/parsed, or the local backend's full continuation scoring"
    )


def test_bad_points():
    with pytest.raises(WorkbenchError, match="at least two points"):
        expected_from_top_logprobs({"1": 0.0}, (1,))
    with pytest.raises(WorkbenchError, match="not distinct"):
        expected_from_top_logprobs({"1": 0.0}, (1, 1.0, 2))


# ----------------------------------------------------------------- expected from continuations


def test_continuation_matches_numpy():
    points = scale_points(100, 700, 100)
    lps = np.array([-9.0, -4.5, -2.0, -1.2, -0.9, -3.3, -12.0])
    r = expected_from_continuation_logprobs(points, dict(zip(points, lps.tolist(), strict=True)))
    p = np.exp(lps - lps.max())
    p /= p.sum()
    assert r.value == pytest.approx(float(np.dot(p, points)))
    assert list(r.distribution.values()) == pytest.approx(p.tolist())
    assert list(r.distribution) == [str(x) for x in points]
    assert r.mass == 1.0 and not r.low_mass and r.reason is None


def test_continuation_accepts_label_keys_and_minus_inf():
    r = expected_from_continuation_logprobs(S17, {str(k): (-math.inf if k != 3 else -50.0) for k in S17})
    assert r.value == 3.0 and r.distribution["3"] == 1.0


@pytest.mark.parametrize(
    "scores, message",
    [
        ({1: -1.0, 2: -1.0}, "no continuation logprob for scale point\\(s\\) 3"),
        ({1: -1.0, 2: -1.0, 3: -1.0, 4: -1.0}, "not a point of the scale 1-3"),
        ({1: -1.0, "1": -1.0, 2: -1.0, 3: -1.0}, "scored twice"),
        ({1: float("nan"), 2: -1.0, 3: -1.0}, "is nan"),
        ({1: -math.inf, 2: -math.inf, 3: -math.inf}, "nothing to normalise"),
        ({"one": -1.0, 2: -1.0, 3: -1.0}, "not a scale point"),
    ],
)
def test_continuation_rejects_bad_scores(scores, message):
    with pytest.raises(WorkbenchError, match=message):
        expected_from_continuation_logprobs((1, 2, 3), scores)


# ----------------------------------------------------------------- greedy


@pytest.mark.parametrize(
    "answer, value",
    [("5", 5), (" 5.", 5), ("Rating: 6", 6), ("6/7", 6), ("7\n", 7), ("I'd say 3 out of 7", 3), ("4.5", 4.5), ("Q1: 2", 2)],
)
def test_greedy_reads_the_first_number(answer, value):
    r = greedy_from_answer(answer, S17)
    assert r.value == value and r.answer == answer and r.reason is None
    assert r.distribution is None and r.mass is None


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("9", "9 is outside the scale 1-7"),
        ("0", "0 is outside the scale 1-7"),
        ("-3", "-3 is outside the scale 1-7"),
        ("seven", "no number in the answer"),
        ("", "no number in the answer"),
        (None, "no answer"),
    ],
)
def test_greedy_invalid(answer, reason):
    r = greedy_from_answer(answer, S17)
    assert r.value is None and r.reason == reason and not r.ok


def test_greedy_on_a_wide_scale():
    assert greedy_from_answer("Rating: 450", scale_points(100, 700, 100)).value == 450
    with pytest.raises(WorkbenchError, match="must be text"):
        greedy_from_answer(5, S17)  # type: ignore[arg-type]


# ----------------------------------------------------------------- parsed


@pytest.mark.parametrize(
    "answer, value",
    [
        ("5.41", 5.41),
        (" 3 ", 3),
        ("5e0", 5),
        ("6.", 6),
        ('{"rating": 5.41}', 5.41),
        ('{"familiarity": 3}', 3),
        ('{"word": "cat", "score": 2.5, "n": 40}', 2.5),
        ('{"Rating": "4.2", "confidence": 0.9}', 4.2),
        ("4.25", 4.25),
        ('```json\n{"value": 6}\n```', 6),
        ('Answer: {"rating": 2}', 2),
    ],
)
def test_parsed_valid(answer, value):
    r = parsed_from_answer(answer, S17)
    assert r.value == pytest.approx(value) and r.reason is None and r.answer == answer


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("8.2", "8.2 is outside the scale 1-7"),
        ('{"rating": 0.5}', "0.5 is outside the scale 1-7"),
        ("Rating: 5", "not a number or a JSON object with one numeric field"),
        ("1_0", "not a number or a JSON object with one numeric field"),
        ("nan", "not a number or a JSON object with one numeric field"),
        ("1e999", "the number is not finite"),
        ('{"a": 1, "b": 2}', "several numeric fields (a, b) and none named rating/value/score"),
        ('{"rating": "high"}', "no numeric field"),
        ('{"rating": NaN}', "no numeric field"),
        ('{"rating": true}', "no numeric field"),
        ("[5]", "neither a number nor an object"),
        ("  ", "empty answer"),
        (None, "no answer"),
    ],
)
def test_parsed_invalid(answer, reason):
    r = parsed_from_answer(answer, S17)
    assert r.value is None and reason in r.reason


# ----------------------------------------------------------------- samples


def test_samples_average_valid_answers():
    answers = ["5", " 6.", "Rating: 7", "nope", "9", None]
    r = mean_of_samples(answers, S17)
    assert isinstance(r, SamplesReadout) and isinstance(r, Readout)
    assert r.value == pytest.approx(6.0)
    assert r.n == 6 and r.n_valid == 3
    assert r.sd == pytest.approx(np.std([5, 6, 7], ddof=1))
    assert r.values == (5.0, 6.0, 7.0)
    assert r.invalid == (
        (3, "nope", "no number in the answer"),
        (4, "9", "9 is outside the scale 1-7"),
        (5, None, "no answer"),
    )
    assert r.mass == 0.5 and not r.low_mass
    assert r.distribution == {"1": 0.0, "2": 0.0, "3": 0.0, "4": 0.0, "5": 1 / 3, "6": 1 / 3, "7": 1 / 3}
    json.dumps(r.to_dict())


def test_samples_single_valid_and_low_share():
    r = mean_of_samples(["4", "x", "y"], S17)
    assert r.value == 4.0 and r.sd is None and r.low_mass
    assert r.reason == "only 1 of 3 samples gave a rating on the scale"


def test_samples_none_valid():
    r = mean_of_samples(["x", "10"], S17)
    assert r.value is None and r.n_valid == 0 and r.sd is None and r.low_mass
    assert r.reason == "no valid answer among 2 samples"
    assert len(r.invalid) == 2


def test_samples_parsed_and_off_point_values():
    r = mean_of_samples(['{"rating": 5.5}', "6.5", "Rating: 6"], S17, parser="parsed")
    assert r.value == pytest.approx(6.0) and r.n_valid == 2
    assert r.distribution is None  # 5.5 and 6.5 are not scale points


def test_samples_input_validation():
    with pytest.raises(WorkbenchError, match="no samples"):
        mean_of_samples([], S17)
    with pytest.raises(WorkbenchError, match="list of answer texts"):
        mean_of_samples("5", S17)
    with pytest.raises(WorkbenchError, match="unknown samples parser"):
        mean_of_samples(["5"], S17, parser="expected")  # type: ignore[arg-type]


# ----------------------------------------------------------------- properties

_tokens = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", " 3", "5\n", "05", "hello", "\u25817", " "]),
    st.text(max_size=4),
)


@st.composite
def _top_logprobs(draw):
    pairs = draw(st.lists(st.tuples(_tokens, st.floats(min_value=-1e6, max_value=0.0)), max_size=12))
    # Scale to a valid total probability <= 1 (in log space, like an API's top-k).
    lps = np.array([lp for _, lp in pairs])
    if lps.size:
        m = lps.max()
        shift = m + math.log(float(np.exp(lps - m).sum()))
        lps = np.minimum(lps - max(shift, 0.0), 0.0)
    return [(tok, float(lp)) for (tok, _), lp in zip(pairs, lps, strict=True)]


@settings(max_examples=300, deadline=None)
@given(top=_top_logprobs(), lo=st.integers(0, 8), width=st.integers(1, 9))
def test_property_expected_within_scale_and_distribution_sums_to_one(top, lo, width):
    points = scale_points(lo, min(lo + width, 9))
    r = expected_from_top_logprobs(top, points)
    if r.value is None:
        assert r.reason == "no scale point among the top logprobs" and r.distribution is None
        return
    assert min(points) <= r.value <= max(points)
    assert sum(r.distribution.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in r.distribution.values())
    assert 0.0 <= r.mass <= 1.0


@settings(max_examples=200, deadline=None)
@given(
    lo=st.integers(-100, 100),
    step=st.integers(1, 100),
    n=st.integers(2, 12),
    data=st.data(),
)
def test_property_continuation_within_scale(lo, step, n, data):
    points = scale_points(lo, lo + step * (n - 1), step)
    scores = data.draw(st.lists(st.floats(min_value=-1e5, max_value=1e5), min_size=n, max_size=n))
    r = expected_from_continuation_logprobs(points, dict(zip(points, scores, strict=True)))
    assert min(points) <= r.value <= max(points)
    assert sum(r.distribution.values()) == pytest.approx(1.0)
