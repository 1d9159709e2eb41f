"""The kernel report of an Nsight Systems capture: `nsys stats` CSVs in, kernel_report's sections out.

Beyond the shared sections, an nsys report shows the host side (CUDA API calls, host time inside the
phase ranges) and nsys's own thread-based grouping beside lmbench's launch-time attribution. Inputs are
files only, so `lmbench kernels DIR` re-renders a capture later or on another machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.nsys_stats import (STATS_PREFIX, api_summary, kernel_frame, nsys_range_kernel_ms, range_summary,
                                         read_stats)
from lmbench.kernel_report import find_record, frame_tables, md, render, write_report_files

CAPTURED = "the measured steps captured through the cudaProfilerApi range, warm-up outside it"


def kernel_tables(capture_dir: Path, record: dict[str, Any] | None) -> dict[str, pd.DataFrame]:
    """Every table of the report, computed from the capture's stats CSVs (and the record's timings)."""
    stats = read_stats(capture_dir / STATS_PREFIX)
    kernels = kernel_frame(stats)
    tables = frame_tables(kernels, record, capture_dir)
    steps = int(kernels["step"].nunique())
    phases = tables["phases"]
    phases["nsys_thread_kernel_ms"] = phases["phase"].map(nsys_range_kernel_ms(stats["nvtx_kern_sum"], steps))
    tables["api"] = api_summary(stats["cuda_api_sum"], steps)
    tables["ranges"] = range_summary(stats["nvtx_sum"])
    return tables


def host_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    lines = ["## Host side", "", "CUDA API calls with the most host time, per measured step:", "",
             md(tables["api"], {"api": "API", "calls_per_step": "Calls/step", "ms_per_step": "ms/step",
                                "mean_us": "Mean (µs)"}), "",
             "Host time inside lmbench's phase ranges (NVTX, CPU side):", "",
             md(tables["ranges"], {"range": "Range", "instances": "Instances", "mean_ms": "Mean (ms)",
                                   "median_ms": "Median (ms)"}), ""]
    return lines + _thread_lines(tables["phases"])


def _thread_lines(phases: pd.DataFrame) -> list[str]:
    if "backward" not in set(phases["phase"]) or phases["nsys_thread_kernel_ms"].isna().all():
        return []
    row = phases.set_index("phase").loc["backward"]
    return [f"nsys's own grouping (`nvtx_kern_sum`, by launching thread) puts {row['nsys_thread_kernel_ms']:.2f} ms "
            f"of kernels per step under `backward`, against {row['kernel_ms']:.2f} ms attributed by launch time: "
            "autograd launches backward kernels from its worker thread, outside the main thread's range.", ""]



def write_kernel_report(capture_dir: Path) -> Path:
    """Write the capture's kernels.md and kernels_<table>.csv, then refresh the run summary."""
    record = find_record(capture_dir)
    tables = kernel_tables(capture_dir, record)
    markdown = render(capture_dir.name, record, tables, CAPTURED, host_lines(tables))
    return write_report_files(capture_dir, tables, markdown)
