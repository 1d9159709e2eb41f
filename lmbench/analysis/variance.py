"""Variance findings: which phases are noisiest, where the outlier steps fall, when steps settle, what the
machine was doing meanwhile (telemetry.py samples), and, where a trace exists, whether slow steps lost
their time on the host or on the device. Each returns a Finding or None."""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from lmbench.analysis.finding import Finding
from lmbench.analysis.tables import measured_totals, run_phase_stats
from lmbench.stats import quantile

SLOW_STEP_PCT = 10.0  # a traced step this much above the median step is matched against the trace
STEADY_PCT = 10.0  # a step is steady when its total is within this of the measured median
CLOCK_SPREAD_PCT = 2.0  # SM clock moving more than this during the steps is worth saying
OTHER_LOAD_PCT = 20.0  # other processes using more than this share of all cores competed for the host
# NVML's clock event (throttle) reason bits, as documented for nvmlDeviceGetCurrentClocksEventReasons.
CLOCK_EVENT_REASONS = {0x1: "GPU idle", 0x2: "applications clocks setting", 0x4: "software power cap",
                       0x8: "hardware slowdown", 0x10: "sync boost", 0x20: "software thermal slowdown",
                       0x40: "hardware thermal slowdown", 0x80: "hardware power brake", 0x100: "display clock setting"}


def cv_ranking(records: list[dict[str, Any]], top: int = 3) -> Finding | None:
    if not records:
        return None
    stats = run_phase_stats(records)
    if len(stats) < 2:
        return None
    ranked = stats.sort_values("cv_pct", ascending=False).head(top)
    listed = ", ".join(f"{r.label} {r.phase} {r.cv_pct:.1f}%" for r in ranked.itertuples())
    return Finding("variance", f"Noisiest phases by CV: {listed}; the steadiest is "
                   f"{stats.loc[stats['cv_pct'].idxmin(), 'label']} {stats.loc[stats['cv_pct'].idxmin(), 'phase']} "
                   f"({stats['cv_pct'].min():.1f}%).",
                   {"ranking": ranked[["label", "phase", "cv_pct"]].to_dict("records")},
                   "coefficient of variation of the measured steps, per size and phase")


def outlier_steps(records: list[dict[str, Any]]) -> Finding | None:
    """Tukey outliers of each record's measured totals, with their step positions."""
    found = []
    for record in records:
        values = measured_totals(record)
        if len(values) < 4:
            continue
        ordered = sorted(values)
        q1, q3 = quantile(ordered, 0.25), quantile(ordered, 0.75)  # as stats.summarize counts Tukey outliers
        fence = q3 + 1.5 * (q3 - q1)
        slow = [i for i, v in enumerate(values) if v > fence]
        if slow:
            found.append((record["model"]["label"], slow, len(values)))
    if not found:
        return None
    parts = []
    for label, slow, n in found:
        where = "all in the first third" if max(slow) < n / 3 else "all in the last third" if min(slow) >= 2 * n / 3 \
            else "spread over the run"
        parts.append(f"{label}: measured step(s) {', '.join(map(str, slow))} of {n} ({where})")
    return Finding("outliers", "Slow outlier steps: " + "; ".join(parts) + ".",
                   {"outliers": {label: slow for label, slow, _ in found}},
                   "step total above Q3 + 1.5 IQR of its record's measured steps")


def steady_state(records: list[dict[str, Any]]) -> Finding | None:
    """Index of the first step from which the step totals stay within STEADY_PCT of the measured median."""
    reached = {}
    for record in records:
        values = measured_totals(record, include_warmup=True)
        median = statistics.median(measured_totals(record))
        steady = [abs(v / median - 1) * 100 <= STEADY_PCT for v in values]
        first = next((i for i in range(len(values)) if all(steady[i:])), None)
        reached[record["model"]["label"]] = (first, record["config"]["warmup"])
    if not reached:
        return None
    parts = [f"{label} from step {first}" if first is not None else f"{label} never"
             for label, (first, _) in reached.items()]
    late = [label for label, (first, warmup) in reached.items() if first is None or first > warmup]
    tail = (f" {', '.join(late)} settled only after the warm-up steps ended, so their statistics include "
            "unsettled steps." if late else " Every size settled within its warm-up steps.")
    return Finding("steady state", "Steps stay within ±{:g}% of the median: {}.{}".format(STEADY_PCT, "; ".join(parts), tail),
                   {"first_steady_step": {k: v[0] for k, v in reached.items()}},
                   f"first step index after which every step total is within {STEADY_PCT:g}% of the measured median")


def clock_event_reasons(masks: list[int]) -> list[str]:
    """Names of the NVML clock event reasons set in any sampled mask, idle left out (an idle GPU between
    launches is the host's doing, which the host-overhead findings measure)."""
    seen = 0
    for mask in masks:
        seen |= int(mask)
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if seen & bit and bit != 0x1]
    unknown = seen & ~sum(CLOCK_EVENT_REASONS)
    return names + ([f"reason bits {unknown:#x}"] if unknown else [])


def machine(records: list[dict[str, Any]]) -> Finding | None:
    """GPU clocks, power, temperature and throttling; CPU frequency, other processes' load and swap."""
    parts, numbers = [], {}
    for record in records:
        summary = record.get("telemetry", {}).get("summary", {})
        if not summary:
            continue
        label, notes = record["model"]["label"], []
        sm = summary.get("sm_clock_mhz")
        if sm:
            spread = 100 * (sm["max"] - sm["min"]) / sm["max"]
            notes.append(f"SM clock {sm['min']:.0f}–{sm['max']:.0f} MHz" + (f" (moved {spread:.1f}%)"
                                                                           if spread > CLOCK_SPREAD_PCT else ""))
        reasons = clock_event_reasons(summary.get("throttle_reasons", []))
        if reasons:
            notes.append(f"clocks held back by {' and '.join(reasons)}")
        for key, unit in (("power_w", "W"), ("temperature_c", "°C")):
            if key in summary:
                notes.append(f"{key.split('_')[0]} {summary[key]['min']:.0f}–{summary[key]['max']:.0f} {unit}")
        other = summary.get("other_load_pct")
        if other and other["max"] > OTHER_LOAD_PCT:
            notes.append(f"other processes used up to {other['max']:.0f}% of the CPU")
        swap = summary.get("swap_used_mb")
        if swap and swap["max"] > 0:
            notes.append(f"{swap['max']:.0f} MB of swap in use")
        freq = summary.get("cpu_freq_mhz")
        if freq and freq["max"] > 0 and (freq["max"] - freq["min"]) / freq["max"] * 100 > CLOCK_SPREAD_PCT:
            notes.append(f"CPU frequency {freq['min']:.0f}–{freq['max']:.0f} MHz")
        if notes:
            parts.append(f"{label}: {', '.join(notes)}")
            numbers[label] = summary
    if not parts:
        return None
    return Finding("machine", "During the measured steps — " + "; ".join(parts) + ".", numbers,
                   "NVML and psutil samples taken every ~0.2 s during the measured steps")


def slow_steps_in_trace(steps: pd.DataFrame) -> Finding | None:
    """Slow traced steps matched against the trace: did the GPU sit idle (host side) or run longer kernels
    (device side)? `steps` holds per traced step its kernel time, GPU idle time and longest gap
    (analysis/kernels.step_table) and lmbench's timed total (`lmbench_ms`)."""
    if "lmbench_ms" not in steps or len(steps) < 3:
        return None
    median = steps.median(numeric_only=True)
    slow = steps[steps["lmbench_ms"] > median["lmbench_ms"] * (1 + SLOW_STEP_PCT / 100)]
    basis = (f"traced steps more than {SLOW_STEP_PCT:g}% above the median step, their GPU idle and kernel time "
             "against the median step's")
    if slow.empty:
        return Finding("slow steps", f"No traced step is more than {SLOW_STEP_PCT:g}% slower than the median step "
                       f"({median['lmbench_ms']:.2f} ms).", {"median_ms": median["lmbench_ms"], "slow": []}, basis)
    parts, rows = [], []
    for row in slow.itertuples():
        excess = row.lmbench_ms - median["lmbench_ms"]
        idle = row.idle_ms - median["idle_ms"]
        device = row.kernel_ms - median["kernel_ms"]
        side = "host" if idle >= device else "device"
        rows.append({"step": row.step, "excess_ms": excess, "idle_ms": idle, "kernel_ms": device, "side": side})
        parts.append(f"step {row.step} +{excess:.2f} ms: GPU idle {idle:+.2f} ms, kernels {device:+.2f} ms, longest "
                     f"gap {row.largest_gap_ms:.2f} ms: mostly {side} side "
                     + ("(GPU idle)" if side == "host" else "(kernel time)"))
    return Finding("slow steps", f"Slow steps (more than {SLOW_STEP_PCT:g}% above the median "
                   f"{median['lmbench_ms']:.2f} ms) against the median step: " + "; ".join(parts) + ".",
                   {"median_ms": median["lmbench_ms"], "slow": rows}, basis)
