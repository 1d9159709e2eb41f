"""Read torch.profiler Chrome traces (plain or gzip JSON) into DataFrames, streaming.

A trace is parsed event by event (ijson's C backend) and only what the analysis needs is kept, as
columns: GPU activities (kernels, memcpy, memset), the CUDA calls that launched them, lmbench's ranges
(user annotations) and CPU operators. Times are converted from the trace's microseconds to integer
nanoseconds, the unit of the kernel frame shared with the nsys path.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import ijson
import pandas as pd

from lmbench.kernels.attribution import LMBENCH_RANGE, attribute_to_ranges, main_thread, nesting_levels
from lmbench.errors import LmbenchError

GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")
# What torch.profiler writes about a collective (torch/csrc/profiler/util.h kCommsName ...), column: arg.
COMMS_ARGS = {"collective": "Collective name", "in_nelems": "In msg nelems", "out_nelems": "Out msg nelems",
              "dtype": "dtype", "group_size": "Group size"}


@dataclass
class Trace:
    """The parts of one trace the analysis uses; all times in ns."""

    path: Path
    gpu: pd.DataFrame  # name, start, duration, correlation, external_id, stream, device
    launches: pd.DataFrame  # name, start, correlation, tid
    ranges: pd.DataFrame  # name, start, end, tid (user annotations)
    ops: pd.DataFrame  # name, start, duration, tid, external_id (CPU operators)
    # Collective metadata (kernels/communication.py), from any CPU operator (record_param_comms) or kernel whose
    # args carry it: external_id, correlation and the args named in COMMS_ARGS.
    comms: pd.DataFrame | None = None


def _open(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_trace(path: Path) -> Trace:
    """Parse a Chrome trace; a missing, truncated or non-trace file is a one-line LmbenchError naming it.

    The loop is the hot path on a gigabyte trace: each kept field goes straight into its own list (no
    per-event dicts or calls), repeated names share one string, and unit conversion waits for numpy."""
    gpu: tuple[list, ...] = ([], [], [], [], [], [], [])  # name, ts, dur, correlation, external id, stream, device
    launches: tuple[list, ...] = ([], [], [], [])  # name, ts, correlation, tid
    ranges: tuple[list, ...] = ([], [], [], [])  # name, ts, dur, tid
    ops: tuple[list, ...] = ([], [], [], [], [])  # name, ts, dur, tid, external id
    comms: list[tuple] = []  # external id, correlation, then COMMS_ARGS' values
    names: dict[str, str] = {}
    try:
        with _open(path) as stream:
            for event in ijson.items(stream, "traceEvents.item", use_float=True):
                category = event.get("cat")
                if category is None or event.get("ph") != "X":
                    continue
                if category == "cpu_op":
                    table, extra = ops, ("tid", "External id")
                elif category in GPU_CATEGORIES:
                    table, extra = gpu, ("correlation", "External id", "stream", "device")
                elif category in LAUNCH_CATEGORIES:
                    table, extra = launches, ("correlation", "tid")
                elif category == "user_annotation":
                    table, extra = ranges, ("tid",)
                else:
                    continue
                name = event["name"]
                table[0].append(names.setdefault(name, name))
                table[1].append(event["ts"])
                if table is not launches:
                    table[2].append(event.get("dur", 0.0))
                args = event.get("args") or {}
                for column, key in zip(table[3 if table is not launches else 2:], extra):
                    column.append(event.get(key) if key == "tid" else args.get(key))
                if "Collective name" in args:  # NCCL's record_param_comms operator, or a kernel kineto annotated
                    comms.append((args.get("External id"), args.get("correlation"),
                                  *(args.get(key) for key in COMMS_ARGS.values())))
    except FileNotFoundError:
        raise LmbenchError(f"no trace file at {path}") from None
    except (ijson.JSONError, ijson.IncompleteJSONError, EOFError, OSError, KeyError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise LmbenchError(f"{path} is not a readable torch.profiler trace ({reason})") from None
    if not ranges[0] and not ops[0]:
        raise LmbenchError(f"{path} holds no profiler events (traceEvents is empty or missing)")
    gpu_frame = _frame(gpu, ("name", "start", "duration", "correlation", "external_id", "stream", "device"))
    range_frame = _frame(ranges, ("name", "start", "duration", "tid"))
    range_frame["end"] = range_frame["start"] + range_frame.pop("duration")
    return Trace(path, gpu_frame, _frame(launches, ("name", "start", "correlation", "tid")), range_frame,
                 _frame(ops, ("name", "start", "duration", "tid", "external_id")),
                 pd.DataFrame(comms, columns=["external_id", "correlation", *COMMS_ARGS]))


def _frame(columns: tuple[list, ...], names: tuple[str, ...]) -> pd.DataFrame:
    """Columns to a DataFrame; µs floats become integer ns (rounded, as the trace has ns resolution)."""
    frame = pd.DataFrame(dict(zip(names, columns)))
    for column in ("start", "duration"):
        if column in frame:
            frame[column] = (frame[column].to_numpy(dtype="float64") * 1000).round().astype("int64")
    return frame


def lmbench_ranges(trace: Trace) -> pd.DataFrame:
    """lmbench's ranges on the main thread with their nesting level (0 = the step): name, start, end,
    level, tid. Other user annotations (ProfilerStep#k, Optimizer.step#...) are left out."""
    ranges = trace.ranges
    if ranges.empty:
        return pd.DataFrame(columns=["name", "start", "end", "level", "tid"])
    mine = main_thread(ranges[ranges["name"].str.match(LMBENCH_RANGE.pattern)]).copy()
    if mine.empty:
        return pd.DataFrame(columns=["name", "start", "end", "level", "tid"])
    mine["level"] = nesting_levels(mine)
    step_level = mine.loc[mine["name"].str.startswith("measured_"), "level"].min()
    mine["level"] -= step_level
    return mine[mine["level"] >= 0][["name", "start", "end", "level", "tid"]].reset_index(drop=True)


def kernel_frame(trace: Trace, ranges: pd.DataFrame | None = None) -> pd.DataFrame:
    """The kernel frame (kernels/frame.py) of the traced measured steps; `ranges` is lmbench_ranges(trace)
    where the caller already has it."""
    ranges = lmbench_ranges(trace) if ranges is None else ranges
    if trace.gpu.empty:
        return attribute_to_ranges(pd.DataFrame(), ranges)
    launches = trace.launches[["correlation", "start"]].rename(columns={"start": "launch"})
    activities = trace.gpu.merge(launches, on="correlation", how="inner")
    return attribute_to_ranges(activities[["name", "start", "duration", "launch"]], ranges)


def top_operators(trace: Trace, n: int = 15, ranges: pd.DataFrame | None = None) -> pd.DataFrame:
    """CPU operators by self device time: the GPU time of the kernels each operator launched itself
    (a kernel's External id names the innermost operator around its launch), per traced step; `ranges`
    as for kernel_frame."""
    columns = ["operator", "kernels_per_step", "device_ms_per_step", "share_pct"]
    if trace.gpu.empty or trace.ops.empty:
        return pd.DataFrame(columns=columns)
    ranges = lmbench_ranges(trace) if ranges is None else ranges
    steps = max(int(ranges["name"].str.match(r"^measured_\d+$").sum()), 1)
    innermost = trace.ops.sort_values("duration").drop_duplicates("external_id")[["external_id", "name"]]
    joined = trace.gpu.merge(innermost.rename(columns={"name": "operator"}), on="external_id", how="inner")
    table = joined.groupby("operator")["duration"].agg(["count", "sum"]).sort_values("sum", ascending=False)
    total = trace.gpu["duration"].sum()
    top = table.head(n)
    return pd.DataFrame({
        "operator": top.index,
        "kernels_per_step": top["count"].to_numpy() / steps,
        "device_ms_per_step": top["sum"].to_numpy() / steps / 1e6,
        "share_pct": 100 * top["sum"].to_numpy() / total,
    })


TRACE_GLOB = "*.pt.trace.json*"  # what torch.profiler's TensorBoard trace handler writes


def trace_files(directory: Path) -> list[Path]:
    """The Chrome trace files the trace handler wrote into `directory`, oldest first."""
    return sorted(directory.glob(TRACE_GLOB), key=lambda p: p.stat().st_mtime)


def trace_rank(path: Path) -> int | None:
    """The rank that wrote a trace (its `distributedInfo.rank`), read from the header before `traceEvents`, where
    torch.profiler writes it; None when the header has none or the file is not a readable trace."""
    try:
        with _open(path) as stream:
            for prefix, event, value in ijson.parse(stream):
                if prefix == "distributedInfo.rank" and event == "number":
                    return int(value)
                if prefix == "traceEvents":  # the header is over
                    return None
    except (ijson.JSONError, ijson.IncompleteJSONError, EOFError, OSError):
        return None
    return None


def newest_per_rank(files: list[Path]) -> list[Path]:
    """Of trace files (oldest first), the newest of each rank, in rank order, when they carry two ranks or more;
    otherwise the newest file alone (a one-process capture, whatever its schedule wrote)."""
    if len(files) < 2:
        return files[-1:]
    newest: dict[int | None, Path] = {trace_rank(f): f for f in files}  # later files replace earlier ones
    ranks = sorted(r for r in newest if r is not None)
    return [newest[r] for r in ranks] if len(ranks) > 1 else files[-1:]
