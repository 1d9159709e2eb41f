"""The kernel report of an Nsight Compute capture (`lmbench ncu`): per kernel, what the hardware counters say.

A capture directory holds `ncu_raw.csv` (the raw page, kernels/ncu_csv.py) and `ncu.json` (the phase it profiled,
the configuration's key and the ncu command), beside the run's results.jsonl one level up. Its report is one row
per launch configuration (kernel name, grid and block; the means over its profiled launches): duration, SM and
memory throughput and achieved occupancy as % of peak, FLOP/s with the tensor cores' share, DRAM bandwidth,
arithmetic intensity against the ridge point, the roofline bound and how much of the roofline the kernel reaches;
then the same by lmbench's kernel categories. Written as kernels.md and kernels_ncu*.csv, like the other kernel
reports (kernels/report.py), so `lmbench kernels DIR` re-renders it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lmbench.errors import LmbenchError
from lmbench.kernels import ncu_csv
from lmbench.kernels.context import context_lines
from lmbench.render.markdown import titled_table
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

META_FILE = "ncu.json"  # what `lmbench ncu` profiled: {"phase", "key", "kernels", "sections", "command"}
KERNEL_TITLES = {"kernel": "Kernel", "category": "Category", "launches": "Launches", "duration_us": "Mean (µs)",
                 "share_pct": "Share (%)", "sm_pct": "SM (%)", "memory_pct": "Memory (%)",
                 "occupancy_pct": "Occupancy (%)", "tflop_per_s": "TFLOP/s", "tensor_pct": "Tensor (%)",
                 "dram_gb_per_s": "DRAM (GB/s)", "intensity": "FLOP/byte", "ridge": "Ridge", "bound": "Bound",
                 "roof_pct": "Of roof (%)"}
CATEGORY_TITLES = {"category": "Category", "launches": "Launches", "duration_us": "Time (µs)", "share_pct": "Share (%)",
                   "sm_pct": "SM (%)", "memory_pct": "Memory (%)", "occupancy_pct": "Occupancy (%)",
                   "compute_bound": "Compute-bound", "memory_bound": "Memory-bound"}
_MEANS = ("duration_us", "sm_pct", "memory_pct", "occupancy_pct", "flop_per_s", "tensor_flop_per_s",
          "dram_bytes_per_s", "intensity", "ridge", "roof_pct")


def read_meta(capture_dir: Path) -> dict:
    """The capture's ncu.json, {} when there is none (a raw page exported by hand)."""
    path = capture_dir / META_FILE
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LmbenchError(f"cannot read {path}: {e}") from None
    if not isinstance(meta, dict):
        raise LmbenchError(f"{path} is not a JSON object")
    return meta


def configurations(launches: pd.DataFrame) -> pd.DataFrame:
    """One row per launch configuration (name, grid, block), by total profiled time: launches, means of the launch
    metrics, the share of all profiled time, the bound of most of its time."""
    keys = ["name", "grid", "block"]
    grouped = launches.groupby(keys, sort=False)
    table = grouped[list(_MEANS)].mean()
    table["launches"] = grouped.size()
    table["total_us"] = grouped["duration_us"].sum()
    table["bound"] = grouped.apply(lambda g: g.groupby("bound")["duration_us"].sum().idxmax(), include_groups=False)
    for column in ("kernel", "category", "phase"):
        table[column] = grouped[column].first()
    table = table.reset_index().sort_values("total_us", ascending=False, kind="stable").reset_index(drop=True)
    table["share_pct"] = 100 * table["total_us"] / launches["duration_us"].sum()
    table["tflop_per_s"] = table["flop_per_s"] / 1e12
    table["tensor_pct"] = 100 * table["tensor_flop_per_s"] / table["flop_per_s"].where(table["flop_per_s"] > 0)
    table["dram_gb_per_s"] = table["dram_bytes_per_s"] / 1e9
    return table


def category_table(launches: pd.DataFrame) -> pd.DataFrame:
    """Per lmbench kernel category: launches, profiled time and its share, mean throughputs, launches per bound."""
    grouped = launches.groupby("category", sort=False)
    table = grouped[["sm_pct", "memory_pct", "occupancy_pct"]].mean()
    table["launches"] = grouped.size()
    table["duration_us"] = grouped["duration_us"].sum()
    for bound in ("compute", "memory"):
        table[f"{bound}_bound"] = grouped["bound"].apply(lambda b, bound=bound: int((b == bound).sum()))
    table = table.reset_index().sort_values("duration_us", ascending=False, kind="stable").reset_index(drop=True)
    table["share_pct"] = 100 * table["duration_us"] / table["duration_us"].sum()
    return table


@dataclass
class NcuCapture:
    """An Nsight Compute capture: the KernelSource of kernels/report.py for `lmbench kernels DIR`."""

    capture_dir: Path

    @functools.cached_property
    def meta(self) -> dict:
        return read_meta(self.capture_dir)

    @property
    def captured(self) -> str:
        meta = self.meta
        phase = meta.get("phase", "one phase")
        per = f"{meta['kernels']} launch(es) of each launch configuration" if meta.get("kernels") else "the launches"
        return (f"{per} of the {phase} phase of measured step 0, profiled by Nsight Compute (kernel replay, clocks "
                f"as the GPU ran them; sections {', '.join(meta.get('sections', [])) or 'as recorded'})")

    def record(self) -> Record | None:
        """The run's record of the profiled configuration (by the key ncu.json names), when the run stored one."""
        key, store = self.meta.get("key"), ResultsStore(self.capture_dir.parent)
        if not key or not store.path.exists():
            return None
        matches = [r for r in store.records() if r.key == key]
        return matches[-1] if matches else None

    def tables(self, record: Record | None) -> dict[str, pd.DataFrame]:
        launches = ncu_csv.kernel_table(self.capture_dir / ncu_csv.RAW_FILE, unplaced=self.meta.get("phase", ""))
        return {"ncu_launches": launches, "ncu": configurations(launches), "ncu_categories": category_table(launches)}

    def markdown(self, title: str, record: Record | None, tables: dict[str, pd.DataFrame]) -> str:
        return render(title, context_lines(record or self.record(), self.captured), tables)


def render(title: str, context: list[str], tables: dict[str, pd.DataFrame]) -> str:
    launches, configs = tables["ncu_launches"], tables["ncu"]
    compute = configs[configs["bound"] == "compute"]
    lines = [f"# Kernel report (Nsight Compute) — {title}", "", *context, "",
             "Durations are ncu's `gpu__time_duration` of each profiled launch; the run's own lmbench timings are not "
             "used: ncu serialises and replays every profiled launch, so the phase it profiled ran many times slower.",
             "", f"## Kernels ({len(configs)} launch configurations, {len(launches)} launches; by profiled time)", "",
             titled_table(configs, KERNEL_TITLES), "",
             "*Share* is of the profiled time, not of the phase (a kernel every layer repeats may be profiled once: "
             "`lmbench nsys` gives the phase's time shares). *SM* and *Memory* are ncu's Speed-of-Light throughputs "
             "(% of peak); *Occupancy* is achieved occupancy. *FLOP/byte* is the arithmetic intensity against DRAM, "
             "*Ridge* the intensity where the kernel's roof (the peak FLOP/s of the path it used most: its "
             "tensor-core path, else FP32) meets peak DRAM bandwidth; above it the kernel is compute-bound, below it "
             "memory-bound. *Of roof* is its FLOP/s as a share of the roofline at its intensity.", "",
             f"{len(compute)} of {len(configs)} launch configurations are compute-bound, with "
             f"{compute['share_pct'].sum():.1f}% of the profiled time" + (
                 f" ({', '.join(compute['category'].unique())})." if len(compute) else ".")
             + f" {int((configs['roof_pct'] < 10).sum())} reach under 10% of their roofline: neither roof limits "
             "them, and these metrics do not say what does (their achieved occupancy is in the table).", "",
             _tensor_line(launches), "",
             "## By kernel category", "", titled_table(tables["ncu_categories"], CATEGORY_TITLES), ""]
    return "\n".join(lines)


def _tensor_line(launches: pd.DataFrame) -> str:
    if launches["tensor_flop_per_s"].isna().all():
        return ("Tensor-core FLOPs were not captured (no `sm__ops_path_tensor_*` metrics: the "
                "SpeedOfLight_HierarchicalTensorRooflineChart section was not collected), so GEMM and attention "
                "intensities count only FP32/FP64 FLOPs and understate them.")
    roofs = ", ".join(sorted(r for r in launches["roof"].unique() if r.startswith("tensor")))
    return ("FLOPs include the tensor cores' (ncu's `sm__ops_path_tensor_*` metrics, one op per FLOP)"
            + (f"; tensor roofs used: {roofs}." if roofs else "; no profiled kernel used them."))
