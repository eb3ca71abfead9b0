"""did_you_mean: the suggestion appended to "unknown name" errors."""

from workbench.errors import did_you_mean


def test_suggests_the_closest_name():
    assert did_you_mean("opneai", ["openai", "openai-batch", "local"]) == " Did you mean 'openai'?"
    assert did_you_mean("wordfrq", {"wordfreq": 1, "embedding": 2}) == " Did you mean 'wordfreq'?"


def test_nothing_when_no_name_is_close():
    assert did_you_mean("zzz", ["openai", "local"]) == ""
    assert did_you_mean("openai", []) == ""
