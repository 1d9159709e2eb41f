"""Run Nsight Systems over an lmbench run, then turn its `nsys stats` CSVs into a kernel report.

`lmbench nsys` profiles a child `lmbench bench` process with the same configuration:

    nsys profile --trace=cuda,nvtx,osrt,cublas --capture-range=cudaProfilerApi --capture-range-end=stop
                 --python-backtrace=cuda -o traces/<run>/<name> python -m lmbench bench ... --run-dir traces/<run>

The harness opens the capture range (cudaProfilerStart/Stop) around the measured steps only, so the
report holds exactly those steps, and the child stores its own timed record next to the capture,
which is what the kernel times are checked against. Layout of a trace run directory:

    traces/<run>/results.jsonl, report.md      lmbench's timings of every capture in the run
    traces/<run>/<name>.nsys-rep               the capture (open it in the Nsight Systems GUI)
    traces/<run>/<name>/stats_<report>.csv     `nsys stats` output
    traces/<run>/<name>/kernels.md, *.csv      the kernel report (kernels/report.py)
    traces/<run>/kernels.md                    one summary row per capture
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lmbench.kernels.nsys_csv import REPORTS, STATS_PREFIX
from lmbench.config import NSYS_ENV, BenchConfig
from lmbench.measure.environment import PROFILER_ENV
from lmbench.errors import LmbenchError
from lmbench.measure.processes import child_command

TRACE_OPTIONS = (
    "--trace=cuda,nvtx,osrt,cublas",
    "--capture-range=cudaProfilerApi",  # the harness calls cudaProfilerStart/Stop around the measured steps
    "--capture-range-end=stop",
    "--python-backtrace=cuda",  # a Python stack on each CUDA API call, shown in the GUI's tooltips
    "--force-overwrite=true",
)


@dataclass(frozen=True)
class Capture:
    """Where one configuration's capture and its derived files live."""

    run_dir: Path
    name: str

    @property
    def base(self) -> Path:  # nsys adds .nsys-rep (and .sqlite when stats export it)
        return self.run_dir / self.name

    @property
    def dir(self) -> Path:  # stats CSVs and the kernel report
        return self.run_dir / self.name

    @property
    def rep(self) -> Path:
        return self.base.with_name(self.name + ".nsys-rep")

    @property
    def stats_prefix(self) -> Path:
        return self.dir / STATS_PREFIX


def find_nsys(explicit: str | None = None) -> str | None:
    """nsys from --nsys, then $LMBENCH_NSYS, then PATH; None when there is none."""
    for candidate in (explicit, os.environ.get(NSYS_ENV)):
        if candidate:
            if Path(candidate).is_file() and os.access(candidate, os.X_OK):
                return candidate
            raise LmbenchError(f"nsys not found at {candidate!r} (given by {'--nsys' if candidate == explicit else NSYS_ENV})")
    return shutil.which("nsys")


def profile_command(nsys: str, config: BenchConfig, capture: Capture, python: str = sys.executable) -> list[str]:
    child = child_command(config, capture.run_dir, report=True, python=python)
    return [nsys, "profile", *TRACE_OPTIONS, "--output", str(capture.base), *child]


def stats_command(nsys: str, capture: Capture) -> list[str]:
    reports = [arg for report in REPORTS for arg in ("--report", report)]
    return [nsys, "stats", "--force-export=true", "--format", "csv", *reports, "--output",
            str(capture.stats_prefix), str(capture.rep)]


def check_annotated(config: BenchConfig) -> None:
    if config.annotate == "off":
        raise LmbenchError("lmbench nsys needs ranges to place kernels in phases: use --annotate phases or detail")


def run_capture(config: BenchConfig, capture: Capture, nsys: str) -> None:
    """Profile the configuration and export its stats; output of both tools goes to stderr."""
    capture.stats_prefix.parent.mkdir(parents=True, exist_ok=True)
    _run(profile_command(nsys, config, capture), "nsys profile", env={**os.environ, PROFILER_ENV: "nsys"})
    if not capture.rep.exists():
        raise LmbenchError(f"nsys wrote no {capture.rep}; the capture range never opened (is this a CUDA run?)")
    _run(stats_command(nsys, capture), "nsys stats")


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    completed = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, env=env)
    if completed.returncode:
        raise LmbenchError(f"{what} failed with exit code {completed.returncode}")


def missing_nsys_message(config: BenchConfig, capture: Capture) -> str:
    """What to run where Nsight Systems is installed, when it is not here."""
    return "\n".join([
        f"nsys not found (tried --nsys, ${NSYS_ENV}, PATH). Run these where Nsight Systems is installed:",
        "  " + shlex.join(profile_command("nsys", config, capture, python="python3")),
        "  " + shlex.join(stats_command("nsys", capture)),
        f"then render the kernel report there or here: lmbench kernels {capture.dir}",
    ])
