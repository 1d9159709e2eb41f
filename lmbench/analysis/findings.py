"""Findings computed from one group of records: each a claim with the numbers and the basis behind it.

Nothing here is canned prose: every sentence is assembled from measured values, and a finding whose
data is missing (too few sizes, no MFU peak for the device) says so instead of guessing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lmbench.analysis import scaling as scaling_findings
from lmbench.analysis import variance
from lmbench.analysis.finding import Finding
from lmbench.analysis.overhead import host_overhead
from lmbench.analysis.tables import (backward_forward_ratio, first_step_table, phases_of, run_phase_stats, scaling_fit,
                                     throughput_table)
from lmbench.stats import NOISY_CI_PCT, NOISY_CV_PCT

GOOD_FIT_R2 = 0.9  # below this the power law is not a description worth reading an exponent from
MATMUL_BACKWARD_RATIO = 2.0  # backward does two matmuls (input and weight gradients) per forward matmul


def findings(records: list[dict[str, Any]]) -> list[Finding]:
    """All findings for one group (records of one mode/precision/shape, one per size)."""
    ok = [r for r in records if r["status"] == "ok"]
    computed = (scaling(ok), scaling_findings.parameters(ok), scaling_findings.deviations(ok), throughput(ok),
                scaling_findings.efficiency(ok), noise(ok), variance.cv_ranking(ok), variance.outlier_steps(ok),
                variance.steady_state(ok), variance.machine(ok), backward_ratio(ok), first_step(ok))
    return [f for f in computed if f] + host_overhead(ok) + out_of_memory(records)


def run_findings(records: list[dict[str, Any]]) -> list[Finding]:
    """Findings that compare groups of one run: variants against their baseline, growth with context length."""
    computed = [scaling_findings.variant_speedups(records, field) for field in scaling_findings.VARIANTS]
    return [f for f in (*computed, scaling_findings.context_scaling(records)) if f]


def scaling(records: list[dict[str, Any]]) -> Finding | None:
    """Power-law fit of the step time against model FLOPs across sizes."""
    fit = scaling_fit(records)
    if fit is None:
        return None
    points, (exponent, _, r2, *_) = fit
    flops, times, _ = zip(*points)
    flop_ratio, time_ratio = flops[-1] / flops[0], times[-1] / times[0]
    shape = ("less than proportionally: larger models use the device better"
             if exponent < 0.9 else "about proportionally" if exponent <= 1.1 else "more than proportionally")
    reading = (f"i.e. time rises {shape}." if r2 >= GOOD_FIT_R2 else
               f"but a power law fits poorly (R² < {GOOD_FIT_R2:g}): across these sizes time is not set by FLOPs "
               "alone (see the per-size deviations and efficiency).")
    return Finding(
        "scaling",
        f"Step time grows as FLOPs^{exponent:.2f} (R² = {r2:.3f}, {len(points)} sizes): "
        f"{flop_ratio:.1f}× the FLOPs cost {time_ratio:.1f}× the time, {reading}",
        {"exponent": exponent, "r2": r2, "sizes": len(points), "flop_ratio": flop_ratio, "time_ratio": time_ratio},
        "least-squares fit of log(mean step time) on log(model FLOPs per step)",
    )


def throughput(records: list[dict[str, Any]]) -> Finding | None:
    table = throughput_table(records)
    if table.empty:
        return None
    parts = []
    for row in table.itertuples():
        mfu = f", MFU {100 * row.mfu_total:.1f}%" if pd.notna(row.mfu_total) else ""
        parts.append(f"{row.label} {row.tflops_total:.2f} TFLOP/s{mfu}")
    peak = table["peak_tflops"].iloc[0]
    device = records[0]["environment"]["device_name"]
    basis = (f"model FLOPs / mean step time; MFU against a {peak:g} TFLOP/s datasheet peak"
             if pd.notna(peak) else f"model FLOPs / mean step time; MFU not computed: "
             f"no datasheet peak known for {device}")
    best = table.loc[table["tflops_total"].idxmax()]
    return Finding(
        "throughput",
        f"Achieved throughput: {'; '.join(parts)}. The highest is {best['label']} at {best['tflops_total']:.2f} TFLOP/s.",
        {"tflops": dict(zip(table["label"], table["tflops_total"])), "mfu": dict(zip(table["label"], table["mfu_total"]))},
        basis,
    )


def noise(records: list[dict[str, Any]]) -> Finding | None:
    if not records:
        return None
    stats = run_phase_stats(records)
    if stats.empty:
        return None
    stats = stats.assign(ci_pct=100 * (stats["ci_high"] - stats["mean"]) / stats["mean"])
    noisy = stats[stats["noisy"].astype(bool)].sort_values("cv_pct", ascending=False)
    basis = f"noisy when CV > {NOISY_CV_PCT:g}% or the 95% CI half-width > {NOISY_CI_PCT:g}% of the mean"
    outliers = int(stats["outliers"].sum())
    if noisy.empty:
        top = stats.loc[stats["cv_pct"].idxmax()]
        widest = (f"the widest 95% CI is ±{stats['ci_pct'].max():.2f}% of its mean" if stats["ci_pct"].notna().any()
                  else "no CI exists with one measured step")
        claim = (f"No phase is noisy: the highest CV is {top['cv_pct']:.1f}% ({top['label']} {top['phase']}) and "
                 f"{widest}; {outliers} Tukey outlier step(s).")
    else:
        listed = ", ".join(f"{r.label} {r.phase} (CV {r.cv_pct:.1f}%, CI ±{r.ci_pct:.1f}%)" for r in noisy.itertuples())
        claim = (f"{noisy['label'].nunique()} of {stats['label'].nunique()} sizes have noisy phases: {listed}; "
                 f"{outliers} Tukey outlier step(s) in the group.")
    return Finding("variance", claim,
                   {"noisy": noisy[["label", "phase", "cv_pct", "ci_pct"]].to_dict("records"),
                    "max_cv_pct": float(stats["cv_pct"].max()), "outliers": outliers}, basis)


def backward_ratio(records: list[dict[str, Any]]) -> Finding | None:
    ratios = {r["model"]["label"]: backward_forward_ratio(r) for r in records if "backward" in phases_of(r)}
    if not ratios:
        return None
    lo, hi = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    span = f"{ratios[lo]:.2f}× ({lo})" if lo == hi else f"{ratios[lo]:.2f}× ({lo}) to {ratios[hi]:.2f}× ({hi})"
    return Finding(
        "backward/forward",
        f"Backward takes {span} the forward time, against {MATMUL_BACKWARD_RATIO:.0f}× predicted by matmul FLOPs.",
        {"ratios": ratios},
        "mean backward time / mean forward time per size",
    )


def first_step(records: list[dict[str, Any]]) -> Finding | None:
    table = first_step_table(records)
    if table.empty:
        return None
    worst = table.loc[table["ratio"].idxmax()]
    where = ("a warm-up step, excluded from the statistics" if worst["first_is_warmup"]
             else "a measured step (no warm-up): it is inside the statistics")
    return Finding(
        "warm-up",
        f"The first step is the slowest relative to steady state for {worst['label']}: "
        f"{worst['first_step_ms']:.1f} ms against a median of {worst['steady_median_ms']:.1f} ms "
        f"({worst['ratio']:.1f}×)"
        + (f"; across sizes it costs {table['ratio'].min():.1f}× to {table['ratio'].max():.1f}× the median"
           if len(table) > 1 else "") + f". It was {where}.",
        {"ratios": dict(zip(table["label"], table["ratio"]))},
        "total time of step 0 / median total time of the measured steps",
    )


def out_of_memory(records: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding("oom", f"{r['model']['label']} ran out of memory in the {r['oom']['phase']} phase.",
                {"label": r["model"]["label"], "phase": r["oom"]["phase"]}, r["oom"]["message"] or "")
        for r in records if r["status"] == "oom"
    ]
