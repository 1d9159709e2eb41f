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

A data-parallel job (`--parallel ddp|fsdp`) runs on torchrun exactly as `bench` runs it (measure/data_parallel.py's
run_data_parallel), every rank under its own `nsys profile` with the same options (profilers/nsys_rank.py, the
ranks' worker), and rank 0 stores the job's record. Each rank is a capture of its own, `<name>.rank<N>` (its
.nsys-rep, stats and kernel report as above), and the run summary sets the ranks side by side, phases and
communication. Across nodes each node reports its own ranks; node 0 holds the record.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from typing import Callable

from lmbench.analysis.groups import capture_name
from lmbench.config import NSYS_ENV, BenchConfig
from lmbench.errors import LmbenchError, report_of_stored
from lmbench.kernels.nsys_csv import REPORTS, STATS_PREFIX, rank_capture_name
from lmbench.kernels.report import REPORT_FILE, write_kernel_report
from lmbench.measure import data_parallel
from lmbench.measure.data_parallel import Job, job_command, plan_jobs, run_data_parallel
from lmbench.measure.environment import PROFILER_ENV, check_runnable
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.processes import child_command
from lmbench.measure.sampling import Sampling
from lmbench.profilers import nsys_rank
from lmbench.profilers.nsys_rank import profile_prefix
from lmbench.profilers.tool_capture import ToolCapture, find_tool, run_tool
from lmbench.render.timing_report import write_report
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore


@dataclass(frozen=True)
class Capture(ToolCapture):
    """Where one configuration's nsys capture, its stats CSVs and its kernel report live (nsys also writes
    <name>.sqlite beside the .nsys-rep when stats export it)."""

    SUFFIX = ".nsys-rep"

    @property
    def stats_prefix(self) -> Path:
        return self.dir / STATS_PREFIX


@dataclass(frozen=True)
class NsysRun:
    """What `lmbench nsys` wrote: the kernel report of every capture on this machine (the one process's, or each of
    this node's ranks') and the run summary across them."""

    job: Job
    capture: Capture  # the one process's capture; a job's ranks are `<name>.rank<N>` beside it
    reports: list[Path]  # kernels.md of each capture; none when a rank of a job ran out of memory
    record: Record | None = None  # a job's record; None for one process (its child stores it) and off node 0

    @property
    def summary(self) -> Path:
        """The run summary across the captures, kernels.md of the trace run directory."""
        return self.capture.run_dir / REPORT_FILE


def profile_config(config: BenchConfig, trace_dir: Path, launch: LaunchOptions = LaunchOptions(),
                   nsys: str | None = None, on_start: Callable[[str], None] = lambda line: None,
                   on_line: Callable[[str], None] = lambda line: None) -> NsysRun:
    """Profile `config` under Nsight Systems into `trace_dir` and write the kernel reports: a child `lmbench bench`
    under nsys, or with `config.parallel` ddp|fsdp every rank of the torchrun job `launch` describes under its own
    nsys. `nsys` is the executable (default: $LMBENCH_NSYS, then PATH); without one, the error lists the commands
    to run where Nsight Systems is installed. A job calls `on_start` with what it runs and where, `on_line` with its
    progress lines; a rank out of memory is an error after the job's record and report.md are stored."""
    check_annotated(config)
    # A job is planned (and refused) before anything starts; one process is checked once nsys is found, so that
    # the commands to run elsewhere are printed even where this machine could not run the configuration.
    job = plan_jobs([config], Sampling(), launch)[0] if config.parallel != "none" or launch != LaunchOptions() \
        else Job(config)
    capture = Capture(trace_dir, capture_name(job.config, job.world_size))
    executable = find_nsys(nsys)
    if executable is None:
        raise LmbenchError(missing_nsys_message(job, capture))
    store = ResultsStore(capture.run_dir)
    with store.claim():
        if job.launch is None:
            check_runnable(config)
            run_capture(config, capture, executable)
            return NsysRun(job, capture, [write_kernel_report(capture.dir)])
        on_start(f"{config.label} {config.mode} {config.precision} batch {job.config.batch} ctx {config.ctx} -> "
                 f"{capture.run_dir}{job.where}")
        record, reports = profile_job(job, store, capture, executable, on_line)
        if record is not None:
            with report_of_stored(store.path):  # report.md beside the captures, as the child of one process writes it
                write_report(store.run_dir)
            if not record.ok:
                raise LmbenchError(f"rank {record.oom_rank} ran out of memory in the {record.oom_phase} phase: no "
                                   f"kernel report (the record is in {store.path})")
        return NsysRun(job, capture, reports, record)


def find_nsys(explicit: str | None = None) -> str | None:
    """nsys from --nsys, then $LMBENCH_NSYS, then PATH; None when there is none."""
    return find_tool("nsys", explicit, NSYS_ENV)


def profile_command(nsys: str, config: BenchConfig, capture: Capture, python: str = sys.executable) -> list[str]:
    return [*profile_prefix(nsys, str(capture.base)), *child_command(config, capture.run_dir, report=True, python=python)]


def stats_command(nsys: str, capture: Capture) -> list[str]:
    reports = [arg for report in REPORTS for arg in ("--report", report)]
    return [nsys, "stats", "--force-export=true", "--format", "csv", *reports, "--output",
            str(capture.stats_prefix), str(capture.rep)]


def check_annotated(config: BenchConfig) -> None:
    if config.annotate == "off":
        raise LmbenchError("lmbench nsys needs ranges to place kernels in phases: use --annotate phases or detail")


def run_capture(config: BenchConfig, capture: Capture, nsys: str) -> None:
    """Profile the configuration and export its stats; output of both tools goes to stderr."""
    run_tool(profile_command(nsys, config, capture), "nsys profile", env={**os.environ, PROFILER_ENV: "nsys"})
    export_stats(nsys, capture)


def export_stats(nsys: str, capture: Capture) -> None:
    """`nsys stats` of a capture nsys has written, into its directory."""
    if not capture.rep.exists():
        raise LmbenchError(f"nsys wrote no {capture.rep}; the capture range never opened (is this a CUDA run?)")
    capture.stats_prefix.parent.mkdir(parents=True, exist_ok=True)
    run_tool(stats_command(nsys, capture), "nsys stats")


def rank_worker(nsys: str, capture: Capture) -> tuple[str, ...]:
    """run_data_parallel's `worker` for the job's ranks: each rank becomes `nsys profile ... python -m
    <the data-parallel worker>`, writing its capture `<name>.rank<RANK>`."""
    output = capture.run_dir / rank_capture_name(capture.name, "%q{RANK}")  # nsys puts each rank's RANK there
    return (nsys_rank.WORKER, "--nsys", nsys, "--output", str(output), "--worker", data_parallel.WORKER,
            "--env", f"{PROFILER_ENV}=nsys")


def rank_captures(job: Job, capture: Capture) -> list[Capture]:
    """The captures of the job's ranks on this node: node k holds ranks k x nproc onwards (torchrun's static
    rendezvous across nodes; one node, --standalone, holds ranks 0 to nproc - 1)."""
    assert job.launch is not None
    first = job.launch.node_rank * job.nproc
    return [Capture(capture.run_dir, rank_capture_name(capture.name, rank)) for rank in range(first, first + job.nproc)]


def profile_job(job: Job, store: ResultsStore, capture: Capture, nsys: str,
                on_line: Callable[[str], None] = lambda line: None) -> tuple[Record | None, list[Path]]:
    """Run the job with every rank under nsys into `store` (held by the caller), export each of this node's ranks'
    stats and write its kernel report: (the job's record, None on a node other than node 0; the reports written,
    none when a rank ran out of memory)."""
    record = run_data_parallel(job, store, on_line, rank_worker(nsys, capture))
    if record is not None and not record.ok:
        return record, []
    ranks = rank_captures(job, capture)
    for rank in ranks:
        export_stats(nsys, rank)
    return record, [write_kernel_report(rank.dir, record) for rank in ranks]


def missing_nsys_message(job: Job, capture: Capture) -> str:
    """What to run where Nsight Systems is installed, when it is not here."""
    if job.launch is None:
        profile, ranks = profile_command("nsys", job.config, capture, python="python3"), [capture]
    else:
        profile = job_command(job, capture.run_dir, rank_worker("nsys", capture), python="python3")
        ranks = rank_captures(job, capture)
    return "\n".join([
        f"nsys not found (tried --nsys, ${NSYS_ENV}, PATH). Run these where Nsight Systems is installed:",
        "  " + shlex.join(profile), *("  " + shlex.join(stats_command("nsys", rank)) for rank in ranks),
        f"then render the kernel report{'s' if len(ranks) > 1 else ''} there or here: "
        + "; ".join(f"lmbench kernels {rank.dir}" for rank in ranks),
    ])
