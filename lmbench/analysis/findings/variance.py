"""Variance findings: which phases are noisiest, which steps are Tukey outliers, how much separate processes
differ against the step noise within one, what the machine was doing meanwhile (telemetry.py samples), and,
where a trace exists, whether slow steps lost their time on the host or on the device (on a CPU run: inside or
between operators). Each returns a Finding or None."""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable

import pandas as pd

from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.findings.steps import merged, process_steps, step_name
from lmbench.analysis.tables import run_phase_stats
from lmbench.config import PHASES
from lmbench.results.record import Record
from lmbench.results.stats import tukey_fences

SLOW_STEP_PCT = 10.0  # a traced step this much above the median step is matched against the trace
MIN_TRACED_STEPS = 3  # with fewer traced steps a slow step is half of the median it is set against
CLOCK_SPREAD_PCT = 2.0  # SM clock moving more than this during the steps is worth saying
OTHER_LOAD_PCT = 20.0  # other processes using more than this share of all cores competed for the host
MIN_FENCED_STEPS = 4  # fewer measured steps have no quartiles to fence outliers with
ANOVA_ALPHA = 0.05  # processes differ beyond step noise when the one-way ANOVA p is below this
# NVML's clock event (throttle) reason bits, as documented for nvmlDeviceGetCurrentClocksEventReasons.
CLOCK_EVENT_REASONS = {0x1: "GPU idle", 0x2: "applications clocks setting", 0x4: "software power cap",
                       0x8: "hardware slowdown", 0x10: "sync boost", 0x20: "software thermal slowdown",
                       0x40: "hardware thermal slowdown", 0x80: "hardware power brake", 0x100: "display clock setting"}


def cv_ranking(records: list[Record], top: int = 3) -> Finding | None:
    """The phases with the highest CV; the lowest is named only when no other phase ties it (to the shown
    0.1%) and it is not already among those listed."""
    if not records:
        return None
    stats = run_phase_stats(records)
    if len(stats) < 2:
        return None
    ordered = stats.sort_values("cv_pct", ascending=False)
    ranked = ordered.head(top)
    listed = ", ".join(f"{r.label} {r.phase} {r.cv_pct:.1f}%" for r in ranked.itertuples())
    claim = f"Phases by CV, highest first: {listed}"
    lowest = ordered.iloc[-1]
    tied = (ordered["cv_pct"].round(1) == round(lowest["cv_pct"], 1)).sum() > 1
    if len(ordered) > top and not tied:
        claim += f"; the lowest of all {len(ordered)} is {lowest['label']} {lowest['phase']} {lowest['cv_pct']:.1f}%"
    return Finding("variance", claim + ".", {"ranking": ranked[["label", "phase", "cv_pct"]].to_dict("records")},
                   "coefficient of variation of the measured steps, per size and phase")


def outlier_table(records: list[Record]) -> list[dict[str, Any]]:
    """The outlier steps of finished records: a measured step whose total lies outside the Tukey fences of its
    record's measured totals, 'slow' above the upper fence and 'fast' below the lower one, named as the
    step plots number it."""
    rows = []
    for record in records:
        if not record.ok:
            continue
        measured = [s for steps in process_steps(record).values() for s in steps if not s.warmup]
        if len(measured) < MIN_FENCED_STEPS:
            continue
        low, high = tukey_fences(sorted(s.total_ms for s in measured))
        several = merged(record)
        rows += [{"label": record.label, "process": s.process, "step": s.step,
                  "name": step_name(s, several), "total_ms": s.total_ms, "tail": "slow" if s.total_ms > high else "fast",
                  "fence_ms": high if s.total_ms > high else low, "measured": len(measured)}
                 for s in measured if not low <= s.total_ms <= high]
    return rows


def outlier_steps(records: list[Record]) -> Finding | None:
    """The outlier steps of each size (outlier_table), by tail, with their times and the fence they cross."""
    rows = outlier_table(records)
    if not rows:
        return None
    parts = []
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        tails = []
        for tail, side in (("slow", "above"), ("fast", "below")):
            hits = [r for r in mine if r["tail"] == tail]
            if hits:
                tails.append(f"{tail} ({side} {hits[0]['fence_ms']:.2f} ms): "
                             + ", ".join(f"{r['name']} at {r['total_ms']:.2f} ms" for r in hits))
        parts.append(f"{label} {len(mine)} of {mine[0]['measured']} measured steps — {'; '.join(tails)}")
    return Finding("outliers", "Tukey outlier steps: " + "; ".join(parts) + ".",
                   {"outliers": {label: [{k: r[k] for k in ("process", "step", "tail", "total_ms")}
                                         for r in rows if r["label"] == label]
                                 for label in dict.fromkeys(r["label"] for r in rows)},
                    "slow": sum(r["tail"] == "slow" for r in rows), "fast": sum(r["tail"] == "fast" for r in rows)},
                   "step total outside [Q1 − 1.5 IQR, Q3 + 1.5 IQR] of its record's measured step totals")


def between_processes(records: list[Record]) -> Finding | None:
    """For records measured in several processes: the between-process CV of the step total beside the
    within-process CV, and which of the two sets the uncertainty of a mean. Step noise alone would spread
    process means of m steps by the within CV / √m; one-way ANOVA tests whether they spread more."""
    rows = {}
    for record in records:
        stats = record.process_stats.get("total") if record.ok else None
        if not stats:
            continue
        counts = [sum(not s.warmup for s in steps) for steps in process_steps(record).values()]
        p = stats["p_anova"]
        rows[record.label] = {
            "processes": stats["n"], "steps_per_process": counts, "between_cv_pct": stats["cv_pct"],
            "within_cv_pct": stats["within_cv_pct"],
            "expected_cv_pct": stats["within_cv_pct"] / math.sqrt(statistics.fmean(counts)),
            "p_anova": p, "dominant": None if p is None else "between" if p < ANOVA_ALPHA else "within"}
    if not rows:
        return None
    parts = []
    for label, row in rows.items():
        counts = sorted(set(row["steps_per_process"]))
        steps = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        head = (f"{label}: between-process CV {row['between_cv_pct']:.2f}% against {row['expected_cv_pct']:.2f}% "
                f"from step noise alone (within-process CV {row['within_cv_pct']:.2f}%, {row['processes']} processes "
                f"of {steps} measured steps)")
        if row["dominant"] is None:
            parts.append(f"{head}; one step per process cannot separate the two")
        elif row["dominant"] == "between":
            parts.append(f"{head}; ANOVA p = {row['p_anova']:.2g} < {ANOVA_ALPHA:g}: the processes differ beyond "
                         "step noise, so the variation between processes dominates the uncertainty of the mean")
        else:
            parts.append(f"{head}; ANOVA p = {row['p_anova']:.2g} ≥ {ANOVA_ALPHA:g}: no sign that the processes differ "
                         "beyond step noise, which dominates the uncertainty of the mean")
    return Finding("between processes", "; ".join(parts) + ".", {"processes": rows},
                   "one-way ANOVA of the measured step totals grouped by process (null: one mean for all processes); "
                   "spread from step noise alone = within-process CV / √(steps per process)")


def clock_event_reasons(masks: list[int]) -> list[str]:
    """Names of the NVML clock event reasons set in any sampled mask, idle left out (an idle GPU between
    launches is the host's doing, which the host-overhead findings measure)."""
    seen = 0
    for mask in masks:
        seen |= int(mask)
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if seen & bit and bit != 0x1]
    unknown = seen & ~sum(CLOCK_EVENT_REASONS)
    return names + ([f"reason bits {unknown:#x}"] if unknown else [])


def interference(summary: dict[str, Any]) -> dict[str, Any]:
    """What a telemetry summary shows held the measured steps back, each only past its threshold: other
    processes' CPU load (max %), swap in use (max MB), clock event reasons (names)."""
    found: dict[str, Any] = {}
    other, swap = summary.get("other_load_pct"), summary.get("swap_used_mb")
    if other and other["max"] > OTHER_LOAD_PCT:
        found["other_load_pct"] = other["max"]
    if swap and swap["max"] > 0:
        found["swap_used_mb"] = swap["max"]
    reasons = clock_event_reasons(summary.get("throttle_reasons", []))
    if reasons:
        found["clock_events"] = reasons
    return found


def interference_text(found: dict[str, Any]) -> list[str]:
    """interference()'s findings as clauses of a claim."""
    notes = []
    if "clock_events" in found:
        notes.append(f"clocks held back by {' and '.join(found['clock_events'])}")
    if "other_load_pct" in found:
        notes.append(f"other processes used up to {found['other_load_pct']:.0f}% of the CPU")
    if "swap_used_mb" in found:
        notes.append(f"{found['swap_used_mb']:.0f} MB of swap in use")
    return notes


def machine(records: list[Record]) -> Finding | None:
    """GPU clocks, power, temperature and throttling; CPU frequency, other processes' load and swap."""
    parts, numbers = [], {}
    for record in records:
        summary = record.telemetry.get("summary", {})
        if not summary:
            continue
        label, notes = record.label, []
        sm = summary.get("sm_clock_mhz")
        if sm:
            spread = 100 * (sm["max"] - sm["min"]) / sm["max"]
            notes.append(f"SM clock {sm['min']:.0f}–{sm['max']:.0f} MHz" + (f" (moved {spread:.1f}%)"
                                                                           if spread > CLOCK_SPREAD_PCT else ""))
        for key, unit in (("power_w", "W"), ("temperature_c", "°C")):
            if key in summary:
                notes.append(f"{key.split('_')[0]} {summary[key]['min']:.0f}–{summary[key]['max']:.0f} {unit}")
        freq = summary.get("cpu_freq_mhz")
        if freq and freq["max"] > 0 and (freq["max"] - freq["min"]) / freq["max"] * 100 > CLOCK_SPREAD_PCT:
            notes.append(f"CPU frequency {freq['min']:.0f}–{freq['max']:.0f} MHz")
        notes += interference_text(interference(summary))
        if notes:
            parts.append(f"{label}: {', '.join(notes)}")
            numbers[label] = summary
    if not parts:
        return None
    sources = " and ".join(["NVML"] * any(on_gpu(s) for s in numbers.values()) + ["psutil"])
    return Finding("machine", "During the measured steps — " + "; ".join(parts) + ".", numbers,
                   f"{sources} samples taken every ~0.2 s during the measured steps")


def on_gpu(summary: dict[str, Any]) -> bool:
    """Whether a telemetry summary holds NVML's GPU fields (a CPU run has psutil's only)."""
    return any(key in summary for key in ("sm_clock_mhz", "power_w", "temperature_c", "throttle_reasons"))


def slow_steps_in_trace(steps: pd.DataFrame) -> Finding | None:
    """Slow traced steps matched against the trace: did the GPU sit idle (host side) or run longer kernels
    (device side)? `steps` holds per traced step its kernel time, GPU idle time and longest gap
    (analysis/kernels.step_table) and lmbench's timed total (`lmbench_ms`)."""
    def describe(row: dict, median: pd.Series) -> tuple[str, dict]:
        excess = row["lmbench_ms"] - median["lmbench_ms"]
        idle = row["idle_ms"] - median["idle_ms"]
        device = row["kernel_ms"] - median["kernel_ms"]
        side = "host" if idle >= device else "device"
        return (f"step {row['step']} +{excess:.2f} ms: GPU idle {idle:+.2f} ms, kernels {device:+.2f} ms, longest "
                f"gap {row['largest_gap_ms']:.2f} ms: mostly {side} side "
                + ("(GPU idle)" if side == "host" else "(kernel time)"),
                {"step": row["step"], "excess_ms": excess, "idle_ms": idle, "kernel_ms": device, "side": side})

    return _slow_step_finding(steps, describe, f"traced steps more than {SLOW_STEP_PCT:g}% above the median step, "
                              "their GPU idle and kernel time against the median step's")


def slow_steps_in_cpu_trace(steps: pd.DataFrame) -> Finding | None:
    """Slow traced steps of a CPU run matched against the trace: did the extra time go to the operators' own work
    (self CPU time) or between operators (Python, dispatch, the profiler), and which phase grew most? `steps`
    holds per traced step its operator self time, the time outside operators and each phase's range time
    (kernels/cpu_ops.step_table) and lmbench's timed total (`lmbench_ms`)."""
    phases = [c for c in steps.columns if c.endswith("_ms") and c[: -len("_ms")] in PHASES]

    def describe(row: dict, median: pd.Series) -> tuple[str, dict]:
        excess = row["lmbench_ms"] - median["lmbench_ms"]
        inside = row["op_self_ms"] - median["op_self_ms"]
        outside = row["outside_ms"] - median["outside_ms"]
        grown = max(phases, key=lambda c: row[c] - median[c])
        side = "inside operators" if inside >= outside else "outside operators"
        return (f"step {int(row['step'])} +{excess:.2f} ms: operator self time {inside:+.2f} ms, outside "
                f"operators {outside:+.2f} ms, most in {grown[: -len('_ms')]} "
                f"({row[grown] - median[grown]:+.2f} ms): mostly {side}",
                {"step": int(row["step"]), "excess_ms": excess, "op_self_ms": inside, "outside_ms": outside,
                 "phase": grown[: -len("_ms")], "side": side})

    return _slow_step_finding(steps, describe, f"traced steps more than {SLOW_STEP_PCT:g}% above the median step, "
                              "their operator self CPU time, time outside operators and phase range times against "
                              "the median step's")


def _slow_step_finding(steps: pd.DataFrame, describe: Callable[[dict, pd.Series], tuple[str, dict]],
                       basis: str) -> Finding | None:
    """The slow-step finding of a trace, GPU or CPU: each slow step described against the median step."""
    found = _slow_traced_steps(steps)
    if found is None:
        return None
    median, slow = found
    if slow.empty:
        return Finding("slow steps", f"No traced step is more than {SLOW_STEP_PCT:g}% slower than the median step "
                       f"({median['lmbench_ms']:.2f} ms).", {"median_ms": median["lmbench_ms"], "slow": []}, basis)
    parts, rows = zip(*(describe(row, median) for row in slow.to_dict("records")))
    return Finding("slow steps", f"Slow steps (more than {SLOW_STEP_PCT:g}% above the median "
                   f"{median['lmbench_ms']:.2f} ms) against the median step: " + "; ".join(parts) + ".",
                   {"median_ms": median["lmbench_ms"], "slow": list(rows)}, basis)


def _slow_traced_steps(steps: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame] | None:
    """The traced steps' medians and the steps more than SLOW_STEP_PCT above the median lmbench total; None
    without lmbench totals or with fewer than MIN_TRACED_STEPS steps."""
    if "lmbench_ms" not in steps or len(steps) < MIN_TRACED_STEPS:
        return None
    median = steps.median(numeric_only=True)
    return median, steps[steps["lmbench_ms"] > median["lmbench_ms"] * (1 + SLOW_STEP_PCT / 100)]
