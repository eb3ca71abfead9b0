"""did_you_mean: the suggestion appended to "unknown name" errors."""

from workbench.errors import did_you_mean


def test_suggests_the_closest_name():
    assert did_you_mean("opneai", ["openai", "openai-batch", "local"]) == " Did you mean 'openai'?"
    assert did_you_mean("wordfrq", {"wordfreq": 1, "embedding": 2}) == " Did you mean 'wordfreq'?"


def test_nothing_when_no_name_is_close():
    assert did_you_mean("zzz", ["openai", "local"]) == ""
    assert did_you_mean("openai", []) == ""


def test_the_right_name_is_never_offered_as_its_own_correction():
    """The name was right (the error is about something else, say not applied yet): no "Did you mean" of it; another
    close name still is, and so is a case-only variant of a wrong name (names are case-sensitive)."""
    assert did_you_mean("familiarity", ["familiarity"]) == ""
    assert did_you_mean("Familiarity", ["familiarity", "aoa"]) == " Did you mean 'familiarity'?"
    assert did_you_mean("familiarity", ["familiarity", "familiarity2"]) == " Did you mean 'familiarity2'?"
