"""The kernel report of a torch.profiler trace: the shared sections of kernel_report, plus operators.

The trace is the newest `*.pt.trace.json[.gz]` the TensorBoard trace handler wrote into the capture
directory; kernels are placed in lmbench's ranges by launch time exactly as for Nsight Systems
(analysis/attribution.py), so both reports' tables compare line by line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.trace import kernel_frame, lmbench_ranges, read_trace, top_operators
from lmbench.errors import LmbenchError
from lmbench.kernel_report import find_record, frame_tables, md, render, write_report_files
from lmbench.profile import trace_files

CAPTURED = "the steps torch.profiler's schedule marked active, traced from {trace}"


def newest_trace(capture_dir: Path) -> Path:
    files = trace_files(capture_dir)
    if not files:
        raise LmbenchError(f"no torch.profiler trace (*.pt.trace.json[.gz]) in {capture_dir}")
    return files[-1]


def trace_tables(trace_path: Path, record: dict[str, Any] | None) -> dict[str, pd.DataFrame]:
    trace = read_trace(trace_path)
    ranges = lmbench_ranges(trace)  # the nesting pass is the slow part of reading a detail trace: once
    tables = frame_tables(kernel_frame(trace, ranges), record, trace_path)
    tables["operators"] = top_operators(trace, ranges=ranges)
    return tables


def operator_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    return ["## Top operators by self device time (per traced step)", "",
            "The GPU time of the kernels each operator launched itself (not through a child operator).", "",
            md(tables["operators"], {"operator": "Operator", "kernels_per_step": "Kernels/step",
                                     "device_ms_per_step": "Device ms/step", "share_pct": "Share (%)"}), ""]


def write_trace_report(capture_dir: Path, record: dict[str, Any] | None = None) -> Path:
    """Write the capture's kernels.md and kernels_<table>.csv from its newest trace; refresh the run summary.
    `record` is the run's record when the caller holds it; otherwise it is looked up in the run's results."""
    trace_path = newest_trace(capture_dir)
    record = record or find_record(capture_dir)
    tables = trace_tables(trace_path, record)
    markdown = render(capture_dir.name, record, tables, CAPTURED.format(trace=trace_path.name), operator_lines(tables))
    return write_report_files(capture_dir, tables, markdown)
