"""The exception types users see: each message is printed as a single line by the CLI."""

import errno
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


def unwritable_report(error: OSError, run_dir: Path) -> LmbenchError:
    """A run's report that could not be written after measuring: the problem, where the measurement is stored
    already, and how to render it elsewhere."""
    return LmbenchError(f"cannot write the report ({error.filename}: {os_problem(error)}); the results are stored in "
                        f"{run_dir / 'results.jsonl'} (render them with lmbench report {run_dir} --out DIR)")
