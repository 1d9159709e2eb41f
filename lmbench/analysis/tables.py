"""Numeric tables computed from stored records, one group at a time (groups.py; formatting is render/'s job)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lmbench.analysis.fits import MIN_FIT_POINTS
from lmbench.analysis.memory import peak_mb
from lmbench.config import PHASES
from lmbench.results.record import Record
from lmbench.results.stats import PowerLaw, power_law_fit


def scaling_points(records: list[Record], x: str = "flops") -> list[tuple[float, float, str]]:
    """(x, mean total step time in ms, label) of the finished records, sorted by x, one per x value
    (the latest wins): x is the model FLOPs per step ("flops") or the parameter count ("params").
    The scaling findings fit these points and the scaling plot draws them."""
    read = {"flops": lambda r: r.throughput["flops"]["total"], "params": lambda r: r.params}[x]
    points = {read(r): (r.mean_ms(), r.label) for r in records if r.ok and read(r)}
    return [(value, time, label) for value, (time, label) in sorted(points.items())]


def scaling_fit(records: list[Record], x: str = "flops") -> tuple[list[tuple[float, float, str]], PowerLaw] | None:
    """(scaling_points, the power-law fit of time against `x`); None with fewer than MIN_FIT_POINTS sizes."""
    points = scaling_points(records, x)
    if len(points) < MIN_FIT_POINTS:
        return None
    return points, power_law_fit([p[0] for p in points], [p[1] for p in points])


def backward_forward_ratio(record: Record) -> float:
    return record.mean_ms("backward") / record.mean_ms("forward")


def phase_stats(records: list[Record]) -> pd.DataFrame:
    """One row per (record, phase incl. 'total' and 'step'): label, status, and the phase's statistics."""
    rows = []
    for record in records:
        for phase in (*record.phases, "total", "step"):
            row: dict[str, Any] = {"label": record.label, "key": record.key, "phase": phase, "status": record.status,
                                   "oom_phase": record.oom_phase}
            row.update(record.stats.get(phase, {}))
            rows.append(row)
    return pd.DataFrame(rows)


def run_phase_stats(records: list[Record]) -> pd.DataFrame:
    """phase_stats of the finished records, the step's own phases only (no 'total' or 'step' rows)."""
    stats = phase_stats(records)
    return stats[stats["phase"].isin(PHASES) & stats["status"].eq("ok")] if not stats.empty else stats


def throughput_table(records: list[Record]) -> pd.DataFrame:
    """Per record: parameters, tokens/s, achieved TFLOP/s and MFU of the whole step, peak memory."""
    rows = []
    for record in records:
        tp = record.throughput
        rows.append({
            "label": record.label,
            "status": record.status,
            "params": record.params,
            "flops_total": tp.get("flops", {}).get("total"),
            "tokens_per_s": tp.get("tokens_per_s"),
            "tflops_forward": tp.get("tflops", {}).get("forward"),
            "tflops_total": tp.get("tflops", {}).get("total"),
            "mfu_total": tp.get("mfu", {}).get("total"),
            "peak_tflops": tp.get("peak_tflops"),
            "peak_memory_mb": peak_mb(record),
        })
    return pd.DataFrame(rows)
