"""The one exception type users see: a clear sentence saying what to do."""


class WorkbenchError(Exception):
    """A user-facing error. The CLI prints str(error) to stderr and exits 1."""


class StoreVersionError(WorkbenchError):
    """The store's schema is not the one this workbench expects."""
