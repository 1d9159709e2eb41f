"""The one kernel report, whatever captured the kernels: tables from a kernel frame, Markdown and CSV.

A source (the KernelSource protocol: `NsysStats` for an Nsight Systems capture's `nsys stats` CSVs,
`TorchTrace` for a torch.profiler trace) turns its files into a kernel frame (kernels/frame.py) plus tables
and sections of its own; the sections every source shares (phases against lmbench's timings, launch-bound
verdict, categories, top kernels, attention parts) are computed and rendered here, once. A torch.profiler trace
without GPU activity (a CPU run) is a `CpuTrace` instead: its report is the CPU operators' (kernels/cpu_ops.py,
kernels/cpu_report.py), written to the same files. Numbers are per measured step. Each capture directory also
feeds a per-run summary with one row per phase of every capture. Inputs are files only, so `lmbench kernels DIR`
re-renders a capture later or on another machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from lmbench.analysis.findings import variance
from lmbench.kernels import communication, cpu_ops, nsys_csv, torch_trace, weak_scaling
from lmbench.kernels.attention_backend import attention_backends, backend_lines
from lmbench.kernels.context import context_lines
from lmbench.kernels.cpu_report import PHASE_TITLES as CPU_PHASE_TITLES, render_cpu
from lmbench.kernels.ncu_csv import RAW_FILE as NCU_RAW_FILE
from lmbench.kernels.ncu_report import NcuCapture
from lmbench.kernels.frame import (attention_parts, category_table, exposed_by_phase, launch_bound, phase_table,
                                   step_table, top_kernels, verdict_line)
from lmbench.analysis.groups import capture_files, capture_name
from lmbench.config import PHASES
from lmbench.errors import LmbenchError
from lmbench.render.markdown import finding_line, table as markdown_table, titled_table
from lmbench.results.ranks import one_gpu_of
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore, atomic_write

REPORT_FILE = "kernels.md"
PHASE_TITLES = {"phase": "Phase", "lmbench_ms": "lmbench (ms)", "kernel_ms": "Kernel sum (ms)",
                "kernel_vs_lmbench_pct": "Kernel / lmbench (%)", "span_ms": "GPU span (ms)",
                "span_vs_lmbench_pct": "Span / lmbench (%)", "busy_pct": "Busy in span (%)",
                "kernels_per_step": "Kernels", "gemm_pct": "GEMM share (%)"}
# The run summary: the phases table of every capture, without the kernel count.
SUMMARY_TITLES = {"capture": "Capture", **{k: v for k, v in PHASE_TITLES.items() if k != "kernels_per_step"}}
SUMMARY_COLUMNS = tuple(SUMMARY_TITLES)
# A CPU capture's phases (kernels/cpu_ops.phase_table) add their own columns to the summary.
CPU_SUMMARY_TITLES = {k: CPU_PHASE_TITLES[k] for k in ("range_ms", "range_vs_lmbench_pct", "op_self_ms", "in_ops_pct")}


class KernelSource(Protocol):
    """One kind of capture: what it captured, its tables (for GPU captures the shared ones from its kernel frame,
    through frame_tables, plus its own) and its Markdown report (the shared sections and those only it can give)."""

    captured: str

    def tables(self, record: Record | None) -> dict[str, pd.DataFrame]: ...

    def markdown(self, title: str, record: Record | None, tables: dict[str, pd.DataFrame]) -> str: ...


def write_kernel_report(capture_dir: Path, record: Record | None = None, out_dir: Path | None = None) -> Path:
    """Write the capture's kernels.md and kernels_<table>.csv and refresh the run summary; with `out_dir`, write
    them there instead and leave the capture as it is. The source is the directory's `nsys stats` CSVs or,
    failing those, its newest torch.profiler trace (a CPU report when it holds no GPU activity); `record` is the
    run's record when the caller holds it, otherwise it is looked up in the run's results."""
    if not capture_dir.is_dir():
        raise LmbenchError(f"no capture directory at {capture_dir}")
    source = _source(capture_dir)
    record = record or find_record(capture_dir)
    tables = source.tables(record)
    markdown = source.markdown(capture_dir.name, record, tables)
    if out_dir is None:
        path = write_report_files(capture_dir, tables, markdown)
        if any(capture_dir.parent.glob("*/kernels_phases.csv")):  # an ncu capture has no phases to summarise
            write_run_summary(capture_dir.parent)
        return path
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LmbenchError(f"cannot write the kernel report to {out_dir}: {e.strerror or e}") from None
    return write_report_files(Path(out_dir), tables, markdown)


def _source(capture_dir: Path) -> KernelSource:
    if (capture_dir / NCU_RAW_FILE).is_file():
        return NcuCapture(capture_dir)
    has_stats = any(capture_dir.glob(f"{nsys_csv.STATS_PREFIX}_*.csv"))
    traces = torch_trace.trace_files(capture_dir)
    if has_stats or not traces:
        return NsysStats(capture_dir)
    first, *others = torch_trace.newest_per_rank(traces)  # a distributed run: the lowest rank's, then the others'
    trace = torch_trace.read_trace(first)  # read once: whether it saw a GPU decides the report
    if trace.gpu.empty:
        return CpuTrace(trace)
    return TorchTrace(trace, [torch_trace.read_trace(path) for path in others])


@dataclass
class NsysStats:
    """An Nsight Systems capture: beyond the shared sections, the host side (CUDA API calls, host time inside the
    phase ranges) and nsys's own thread-based grouping beside lmbench's launch-time attribution."""

    capture_dir: Path

    @property
    def rank(self) -> int | None:
        """The rank whose capture this is, for one rank's capture of a data-parallel job."""
        return nsys_csv.split_rank(self.capture_dir.name)[1]

    @property
    def captured(self) -> str:
        steps = "the measured steps" if self.rank is None else f"rank {self.rank}'s measured steps (lmbench's timings its own)"
        return f"{steps} captured through the cudaProfilerApi range, warm-up outside it"

    def tables(self, record: Record | None) -> dict[str, pd.DataFrame]:
        stats = nsys_csv.read_stats(self.capture_dir / nsys_csv.STATS_PREFIX)  # checked: columns, numbers
        kernels = nsys_csv.kernel_frame(stats)
        tables = frame_tables(kernels, _rank_view(record, self.rank), self.capture_dir)
        steps = int(kernels["step"].nunique())
        phases = tables["phases"]
        phases["nsys_thread_kernel_ms"] = phases["phase"].map(nsys_csv.nsys_range_kernel_ms(stats["nvtx_kern_sum"],
                                                                                            steps))
        tables["api"] = nsys_csv.api_summary(stats["cuda_api_sum"], steps)
        tables["ranges"] = nsys_csv.range_summary(stats["nvtx_sum"])
        comm = communication.nsys_summary(stats, nsys_csv.lmbench_ranges(stats["nvtx_pushpop_trace"]), self.rank,
                                          record)
        communication.report_tables(tables, comm, record, self.capture_dir.parent)
        return tables

    def markdown(self, title: str, record: Record | None, tables: dict[str, pd.DataFrame]) -> str:
        return render(title, record, tables, self.captured, self.lines(tables))

    def lines(self, tables: dict[str, pd.DataFrame]) -> list[str]:
        lines = ["## Host side", "", "CUDA API calls with the most host time, per measured step:", "",
                 titled_table(tables["api"], {"api": "API", "calls_per_step": "Calls/step", "ms_per_step": "ms/step",
                                    "mean_us": "Mean (µs)"}), "",
                 "Host time inside lmbench's phase ranges (NVTX, CPU side):", "",
                 titled_table(tables["ranges"], {"range": "Range", "instances": "Instances", "mean_ms": "Mean (ms)",
                                       "median_ms": "Median (ms)"}), ""] + communication.report_lines(tables)
        phases = tables["phases"]
        if "backward" not in set(phases["phase"]) or phases["nsys_thread_kernel_ms"].isna().all():
            return lines
        row = phases.set_index("phase").loc["backward"]
        return lines + [
            f"nsys's own grouping (`nvtx_kern_sum`, by launching thread) puts {row['nsys_thread_kernel_ms']:.2f} ms "
            f"of kernels per step under `backward`, against {row['kernel_ms']:.2f} ms attributed by launch time: "
            "autograd launches backward kernels from its worker thread, outside the main thread's range.", ""]


@dataclass
class TorchTrace:
    """A torch.profiler trace with GPU activity (the newest the TensorBoard handler wrote): kernels are placed in
    lmbench's ranges by launch time exactly as for Nsight Systems, so both reports' tables compare line by line;
    plus operators."""

    trace: torch_trace.Trace
    others: list[torch_trace.Trace] = field(default_factory=list)  # the other ranks' traces of a distributed run

    @property
    def captured(self) -> str:
        return f"the steps torch.profiler's schedule marked active, traced from {self.trace.path.name}"

    def tables(self, record: Record | None) -> dict[str, pd.DataFrame]:
        ranges = torch_trace.lmbench_ranges(self.trace)  # the nesting pass is the slow part of a detail trace: once
        tables = frame_tables(torch_trace.kernel_frame(self.trace, ranges), record, self.trace.path)
        tables["operators"] = torch_trace.top_operators(self.trace, ranges=ranges)
        communication.report_tables(tables, communication.trace_summary([self.trace, *self.others]), record,
                                    self.trace.path.parent.parent)
        return tables

    def markdown(self, title: str, record: Record | None, tables: dict[str, pd.DataFrame]) -> str:
        return render(title, record, tables, self.captured, self.lines(tables))

    def lines(self, tables: dict[str, pd.DataFrame]) -> list[str]:
        return ["## Top operators by self device time (per traced step)", "",
                "The GPU time of the kernels each operator launched itself (not through a child operator).", "",
                titled_table(tables["operators"], {"operator": "Operator", "kernels_per_step": "Kernels/step",
                                         "device_ms_per_step": "Device ms/step", "share_pct": "Share (%)"}), ""
                ] + communication.report_lines(tables)


@dataclass
class CpuTrace:
    """A torch.profiler trace without GPU activity, a CPU run: per phase the operators with the most self CPU time,
    the phases' ranges against lmbench's timings, and the traced steps with the slow-step analysis."""

    trace: torch_trace.Trace

    @property
    def captured(self) -> str:
        return f"the steps torch.profiler's schedule marked active, traced from {self.trace.path.name} (CPU operators)"

    def tables(self, record: Record | None) -> dict[str, pd.DataFrame]:
        ranges = torch_trace.lmbench_ranges(self.trace)
        ops = cpu_ops.operator_frame(self.trace.ops, ranges)
        if ops.empty:
            raise LmbenchError(f"{self.trace.path} holds neither GPU activity nor CPU operators inside lmbench's "
                               "measured phases (their ranges come with --annotate phases or detail)")
        spans = cpu_ops.range_spans(ranges)
        phases = cpu_ops.phase_table(ops, spans)
        phases["lmbench_ms"] = phases["phase"].map(_lmbench_means(record, sorted(spans["step"].unique())) if record
                                                   else {})
        phases["range_vs_lmbench_pct"] = 100 * phases["range_ms"] / phases["lmbench_ms"]
        top = pd.concat([cpu_ops.top_operators(ops, spans, n=15).assign(phase="step")]
                        + [cpu_ops.top_operators(ops, spans, p).assign(phase=p) for p in phases["phase"]],
                        ignore_index=True)
        steps = _steps_with_lmbench(cpu_ops.step_table(ops, spans), record)
        return {"phases": phases, "top": top, "steps": steps, "slowest": cpu_ops.slowest_step_operators(ops, steps)}

    def markdown(self, title: str, record: Record | None, tables: dict[str, pd.DataFrame]) -> str:
        return render_cpu(title, context_lines(record, self.captured), tables)


def find_record(capture_dir: Path, records: list[Record] | None = None) -> Record | None:
    """The latest lmbench record in the trace run directory (`records`, when already read) whose configuration gave
    this capture's name (or job's)."""
    name, rank = nsys_csv.split_rank(capture_dir.name)
    matches = [r for r in (ResultsStore(capture_dir.parent).latest() if records is None else records)
               if capture_name(r.config, r.world_size) == name and (rank is None or r.world_size > rank)]
    return matches[-1] if matches else None


def _rank_view(record: Record | None, rank: int | None) -> Record | None:
    """The job's record with `rank`'s own samples in place of the job's (each step the slowest rank's)."""
    own = [s for s in record.rank_samples if s["rank"] == rank] if record and rank is not None else []
    return Record({**record.data, "samples": own}) if record and own else record


def frame_tables(kernels: pd.DataFrame, record: Record | None, where: Path) -> dict[str, pd.DataFrame]:
    """The shared tables of a kernel frame, joined with the lmbench record's timings when there is one."""
    if kernels.empty:
        raise LmbenchError(f"{where} holds no GPU activity inside lmbench's measured phases")
    phases = phase_table(kernels)
    categories = category_table(kernels)
    lmbench_ms = _lmbench_means(record, sorted(kernels["step"].unique())) if record else {}
    gemm = categories.set_index("category")
    phases["lmbench_ms"] = phases["phase"].map(lmbench_ms)
    phases["kernel_vs_lmbench_pct"] = 100 * phases["kernel_ms"] / phases["lmbench_ms"]
    phases["span_vs_lmbench_pct"] = 100 * phases["span_ms"] / phases["lmbench_ms"]
    phases["gemm_pct"] = [gemm.at["gemm", f"{p}_pct"] if "gemm" in gemm.index else 0.0 for p in phases["phase"]]
    top = pd.concat([top_kernels(kernels, n=15).assign(phase="step")]
                    + [top_kernels(kernels, p, n=10).assign(phase=p) for p in phases["phase"]], ignore_index=True)
    tables = {"phases": phases, "categories": categories, "top": top,
              "steps": _steps_with_lmbench(step_table(kernels), record)}
    if record:
        config = record.config
        tables["attention"] = attention_parts(kernels, config.model_config(), config.batch, config.ctx)
        if config.attention == "sdpa":
            tables["attention_backend"] = attention_backends(kernels)
    return tables


def _steps_with_lmbench(steps: pd.DataFrame, record: Record | None) -> pd.DataFrame:
    """A per-step table (frame.step_table, cpu_ops.step_table) joined with lmbench's timed total of the same
    measured step."""
    if record:
        totals = record.totals()
        steps["lmbench_ms"] = [totals[i] if i < len(totals) else float("nan") for i in steps["step"]]
    return steps


def slow_step_lines(steps: pd.DataFrame) -> list[str]:
    found = variance.slow_steps_in_trace(steps)
    return [finding_line(found), ""] if found else []


def _lmbench_means(record: Record, steps: list[int]) -> dict[str, float]:
    """lmbench's mean phase times over the measured steps that the capture holds (a torch.profiler
    schedule may trace only some of them, and traced steps run slower than untraced ones)."""
    measured = record.measured
    chosen = [measured[i] for i in steps if i < len(measured)]
    return {p: sum(s[f"{p}_ms"] for s in chosen) / len(chosen)
            for p in PHASES if chosen and f"{p}_ms" in chosen[0]}


def render(title: str, record: Record | None, tables: dict[str, pd.DataFrame], captured: str,
           source_lines: list[str]) -> str:
    """The report: shared sections, then the source's own (`source_lines`); `captured` says how the
    measured steps were captured."""
    phases, categories = tables["phases"], tables["categories"]
    lines = [f"# Kernel report — {title}", "", *context_lines(record, captured), ""]
    lines += ["## Phases (per measured step)", "", titled_table(phases, PHASE_TITLES), ""]
    lines += [
        "*lmbench* is the phase's CUDA-event time from the same run (mean of the captured measured steps). *Kernel sum* "
        "adds the GPU time of every kernel and memory operation launched inside the phase's range; *GPU span* runs "
        "from the first one's start to the last one's end. Kernel sum well below lmbench means the GPU sat idle "
        "between kernels, waiting for the host to launch them.", ""]
    lines += [verdict_line(launch_bound(phases, exposed_by_phase(tables.get("communication")))), ""]
    lines += _matmul_lines(categories)
    lines += ["## GPU time by kernel category (ms per step, share of the phase)", "", _categorymd(categories), ""]
    for phase in ["step", *phases["phase"]]:
        top = tables["top"][tables["top"]["phase"] == phase]
        title = "whole step" if phase == "step" else phase
        lines += [f"## Top kernels — {title}", "", titled_table(top, {
            "kernel": "Kernel", "category": "Category", "calls_per_step": "Calls/step", "ms_per_step": "ms/step",
            "mean_us": "Mean (µs)", "share_pct": "Share (%)"}), ""]
    lines += _attention_lines(tables.get("attention"), record) + backend_lines(tables.get("attention_backend"), record)
    lines += ["## Captured steps", "", titled_table(tables["steps"], {
        "step": "Step", "lmbench_ms": "lmbench (ms)", "kernel_ms": "Kernel sum (ms)", "span_ms": "GPU span (ms)",
        "idle_ms": "GPU idle in span (ms)", "largest_gap_ms": "Longest gap (ms)"}), "", *slow_step_lines(tables["steps"])]
    lines += source_lines
    return "\n".join(lines)


def _matmul_lines(categories: pd.DataFrame) -> list[str]:
    row = categories.set_index("category")
    if "gemm" not in row.index or "forward_pct" not in row.columns:
        return []
    text = f"Matmul (GEMM) kernels take {row.at['gemm', 'forward_pct']:.1f}% of forward GPU time"
    if "backward_pct" in row.columns:
        text += f", {row.at['gemm', 'backward_pct']:.1f}% of backward"
    text += f" and {row.at['gemm', 'step_pct']:.1f}% of the whole step."
    return [text, ""]


def _attention_lines(parts: pd.DataFrame | None, record: Record | None) -> list[str]:
    lines = ["## Inside attention (forward)", ""]
    if parts is None or parts.empty:
        attention = record.config.attention if record else "unknown"
        return lines + [f"Not split: attention was `{attention}`. The softmax-against-matmul table needs "
                        "`--attention naive --annotate detail` (fused SDPA runs softmax inside one kernel).", ""]
    lines += [titled_table(parts, {"part": "Part", "ms_per_step": "ms/step", "gemm_ms_per_step": "GEMM kernels (ms/step)",
                          "time_pct": "Time (%)", "gflop": "GFLOP", "flop_pct": "FLOPs (%)"}), ""]
    p = parts.set_index("part")
    matmul_ms = p.at["scores", "gemm_ms_per_step"] + p.at["value", "gemm_ms_per_step"]
    matmul_flop = p.at["scores", "gflop"] + p.at["value", "gflop"]
    if matmul_ms > 0:
        lines += [f"Softmax takes {p.at['softmax', 'ms_per_step'] / matmul_ms:.2f}× the GPU time of the two attention "
                  f"matmuls (the GEMM kernels of QKᵀ and PV) for {p.at['softmax', 'gflop'] / matmul_flop:.3f}× their "
                  "FLOPs: it moves the whole T×T score matrix through memory for a few FLOPs per element.", ""]
    return lines


def _categorymd(categories: pd.DataFrame) -> str:
    phases = [c[: -len("_ms")] for c in categories.columns if c.endswith("_ms")]
    shown = pd.DataFrame({"Category": categories["category"]})
    for phase in phases:
        shown[phase.capitalize() if phase != "step" else "Whole step"] = [
            f"{ms:.3f} ({pct:.1f}%)" for ms, pct in zip(categories[f"{phase}_ms"], categories[f"{phase}_pct"])]
    return markdown_table(shown)


def write_report_files(directory: Path, tables: dict[str, pd.DataFrame], markdown: str) -> Path:
    """kernels.md and kernels_<table>.csv into `directory`."""
    for name, table in tables.items():
        atomic_write(directory / f"kernels_{name}.csv", table.to_csv(index=False).encode())
    path = directory / REPORT_FILE
    atomic_write(path, markdown.encode())
    return path


def run_summary(run_dir: Path) -> pd.DataFrame:
    """One row per phase of each capture in the run, read back from the captures' kernels_phases.csv."""
    frames = [pd.read_csv(p).assign(capture=p.parent.name)
              for p in capture_files(run_dir, "kernels_phases.csv")]
    if not frames:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    summary = pd.concat(frames, ignore_index=True)  # a GPU capture lacks the CPU columns and a CPU one the GPU's
    return summary[[c for c in (*SUMMARY_COLUMNS, *CPU_SUMMARY_TITLES) if c in summary.columns]]


def run_weak_scaling(run_dir: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Per job of several ranks in a run's Communication table (communication.run_table: a job's per-rank nsys
    captures together), its weak-scaling decomposition over all its ranks (the least exposed one splits the loss,
    where a per-rank report sees its own rank only), when the run directory holds the one-GPU record."""
    if table.empty:  # no job of several ranks: no need to read the results
        return pd.DataFrame()
    rows, records = [], ResultsStore(run_dir).latest()  # read once for every job's record and its one-GPU run
    jobs = table.assign(job=table["capture"].map(lambda c: nsys_csv.split_rank(c)[0]))
    for name, job in jobs.groupby("job", sort=False):
        record = find_record(run_dir / job["capture"].iloc[0], records)
        one_gpu = one_gpu_of(records, record) if record and job["rank"].nunique() > 1 else None
        if one_gpu:
            rows.append(weak_scaling.from_records(one_gpu, record, job).assign(capture=name))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def write_run_summary(run_dir: Path) -> Path:
    summary = run_summary(run_dir)
    table = communication.run_table(run_dir)  # a job's ranks side by side
    scaling = run_weak_scaling(run_dir, table)
    cpu = "op_self_ms" in summary
    text = "One row per phase of each capture in this directory (details in `<capture>/kernels.md`). "
    if "kernel_ms" in summary or not cpu:
        text += ("Kernel / lmbench compares the summed GPU time of the kernels launched in a phase with lmbench's "
                 "timed phase (CUDA events, same run); Span / lmbench compares the GPU span from the phase's first "
                 "kernel start to its last kernel end. Where the two differ the GPU sat idle inside the phase (Busy in "
                 "span).")
    if cpu:
        text += (" " if "kernel_ms" in summary else "") + (
            "For a CPU capture, Range / lmbench compares the phase's range in the trace with lmbench's timed phase "
            "(perf_counter, same run); In operators is the share of the range spent inside operators (their summed "
            "self CPU time), the rest went to Python and bookkeeping between them.")
    lines = [f"# Kernel summary — {run_dir.name}", "", text, "",
             titled_table(summary, {**SUMMARY_TITLES, **CPU_SUMMARY_TITLES}), "",
             *communication.run_lines(table), *(weak_scaling.lines(scaling) if not scaling.empty else [])]
    atomic_write(run_dir / REPORT_FILE, "\n".join(lines).encode())
    atomic_write(run_dir / "kernels_summary.csv", summary.to_csv(index=False).encode())
    return run_dir / REPORT_FILE

