"""The one exception type users see: a clear sentence saying what to do."""


class WorkbenchError(Exception):
    """A user-facing error. The CLI prints str(error) to stderr and exits 1."""


class StoreVersionError(WorkbenchError):
    """The store's schema is not the one this workbench expects."""


class StoreLockedError(WorkbenchError):
    """Another process held the store's write lock for longer than the busy timeout."""


class StoreBusyError(StoreLockedError):
    """Another process holds the store-level lock a command needs (another apply, say): workbench.store.locks.study_lock."""


def did_you_mean(name: str, choices) -> str:
    """ " Did you mean 'x'?" naming the closest of `choices` to `name`, or "" when none is close.

    Meant to be appended to an error sentence: f"Unknown rater {name!r}.{did_you_mean(name, raters)}"
    A choice equal to `name` is never offered as a correction: the name was right, and the error is
    about something else (say, a resource declared but not applied yet). Names are case-sensitive, so a
    choice differing only in case is a correction like any other.
    """
    import difflib

    others = [str(c) for c in choices if str(c) != str(name)]
    close = difflib.get_close_matches(str(name), others, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
