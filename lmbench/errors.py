"""The exception types users see: each message is printed as a single line by the CLI."""


class LmbenchError(Exception):
    """Bad input or an unusable environment; the message names the problem in one line (exit 2)."""


class Interrupted(LmbenchError):
    """Ctrl-C, with what was kept and how to go on (exit 130, as for any interrupt)."""
