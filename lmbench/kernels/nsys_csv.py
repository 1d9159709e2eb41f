"""Read `nsys stats --format csv` output into DataFrames, and attribute kernels to lmbench's ranges.

`nsys stats --output PREFIX --report R ...` writes one `PREFIX_R.csv` per report. Column names are
normalised to snake case without units ("Total Time (ns)" -> total_time; all times stay in ns).

Why lmbench attributes kernels itself: NVTX ranges belong to the thread that pushed them, and
nsys's own grouping (`nvtx_kern_sum`) counts a kernel only under ranges of the thread that launched
it. PyTorch's autograd engine launches backward kernels from its own worker thread, so nsys leaves
nearly all backward kernels outside the `backward` range. lmbench joins each GPU activity to the CUDA
API call that launched it (by correlation id) and places it by launch time (kernels/attribution.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lmbench.kernels.attribution import STEP_RANGE, attribute_to_ranges, main_thread
from lmbench.config import PHASES, RANGE_DOMAIN
from lmbench.errors import LmbenchError

# Summaries for the report tables, then the traces the per-phase attribution is built from.
SUMMARY_REPORTS = ("cuda_gpu_kern_sum", "nvtx_sum", "cuda_api_sum", "nvtx_kern_sum")
TRACE_REPORTS = ("cuda_gpu_trace", "cuda_api_trace", "nvtx_pushpop_trace")
REPORTS = SUMMARY_REPORTS + TRACE_REPORTS
STATS_PREFIX = "stats"  # a capture directory holds stats_<report>.csv
# One rank's capture of a data-parallel job is named '<the job's capture name>.rank<global rank>' (profilers/nsys.py).
RANK_CAPTURE = re.compile(r"^(?P<name>.+)\.rank(?P<rank>\d+)$")
# The columns (snake case) that the kernel report reads from each report: a CSV without them is damaged or foreign.
REQUIRED_COLUMNS = {
    "cuda_gpu_trace": ("start", "duration", "corrid", "name"),
    "cuda_api_trace": ("start", "corrid"),
    "nvtx_pushpop_trace": ("start", "end", "name", "tid", "lvl"),
    "nvtx_kern_sum": ("nvtx_range", "total_time"),
    "cuda_api_sum": ("name", "num_calls", "total_time", "avg"),
    "nvtx_sum": ("range", "instances", "avg", "med"),
}


def snake(column: str) -> str:
    """'Total Time (ns)' -> 'total_time'; 'Time (%)' -> 'time_pct'; 'CorrID' -> 'corrid'."""
    text = column.replace("(%)", "pct")
    text = re.sub(r"\((?:ns|us|ms|MB|MBps)\)", "", text)
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def rank_capture_name(name: str, rank: int | str) -> str:
    """One rank's capture name; `rank` may be nsys's '%q{RANK}', which nsys expands to the rank's RANK variable."""
    return f"{name}.rank{rank}"


def split_rank(capture_name: str) -> tuple[str, int | None]:
    """(the job's capture name, the rank) of one rank's capture; (the name, None) of any other capture."""
    match = RANK_CAPTURE.match(capture_name)
    return (match["name"], int(match["rank"])) if match else (capture_name, None)


def report_path(prefix: Path, report: str) -> Path:
    return Path(f"{prefix}_{report}.csv")


def read_report(path: Path) -> pd.DataFrame:
    """One `nsys stats` CSV with snake-case columns. An empty report (nsys writes no rows, or only a
    notice, when there was nothing to summarise) reads as an empty DataFrame."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise LmbenchError(f"missing nsys stats output {path}") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as e:  # pandas names the line: "Expected 9 fields in line 4, saw 10"
        raise LmbenchError(f"{path} is not a readable nsys stats CSV: {str(e).strip().splitlines()[-1]}") from None
    except UnicodeDecodeError:
        raw = path.read_bytes()  # pandas' offset is into its read buffer, not the file: find the byte again
        try:
            raw.decode()
            line = 1
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
        raise LmbenchError(f"{path} is not a readable nsys stats CSV: line {line} is not UTF-8 text") from None
    return frame.rename(columns=snake)


TEXT_COLUMNS = ("name", "range", "nvtx_range")  # every other required column holds numbers


def check_report(path: Path, frame: pd.DataFrame, report: str) -> None:
    """Refuse a report that lacks a column the kernel report reads or holds text where it reads numbers, naming
    the file and, for a value, its line (the header is line 1)."""
    if frame.empty:
        return
    required = REQUIRED_COLUMNS.get(report, ())
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LmbenchError(f"{path} lacks the column(s) {', '.join(missing)} (damaged, or written by another nsys "
                           f"version)")
    for column in (c for c in required if c not in TEXT_COLUMNS):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise LmbenchError(f"{path} line {row + 2}: {column} holds {values.iloc[row]!r}, not a number (damaged, "
                               f"or written by another nsys version)")
        frame[column] = pd.to_numeric(values)


def read_stats(prefix: Path, reports: tuple[str, ...] = REPORTS) -> dict[str, pd.DataFrame]:
    """Every report of one capture, by report name."""
    missing = [str(report_path(prefix, r)) for r in reports if not report_path(prefix, r).exists()]
    if missing:
        raise LmbenchError(f"missing nsys stats output: {', '.join(missing)}")
    stats = {}
    for report in reports:
        stats[report] = read_report(report_path(prefix, report))
        check_report(report_path(prefix, report), stats[report], report)
    return stats


def lmbench_ranges(pushpop: pd.DataFrame) -> pd.DataFrame:
    """lmbench's push/pop ranges on the thread that ran the steps: name (domain prefix removed), start,
    end, level (0 = the step), tid. Ranges of other domains (emit_nvtx's op ranges) are dropped."""
    if pushpop.empty:
        raise LmbenchError("the capture holds no NVTX ranges; was the run annotated (--annotate phases)?")
    mine = pushpop[pushpop["name"].astype(str).str.startswith(RANGE_DOMAIN + ":")].copy()
    mine["name"] = mine["name"].str.slice(len(RANGE_DOMAIN) + 1)
    mine = main_thread(mine)
    if mine.empty:
        raise LmbenchError("the capture holds no measured-step ranges (measured_k); was it captured with "
                           "--capture-range=cudaProfilerApi around an annotated lmbench run?")
    steps = mine[mine["name"].str.match(STEP_RANGE.pattern)]
    # Levels relative to the step ranges, so ranges a caller opened around the run do not shift them.
    mine["level"] = mine["lvl"] - steps["lvl"].min()
    return mine.loc[mine["level"] >= 0, ["name", "start", "end", "level", "tid"]].reset_index(drop=True)


def kernel_frame(stats: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The kernel frame (see kernels/frame.py) of the measured steps: each GPU activity of
    cuda_gpu_trace, placed by its launch call's time (cuda_api_trace) in the lmbench ranges."""
    gpu, api = stats["cuda_gpu_trace"], stats["cuda_api_trace"]
    ranges = lmbench_ranges(stats["nvtx_pushpop_trace"])
    if gpu.empty:
        return attribute_to_ranges(pd.DataFrame(), ranges)
    launches = api[["corrid", "start"]].rename(columns={"start": "launch"})
    activities = gpu.merge(launches, on="corrid", how="inner")[["name", "start", "duration", "launch"]]
    return attribute_to_ranges(activities, ranges)


def nsys_range_kernel_ms(nvtx_kern_sum: pd.DataFrame, steps: int) -> dict[str, float]:
    """Kernel ms per step that nsys's own thread-based grouping puts under each phase range."""
    if nvtx_kern_sum.empty:
        return {}
    rows = nvtx_kern_sum[nvtx_kern_sum["nvtx_range"].isin([f"{RANGE_DOMAIN}:{p}" for p in PHASES])]
    totals = rows.groupby("nvtx_range")["total_time"].sum()
    return {name.split(":", 1)[1]: value / steps / 1e6 for name, value in totals.items()}


def api_summary(cuda_api_sum: pd.DataFrame, steps: int, n: int = 8) -> pd.DataFrame:
    """The CUDA API calls with most host time: calls and ms per measured step, mean µs per call."""
    if cuda_api_sum.empty:
        return pd.DataFrame(columns=["api", "calls_per_step", "ms_per_step", "mean_us"])
    top = cuda_api_sum.sort_values("total_time", ascending=False).head(n)
    return pd.DataFrame({
        "api": top["name"].to_numpy(),
        "calls_per_step": top["num_calls"].to_numpy() / steps,
        "ms_per_step": top["total_time"].to_numpy() / steps / 1e6,
        "mean_us": top["avg"].to_numpy() / 1e3,
    })


def range_summary(nvtx_sum: pd.DataFrame) -> pd.DataFrame:
    """Host-side duration of lmbench's phase ranges (what the CPU spent inside each), in ms."""
    if nvtx_sum.empty:
        return pd.DataFrame(columns=["range", "instances", "mean_ms", "median_ms"])
    rows = nvtx_sum[nvtx_sum["range"].isin([f"{RANGE_DOMAIN}:{p}" for p in PHASES])]
    rows = rows.assign(order=rows["range"].map({f"{RANGE_DOMAIN}:{p}": i for i, p in enumerate(PHASES)}))
    rows = rows.sort_values("order")
    return pd.DataFrame({
        "range": rows["range"].str.split(":", n=1).str[1].to_numpy(),
        "instances": rows["instances"].to_numpy(),
        "mean_ms": rows["avg"].to_numpy() / 1e6,
        "median_ms": rows["med"].to_numpy() / 1e6,
    })
