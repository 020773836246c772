"""One error type for bad user input: the message names the file, the field and the value."""


class InputError(ValueError):
    """Bad file or value given by a user; CLIs print str(err) on one line and exit with code 2."""


class OutputError(InputError, OSError):
    """An output that cannot be written (disk full, permission denied, ...): one line naming the path and the
    reason; an InputError for the CLIs (exit code 2) and still an OSError (errno kept) for callers that catch it."""
