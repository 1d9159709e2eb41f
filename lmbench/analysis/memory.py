"""Where a step's memory goes: analytic sizes of the key tensors (results/sizes.py) beside the measured peak,
the allocator's peak over the step's phases.
"""

from __future__ import annotations

import pandas as pd

from lmbench.config import BenchConfig
from lmbench.results.record import Record
from lmbench.results.sizes import tensor_bytes

MB = 2**20


def analytic_sizes_mb(config: BenchConfig, params: int) -> dict[str, float]:
    """The analytic sizes (results/sizes.py) of the memory table's columns, in MB."""
    sizes = tensor_bytes(config, params)
    return {f"{name}_mb": sizes[name] / MB for name in ("params", "grads", "optimizer", "residual", "scores", "logits")}


def peak_mb(record: Record) -> float | None:
    """The largest measured peak over the step's phases: allocated bytes on CUDA, RSS on a CPU."""
    peaks = [value for phase in record.memory.values() for key, value in phase.items()
             if key in ("peak_allocated_mb", "peak_rss_mb")]
    return max(peaks) if peaks else None


def memory_table(records: list[Record]) -> pd.DataFrame:
    """One row per record: measured peak, analytic tensor sizes, and what the peak holds beyond the
    persistent state (parameters + gradients + optimizer moments): mostly saved activations."""
    rows = []
    for record in records:
        config = record.config
        sizes = analytic_sizes_mb(config, record.params or 0)
        peak = peak_mb(record) if record.ok else None
        state = sizes["params_mb"] + sizes["grads_mb"] + sizes["optimizer_mb"]
        rows.append({"label": record.label, "mode": config.mode, "ctx": config.ctx,
                     "precision": config.precision, "status": record.status, "peak_mb": peak, **sizes,
                     "state_mb": state, "beyond_state_mb": None if peak is None else peak - state})
    return pd.DataFrame(rows)
