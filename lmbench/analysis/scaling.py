"""Scaling findings across sizes: time against parameters, each size's deviation from the FLOPs fit,
efficiency (launch-bound sizes) and the MFU trend; and, across groups, the speedup of each variant
(precision, attention, TF32) over its baseline and the growth of step time with context length."""

from __future__ import annotations

import statistics
from typing import Any

from lmbench.analysis.finding import Finding
from lmbench.analysis.tables import config_key, config_value, scaling_fit, throughput_table
from lmbench.stats import power_law_fit

DEVIATION_PCT = 15.0  # a size further than this from the FLOPs fit is named
CTX_EXPONENT_MARGIN = 0.15  # time and FLOPs exponents against ctx closer than this grow alike
LAUNCH_BOUND_EFFICIENCY = 0.5  # below this share of the group's best TFLOP/s a size is not compute-bound


def parameters(records: list[dict[str, Any]]) -> Finding | None:
    fit = scaling_fit(records, "params")
    if fit is None:
        return None
    points, (exponent, _, r2, *_) = fit
    return Finding("scaling (parameters)",
                   f"Step time grows as parameters^{exponent:.2f} (R² = {r2:.3f}, {len(points)} sizes).",
                   {"exponent": exponent, "r2": r2},
                   "least-squares fit of log(mean step time) on log(parameter count)")


def deviations(records: list[dict[str, Any]]) -> Finding | None:
    fit = scaling_fit(records)
    if fit is None:
        return None
    points, (exponent, scale, *_) = fit
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


DESCRIBED_FIELDS = ("mode", "precision", "attention", "tf32", "batch", "ctx")  # what a configuration is named by
# Fields whose variants a run may hold side by side, the baseline each variant is measured against, and what
# the pairing ignores besides the field itself (TF32 only means something in fp32).
VARIANTS = {"precision": ("fp32", ("tf32",)), "attention": ("naive", ()), "tf32": (False, ())}


def variant_speedups(records: list[dict[str, Any]], field: str) -> Finding | None:
    """Baseline time / variant time for configurations that differ only in `field` (VARIANTS)."""
    baseline, ignored = VARIANTS[field]
    leave_out = (field, *ignored)
    ok = [r for r in records if r["status"] == "ok"]
    bases = {config_key(r, leave_out): r for r in ok if config_value(r, field) == baseline}
    named_by = [f for f in _varying(ok) if f not in leave_out] + [field]
    speedups = {}
    for record in ok:
        base = bases.get(config_key(record, leave_out))
        if base and config_value(record, field) != baseline:
            name = describe(record, named_by)
            speedups[name] = base["stats"]["total"]["mean"] / record["stats"]["total"]["mean"]
    if not speedups:
        return None
    lo, hi = min(speedups, key=speedups.get), max(speedups, key=speedups.get)
    slower = [name for name, value in speedups.items() if value < 1]
    span = f"{speedups[lo]:.2f}× ({lo})" + (f" to {speedups[hi]:.2f}× ({hi})" if lo != hi else "")
    base_name = f"{field} {_shown(baseline)}"
    claim = (f"Against {base_name} ({base_name} time / variant time): {span}"
             + (f", median {statistics.median(speedups.values()):.2f}× over {len(speedups)} configurations"
                if len(speedups) > 2 else "") + "."
             + (f" Slower than {base_name} in {len(slower)}: {', '.join(slower)}." if slower else ""))
    return Finding(field, claim, {"speedup": speedups, "slower": slower},
                   f"{base_name} mean step total / variant mean step total, configurations otherwise equal")


def context_scaling(records: list[dict[str, Any]]) -> Finding | None:
    """Per configuration, step time against context length (three or more ctx values, batch fixed), beside
    the growth of the model FLOPs over the same contexts: a size whose time grows slower than its FLOPs
    under-uses the device at the short contexts; one that grows faster meets a cost FLOPs do not count."""
    ok = [r for r in records if r["status"] == "ok" and r["throughput"]["flops"]["total"]]
    runs: dict[tuple, dict[int, dict[str, Any]]] = {}
    for record in ok:
        runs.setdefault(config_key(record, ("ctx",)), {})[record["config"]["ctx"]] = record
    varying = [f for f in _varying(ok) if f != "ctx"]
    fits = {}
    for by_ctx in runs.values():
        if len(by_ctx) < 3:
            continue
        ctxs = sorted(by_ctx)
        name = describe(by_ctx[ctxs[0]], varying)
        time_exp, _, r2, *_ = power_law_fit(ctxs, [by_ctx[c]["stats"]["total"]["mean"] for c in ctxs])
        flops_exp, *_ = power_law_fit(ctxs, [by_ctx[c]["throughput"]["flops"]["total"] for c in ctxs])
        fits[name] = {"ctx": ctxs, "time_exponent": time_exp, "r2": r2, "flops_exponent": flops_exp}
    if not fits:
        return None
    slower = [k for k, v in fits.items() if v["time_exponent"] < v["flops_exponent"] - CTX_EXPONENT_MARGIN]
    faster = [k for k, v in fits.items() if v["time_exponent"] > v["flops_exponent"] + CTX_EXPONENT_MARGIN]
    ctxs = sorted({c for v in fits.values() for c in v["ctx"]})
    flops_exps = [v["flops_exponent"] for v in fits.values()]
    listed = ", ".join(f"{k} ctx^{v['time_exponent']:.2f}" for k, v in fits.items())
    flops_span = " to ".join(dict.fromkeys(f"ctx^{e:.2f}" for e in (min(flops_exps), max(flops_exps))))
    claim = (f"Step time against context length (ctx {ctxs[0]}–{ctxs[-1]}, batch fixed): {listed}; the model FLOPs "
             f"grow as {flops_span} over the same contexts.")
    if slower:
        claim += f" Time grows slower than FLOPs for {', '.join(slower)}: the short contexts leave the device under-used."
    if faster:
        claim += f" Time grows faster than FLOPs for {', '.join(faster)}: a cost the FLOP count misses rises with ctx."
    if all(v["time_exponent"] < 1.5 for v in fits.values()):
        claim += " No configuration's time is near quadratic (ctx²) in this range."
    return Finding("context length", claim, {"fits": fits, "slower_than_flops": slower, "faster_than_flops": faster},
                   f"least-squares fit of log(mean step time) and log(model FLOPs) on log(ctx) per configuration; "
                   f"'slower'/'faster' when the exponents differ by more than {CTX_EXPONENT_MARGIN:g}")


def _varying(records: list[dict[str, Any]]) -> list[str]:
    """The configuration fields (besides the size) that take more than one value among `records`."""
    return [f for f in DESCRIBED_FIELDS if len({str(config_value(r, f)) for r in records}) > 1]


def describe(record: dict[str, Any], fields: list[str]) -> str:
    """'small ctx 512 bf16 attention naive': the size label, then the named fields' values."""
    parts = [record["model"]["label"]]
    for field in fields:
        value = _shown(config_value(record, field))
        parts.append(f"{field} {value}" if field in ("ctx", "batch", "attention", "tf32") else str(value))
    return " ".join(parts)


def _shown(value: Any) -> Any:
    return ("on" if value else "off") if isinstance(value, bool) else value
