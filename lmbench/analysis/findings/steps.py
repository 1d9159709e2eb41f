"""Findings read from the order of the steps: the first step against steady state, and whether and when the
step times settle. Each process of a record is judged on its own (a fresh process warms up afresh), against
its own measured median, and steps are named as the step plots number them: `sample["step"]`, the index
among all steps of the process, warm-up included, and "process p step s" when a record merges several."""

from __future__ import annotations

import math
import statistics
from typing import Any, NamedTuple

from lmbench.analysis.findings.finding import Finding
from lmbench.results.record import Record, process_indices, process_of

STEADY_PCT = 10.0  # a step is steady when its total is within this of its process's measured median
MIN_STEADY_STEPS = 3  # fewer steady steps than this (or than MIN_STEADY_SHARE of them) is not a steady state
MIN_STEADY_SHARE = 0.25
# The states a process's steps end in (steady_state's verdicts), in the order the finding lists them.
STATES = {"settled": "settled (every measured step within the band)",
          "settling": "still settling when the measured steps began, so the statistics include unfinished warm-up",
          "jitter": "outside the band after settling: scattered jitter, not warm-up",
          "unsettled": "never settled"}


class Step(NamedTuple):
    process: int
    step: int  # as the plots number it: index among all steps of its process, warm-up included
    total_ms: float
    warmup: bool


def process_steps(record: Record) -> dict[int, list[Step]]:
    """Every step of a record (warm-up included) with its total, per process, in step order."""
    out: dict[int, list[Step]] = {}
    for sample, total in zip(record.samples, record.totals(include_warmup=True)):
        out.setdefault(process_of(sample), []).append(Step(process_of(sample), sample["step"], total, sample["warmup"]))
    return out


def merged(record: Record) -> bool:
    """Whether the record merges the steps of several processes (--repeats)."""
    return len(process_indices(record.samples)) > 1


def step_name(step: Step, several: bool) -> str:
    """'step 7', or 'process 1 step 7' among the steps of several processes."""
    return f"process {step.process} step {step.step}" if several else f"step {step.step}"


def _process_names(record: Record) -> dict[int, str]:
    """Each process's name in a claim: the size label, with the process when the record has several."""
    label, several = record.label, merged(record)
    return {p: f"{label} process {p}" if several else label for p in process_steps(record)}


def first_step(records: list[Record]) -> Finding | None:
    """Each process's first step against its measured median: slower, faster or about the same (within
    STEADY_PCT) as steady state, read from the ratio and nothing else."""
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        if not record.ok or not record.samples:
            continue
        names = _process_names(record)
        for process, steps in process_steps(record).items():
            median = statistics.median(s.total_ms for s in steps if not s.warmup)
            ratio = steps[0].total_ms / median
            verdict = ("slower" if ratio > 1 + STEADY_PCT / 100 else "faster" if ratio < 1 - STEADY_PCT / 100
                       else "about the same")
            rows[names[process]] = {"first_ms": steps[0].total_ms, "median_ms": median, "ratio": ratio,
                                    "verdict": verdict, "warmup": steps[0].warmup}
    if not rows:
        return None
    parts = []
    phrases = {"slower": "slower than steady state", "faster": "faster than steady state",
               "about the same": f"about as fast as steady state (within ±{STEADY_PCT:g}%)"}
    for verdict, phrase in phrases.items():
        listed = [f"{name} ({row['ratio']:.2f}×: {row['first_ms']:.1f} ms against {row['median_ms']:.1f} ms)"
                  for name, row in rows.items() if row["verdict"] == verdict]
        if listed:
            parts.append(f"{phrase} for {', '.join(listed)}")
    warm = [name for name, row in rows.items() if row["warmup"]]
    where = ("a warm-up step, excluded from the statistics" if len(warm) == len(rows) else
             "a measured step (no warm-up), inside the statistics" if not warm else
             f"a warm-up step, excluded from the statistics, for {', '.join(warm)} only; the others' is inside them")
    return Finding("warm-up", f"The first step is {'; '.join(parts)}. It was {where}.",
                   {"first": rows, "ratios": {k: v["ratio"] for k, v in rows.items()},
                    "verdicts": {k: v["verdict"] for k, v in rows.items()}},
                   f"total time of each process's first step / median total of its measured steps; 'about the same' "
                   f"within ±{STEADY_PCT:g}%")


def settling(steps: list[Step]) -> dict[str, Any]:
    """The state a process's steps end in (one of STATES), judged on its measured steps against their median:
    'settled' when all lie within ±STEADY_PCT; 'settling' when the ones outside form a run at the start of the
    measured steps; 'jitter' when some lie outside after the band was reached; 'unsettled' when, after the run
    at the start, fewer than MIN_STEADY_STEPS (or MIN_STEADY_SHARE of the measured steps, or a majority of the
    remaining steps) lie inside."""
    measured = [s for s in steps if not s.warmup]
    median = statistics.median(s.total_ms for s in measured)
    inside = [abs(s.total_ms / median - 1) * 100 <= STEADY_PCT for s in measured]
    lead = next((i for i, ok in enumerate(inside) if ok), len(inside))  # the run outside at the start
    later = [s.step for s, ok in zip(measured[lead:], inside[lead:]) if not ok]
    steady = len(measured) - lead - len(later)
    needed = max(MIN_STEADY_STEPS, math.ceil(MIN_STEADY_SHARE * len(measured)), (len(measured) - lead) // 2 + 1)
    outside = [s.step for s, ok in zip(measured, inside) if not ok]
    all_inside = [abs(s.total_ms / median - 1) * 100 <= STEADY_PCT for s in steps]
    steady_from = next((s.step for i, s in enumerate(steps) if all(all_inside[i:])), None)
    if not outside:
        state = "settled"
    elif steady < min(needed, len(measured)):
        state, steady_from = "unsettled", None
    else:
        state = "settling" if lead else "jitter"
        steady_from = measured[lead].step
    return {"state": state, "steady_from": steady_from, "outside": outside, "settling_steps": outside[:lead],
            "jitter_steps": later, "measured": len(measured), "median_ms": median}


def steady_state(records: list[Record]) -> Finding | None:
    """Per size (and process), which of STATES its steps end in, with the steps outside the band named."""
    judged: dict[str, dict[str, Any]] = {}
    for record in records:
        if not record.ok or not record.samples:
            continue
        names = _process_names(record)
        judged.update({names[p]: settling(steps) for p, steps in process_steps(record).items()})
    if not judged:
        return None
    parts = []
    for state, title in STATES.items():
        listed = [f"{name} ({_detail(v)})" for name, v in judged.items() if v["state"] == state]
        if listed:
            parts.append(f"{title}: {', '.join(listed)}")
    basis = (f"each process's steps against the median of its measured steps, band ±{STEADY_PCT:g}%; a steady state "
             f"needs at least {MIN_STEADY_STEPS} steps inside (and {MIN_STEADY_SHARE:.0%} of the measured steps)")
    return Finding("steady state", f"Step totals against ±{STEADY_PCT:g}% of the measured median — "
                   + "; ".join(parts) + ".", {"states": judged}, basis)


def _detail(judged: dict[str, Any]) -> str:
    n, state = judged["measured"], judged["state"]
    if state == "settled":
        return f"within from step {judged['steady_from']}"
    if state == "unsettled":
        return f"{len(judged['outside'])} of {n} measured steps outside"
    parts = []
    if judged["settling_steps"]:
        parts.append(f"measured step(s) {_steps(judged['settling_steps'])} outside, in the band from step "
                     f"{judged['steady_from']}")
    if judged["jitter_steps"]:
        parts.append(f"{len(judged['jitter_steps'])} of {n} measured steps outside later: step(s) "
                     f"{_steps(judged['jitter_steps'])}")
    return "; ".join(parts)


def _steps(numbers: list[int]) -> str:
    """'5–7' for a consecutive run, else '5, 9, 12'."""
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(map(str, numbers))
