"""Scaling findings across sizes: time against parameters, each size's deviation from the FLOPs fit,
efficiency (launch-bound sizes) and the MFU trend; and, across groups, precision speedups."""

from __future__ import annotations

from typing import Any

from lmbench.analysis.finding import Finding
from lmbench.analysis.tables import scaling_points, throughput_table
from lmbench.stats import power_law_fit

DEVIATION_PCT = 15.0  # a size further than this from the FLOPs fit is named
LAUNCH_BOUND_EFFICIENCY = 0.5  # below this share of the group's best TFLOP/s a size is not compute-bound


def parameters(records: list[dict[str, Any]]) -> Finding | None:
    points = scaling_points(records, "params")
    if len(points) < 3:
        return None
    exponent, _, r2 = power_law_fit([p[0] for p in points], [p[1] for p in points])
    return Finding("scaling (parameters)",
                   f"Step time grows as parameters^{exponent:.2f} (R² = {r2:.3f}, {len(points)} sizes).",
                   {"exponent": exponent, "r2": r2},
                   "least-squares fit of log(mean step time) on log(parameter count)")


def deviations(records: list[dict[str, Any]]) -> Finding | None:
    points = scaling_points(records)
    if len(points) < 3:
        return None
    exponent, scale, _ = power_law_fit([p[0] for p in points], [p[1] for p in points])
    residual = {label: 100 * (time / (scale * flops**exponent) - 1) for flops, time, label in points}
    far = {k: v for k, v in residual.items() if abs(v) > DEVIATION_PCT}
    listed = ", ".join(f"{k} {v:+.0f}%" for k, v in residual.items())
    claim = (f"Against the FLOPs fit, sizes deviate by {listed}"
             + (f"; {', '.join(far)} sit more than {DEVIATION_PCT:g}% off the curve." if far
                else f"; none is more than {DEVIATION_PCT:g}% off the curve."))
    return Finding("scaling (per size)", claim, {"residual_pct": residual},
                   "measured mean / power-law prediction from the FLOPs fit, minus 1")


def efficiency(records: list[dict[str, Any]]) -> Finding | None:
    """Sizes far below the group's best achieved TFLOP/s: time set by launches and host work, not FLOPs;
    and whether MFU rises or falls with size."""
    ok = [r for r in records if r["status"] == "ok"]
    if len(ok) < 2:
        return None
    table = throughput_table(ok).dropna(subset=["tflops_total"])
    if len(table) < 2:
        return None
    best = table["tflops_total"].max()
    share = dict(zip(table["label"], table["tflops_total"] / best))
    slow = [label for label, s in share.items() if s < LAUNCH_BOUND_EFFICIENCY]
    tflops = list(table["tflops_total"])
    trend = ("rises with every size" if all(b > a for a, b in zip(tflops, tflops[1:]))
             else "falls with every size" if all(b < a for a, b in zip(tflops, tflops[1:])) else "is not monotonic in size")
    metric = "MFU" if table["mfu_total"].notna().all() else "achieved TFLOP/s"
    claim = f"{metric} {trend} ({', '.join(f'{k} {v:.0%} of the best' for k, v in share.items())})."
    if slow:
        claim += (f" {', '.join(slow)} reach less than {LAUNCH_BOUND_EFFICIENCY:.0%} of the best rate: their time is "
                  "set by kernel launches and host work rather than FLOPs (launch-bound); the kernel reports' "
                  "busy share and --cuda-graph replays measure it.")
    return Finding("efficiency", claim, {"share_of_best": share, "launch_bound": slow},
                   f"achieved TFLOP/s / best in the group; launch-bound below {LAUNCH_BOUND_EFFICIENCY:.0%}")


def precision_speedups(records: list[dict[str, Any]]) -> Finding | None:
    """fp32 time / reduced-precision time for configurations that differ only in precision."""
    def key(record: dict[str, Any]) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in record["config"].items() if k not in ("precision", "tf32")))

    fp32 = {key(r): r for r in records if r["status"] == "ok" and r["config"]["precision"] == "fp32"}
    speedups = {}
    for record in records:
        base = fp32.get(key(record))
        if base and record["status"] == "ok" and record["config"]["precision"] != "fp32":
            name = f"{record['model']['label']} {record['config']['mode']} ctx {record['config']['ctx']} " \
                   f"{record['config']['precision']}"
            speedups[name] = base["stats"]["total"]["mean"] / record["stats"]["total"]["mean"]
    if not speedups:
        return None
    lo, hi = min(speedups, key=speedups.get), max(speedups, key=speedups.get)
    return Finding("precision", f"Reduced precision against fp32: from {speedups[lo]:.2f}× ({lo}) to "
                   f"{speedups[hi]:.2f}× ({hi}) faster" + (f" over {len(speedups)} configurations." if len(speedups) > 2
                                                            else "."),
                   {"speedup": speedups}, "fp32 mean step total / reduced-precision mean step total, same configuration")
