"""Findings on the timings of one group: step time against model FLOPs, throughput and MFU, noise, the
backward/forward ratio and what ran out of memory."""

from __future__ import annotations

import pandas as pd

from lmbench.analysis.findings import variance
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.fits import GOOD_FIT_R2, fit_numbers, fit_text, is_clear, relation_to
from lmbench.analysis.tables import backward_forward_ratio, run_phase_stats, scaling_fit, throughput_table
from lmbench.results.record import Record
from lmbench.results.stats import NOISY_CI_PCT, NOISY_CV_PCT

MATMUL_BACKWARD_RATIO = 2.0  # backward does two matmuls (input and weight gradients) per forward matmul
# How time grows against FLOPs, read from where the exponent's CI lies against 1 (fits.relation_to).
GROWTH = {"below": "time rises less than proportionally (the CI lies below 1): larger models use the device better",
          "above": "time rises more than proportionally (the CI lies above 1)",
          "consistent": "the CI holds 1: consistent with time proportional to FLOPs"}



def flops_scaling(records: list[Record]) -> Finding | None:
    """Power-law fit of the step time against model FLOPs across sizes, read only when it is clear."""
    fit = scaling_fit(records)
    if fit is None:
        return None
    points, law = fit
    flops, times, _ = zip(*points)
    flop_ratio, time_ratio = flops[-1] / flops[0], times[-1] / times[0]
    reading = relation_to(law, 1.0) if is_clear(law) else None
    ratios = f"{flop_ratio:.1f}× the FLOPs cost {time_ratio:.1f}× the time"
    claim = (f"Step time grows as {fit_text(law, 'FLOPs', 'sizes')}: {ratios}; {GROWTH[reading]}."
             if reading else f"Step time against model FLOPs: {fit_text(law, 'FLOPs', 'sizes')}; from the smallest "
             f"to the largest size {ratios}, but a power law in FLOPs does not describe the sizes between them.")
    return Finding("scaling", claim,
                   {**fit_numbers(law), "sizes": len(points), "flop_ratio": flop_ratio, "time_ratio": time_ratio,
                    "reading": reading},
                   "least-squares fit of log(mean step time) on log(model FLOPs per step); the exponent read only "
                   f"when R² ≥ {GOOD_FIT_R2:g}, against 1 by its 95% CI")


def throughput(records: list[Record]) -> Finding | None:
    table = throughput_table(records)
    if table.empty:
        return None
    parts = []
    for row in table.itertuples():
        mfu = f", MFU {100 * row.mfu_total:.1f}%" if pd.notna(row.mfu_total) else ""
        parts.append(f"{row.label} {row.tflops_total:.2f} TFLOP/s{mfu}")
    peak = table["peak_tflops"].iloc[0]
    device = records[0].device_name
    basis = (f"model FLOPs / mean step time; MFU against a {peak:g} TFLOP/s datasheet peak"
             if pd.notna(peak) else f"model FLOPs / mean step time; MFU not computed: "
             f"no datasheet peak known for {device}")
    best = table.loc[table["tflops_total"].idxmax()]
    highest = f" The highest is {best['label']} at {best['tflops_total']:.2f} TFLOP/s." if len(table) > 1 else ""
    return Finding(
        "throughput", f"Achieved throughput: {'; '.join(parts)}.{highest}",
        {"tflops": dict(zip(table["label"], table["tflops_total"])), "mfu": dict(zip(table["label"], table["mfu_total"]))},
        basis,
    )


def noise(records: list[Record]) -> Finding | None:
    """Noisy phases by CV and CI width, and how many steps are Tukey outliers (variance.outlier_table)."""
    if not records:
        return None
    stats = run_phase_stats(records)
    if stats.empty:
        return None
    stats = stats.assign(ci_pct=100 * (stats["ci_high"] - stats["mean"]) / stats["mean"])
    noisy = stats[stats["noisy"].astype(bool)].sort_values("cv_pct", ascending=False)
    basis = (f"noisy when CV > {NOISY_CV_PCT:g}% or the 95% CI half-width > {NOISY_CI_PCT:g}% of the mean; outlier "
             "steps by the Tukey fences of each record's measured step totals")
    outliers = variance.outlier_table(records)
    fenced = sum(r.stats["total"]["n"] for r in records if r.stats["total"]["n"] >= variance.MIN_FENCED_STEPS)
    slow = sum(r["tail"] == "slow" for r in outliers)
    counted = ""
    if fenced:
        verb = "is a Tukey outlier" if len(outliers) == 1 else "are Tukey outliers"
        counted = (f"; {len(outliers)} of {fenced} measured steps {verb} ({slow} slow, {len(outliers) - slow} fast)"
                   if outliers else f"; none of the {fenced} measured steps is a Tukey outlier")
    if noisy.empty:
        top = stats.loc[stats["cv_pct"].idxmax()]
        widest = (f"the widest 95% CI is ±{stats['ci_pct'].max():.2f}% of its mean" if stats["ci_pct"].notna().any()
                  else "no CI exists with one measured step")
        claim = f"No phase is noisy: the highest CV is {top['cv_pct']:.1f}% ({top['label']} {top['phase']}) and {widest}"
    else:
        listed = ", ".join(f"{r.label} {r.phase} (CV {r.cv_pct:.1f}%, CI ±{r.ci_pct:.1f}%)" for r in noisy.itertuples())
        claim = f"{noisy['label'].nunique()} of {stats['label'].nunique()} sizes have noisy phases: {listed}"
    return Finding("variance", claim + counted + ".",
                   {"noisy": noisy[["label", "phase", "cv_pct", "ci_pct"]].to_dict("records"),
                    "max_cv_pct": float(stats["cv_pct"].max()), "outlier_steps": len(outliers), "slow": slow,
                    "fast": len(outliers) - slow, "fenced_steps": fenced}, basis)


def backward_ratio(records: list[Record]) -> Finding | None:
    ratios = {r.label: backward_forward_ratio(r) for r in records if "backward" in r.phases}
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


def out_of_memory(records: list[Record]) -> list[Finding]:
    return [
        Finding("oom", f"{r.label} ran out of memory in the {r.oom_phase} phase"
                + (f" on rank {r.oom_rank} of {r.world_size}." if r.oom_rank is not None else "."),
                {"label": r.label, "phase": r.oom_phase, "rank": r.oom_rank}, r.oom_message or "")
        for r in records if r.status == "oom"
    ]
