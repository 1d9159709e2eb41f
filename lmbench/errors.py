"""The exception types users see: each message is printed as a single line by the CLI."""

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path


class LmbenchError(Exception):
    """Bad input or an unusable environment; the message names the problem in one line (exit 2)."""


class Interrupted(LmbenchError):
    """Ctrl-C, with what was kept and how to go on (exit 130, as for any interrupt)."""


def os_problem(error: OSError) -> str:
    """What went wrong with a path, in a few words: "disk full" for ENOSPC, else the system's own words."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    return error.strerror or str(error)


@contextlib.contextmanager
def report_of_stored(results: Path) -> Iterator[None]:
    """Around writing a report once its measurements are stored in the file `results`: a file that cannot be written
    is one line with the problem, where the measurements are, and how to render them elsewhere."""
    try:
        yield
    except OSError as error:
        raise LmbenchError(f"cannot write the report ({error.filename}: {os_problem(error)}); the results are stored "
                           f"in {results} (render them with lmbench report {results.parent} --out DIR)") from None
