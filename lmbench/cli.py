"""The command line: `lmbench bench | sweep | report | nsys | ncu | kernels | profile | compare | warmup | collectives |
attention`, each a thin layer over the Python API.

Command-line options are generated from the option dataclasses' fields (cli_options.py), so the CLI and the API
share one definition of every option. Errors print as one line, `lmbench: error: ...`, exit
code 2. Only click and the option dataclasses load at start-up; each command imports what it runs, so
`lmbench --help` answers without loading torch or pandas (benchmarks/cli_startup.py).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import click

from lmbench import __version__, api
from lmbench.cli_options import (PERCENT, chosen_run_dir, config_options, default_run_dir, json_option, parse_list,
                                 resume_option, run_dir_option, run_dir_path, take, take_launch)
from lmbench.config import NSYS_ENV, WARMUP_COUNTS, BenchConfig, ProfileOptions
from lmbench.errors import Interrupted, LmbenchError, os_problem, report_of_stored
from lmbench.measure.attention_options import AttentionOptions
from lmbench.measure.collectives_options import CollectivesOptions
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.sampling import Sampling
from lmbench.profilers.ncu_options import NCU_ENV, NcuOptions


def err(message: str) -> None:
    """A status line on stderr (rich markup), so stdout carries only the report; never wrapped, so a path or a
    command in it can be copied whole even when stderr is a file or a pipe."""
    from rich.console import Console
    Console(stderr=True, soft_wrap=True).print(message)



@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(version=__version__, prog_name="lmbench")
def cli() -> None:
    """Benchmark and profile Transformer LM steps, and explain the numbers."""


@cli.command()
@config_options(sweep=False)
@config_options(sweep=False, cls=Sampling)
@config_options(sweep=False, cls=LaunchOptions)
@run_dir_option
@click.option("--report/--no-report", default=True, show_default=True,
              help="render the run directory's report after storing the record")
@json_option
def bench(run_dir: Path | None, report: bool, as_json: bool, **options: Any) -> None:
    """Measure one configuration and print its tables (with --parallel ddp|fsdp on the ranks of a torchrun job)."""
    from lmbench.measure.data_parallel import plan_jobs
    from lmbench.studies.sweep import check_one_configuration
    if as_json and not report:
        raise LmbenchError("--json prints the report, which --no-report leaves out; give one of them")
    sampling, launch = take(Sampling, options), take_launch(options)
    config = BenchConfig(**options)
    check_one_configuration(sampling)
    [job] = plan_jobs([config], sampling, launch)
    from lmbench.results.store import ResultsStore
    store = ResultsStore(run_dir or default_run_dir("bench"))
    processes = f" in {sampling.repeats} fresh processes" if sampling.in_processes else ""
    with store.claim():  # an unusable run directory is said before the status line, and before measuring
        params = f" (parameters {config.param_dtype})" if config.param_dtype != "fp32" else ""
        err(f"[bold]lmbench bench[/] {config.label} {config.mode} {config.precision}{params} batch {job.config.batch} "
            f"ctx {config.ctx}: {config.warmup} warm-up + {config.steps} measured steps{processes}{job.where}")
        if api.bench(config, store.run_dir, sampling, launch, on_line=_echo_err) is None:
            err(f"node {launch.node_rank} done; the record and the report are on node 0")
        elif report:
            _finish(store.run_dir, as_json)


@cli.command()
@config_options(sweep=True)
@config_options(sweep=False, cls=Sampling)
@config_options(sweep=True, cls=LaunchOptions)
@run_dir_option
@resume_option("configurations")
@json_option
def sweep(run_dir: Path | None, resume: bool, as_json: bool, **options: Any) -> None:
    """Measure the cartesian product of the listed values (e.g. --size small,medium --ctx 128,512; with --parallel,
    --nproc-per-node 1,2 runs each configuration at each rank count)."""
    from lmbench.render.progress import SweepProgress
    from lmbench.results.store import ResultsStore
    from lmbench.studies.sweep import Sweep, plan_sweep, run_planned
    nprocs, options["nproc_per_node"] = options["nproc_per_node"], None  # a comma list: one launch per value
    sampling, launch = take(Sampling, options), take_launch(options)
    launches = [launch] if nprocs is None else [
        dataclasses.replace(launch, nproc_per_node=n) for n in parse_list("nproc_per_node", nprocs, LaunchOptions)]
    run_dir = chosen_run_dir(run_dir, resume, "sweep")
    axes = {name: parse_list(name, options.pop(name)) for name in list(options)
            if isinstance(options[name], str) and BenchConfig.__dataclass_fields__[name].metadata["sweep"]}
    base = BenchConfig(**options, **{name: values[0] for name, values in axes.items()})
    configs = Sweep(base, {name: values for name, values in axes.items() if len(values) > 1}).configs()
    pairs = plan_sweep(configs, sampling, launches, resume)  # refused before the run directory is made
    store = ResultsStore(run_dir)
    with store.claim(), SweepProgress([config for config, _ in pairs], sampling.repeats) as progress:
        try:
            run_planned(pairs, store, resume=resume, sampling=sampling, on_event=progress.on_event,
                        on_line=progress.on_line)
        except KeyboardInterrupt:
            kept = len(store.records()) if store.path.exists() else 0
            raise Interrupted(f"interrupted; {kept} records kept in {store.run_dir}; continue with "
                              f"--resume --run-dir {store.run_dir}") from None
    if launch.node_rank != 0:
        err(f"node {launch.node_rank} done; the records and the report are on node 0")
        return
    _finish(store.run_dir, as_json)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to write report.md, the CSV tables and report.tex (default: RUN_DIR)")
@json_option
def report(run_dir: Path, out: Path | None, as_json: bool) -> None:
    """Render the report tables (Markdown, CSV, LaTeX) from a run directory's stored results (and, for a warm-up
    study, warmup.md)."""
    path = _print_report(run_dir, as_json, out)
    err(f"report written to {path} (+ CSV tables, report.tex and plots/)")


@cli.command()
@config_options(sweep=False, defaults={"annotate": "phases"})
@config_options(sweep=False, cls=LaunchOptions)
@click.option("--trace-dir", type=click.Path(file_okay=False), default=None, callback=run_dir_path,
              help="where the capture, its stats and the kernel report go (default: traces/<timestamp>-nsys)")
@click.option("--nsys", "nsys_path", default=None, help=f"the nsys executable (default: ${NSYS_ENV}, then PATH)")
def nsys(trace_dir: Path | None, nsys_path: str | None, **options: Any) -> None:
    """Profile one configuration under Nsight Systems (measured steps only) and write its kernel report (with
    --parallel ddp|fsdp every rank of a torchrun job under its own nsys, a report per rank)."""
    launch, config = take_launch(options), BenchConfig(**options)
    run = api.nsys(config, trace_dir or default_run_dir("nsys", Path("traces")), launch, nsys_path,
                   on_start=lambda line: err(f"[bold]lmbench nsys[/] {line}"), on_line=_echo_err)
    if run.job.launch is None:
        [path] = run.reports
        click.echo(path.read_text())
        err(f"capture: {run.capture.rep}; kernel report: {path}; run summary: {run.summary}")
        return
    click.echo(run.summary.read_text())
    err(f"kernel reports: {', '.join(map(str, run.reports))}; run summary across ranks: {run.summary}"
        + ("" if run.record else f"; node {launch.node_rank}'s ranks only, the record is on node 0"))


@cli.command()
@config_options(sweep=False, defaults={"annotate": "phases"})
@config_options(sweep=False, cls=NcuOptions)
@click.option("--trace-dir", type=click.Path(file_okay=False), default=None, callback=run_dir_path,
              help="where the capture, its raw page and the kernel table go (default: traces/<timestamp>-ncu)")
@click.option("--ncu", "ncu_path", default=None, help=f"the ncu executable (default: ${NCU_ENV}, then PATH)")
def ncu(trace_dir: Path | None, ncu_path: str | None, **options: Any) -> None:
    """Profile the kernels of one phase of measured step 0 under Nsight Compute and write their table: throughput,
    occupancy, arithmetic intensity and roofline bound per kernel. Each distinct kernel is profiled once by default;
    every launch is replayed per metric pass with the GPU memory saved and restored, about a second a launch for a
    small model and ten for 2.7B in a train step, so a 2.7B forward takes a few minutes."""
    ncu_options = take(NcuOptions, options)
    run = api.ncu(BenchConfig(**options), trace_dir or default_run_dir("ncu", Path("traces")), ncu_options, ncu_path)
    click.echo(run.report.read_text())
    err(f"capture: {run.capture.rep}; kernel table: {run.report}")


@cli.command()
@click.argument("capture_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write kernels.md and its CSV tables here instead of into the capture directory")
def kernels(capture_dir: Path, out: Path | None) -> None:
    """Render the kernel report of a capture directory: from its Nsight Compute raw page (ncu_raw.csv), its `nsys
    stats` CSVs (stats_<report>.csv) or, failing those, its newest torch.profiler trace (*.pt.trace.json[.gz])."""
    path = api.kernel_report(capture_dir, out)
    click.echo(path.read_text())
    err(f"kernel report written to {path}")


@cli.command()
@config_options(sweep=False, defaults={"annotate": "phases"})
@config_options(sweep=False, cls=ProfileOptions)
@config_options(sweep=False, cls=LaunchOptions)
@click.option("--trace-dir", type=click.Path(file_okay=False), default=None, callback=run_dir_path,
              help="run directory for traces, results and reports (default: traces/<timestamp>-profile)")
def profile(trace_dir: Path | None, **options: Any) -> None:
    """Run one configuration under torch.profiler: TensorBoard traces, scalars and hparams, trace report (with
    --parallel ddp|fsdp every rank of a torchrun job, one trace each)."""
    profile_options = take(ProfileOptions, options)
    launch = take_launch(options)
    run = api.profile(BenchConfig(**options), trace_dir or default_run_dir("profile", Path("traces")),
                      profile_options, launch, on_start=lambda line: err(f"[bold]lmbench profile[/] {line}"),
                      on_line=_echo_err)
    if run.record is None or run.report is None:
        err(f"node {launch.node_rank} done; the record and the reports are on node 0")
        return
    click.echo(run.report.read_text())
    _say_stored(run.run_dir, run.report)
    if run.kernel_report:
        click.echo(run.kernel_report.read_text())
        err(f"kernel report: {run.kernel_report}")
    elif run.record.ok:
        err("no kernel report: it needs lmbench's ranges (--annotate phases or detail)")
    err(f"traces: {run.capture} (tensorboard --logdir {run.run_dir.parent})")


@cli.command()
@config_options(sweep=False)
@run_dir_option
@click.option("--counts", default=",".join(map(str, WARMUP_COUNTS)), show_default=True,
              help="warm-up step counts to measure, comma-separated")
def warmup(run_dir: Path | None, counts: str, **options: Any) -> None:
    """Warm-up study: the configuration with each warm-up count, each in a fresh process."""
    values = tuple(sorted(set(parse_list("warmup", counts))))
    if any(v < 0 for v in values):  # refused before torch loads (measure.environment imports it)
        raise LmbenchError(f"--counts must be zero or more, got {counts!r}")
    from lmbench.measure.data_parallel import one_process
    from lmbench.measure.environment import check_runnable
    from lmbench.results.store import ResultsStore
    from lmbench.studies import warmup as warmup_study
    config = one_process(BenchConfig(**options), "warmup")
    check_runnable(config)
    configs = warmup_study.study_configs(config, values)
    store = ResultsStore(run_dir or default_run_dir("warmup"))
    with store.claim():
        warmup_study.run_study(configs, store, on_start=lambda count: err(f"{config.label}: {count} warm-up step(s)"))
        path = warmup_study.write_study(store.records(), store.run_dir)
        click.echo(path.read_text())
        err(f"results: {store.path}; study: {path}")


@cli.command()
@config_options(sweep=False, cls=CollectivesOptions)
@config_options(sweep=False, cls=LaunchOptions)
@run_dir_option
@resume_option("collectives and sizes")
def collectives(run_dir: Path | None, resume: bool, **options: Any) -> None:
    """Collective bandwidth via torchrun: time, algbw and busbw (as nccl-tests) per collective and size, plot, plateau."""
    run_dir = chosen_run_dir(run_dir, resume, "collectives")  # first, as in sweep: before the options' own checks
    launch = take(LaunchOptions, options)
    path = api.collectives(CollectivesOptions(**options), run_dir, launch, resume, on_line=_echo_err)
    if path is None:
        err(f"node {launch.node_rank} done; the records and the report are on node 0")
        return
    click.echo(path.read_text())
    err(f"results: {path.parent / 'collectives.jsonl'}; report: {path}")


@cli.command()
@config_options(sweep=False, cls=AttentionOptions)
@run_dir_option
@resume_option("cells")
def attention(run_dir: Path | None, resume: bool, **options: Any) -> None:
    """Attention micro-benchmark: forward and backward time and memory per implementation, head dim and length."""
    run_dir = chosen_run_dir(run_dir, resume, "attention")
    path = api.attention(AttentionOptions(**options), run_dir, resume, on_line=_echo_err)
    click.echo(path.read_text())
    err(f"results: {path.parent / 'attention.jsonl'}; report: {path}")


@cli.command(name="compare")
@click.argument("side_a")
@click.argument("side_b")
@click.option("--ignore", multiple=True, help="configuration field not to pair on (repeatable); fields that "
              "differ uniformly between the sides are found on their own")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="significance level")
@click.option("--fail-on-regression", "threshold", type=PERCENT, default=None,
              help="exit 1 when a configuration is significantly slower and its estimated change exceeds this, e.g. "
                   "5%; exit 2 when nothing could be decided")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the comparison as Markdown here, and its table as CSV beside it")
@json_option
def compare_command(side_a: str, side_b: str, ignore: tuple[str, ...], alpha: float, threshold: float | None,
                    out: Path | None, as_json: bool) -> None:
    """Compare two result sets (RUN_DIR or RUN_DIR:field=value,...): per configuration Δ with its CI and verdict."""
    from lmbench.render.json_document import comparison_document, dumps
    from lmbench.results.store import atomic_write
    from lmbench.studies import compare
    if not 0 < alpha < 1:
        raise LmbenchError(f"--alpha must be between 0 and 1, got {alpha}")
    a, b = compare.Side.parse(side_a), compare.Side.parse(side_b)
    table, changed, warnings = compare.compare(a, b, ignore, alpha)
    markdown = compare.render(table, a, b, changed, warnings, alpha)
    files = [out, out.with_suffix(".csv")] if out else []
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)  # as report --out does: a new directory is no error
        atomic_write(out, markdown.encode())
        atomic_write(files[1], table.to_csv(index=False).encode())
    gate = None if threshold is None else compare.gate(table, threshold)
    click.echo(dumps(comparison_document(table, str(a), str(b), changed, warnings, alpha, gate, files))
               if as_json else markdown)
    if gate and gate["exit_code"] == 2:
        raise LmbenchError(gate["reason"])
    if gate and gate["exit_code"] == 1:
        err(f"{len(gate['regressions'])} configuration(s) significantly slower by more than {threshold:g}%")
        sys.exit(1)


def _finish(run_dir: Path, as_json: bool = False) -> None:
    with report_of_stored(run_dir / "results.jsonl"):
        path = _print_report(run_dir, as_json)
    _say_stored(run_dir, path)


def _say_stored(run_dir: Path, report_path: Path) -> None:
    err(f"results: {run_dir / 'results.jsonl'}; report: {report_path}")


def _echo_err(line: str) -> None:
    """A job's progress line on stderr, as it came (no markup)."""
    click.echo(line, err=True)


def _print_report(run_dir: Path, as_json: bool, out: Path | None = None) -> Path:
    """Write the run directory's report and print it on stdout (Markdown, or one JSON document); returns report.md."""
    if not as_json:
        path = api.report(run_dir, out)
        click.echo(path.read_text())
        return path
    from lmbench.render.json_document import dumps
    document = api.report_json(run_dir, out)
    click.echo(dumps(document))
    return Path(document["files"][0])


ECHO_LIMIT = 200  # characters of an input value (quoted, or a path) an error line repeats


def _cut_echoes(message: str) -> str:
    """The error message with every quoted value, and every unbroken run of characters (a path), longer than
    ECHO_LIMIT cut to it: a 100,000-character option value or path is not echoed whole."""
    message = re.sub(r"'([^'\n]{%d})[^'\n]+'" % ECHO_LIMIT, lambda m: f"'{m.group(1)}…'", message)
    return re.sub(r"([^\s']{%d})[^\s']+" % ECHO_LIMIT, lambda m: f"{m.group(1)}…", message)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="lmbench", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Interrupted as e:
        print(f"lmbench: {e}", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as e:
        print(f"lmbench: error: {_cut_echoes(e.format_message())}", file=sys.stderr)
        sys.exit(2)
    except LmbenchError as e:
        print(f"lmbench: error: {_cut_echoes(str(e))}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a path lmbench could not read or write that no command caught: name it and the problem
        where = e.filename or "a file"
        print(f"lmbench: error: {_cut_echoes(f'{where}: {os_problem(e)}')}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("lmbench: interrupted", file=sys.stderr)
        sys.exit(130)
