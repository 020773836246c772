"""One error type for bad user input: the message names the file, the field and the value."""


class InputError(ValueError):
    """Bad file or value given by a user; CLIs print str(err) on one line and exit with code 2."""
