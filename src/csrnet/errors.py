"""The one exception type the package raises for bad input; the CLI prints its message as one line."""


class CsrnetError(Exception):
    """A problem with the user's input (file, checkpoint, argument), explained in one line."""
