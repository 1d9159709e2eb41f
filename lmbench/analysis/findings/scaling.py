"""Scaling findings across sizes: time against parameters, each size's deviation from the FLOPs fit,
efficiency (sizes far below the best rate, and whether a graph replay shows them host-bound) and the MFU
trend; and, across groups, the speedup of each variant (precision, attention, TF32) over its baseline and
the growth of step time with context length. Every fit is read through fits.py; every faster/slower claim
comes from decision.compare_records, the project's one decision rule."""

from __future__ import annotations

import dataclasses
import shlex

from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.fits import fit_numbers, fit_text, is_clear, relation_to
from lmbench.analysis.findings.overhead import HOST_BOUND_PCT, host_bound_sizes, overhead_table
from lmbench.analysis.groups import config_key, describe, varying
from lmbench.analysis.tables import scaling_fit, throughput_table
from lmbench.results.record import Record
from lmbench.results.stats import power_law_fit

DEVIATION_PCT = 15.0  # a size further than this from the FLOPs fit is named
CTX_EXPONENT_MARGIN = 0.15  # time and FLOPs exponents against ctx closer than this grow alike
LOW_RATE_SHARE = 0.5  # below this share of the group's best TFLOP/s a size's rate is called low
QUADRATIC_NEAR = 1.5  # a ctx exponent whose CI reaches this is not ruled out as near quadratic


def parameters(records: list[Record]) -> Finding | None:
    fit = scaling_fit(records, "params")
    if fit is None:
        return None
    points, law = fit
    claim = (f"Step time grows as {fit_text(law, 'parameters', 'sizes')}." if is_clear(law)
             else f"Step time against parameters: {fit_text(law, 'parameters', 'sizes')}.")
    return Finding("scaling (parameters)", claim, fit_numbers(law),
                   "least-squares fit of log(mean step time) on log(parameter count)")


def deviations(records: list[Record]) -> Finding | None:
    """Each size's distance from a clear FLOPs fit; nothing when the fit is not clear (no curve to be off)."""
    fit = scaling_fit(records)
    if fit is None or not is_clear(fit[1]):
        return None
    points, (exponent, scale, *_) = fit
    residual = {label: 100 * (time / (scale * flops**exponent) - 1) for flops, time, label in points}
    far = {k: v for k, v in residual.items() if abs(v) > DEVIATION_PCT}
    listed = ", ".join(f"{k} {v:+.0f}%" for k, v in residual.items())
    claim = (f"Against the FLOPs fit, sizes deviate by {listed}"
             + (f"; {', '.join(far)} {_verb(far, 'sits', 'sit')} more than {DEVIATION_PCT:g}% off the curve." if far
                else f"; none is more than {DEVIATION_PCT:g}% off the curve."))
    return Finding("scaling (per size)", claim, {"residual_pct": residual},
                   "measured mean / power-law prediction from the FLOPs fit, minus 1")


def efficiency(records: list[Record]) -> Finding | None:
    """Each size's share of the group's best achieved TFLOP/s and whether MFU rises or falls with size. A low
    rate alone does not say why: on CUDA a graph replay in the same record measures the host share (host-bound
    at HOST_BOUND_PCT); without one the finding names the command that would measure it. CPU runs get the
    rates only."""
    ok = [r for r in records if r.ok]
    if len(ok) < 2:
        return None
    table = throughput_table(ok).dropna(subset=["tflops_total"])
    if len(table) < 2:
        return None
    best = table.loc[table["tflops_total"].idxmax()]
    tflops = {label: float(value) for label, value in zip(table["label"], table["tflops_total"])}
    share = {label: float(value / best["tflops_total"]) for label, value in tflops.items()}
    low = [label for label, s in share.items() if s < LOW_RATE_SHARE]
    rates = list(tflops.values())
    trend = ("rises with every size" if all(b > a for a, b in zip(rates, rates[1:]))
             else "falls with every size" if all(b < a for a, b in zip(rates, rates[1:])) else "is not monotonic in size")
    metric = "MFU" if table["mfu_total"].notna().all() else "Achieved TFLOP/s"
    claim = f"{metric} {trend} ({', '.join(f'{k} {v:.0%} of the best' for k, v in share.items())})."
    if low:
        claim += (f" {', '.join(f'{k} ({tflops[k]:.3g} TFLOP/s)' for k in low)} {_verb(low, 'reaches', 'reach')} "
                  f"less than {LOW_RATE_SHARE:.0%} "
                  f"of the best rate ({best['label']}, {best['tflops_total']:.3g} TFLOP/s).")
    split = overhead_table(ok)
    split = split[split["error"].isna()].set_index("label")
    host_pct = {str(label): row["host_pct"] for label, row in split.iterrows()}
    host_bound = host_bound_sizes(split)
    if host_bound:
        claim += (f" The CUDA graph replay shows {_listed(host_bound, host_pct)} host-bound: the GPU waited on the "
                  f"host for at least {HOST_BOUND_PCT:g}% of the eager step.")
    not_host_bound = [label for label in low if label in host_pct and label not in host_bound]
    if not_host_bound:
        claim += (f" The graph replay puts the exposed host time of {_listed(not_host_bound, host_pct)} below "
                  f"{HOST_BOUND_PCT:g}%: not host-bound.")
    by_label = {r.label: r for r in ok}
    undecided = {label: deciding_command(by_label[label]) for label in low
                 if label not in host_pct and by_label[label].on_cuda}
    if undecided:
        commands = ", ".join(f"`{command}`" for command, _ in undecided.values())
        measures = " and ".join(dict.fromkeys(measures for _, measures in undecided.values()))
        claim += (f" Whether host work sets the time of {', '.join(undecided)} is not measured here: {commands} "
                  f"would measure {measures}.")
    basis = f"achieved TFLOP/s / best in the group, low below {LOW_RATE_SHARE:.0%}"
    if any(r.on_cuda for r in ok):
        basis += (f"; host-bound when a CUDA graph replay puts the exposed host time at ≥ {HOST_BOUND_PCT:g}% of the "
                  "eager step")
    return Finding("efficiency", claim,
                   {"tflops": tflops, "share_of_best": share, "low_rate": low, "host_pct": host_pct,
                    "host_bound": host_bound, "commands": {k: v[0] for k, v in undecided.items()}}, basis)


def deciding_command(record: Record) -> tuple[str, str]:
    """(the command that would measure whether host work sets a CUDA record's time, what it measures): the
    same configuration with --cuda-graph, or under `lmbench nsys` where a graph cannot be captured (fp16, or a
    capture that already failed); a data-parallel job (no graph of a job's step, no nsys of a job yet) under
    `lmbench profile`, whose kernel report gives the same busy share from each rank's trace."""
    config = record.config
    if config.parallel != "none":
        return (f"lmbench profile {shlex.join(config.to_args())} --nproc-per-node {record.world_size}",
                "the GPU busy share of each phase")
    if config.precision == "fp16" or "error" in record.graph:
        return "lmbench nsys " + shlex.join(config.to_args()), "the GPU busy share of each phase"
    return ("lmbench bench " + shlex.join(dataclasses.replace(config, cuda_graph=True).to_args()),
            "the host share of the step")


def _verb(subjects: list[str], one: str, many: str) -> str:
    return one if len(subjects) == 1 else many


def _listed(labels: list[str], host_pct: dict[str, float]) -> str:
    return ", ".join(f"{label} ({host_pct[label]:.0f}%)" for label in labels)


def context_scaling(records: list[Record]) -> Finding | None:
    """Per configuration, step time against context length (three or more ctx values, batch fixed), beside
    the growth of the model FLOPs over the same contexts: a size whose time grows slower than its FLOPs
    under-uses the device at the short contexts; one that grows faster meets a cost FLOPs do not count.
    Only clear fits (fits.py) are compared, and only where the time exponent's CI excludes the FLOPs'."""
    ok = [r for r in records if r.ok and r.throughput["flops"]["total"]]
    runs: dict[tuple, dict[int, Record]] = {}
    for record in ok:
        runs.setdefault(config_key(record, ("ctx",)), {})[record.config_value("ctx")] = record
    named_by = [f for f in varying(ok) if f != "ctx"]
    fits, laws = {}, {}
    for by_ctx in runs.values():
        if len(by_ctx) < 3:
            continue
        ctxs = sorted(by_ctx)
        name = describe(by_ctx[ctxs[0]], named_by)
        laws[name] = power_law_fit(ctxs, [by_ctx[c].mean_ms() for c in ctxs])
        flops_exp = power_law_fit(ctxs, [by_ctx[c].throughput["flops"]["total"] for c in ctxs]).exponent
        fits[name] = {"ctx": ctxs, **fit_numbers(laws[name]), "time_exponent": laws[name].exponent,
                      "flops_exponent": flops_exp}
    if not fits:
        return None

    def against_flops(name: str, side: str) -> bool:
        law, flops_exp = laws[name], fits[name]["flops_exponent"]
        gap = law.exponent - flops_exp if side == "above" else flops_exp - law.exponent
        return is_clear(law) and relation_to(law, flops_exp) == side and gap > CTX_EXPONENT_MARGIN

    slower = [name for name in fits if against_flops(name, "below")]
    faster = [name for name in fits if against_flops(name, "above")]
    ctxs = sorted({c for v in fits.values() for c in v["ctx"]})
    flops_exps = [v["flops_exponent"] for v in fits.values()]
    listed = "; ".join(f"{name} {fit_text(law, 'ctx', 'contexts')}" for name, law in laws.items())
    flops_span = " to ".join(dict.fromkeys(f"ctx^{e:.2f}" for e in (min(flops_exps), max(flops_exps))))
    claim = (f"Step time against context length (ctx {ctxs[0]}–{ctxs[-1]}, batch fixed): {listed}. The model FLOPs "
             f"grow as {flops_span} over the same contexts.")
    if slower:
        claim += f" Time grows slower than FLOPs for {', '.join(slower)}: the short contexts leave the device under-used."
    if faster:
        claim += f" Time grows faster than FLOPs for {', '.join(faster)}: a cost the FLOP count misses rises with ctx."
    clear = [law for law in laws.values() if is_clear(law)]
    if clear and all(relation_to(law, QUADRATIC_NEAR) == "below" for law in clear):
        claim += f" No clear fit reaches ctx^{QUADRATIC_NEAR:g} (every CI ends below it): nothing near quadratic here."
    return Finding("context length", claim, {"fits": fits, "slower_than_flops": slower, "faster_than_flops": faster},
                   f"least-squares fit of log(mean step time) and log(model FLOPs) on log(ctx) per configuration; "
                   f"'slower'/'faster' when the fit is clear, the time exponent's 95% CI excludes the FLOPs exponent "
                   f"and the two differ by more than {CTX_EXPONENT_MARGIN:g}")
