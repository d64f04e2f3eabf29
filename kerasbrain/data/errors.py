"""The one error type the data layer raises for bad input, so the CLI can report it cleanly."""


class DataError(ValueError):
    """An input file or folder is missing, unreadable or inconsistent; the message names it."""
