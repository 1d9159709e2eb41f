"""Where a step's memory goes: analytic sizes of the key tensors (results/sizes.py) beside the measured peak,
the allocator's peak over the step's phases.

A data-parallel job's record gets a row per rank: that rank's own peak (distributed.ranks) beside the sizes of
one rank (sharded under fsdp, with DDP's gradient buckets under ddp), so "beyond state" is what the rank's peak
holds beyond its own persistent state. A job that ran out of memory has no rank's peaks: one row, for the rank
that ran out.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lmbench.config import GRAPH_COMPILE_MODES, BenchConfig
from lmbench.results.record import Record
from lmbench.results.sizes import state_bytes, tensor_bytes

MB = 2**20
COLUMNS = ("params", "grads", "optimizer", "residual", "scores", "logits", "buckets", "gathered")


def analytic_sizes_mb(config: BenchConfig, params: int | None, world_size: int = 1) -> dict[str, float]:
    """The analytic sizes (results/sizes.py) of the memory table's columns for one of `world_size` ranks, in MB,
    with `state_mb`, what persists between steps."""
    sizes = tensor_bytes(config, params, world_size)
    # A size unknown (a custom model's activations, results/sizes.py) is NaN: shown as "—", never a guess.
    mb = lambda size: math.nan if size is None else size / MB  # noqa: E731
    return {**{f"{name}_mb": mb(sizes[name]) for name in COLUMNS}, "state_mb": mb(state_bytes(sizes))}


def memory_peak_mb(memory: dict[str, Any]) -> float | None:
    """The largest peak over a step's phases (phase -> peaks): allocated bytes on CUDA, RSS on a CPU."""
    peaks = [value for phase in memory.values() for key, value in phase.items()
             if key in ("peak_allocated_mb", "peak_rss_mb")]
    return max(peaks) if peaks else None


def memory_peak_reserved_mb(memory: dict[str, Any]) -> float | None:
    """The largest reserved-bytes peak over a step's phases (CUDA only): the allocator's segments, its pools'
    included."""
    peaks = [phase["peak_reserved_mb"] for phase in memory.values() if "peak_reserved_mb" in phase]
    return max(peaks) if peaks else None


def peak_mb(record: Record) -> float | None:
    """The record's measured peak (rank 0's in a data-parallel job)."""
    return memory_peak_mb(record.memory)


def rank_peaks_mb(record: Record) -> dict[int, float | None]:
    """A finished data-parallel job's peak per rank, from every rank's own memory; {} otherwise."""
    if not record.ok:
        return {}
    return {r["rank"]: memory_peak_mb(r.get("memory") or {}) for r in record.distributed.get("ranks", [])}


def memory_table(records: list[Record]) -> pd.DataFrame:
    """One row per record (per rank of a data-parallel job, `rank` NA otherwise): measured peak, analytic tensor
    sizes, and what the peak holds beyond the persistent state (parameters + gradients + optimizer moments, and
    DDP's buckets): mostly saved activations; not for a compile mode that replays CUDA graphs on a GPU."""
    rows = []
    for record in records:
        config = record.config
        # A record stored without a parameter count (an OOM job's) takes the formula's.
        sizes = analytic_sizes_mb(config, record.params, record.world_size)
        row = {"label": record.label, "mode": config.mode, "ctx": config.ctx, "precision": config.precision,
               "parallel": config.parallel, "status": record.status, "key": record.key}
        # One process, or a job without its ranks' peaks (out of memory: the rank that ran out), has one row.
        peaks = rank_peaks_mb(record) or {record.oom_rank: peak_mb(record) if record.ok else None}
        for rank, peak in peaks.items():
            # Under CUDA graph replay the allocated peak leaves out the graph pool (findings/memory.graph_pool): no
            # difference is read from it.
            unread = peak is None or (record.on_cuda and config.compile in GRAPH_COMPILE_MODES)
            rows.append({**row, "rank": rank, "peak_mb": peak, **sizes,
                         "beyond_state_mb": None if unread else peak - sizes["state_mb"]})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["rank"] = table["rank"].astype("Int64")
    return table
