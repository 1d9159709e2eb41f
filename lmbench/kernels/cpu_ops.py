"""CPU operators of a torch.profiler trace: self CPU time, placed in lmbench's phases, and the tables of the CPU
report (what a trace without GPU activity, a CPU run, is analysed by).

Every CPU operator (`cpu_op` event) that starts inside a measured step's phase is a row of the *operator frame*:

    name     str  the operator as the profiler names it (aten::mm, MmBackward0, ...)
    self_ns  int  its duration minus its direct children's (the operators nested directly inside it, same thread)
    step     int  measured step index
    phase    str  forward | backward | optimizer: the lmbench range open when it started (start time, as kernels
                  are placed by launch time, so an operator on another thread lands in the phase that waits for it)

Self times do not double count: on one thread the self times of a phase's operators add up to the time spent inside
some operator, and the rest of the phase's range is Python, autograd's and the optimizer's own bookkeeping, lmbench
and the profiler between operators. The *span frame* holds each measured step's range duration (phase 'step') and
its phases' (step, phase, range_ns). Tables are per measured step, like the kernel tables (kernels/frame.py).
"""

from __future__ import annotations

import pandas as pd

from lmbench.analysis.findings.variance import MIN_TRACED_STEPS
from lmbench.config import PHASES
from lmbench.kernels.attribution import STEP_RANGE, nesting, place_in_ranges

OPERATOR_COLUMNS = ("name", "self_ns", "step", "phase")


def self_times(ops: pd.DataFrame) -> pd.Series:
    """Each operator's duration minus the durations of its direct children, in ns (`ops`: start, duration, tid).
    Nesting is read per thread from start and end alone, as for lmbench's ranges."""
    spans = ops.assign(end=ops["start"] + ops["duration"])
    parents = pd.concat([nesting(thread)["parent"] for _, thread in spans.groupby("tid")]).dropna()
    children_ns = spans.loc[parents.index, "duration"].groupby(parents.to_numpy()).sum()
    return ops["duration"] - children_ns.reindex(ops.index, fill_value=0)


def operator_frame(ops: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    """The operator frame of the measured steps from a trace's operators (name, start, duration, tid) and its
    lmbench ranges (torch_trace.lmbench_ranges); operators that start outside a measured phase are dropped."""
    if ops.empty or ranges.empty:
        return pd.DataFrame(columns=list(OPERATOR_COLUMNS))
    ops = ops.reset_index(drop=True)
    self_ns = self_times(ops)  # over every operator: a parent outside the measured phases still has children
    placed = place_in_ranges(ops["start"].to_numpy(), ranges)
    return pd.DataFrame({
        "name": ops["name"].to_numpy()[placed.index],
        "self_ns": self_ns.to_numpy()[placed.index],
        "step": placed["step"].to_numpy(),
        "phase": placed["phase"].to_numpy(),
    })


def range_spans(ranges: pd.DataFrame) -> pd.DataFrame:
    """Each measured step's range duration (phase 'step') and its phases' range durations: step, phase, range_ns."""
    steps = ranges[ranges["level"] == 0]
    index = steps["name"].str.extract(STEP_RANGE.pattern)[0]
    whole = pd.DataFrame({"step": index, "phase": "step", "range_ns": steps["end"] - steps["start"]}).dropna()
    phases = ranges[ranges["level"] == 1]
    placed = place_in_ranges(phases["start"].to_numpy(), ranges)  # a phase range's own start lies inside it
    chosen = phases.iloc[placed.index]
    parts = pd.DataFrame({"step": placed["step"].to_numpy(), "phase": placed["phase"].to_numpy(),
                          "range_ns": (chosen["end"] - chosen["start"]).to_numpy()})
    spans = pd.concat([whole.astype({"step": int}), parts], ignore_index=True)
    return spans.groupby(["step", "phase"], as_index=False, sort=False)["range_ns"].sum()


def _steps(spans: pd.DataFrame) -> int:
    return max(int((spans["phase"] == "step").sum()), 1)


def phase_table(ops: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Per phase, per measured step: operator calls, the phase's range time in the trace, the operators' summed
    self CPU time, the rest of the range (outside any operator) and the share of the range inside operators."""
    steps, rows = _steps(spans), []
    for phase in [p for p in PHASES if p in set(spans["phase"])]:
        range_ns = spans.loc[spans["phase"] == phase, "range_ns"].sum()
        self_ns = ops.loc[ops["phase"] == phase, "self_ns"].sum()
        rows.append({
            "phase": phase,
            "calls_per_step": int((ops["phase"] == phase).sum()) / steps,
            "range_ms": range_ns / steps / 1e6,
            "op_self_ms": self_ns / steps / 1e6,
            "outside_ms": (range_ns - self_ns) / steps / 1e6,
            "in_ops_pct": 100 * self_ns / range_ns if range_ns else float("nan"),
        })
    return pd.DataFrame(rows)


def top_operators(ops: pd.DataFrame, spans: pd.DataFrame, phase: str | None = None, n: int = 10) -> pd.DataFrame:
    """The `n` operators with the most self CPU time (in `phase`, or over the whole step): calls and ms per measured
    step, mean µs per call, and their share of the phase's (or step's) range time in the trace."""
    steps = _steps(spans)
    chosen = ops if phase is None else ops[ops["phase"] == phase]
    range_ns = spans.loc[spans["phase"] == (phase or "step"), "range_ns"].sum()
    table = chosen.groupby("name")["self_ns"].agg(["count", "sum", "mean"])
    table = table.sort_values("sum", ascending=False, kind="stable").head(n)
    return pd.DataFrame({
        "operator": table.index,
        "calls_per_step": table["count"].to_numpy() / steps,
        "ms_per_step": table["sum"].to_numpy() / steps / 1e6,
        "mean_us": table["mean"].to_numpy() / 1e3,
        "share_pct": 100 * table["sum"].to_numpy() / range_ns if range_ns else float("nan"),
    })


def step_table(ops: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Per traced measured step, in ms: its range time in the trace, the operators' self CPU time, the rest
    (outside any operator) and each phase's range time (`<phase>_ms`)."""
    ranges = spans.pivot_table(index="step", columns="phase", values="range_ns", aggfunc="sum").sort_index()
    self_ns = ops.groupby("step")["self_ns"].sum().reindex(ranges.index, fill_value=0)
    table = pd.DataFrame({"step": ranges.index.astype(int), "range_ms": ranges["step"].to_numpy() / 1e6,
                          "op_self_ms": self_ns.to_numpy() / 1e6,
                          "outside_ms": (ranges["step"] - self_ns).to_numpy() / 1e6})
    for phase in [p for p in PHASES if p in ranges.columns]:
        table[f"{phase}_ms"] = ranges[phase].to_numpy() / 1e6
    return table


def slowest_step_operators(ops: pd.DataFrame, steps: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The operators (per phase) whose self CPU time in the slowest traced step exceeds their median over the traced
    steps the most: step, phase, operator, slowest_ms, median_ms, excess_ms. The slowest step is lmbench's (its
    `lmbench_ms`) where `steps` (step_table) has it, else the trace's; empty below MIN_TRACED_STEPS steps."""
    columns = ["step", "phase", "operator", "slowest_ms", "median_ms", "excess_ms"]
    if len(steps) < MIN_TRACED_STEPS:
        return pd.DataFrame(columns=columns)
    slowest = int(steps.loc[steps["lmbench_ms" if "lmbench_ms" in steps else "range_ms"].idxmax(), "step"])
    per_step = ops.groupby(["phase", "name", "step"])["self_ns"].sum().unstack("step", fill_value=0)
    per_step = per_step.reindex(columns=steps["step"], fill_value=0) / 1e6  # an operator absent from a step took 0
    median = per_step.median(axis=1)
    excess = (per_step[slowest] - median).sort_values(ascending=False, kind="stable").head(n)
    excess = excess[excess > 0]
    return pd.DataFrame({
        "step": slowest,
        "phase": excess.index.get_level_values("phase"),
        "operator": excess.index.get_level_values("name"),
        "slowest_ms": per_step.loc[excess.index, slowest].to_numpy(),
        "median_ms": median.loc[excess.index].to_numpy(),
        "excess_ms": excess.to_numpy(),
    }, columns=columns)
