"""Exclusion rules, the aggregate and the rating interface, without a server."""

from __future__ import annotations

import math

from workbench.annotate.labelconfig import choice_value, hotkeys, label_config
from workbench.annotate.pseudonym import pseudonym
from workbench.annotate.quality import Response, aggregate, evaluate
from workbench.study.models import ExclusionSpec

TRUE = {i: 1 + (i * 7919 % 60) / 10 for i in range(40)}  # 40 words, values 1..7


def rated(who: str, values: dict[int, float], seconds: float = 3.0) -> list[Response]:
    return [Response(who, "item", i, v, False, seconds) for i, v in values.items()]


def test_each_rule_excludes_the_annotator_it_should_and_says_why():
    good = [rated(f"g{k}", {i: min(7, v + (k % 2) * 0.5) for i, v in TRUE.items()}) for k in range(4)]
    random = rated("rand", {i: float(1 + (i * 31 % 7)) for i in TRUE})  # unrelated to the others
    fast = rated("fast", dict(TRUE), seconds=0.3)
    controls = [Response("ctl", "control", 100, 7.0, False, 3.0, gold=1.2), Response("ctl", "control", 101, 1.0, False, 3.0, gold=6.9),
                Response("ctl", "nonword", None, 4.0, False, 3.0), Response("ctl", "control", 102, None, True, 3.0, gold=6.5)]  # fmt: skip
    responses = [r for rows in good for r in rows] + random + fast + rated("ctl", dict(TRUE)) + controls
    rules = ExclusionSpec(max_failed_controls=0.25, min_correlation=0.2, min_median_seconds=1.0, min_ratings=10)
    q = evaluate(responses, rules, tolerance=2.0)
    assert {a for a, x in q.items() if x.excluded} == {"rand", "fast", "ctl"}
    assert "with the mean of the other annotators (below 0.2)" in q["rand"].excluded
    assert q["fast"].excluded == "median 0.30 s per word (below 1 s)"
    # "I don't know" on a known word tells nothing; a nonword given a value fails
    assert (q["ctl"].controls, q["ctl"].failed_controls) == (3, 3)
    assert all(q[f"g{k}"].correlation > 0.9 for k in range(4))
    # no rules: figures, no exclusions
    assert not any(x.excluded for x in evaluate(responses, None, 2.0).values())


def test_aggregate_counts_known_ness_and_leaves_out_the_excluded():
    rs = [Response("a", "item", 1, 5.0, False, 2), Response("b", "item", 1, 7.0, False, 2), Response("c", "item", 1, None, True, 2),
          Response("x", "item", 1, 1.0, False, 2), Response("a", "item", 2, None, True, 2), Response("a", "control", 3, 6.0, False, 2)]  # fmt: skip
    (w1, w2) = aggregate(rs, excluded={"x"})
    assert (
        (w1.item_id, w1.mean, w1.n, w1.n_unknown) == (1, 6.0, 2, 1) and math.isclose(w1.sd, math.sqrt(2)) and math.isclose(w1.known, 2 / 3)
    )
    assert (w2.item_id, w2.mean, w2.sd, w2.n, w2.known) == (2, None, None, 0, 0.0)


def test_label_config_keys_and_reading_a_choice():
    assert hotkeys([1, 2, 3, 4, 5, 6, 7]) == (["1", "2", "3", "4", "5", "6", "7"], "0")
    assert hotkeys([0, 1, 2, 3, 4]) == (["0", "1", "2", "3", "4"], "u")  # 0 is a scale point
    assert hotkeys([0.5, 1.0, 1.5]) == (["1", "2", "3"], "0")
    assert hotkeys(list(range(1, 12))) == ([None] * 11, "0")
    xml = label_config("valence", [1, 2, 3], {"1": "unhappy & sad", "3": "happy"})
    assert '<Choice value="1 (unhappy &amp; sad)" alias="1" hotkey="1"/>' in xml
    assert '<Choice value="I don\'t know this word" alias="unknown" hotkey="0"/>' in xml
    res = lambda *c: [{"from_name": "rating", "to_name": "word", "type": "choices", "value": {"choices": list(c)}}]  # noqa: E731
    assert choice_value(res("2"), [1, 2, 3]) == (2.0, False, None)
    assert choice_value(res("3 (happy)"), [1, 2, 3]) == (3.0, False, None)
    assert choice_value(res("unknown"), [1, 2, 3]) == (None, True, None)
    assert choice_value(res("9"), [1, 2, 3])[2] == "value '9' is not on the scale 1-3"
    assert choice_value(res("2", "3"), [1, 2, 3])[2] == "2 choices in the annotation, expected one"
    assert choice_value([], [1, 2, 3])[2] == "no rating in the annotation"


def test_pseudonyms_are_stable_per_study_secret_and_say_nothing_of_the_user():
    a = pseudonym(b"s1" * 16, "http://127.0.0.1:8080/", 7)
    assert a == pseudonym(b"s1" * 16, "http://127.0.0.1:8080", 7) and len(a) == 12 and "7" != a
    assert a != pseudonym(b"s2" * 16, "http://127.0.0.1:8080", 7) != pseudonym(b"s1" * 16, "http://127.0.0.1:8080", 8)
