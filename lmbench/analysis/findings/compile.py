"""torch.compile findings: what compiling cost (the first step, timed apart from the others) and any
recompilation, which inside the measured steps puts compile time into the timings."""

from __future__ import annotations

from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.groups import describe, varying
from lmbench.results.record import Record


def compile_cost(records: list[Record]) -> Finding | None:
    """Each compiled record's first step (compiling forward, backward) against its measured mean step."""
    named = _named([r for r in records if r.compile and "first_step_s" in r.compile])
    compiled = {name: r for name, r in named}
    if not compiled:
        return None
    rows = {label: {"mode": r.compile["mode"], "first_step_s": r.compile["first_step_s"],
                    "mean_step_ms": r.stats["total"]["mean"], "frames": r.compile.get("frames"),
                    "graph_breaks": r.compile.get("graph_breaks"), "fx_cache_hits": r.compile.get("fx_cache_hits"),
                    "fx_cache_misses": r.compile.get("fx_cache_misses"),
                    "cudagraph_skips": r.compile.get("cudagraph_skips")} for label, r in compiled.items()}
    parts = [f"{label} (mode {row['mode']}) {row['first_step_s']:.1f} s{_cache(row)}, then {row['mean_step_ms']:.1f} ms "
             "per step" + (f", {row['graph_breaks']} graph break(s)" if row["graph_breaks"] else "")
             + (f", {row['cudagraph_skips']} graph(s) left out of CUDA graphs" if row["cudagraph_skips"] else "")
             for label, row in rows.items()]
    warm = [label for label, row in rows.items() if row["fx_cache_hits"]]
    text = "torch.compile's first step (compiling, untimed in the statistics): " + "; ".join(parts) + "."
    if warm:
        text += (f" {', '.join(warm)}: compiled graphs taken from inductor's on-disk cache (a configuration "
                 "compiled earlier on this machine), so a warm-cache time, not what a first compile costs.")
    return Finding("compile", text, {"compiled": rows}, "the compile step's wall-clock time, before warm-up; "
                   "torch._dynamo's frame and graph-break counters; inductor's FX graph cache and CUDA graph skip counters")


def _cache(row: dict) -> str:
    """' (2 of 3 graphs from inductor's cache)' when the record counted cache lookups; '' for older records."""
    hits, misses = row["fx_cache_hits"], row["fx_cache_misses"]
    if hits is None or not hits + misses:
        return ""
    return f" ({hits} of {hits + misses} graphs from inductor's cache)"


def recompiles(records: list[Record]) -> Finding | None:
    """Compiled records that compiled again during the measured steps: those timings include compiling."""
    found = {name: r.compile["recompiles_measured"] for name, r in _named(records)
             if r.compile and r.compile.get("recompiles_measured")}
    if not found:
        return None
    listed = ", ".join(f"{label} ({count} graph(s))" for label, count in found.items())
    return Finding("compile", f"torch.compile recompiled during the measured steps of {listed}: a guard failed (a "
                   "new input shape, a changed global) and its compile time is inside those timings, so they are not "
                   "steady state.", {"recompiles_measured": found},
                   "torch._dynamo graphs compiled between the first measured step and the last")


def _named(records: list[Record]) -> list[tuple[str, Record]]:
    """Each record under a name that tells it from the others ('small', or 'small train-step' when modes differ)."""
    fields = varying(records)
    return [(describe(r, fields), r) for r in records]
