"""The CPU report: the kernel report's counterpart for a torch.profiler trace without GPU activity (a CPU run),
rendered from the tables of kernels/cpu_ops.py: per phase the operators with the most self CPU time, the phase
ranges against lmbench's own timings, and the traced steps with the slow-step analysis. It is written as the
capture's kernels.md and kernels_<table>.csv (kernels/report.py), like a GPU capture's report."""

from __future__ import annotations

import pandas as pd

from lmbench.analysis.findings.variance import slow_steps_in_cpu_trace
from lmbench.render.markdown import finding_line, titled_table

PHASE_TITLES = {"phase": "Phase", "lmbench_ms": "lmbench (ms)", "range_ms": "Range in trace (ms)",
                "range_vs_lmbench_pct": "Range / lmbench (%)", "op_self_ms": "Operator self CPU (ms)",
                "outside_ms": "Outside operators (ms)", "in_ops_pct": "In operators (%)",
                "calls_per_step": "Operator calls"}
OPERATOR_TITLES = {"operator": "Operator", "calls_per_step": "Calls/step", "ms_per_step": "Self CPU ms/step",
                   "mean_us": "Mean (µs)", "share_pct": "Share (%)"}
STEP_TITLES = {"step": "Step", "lmbench_ms": "lmbench (ms)", "range_ms": "Range in trace (ms)",
               "op_self_ms": "Operator self CPU (ms)", "outside_ms": "Outside operators (ms)",
               "forward_ms": "Forward (ms)", "backward_ms": "Backward (ms)", "optimizer_ms": "Optimizer (ms)"}
SLOWEST_TITLES = {"phase": "Phase", "operator": "Operator", "slowest_ms": "Slowest step (ms)",
                  "median_ms": "Median step (ms)", "excess_ms": "Excess (ms)"}


def render_cpu(title: str, context: list[str], tables: dict[str, pd.DataFrame]) -> str:
    """The CPU report's Markdown; `context` is the report's header lines (configuration, machine, what was
    captured), shared with the kernel report."""
    phases, steps = tables["phases"], tables["steps"]
    lines = [f"# CPU operator report — {title}", "", *context, ""]
    lines += ["## Phases (per measured step)", "", titled_table(phases, PHASE_TITLES), ""]
    lines += [
        "*lmbench* is the phase's `perf_counter` time from the same run (mean of the traced measured steps); *Range in "
        "trace* is the phase's `record_function` range in the trace, slightly shorter: lmbench's timing also covers "
        "opening and closing the range. "
        "*Operator self CPU* adds the self time of every operator started in the range (its time minus its child "
        "operators'): the time spent inside some operator. *Outside operators* is the rest of the range: Python, "
        "autograd's and the optimizer's own bookkeeping, lmbench and the profiler between operators.", ""]
    lines += [_inside_line(phases), ""]
    for phase in ["step", *phases["phase"]]:
        top = tables["top"][tables["top"]["phase"] == phase]
        lines += [f"## Top operators by self CPU time — {'whole step' if phase == 'step' else phase}", "",
                  titled_table(top, OPERATOR_TITLES), ""]
    lines += ["Share is of the phase's range time in the trace (of the step's, for the whole step).", ""]
    lines += ["## Captured steps", "", titled_table(steps, STEP_TITLES), ""]
    found = slow_steps_in_cpu_trace(steps)
    lines += [finding_line(found), ""] if found else []
    lines += _slowest_lines(tables["slowest"])
    return "\n".join(lines)


def _inside_line(phases: pd.DataFrame) -> str:
    parts = [f"{r.phase} {r.in_ops_pct:.0f}%" for r in phases.itertuples()]
    return (f"Time inside operators, share of the phase's range: {'; '.join(parts)}. The rest is time between "
            "operators: the lower the share, the more of the phase Python and bookkeeping set, not the operators' "
            "work.")


def _slowest_lines(slowest: pd.DataFrame) -> list[str]:
    lines = ["## Slowest step against the median step", ""]
    if slowest.empty:
        return lines + ["Not compared: it needs three or more traced steps, and an operator whose self time grew.", ""]
    step = int(slowest["step"].iloc[0])
    return lines + [f"The operators whose self CPU time in step {step}, the slowest traced step, exceeds their median "
                    "over the traced steps the most:", "",
                    titled_table(slowest, SLOWEST_TITLES), ""]
