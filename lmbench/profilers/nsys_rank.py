"""One rank of `lmbench nsys` on a data-parallel job, under its own Nsight Systems.

torchrun starts this module on every rank as the job's worker (measure/data_parallel.py's run_data_parallel,
`worker`), with the arguments every worker gets and its own: `--nsys`, `--output`, `--worker` (the module that runs
the rank's steps) and `--env NAME=VALUE`. It replaces itself (exec) with

    nsys profile <TRACE_OPTIONS> --output DIR/<name>.rank%q{RANK} python -m <worker> <the worker's arguments>

so torchrun's process for the rank is nsys, which runs the rank and writes one .nsys-rep per rank (nsys expands
%q{RANK} from the environment torchrun gives the rank). The trace options are `lmbench nsys`'s for one process: the
harness opens the cudaProfilerApi range around the measured steps on every rank as it does in one process.

This module imports nothing beyond the standard library, so a rank reaches nsys without loading torch twice.
"""

from __future__ import annotations

import argparse
import os
import sys

WORKER = "lmbench.profilers.nsys_rank"
TRACE_OPTIONS = (
    "--trace=cuda,nvtx,osrt,cublas",
    "--capture-range=cudaProfilerApi",  # the harness calls cudaProfilerStart/Stop around the measured steps
    "--capture-range-end=stop",
    "--python-backtrace=cuda",  # a Python stack on each CUDA API call, shown in the GUI's tooltips
    "--force-overwrite=true",
)


def profile_prefix(nsys: str, output: str) -> list[str]:
    """`nsys profile` with lmbench's trace options, writing `output`.nsys-rep; the profiled command follows."""
    return [nsys, "profile", *TRACE_OPTIONS, "--output", output]


def rank_command(argv: list[str], python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """(the command this rank becomes, the variables it adds to the environment) from this module's arguments:
    its own options are taken out, every other argument goes to the worker in its order."""
    parser = argparse.ArgumentParser(prog=f"python -m {WORKER}", allow_abbrev=False,
                                     description="one rank of lmbench nsys on a data-parallel job (started by torchrun)")
    parser.add_argument("--nsys", required=True, help="the nsys executable")
    parser.add_argument("--output", required=True, help="the rank's capture, without .nsys-rep (may hold %%q{RANK})")
    parser.add_argument("--worker", required=True, help="the module that runs the rank's steps")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable the profiled process gets (repeatable)")
    own, rest = parser.parse_known_args(argv)
    if any("=" not in item for item in own.env):
        parser.error(f"--env takes NAME=VALUE, got {own.env}")
    env = dict(item.split("=", 1) for item in own.env)
    return [*profile_prefix(own.nsys, own.output), python, "-m", own.worker, *rest], env


def main(argv: list[str] | None = None) -> None:
    command, env = rank_command(sys.argv[1:] if argv is None else argv)
    os.execvpe(command[0], command, {**os.environ, **env})


if __name__ == "__main__":
    main()
