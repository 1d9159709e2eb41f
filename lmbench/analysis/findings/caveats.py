"""Caveats: what makes a group's findings weaker than their numbers alone suggest. What held the steps back
(variance.interference: other processes, swap, GPU clock events), phases so noisy that one mean says little, and a
profiler's overhead inside the times. The report shows each before the group's findings."""

from __future__ import annotations

from typing import Callable

from lmbench.analysis.findings.finding import CAVEAT, Finding
from lmbench.analysis.findings.variance import OTHER_LOAD_PCT, interference, interference_text, on_gpu
from lmbench.results.record import Record

HIGH_CV_PCT = 20.0  # a phase whose steps vary more than this has a mean too rough to carry fine findings


def label(record: Record) -> str:
    return record.label


def caveats(records: list[Record], name: Callable[[Record], str] = label) -> list[Finding]:
    """The caveats of `records` (topic CAVEAT), each record named by `name`."""
    ok = [r for r in records if r.ok]
    out = []
    summaries = {name(r): r.telemetry.get("summary", {}) for r in ok}
    held = {k: found for k, summary in summaries.items() if (found := interference(summary))}
    if held:
        nvml = ", or an NVML clock event reason other than idle" if any(map(on_gpu, summaries.values())) else ""
        listed = "; ".join(f"{k}: {', '.join(interference_text(v))}" for k, v in held.items())
        text = (f"Something held the measured steps back — {listed}. These times include its effect, so a run "
                "without it may differ.")
        if any("software power cap" in found.get("clock_events", []) for found in held.values()):
            text += (" A software power cap is the GPU keeping within its power limit: the load itself can set it off, "
                     "so every run of such a configuration on this GPU may meet it.")
        out.append(Finding(CAVEAT, text, {"interference": held},
                           f"telemetry during the measured steps: other processes above {OTHER_LOAD_PCT:g}% of the "
                           f"CPU, any swap in use{nvml}"))
    noisy = {f"{name(r)} {phase}": r.stats[phase]["cv_pct"] for r in ok for phase in r.phases
             if r.stats[phase]["cv_pct"] > HIGH_CV_PCT}
    if noisy:
        listed = ", ".join(f"{k} ({v:.1f}%)" for k, v in noisy.items())
        out.append(Finding(CAVEAT, f"Step times vary by more than {HIGH_CV_PCT:g}% (CV) in {listed}: these means are "
                           "rough, and findings built on them carry that uncertainty.", {"high_cv_pct": noisy},
                           f"coefficient of variation of the measured steps above {HIGH_CV_PCT:g}%"))
    profiled = {name(r): r.profiler for r in records if r.profiler}
    if profiled:
        tools = ", ".join(sorted(set(profiled.values())))
        out.append(Finding(CAVEAT, f"{', '.join(profiled)} ran under a profiler ({tools}): their times include the "
                           "profiler's overhead and are not comparable with plain runs.", {"profiler": profiled},
                           "the profiler recorded with each record"))
    return out
