"""Variant findings across the groups of one run: the speedup of each variant (precision, attention, TF32, SDPA
backend, compile mode, optimizer, parameters' dtype) over its baseline, each pair judged by decision.compare_records,
the project's one decision rule."""

from __future__ import annotations

import math
import statistics
from typing import Any

from lmbench.analysis.decision import TOO_FEW, compare_records, plural
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.groups import describe, field_text, varying
from lmbench.analysis.groups import config_key
from lmbench.results.record import Record
from lmbench.results.stats import CONFIDENCE

# Fields whose variants a run may hold side by side, the baseline each variant is measured against, and what
# the pairing ignores besides the field itself (TF32 only means something in fp32).
VARIANTS = {"precision": ("fp32", ("tf32",)), "attention": ("naive", ()), "tf32": (False, ()),
            "sdpa_backend": ("auto", ()), "compile": ("off", ()), "optimizer": ("adamw-foreach", ()),
            "param_dtype": ("fp32", ())}


def variant_speedups(records: list[Record], field: str) -> Finding | None:
    """Baseline time / variant time for configurations that differ only in `field` (VARIANTS), each pair with
    the CI and verdict of decision.compare_records: 'faster' and 'slower' only where that CI excludes no change."""
    baseline, ignored = VARIANTS[field]
    leave_out = (field, *ignored)
    ok = [r for r in records if r.ok]
    bases = {config_key(r, leave_out): r for r in ok if r.config_value(field) == baseline}
    named_by = [f for f in varying(ok) if f not in leave_out] + [field]
    pairs = {}
    for record in ok:
        base = bases.get(config_key(record, leave_out))
        if base and record.config_value(field) != baseline:
            pairs[describe(record, named_by)] = speedup(base, record)
    if not pairs:
        return None
    speedups = {name: pair["speedup"] for name, pair in pairs.items()}
    base_name = field_text(field, baseline)
    units = sorted({plural(p['unit']) for p in pairs.values()})
    listed = ", ".join(f"{name} {ratio_text(pair)}" for name, pair in pairs.items())
    claim = (f"Against {base_name} ({base_name} time / variant time, {CONFIDENCE:.0%} CI with {' and '.join(units)} as "
             f"the unit): {listed}"
             + (f"; median {statistics.median(speedups.values()):.2f}× over {len(pairs)} configurations"
                if len(pairs) > 2 else "") + ".")
    by_verdict = {v: [name for name, p in pairs.items() if p["verdict"] == v]
                  for v in ("faster", "slower", "no significant change", TOO_FEW)}
    # The exceptions are named; the faster pairs are counted (each pair's verdict is listed above).
    counted = [f"{v} in {len(names)}" + (f" ({', '.join(names)})" if v != "faster" else "")
               for v, names in by_verdict.items() if names]
    if len(pairs) > 1:
        claim += f" Against {base_name}: {'; '.join(counted)}."
    return Finding(field, claim,
                   {"speedup": speedups, "pairs": pairs, "faster": by_verdict["faster"], "slower": by_verdict["slower"],
                    "not_significant": by_verdict["no significant change"]},
                   f"{base_name} mean step total / variant mean step total, configurations otherwise equal; Welch "
                   f"{CONFIDENCE:.0%} CI of the change (compare's rule: process means as samples when both sides hold "
                   "several processes, else the measured steps); faster or slower only when the CI excludes 1×")


def speedup(base: Record, variant: Record) -> dict[str, Any]:
    """compare_records(base, variant) as a speedup (base time / variant time) with its CI."""
    result = compare_records(base, variant, 1 - CONFIDENCE)
    pair = {"verdict": result["verdict"], "unit": result["unit"], "n_base": result["n_a"], "n_variant": result["n_b"]}
    if result["verdict"] == TOO_FEW:
        return {**pair, "speedup": base.mean_ms() / variant.mean_ms(),
                "ci_low": None, "ci_high": None}
    # The variant's time is (1 + Δ) times the baseline's, so the speedup is 1 / (1 + Δ) and its CI the image of Δ's.
    ratio = lambda pct: 1 / (1 + pct / 100) if pct > -100 else math.inf  # noqa: E731
    return {**pair, "speedup": ratio(result["delta_pct"]), "ci_low": ratio(result["ci_high_pct"]),
            "ci_high": ratio(result["ci_low_pct"]), "delta_pct": result["delta_pct"]}


def ratio_text(pair: dict[str, Any], percent: bool = False) -> str:
    """A speedup() pair as '1.67× (0.79–∞, no significant change)', or with `percent` (an efficiency) as
    '69.4% (61.9–77.8%, CI below 100%)'. An upper bound is ∞ when the variant's time CI reaches 0."""
    scale, spec, unit = (100, ".1f", "%") if percent else (1, ".2f", "×")

    def shown(value: float) -> str:
        return "∞" if math.isinf(value) else f"{scale * value:{spec}}"
    if pair["ci_low"] is None:
        return f"{shown(pair['speedup'])}{unit} ({pair['verdict']}: {pair['n_base']} vs {pair['n_variant']} " \
               f"{plural(pair['unit'])})"
    verdict = pair["verdict"]
    if percent:  # compare's verdict on the job (slower, faster or neither) as where the CI lies against 100%
        verdict = {"slower": "CI below 100%", "faster": "CI above 100%"}.get(verdict, "CI includes 100%")
    return f"{shown(pair['speedup'])}{unit} ({shown(pair['ci_low'])}–{shown(pair['ci_high'])}{'%' if percent else ''}, " \
           f"{verdict})"
