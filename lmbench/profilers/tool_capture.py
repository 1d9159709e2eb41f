"""What the two Nsight profilers share: where a capture lives, finding the tool's executable, running it.

nsys (profilers/nsys.py) and ncu (profilers/ncu.py) each write `<run_dir>/<name>.<suffix>` and derive their tables
into the directory `<run_dir>/<name>`; both are found the same way and run with their output on stderr, so the
command's stdout stays the report."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, IO

from lmbench.errors import LmbenchError


@dataclass(frozen=True)
class ToolCapture:
    """Where one capture and its derived files live; a subclass names the suffix its tool adds."""

    SUFFIX: ClassVar[str]
    run_dir: Path
    name: str

    @property
    def base(self) -> Path:  # the --output the tool is given; it adds SUFFIX
        return self.run_dir / self.name

    @property
    def rep(self) -> Path:
        return self.run_dir / f"{self.name}{self.SUFFIX}"

    @property
    def dir(self) -> Path:  # the derived files: CSVs, metadata, the kernel report
        return self.run_dir / self.name


def find_tool(tool: str, explicit: str | None, env: str) -> str | None:
    """A profiler's executable from its option (--<tool>), then the environment variable `env`, then PATH; None when
    there is none. A path given but not executable is an error naming where it came from."""
    for candidate in (explicit, os.environ.get(env)):
        if candidate:
            if Path(candidate).is_file() and os.access(candidate, os.X_OK):
                return candidate
            raise LmbenchError(f"{tool} not found at {candidate!r} (given by {'--' + tool if candidate == explicit else env})")
    return shutil.which(tool)


def run_tool(command: list[str], what: str, env: dict[str, str] | None = None, stdout: IO | None = None) -> None:
    """Run a profiler command, echoed first; its output goes to stderr (or `stdout`, a file it exports into). A
    non-zero exit is one line naming `what`."""
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    completed = subprocess.run(command, stdout=stdout or sys.stderr, stderr=sys.stderr, env=env)
    if completed.returncode:
        raise LmbenchError(f"{what} failed with exit code {completed.returncode}")
