"""The Python API that `import lmbench` exposes: configure, measure, sweep, load, report, compare, profile (under
torch.profiler, Nsight Systems or Nsight Compute) and read a capture's kernels. Each function is a thin door onto
the package that does the work, and the CLI's commands go through the same functions, so the two cannot drift
apart.

    import lmbench
    config = lmbench.BenchConfig(size="small", ctx=128, device="cpu")
    lmbench.sweep([config], "runs/demo", sampling=lmbench.Sampling(repeats=3))
    lmbench.report("runs/demo")                          # report.md, CSV, LaTeX, plots
    document = lmbench.report_json("runs/demo")          # the same, and its tables as JSON-ready numbers
    frame = lmbench.load_results("runs/demo")            # one row per record
    table = lmbench.compare("runs/a", "runs/b:precision=bf16")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lmbench.config import BenchConfig, ProfileOptions
from lmbench.errors import LmbenchError
from lmbench.measure.attention_options import AttentionOptions
from lmbench.measure.collectives_options import CollectivesOptions
from lmbench.measure.sampling import Sampling
from lmbench.results.record import Record

if TYPE_CHECKING:  # pandas and the measuring packages load when a function runs, not with `import lmbench`
    import pandas as pd

    from lmbench.measure.launch import LaunchOptions
    from lmbench.profilers.ncu import NcuRun
    from lmbench.profilers.ncu_options import NcuOptions
    from lmbench.profilers.nsys import NsysRun
    from lmbench.profilers.profile_run import ProfileRun
    from lmbench.render.timing_report import Report

PathLike = str | os.PathLike


def bench(config: BenchConfig, run_dir: PathLike, sampling: Sampling = Sampling(),
          launch: LaunchOptions | None = None, on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """Measure one configuration (in fresh processes when `sampling.repeats` > 1; with `config.parallel` ddp or
    fsdp on the torchrun job `launch` describes), store and return its record (None on a node other than node 0,
    which holds the records); the run directory is held for the run (ResultsStore.claim). `on_line` receives a
    job's progress lines."""
    from lmbench.measure.launch import LaunchOptions
    from lmbench.results.store import ResultsStore
    from lmbench.studies.sweep import run_one
    store = ResultsStore(run_dir)
    with store.claim():
        return run_one(config, store, sampling=sampling, launch=launch or LaunchOptions(), on_line=on_line)


def sweep(configs: Sequence[BenchConfig], run_dir: PathLike, sampling: Sampling = Sampling(),
          resume: bool = False, launch: LaunchOptions | Sequence[LaunchOptions] | None = None) -> list[Record]:
    """Measure each configuration in turn into one run directory; with `resume`, skip those already stored.
    Data-parallel configurations run on the torchrun job `launch` describes, or on each of several (e.g. one and
    two ranks: weak scaling in one run directory); `sampling.interleave` runs the repeats in rounds."""
    from lmbench.measure.launch import LaunchOptions
    from lmbench.results.store import ResultsStore
    from lmbench.studies.sweep import run_sweep
    store = ResultsStore(run_dir)
    with store.claim():
        return run_sweep(configs, store, resume=resume, sampling=sampling, launch=launch or LaunchOptions())


def load_results(run_dir: PathLike) -> pd.DataFrame:
    """One row per stored record, nested fields flattened to dotted columns (samples left out)."""
    from lmbench.results.store import load_results as load
    return load(run_dir)


def load_samples(run_dir: PathLike) -> pd.DataFrame:
    """Every raw step sample, one row per (record, step), warm-up steps included and labelled."""
    from lmbench.results.store import load_samples as load
    return load(run_dir)


def report(run_dir: PathLike, out_dir: PathLike | None = None) -> Path:
    """Render report.md, the CSV tables, report.tex and plots from stored results (and a warm-up study's
    warmup.md when the run directory holds one); returns the path of report.md. A run directory of
    `lmbench collectives` gets collectives.md (its CSV, LaTeX and plot) instead, one of `lmbench attention`
    attention.md."""
    kind = _study_kind(run_dir)
    if kind == "collectives":
        from lmbench.render.collectives import write_report as write_collectives_report
        return write_collectives_report(run_dir, out_dir)
    if kind == "attention":
        from lmbench.render.attention import write_report as write_attention_report
        return write_attention_report(run_dir, out_dir)
    return _write_report(run_dir, out_dir)[1][0]


def _study_kind(run_dir: PathLike) -> str | None:
    """The command ('collectives' or 'attention') whose run directory this is (its own results file and no timing
    records), else None."""
    from lmbench.results.attention import AttentionStore
    from lmbench.results.collectives import CollectivesStore
    from lmbench.results.store import ResultsStore
    if ResultsStore(run_dir).path.exists():
        return None
    for kind, store in (("collectives", CollectivesStore), ("attention", AttentionStore)):
        if store(run_dir).path.exists():
            return kind
    return None


def report_json(run_dir: PathLike, out_dir: PathLike | None = None) -> dict[str, Any]:
    """Write the report as report() does and return it as one document of JSON types (what `--json` prints):
    the configurations, every table as rows of numbers (the CSV tables; NaN as None), the findings as text and
    the files written, report.md first."""
    from lmbench.render.json_document import jsonable, report_document
    kind = _study_kind(run_dir)
    if kind is not None:  # their tables as numbers are already files: <kind>.csv beside <kind>.md
        raise LmbenchError(f"--json prints a timing report; {run_dir} holds an `lmbench {kind}` run, whose table "
                           f"as numbers is {kind}.csv (rendered to {kind}.md without --json)")
    written, files = _write_report(run_dir, out_dir)
    return jsonable(report_document(written, Path(run_dir), files))


def _write_report(run_dir: PathLike, out_dir: PathLike | None) -> tuple[Report, list[Path]]:
    from lmbench.render.timing_report import write_report_files
    from lmbench.results.store import ResultsStore
    from lmbench.studies import warmup
    written, files = write_report_files(run_dir, out_dir)
    records = ResultsStore(run_dir).records()
    if warmup.is_study(records):
        files.append(warmup.write_study(records, files[0].parent))
    return written, files


def collectives(options: CollectivesOptions, run_dir: PathLike, launch: LaunchOptions | None = None,
                resume: bool = False, on_line: Callable[[str], None] = lambda line: None) -> Path | None:
    """Measure collective bandwidth on a torchrun job (`launch`: ranks, nodes, backend, timeouts) into run_dir and
    write collectives.md; returns its path (None on a node other than node 0, which holds the records). With
    `resume`, sizes already stored are skipped; `on_line` receives the job's progress lines."""
    from lmbench.measure.launch import LaunchOptions
    from lmbench.studies.collectives import run_collectives
    return run_collectives(options, run_dir, launch or LaunchOptions(), resume, on_line)


def attention(options: AttentionOptions, run_dir: PathLike, resume: bool = False,
              on_line: Callable[[str], None] = lambda line: None) -> Path:
    """Measure the attention grid of `options` (implementations x head dims x sequence lengths) into run_dir and
    write attention.md; returns its path. With `resume`, cells already stored are skipped; `on_line` receives a
    line per cell."""
    from lmbench.studies.attention import run_attention
    return run_attention(options, run_dir, resume, on_line)


def compare(side_a: str, side_b: str, alpha: float = 0.05, ignore: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per configuration: B against A (each 'RUN_DIR' or 'RUN_DIR:field=value,...'), Δ with its CI and verdict."""
    from lmbench.studies.compare import Side, compare as compared
    return compared(Side.parse(side_a), Side.parse(side_b), ignore, alpha)[0]


def kernel_report(capture_dir: PathLike, out_dir: PathLike | None = None) -> Path:
    """Write a capture directory's kernels.md (from its `nsys stats` CSVs or its newest torch.profiler trace), into
    the capture or, with `out_dir`, there."""
    from lmbench.kernels.report import write_kernel_report
    return write_kernel_report(Path(capture_dir), out_dir=Path(out_dir) if out_dir else None)


def profile(config: BenchConfig, trace_dir: PathLike, options: ProfileOptions = ProfileOptions(),
            launch: LaunchOptions | None = None, on_start: Callable[[str], None] = lambda line: None,
            on_line: Callable[[str], None] = lambda line: None) -> ProfileRun:
    """Measure one configuration under torch.profiler (with `config.parallel` ddp or fsdp every rank of the torchrun
    job `launch` describes): traces, TensorBoard scalars and hparams, the record, report.md and the kernel report
    (a CPU run's operator report), all in trace_dir; returns their paths and the record (None on a node other than
    node 0). `on_start` receives what runs and where once the run directory is held, `on_line` a job's progress."""
    from lmbench.measure.launch import LaunchOptions
    from lmbench.profilers.profile_run import profile_config
    return profile_config(config, options, Path(trace_dir), launch or LaunchOptions(), on_start, on_line)


def nsys(config: BenchConfig, trace_dir: PathLike, launch: LaunchOptions | None = None, executable: str | None = None,
         on_start: Callable[[str], None] = lambda line: None,
         on_line: Callable[[str], None] = lambda line: None) -> NsysRun:
    """Profile the measured steps of one configuration under Nsight Systems into trace_dir (with `config.parallel`
    ddp or fsdp every rank of the torchrun job `launch` describes under its own nsys) and write the kernel report of
    each capture and the run summary across them; returns their paths. `executable` is nsys (default:
    $LMBENCH_NSYS, then PATH); without one the error lists the commands to run where Nsight Systems is installed.
    A job calls `on_start` with what runs and where, `on_line` with its progress lines."""
    from lmbench.measure.launch import LaunchOptions
    from lmbench.profilers.nsys import profile_config
    return profile_config(config, Path(trace_dir), launch or LaunchOptions(), executable, on_start, on_line)


def ncu(config: BenchConfig, trace_dir: PathLike, options: NcuOptions | None = None,
        executable: str | None = None) -> NcuRun:
    """Profile the kernels of one phase of measured step 0 (`options.phase`, default forward) of one configuration
    under Nsight Compute into trace_dir and write their kernel table: throughput, occupancy, arithmetic intensity and
    roofline bound per kernel; returns its path and the capture's. `executable` is ncu (default: $LMBENCH_NCU, then
    PATH); without one the error lists the commands to run where Nsight Compute is installed."""
    from lmbench.profilers.ncu import profile_phase
    from lmbench.profilers.ncu_options import NcuOptions
    return profile_phase(config, options or NcuOptions(), Path(trace_dir), executable)
