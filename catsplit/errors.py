"""The one exception type catsplit raises for bad input."""


class CatsplitError(ValueError):
    """Bad input: the message names the offending value and how to fix it."""
