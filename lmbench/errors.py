"""The one exception type users see: its message is printed as a single line by the CLI."""


class LmbenchError(Exception):
    """Bad input or an unusable environment; the message names the problem in one line."""
