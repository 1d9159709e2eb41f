"""`lmbench profile` as one call: check the configuration and the profile options, hold the run directory, measure
under torch.profiler (profilers/data_parallel_profile.py: one process, or every rank of a torchrun job), then log
the TensorBoard scalars and hparams beside the traces and write the run's report and the kernel report of the
traces.

Layout of a profile run directory:

    traces/<run>/results.jsonl, report.md      the run's record and its timing report
    traces/<run>/<name>/*.pt.trace.json.gz     the traces (a job: one per rank), TensorBoard's scalars and hparams
    traces/<run>/<name>/kernels.md, *.csv      the kernel report (kernels/report.py; a CPU run's operator report)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmbench.analysis.groups import capture_name
from lmbench.config import BenchConfig, ProfileOptions
from lmbench.errors import report_of_stored
from lmbench.kernels.report import write_kernel_report
from lmbench.measure.data_parallel import Job, plan_jobs
from lmbench.measure.environment import check_runnable
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.sampling import Sampling
from lmbench.profilers.data_parallel_profile import run_profiled
from lmbench.profilers.tb_scalars import log_run
from lmbench.profilers.torch_profiler import check_profilable
from lmbench.render.timing_report import write_report
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore


@dataclass(frozen=True)
class ProfileRun:
    """What `lmbench profile` stored and wrote."""

    job: Job
    run_dir: Path  # results.jsonl and report.md
    capture: Path  # the traces, TensorBoard's logs and the kernel report
    record: Record | None  # None on a node other than node 0 of a job, which holds the record and the reports
    report: Path | None = None  # report.md, the run's timing report
    kernel_report: Path | None = None  # none after an out-of-memory run, or without lmbench's ranges (--annotate off)


def profile_config(config: BenchConfig, options: ProfileOptions, trace_dir: Path,
                   launch: LaunchOptions = LaunchOptions(), on_start: Callable[[str], None] = lambda line: None,
                   on_line: Callable[[str], None] = lambda line: None) -> ProfileRun:
    """Measure `config` under torch.profiler into `trace_dir` (with `config.parallel` ddp|fsdp on the torchrun job
    `launch` describes, every rank traced), log its TensorBoard scalars, write the run's report.md and the kernel
    report of its traces. Everything is checked before the run directory is made; `on_start` then receives what runs
    and where, `on_line` a job's progress lines."""
    [job] = plan_jobs([config], Sampling(), launch)  # checks the configuration and its launch
    config = job.config
    device = check_runnable(config)
    check_profilable(options, device, job.world_size)
    options.schedule(config)  # refuse an impossible schedule before the model is built
    store = ResultsStore(trace_dir)
    with store.claim():
        capture = store.run_dir / capture_name(config, job.world_size)
        on_start(f"{config.label} {config.mode} {config.precision} batch {config.batch} ctx {config.ctx} -> "
                 f"{capture}{job.where}")
        record = run_profiled(job, store, options, capture, device, on_line)
        if record is None:
            return ProfileRun(job, store.run_dir, capture, None)
        log_run(capture, record)
        with report_of_stored(store.path):
            report = write_report(store.run_dir)
        # The kernel report places work in lmbench's ranges: with --annotate off none were emitted. A GPU run gets the
        # kernel report, a CPU run (no GPU activity) the CPU operator report.
        kernels = write_kernel_report(capture, record) if record.ok and config.annotate != "off" else None
        return ProfileRun(job, store.run_dir, capture, record, report, kernels)
