"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class LatentageError(Exception):
    """Base class: the message names the file, row or config key at fault."""


class InputError(LatentageError):
    """Bad user input: a CSV row, an image file, a missing weights file."""


class ConfigError(LatentageError):
    """A config key with a wrong type or value."""
