"""Host overhead, measured: the eager step against its CUDA graph replay (cuda_graph.py).

The replay runs the same kernels with no Python, dispatch or launch work between them, so its time is
the step's device work and the eager excess is the host time the GPU waited for (launches, Python, dispatch,
allocator). Host work that overlaps running kernels is hidden, so a GPU-bound size shows little excess
however much the host does. When the replay is steady and the eager steps are not, the eager variance is
host jitter, not GPU variance.
"""

from __future__ import annotations

import pandas as pd

from lmbench.analysis.findings.finding import Finding
from lmbench.results.record import Record

COLUMNS = ["label", "error", "eager_ms", "eager_cv_pct", "graph_ms", "graph_cv_pct", "host_ms", "host_pct"]
JITTER_RATIO = 5.0  # eager CV this many times the replay CV: the variance comes from the host
HOST_BOUND_PCT = 50.0  # exposed host time at least this share of the eager step: the host sets the step's time


def overhead_table(records: list[Record]) -> pd.DataFrame:
    """One row per record with a graph replay: eager and replay mean and CV, host overhead in ms and %.
    Records whose capture failed get their reason in `error` and no times."""
    rows = []
    for record in records:
        graph = record.graph
        if not graph:
            continue
        row = {"label": record.label, "error": graph.get("error")}
        if "error" not in graph:
            eager, replay = record.stats["total"], graph["stats"]
            row.update(eager_ms=eager["mean"], eager_cv_pct=eager["cv_pct"], graph_ms=replay["mean"],
                       graph_cv_pct=replay["cv_pct"], host_ms=eager["mean"] - replay["mean"],
                       host_pct=100 * (eager["mean"] - replay["mean"]) / eager["mean"])
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def host_bound_sizes(split: pd.DataFrame) -> list[str]:
    """The labels of overhead_table rows (indexed by label, captures that worked) whose exposed host time is at
    least HOST_BOUND_PCT of the eager step."""
    return [str(label) for label, row in split.iterrows() if row["host_pct"] >= HOST_BOUND_PCT]


def host_overhead(records: list[Record]) -> list[Finding]:
    table = overhead_table(records)
    if table.empty:
        return []
    out = []
    split = table[table["error"].isna()].set_index("label")
    if not split.empty:
        parts = [f"{k} {v.eager_ms:.1f} ms eager (CV {v.eager_cv_pct:.1f}%) = {v.graph_ms:.1f} ms device work "
                 f"(graph replay, CV {v.graph_cv_pct:.2f}%) + {v.host_ms:.1f} ms the GPU waited on the host "
                 f"({v.host_pct:.0f}%)" for k, v in split.iterrows()]
        jitter = [k for k, v in split.iterrows()
                  if v.eager_cv_pct > JITTER_RATIO * max(v.graph_cv_pct, 1e-9) and v.eager_cv_pct > 1.0]
        host_bound = host_bound_sizes(split)
        claim = "Eager step split by its CUDA graph replay: " + "; ".join(parts) + "."
        if host_bound:
            claim += (f" {', '.join(host_bound)} {'is' if len(host_bound) == 1 else 'are'} host-bound: the GPU waited "
                      f"on the host for at least {HOST_BOUND_PCT:g}% of the eager step.")
        if jitter:
            claim += (f" For {', '.join(jitter)} the eager CV is at least {JITTER_RATIO:g}× the replay's: that "
                      "variance is host jitter, not GPU work.")
        rows = split.drop(columns="error").to_dict("index")
        out.append(Finding("host overhead", claim, {"split": rows, "host_jitter": jitter, "host_bound": host_bound},
                           "eager mean step total − CUDA graph replay mean of the same step; host-bound when that is "
                           f"≥ {HOST_BOUND_PCT:g}% of the eager mean"))
    for row in table[table["error"].notna()].itertuples():
        out.append(Finding("host overhead", f"{row.label}: no graph replay to split the eager step with. {row.error}.",
                           {"label": row.label}, "--cuda-graph capture"))
    return out
