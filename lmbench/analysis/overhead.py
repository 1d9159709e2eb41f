"""Host overhead, measured: the eager step against its CUDA graph replay (cuda_graph.py).

The replay runs the same kernels with no Python, dispatch or launch work between them, so its time is
the step's device work and the eager excess is what the host adds. When the replay is steady and the
eager steps are not, the eager variance is host jitter, not GPU variance.
"""

from __future__ import annotations

from typing import Any

from lmbench.analysis.finding import Finding

JITTER_RATIO = 5.0  # eager CV this many times the replay CV: the variance comes from the host


def host_overhead(records: list[dict[str, Any]]) -> list[Finding]:
    out, rows, failed = [], {}, {}
    for record in records:
        graph = record.get("graph")
        if not graph:
            continue
        label = record["model"]["label"]
        if "error" in graph:
            failed[label] = graph["error"]
            continue
        eager, replay = record["stats"]["total"], graph["stats"]
        rows[label] = {"eager_ms": eager["mean"], "eager_cv_pct": eager["cv_pct"], "graph_ms": replay["mean"],
                       "graph_cv_pct": replay["cv_pct"], "host_ms": eager["mean"] - replay["mean"],
                       "host_pct": 100 * (eager["mean"] - replay["mean"]) / eager["mean"]}
    if rows:
        parts = [f"{k} {v['eager_ms']:.1f} ms eager (CV {v['eager_cv_pct']:.1f}%) = {v['graph_ms']:.1f} ms device work "
                 f"(graph replay, CV {v['graph_cv_pct']:.2f}%) + {v['host_ms']:.1f} ms host overhead "
                 f"({v['host_pct']:.0f}%)" for k, v in rows.items()]
        jitter = [k for k, v in rows.items()
                  if v["eager_cv_pct"] > JITTER_RATIO * max(v["graph_cv_pct"], 1e-9) and v["eager_cv_pct"] > 1.0]
        claim = "Eager step split by its CUDA graph replay: " + "; ".join(parts) + "."
        if jitter:
            claim += (f" For {', '.join(jitter)} the eager CV is at least {JITTER_RATIO:g}× the replay's: that "
                      "variance is host jitter, not GPU work.")
        out.append(Finding("host overhead", claim, {"split": rows, "host_jitter": jitter},
                           "eager mean step total − CUDA graph replay mean of the same step"))
    for label, reason in failed.items():
        out.append(Finding("host overhead", f"{label}: no graph replay to split the eager step with. {reason}.",
                           {"label": label}, "--cuda-graph capture"))
    return out
