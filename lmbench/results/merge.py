"""Several processes' records of one configuration merged into one (`--repeats`): every sample labelled with its
process, per-process facts kept, and the statistics whose unit is the process derived (record.derive)."""

from __future__ import annotations

import copy
from typing import Any, Callable

from lmbench.results.record import Record, derive
from lmbench.results.stats import summarize


def merge(records: list[Record], describe: Callable[[list[float]], dict[str, Any]]) -> Record:
    """One record of a configuration from the records of its processes, in order; `describe(process means)` says
    how measuring ended (measure/sampling.py). Samples keep every process's steps with a `process` label;
    per-process facts (timestamps, build and wall time, telemetry, memory) stay under `processes`; the telemetry
    summary spans all of them and the graph replays are pooled."""
    base = records[-1] if not records[-1].ok else records[0]
    merged = {k: copy.deepcopy(v) for k, v in base.data.items() if k not in ("samples", "telemetry")}  # rebuilt below
    merged["samples"] = [{**s, "process": k} for k, r in enumerate(records) for s in r.samples]
    if any(r.rank_samples for r in records):  # torchrun jobs: each rank's samples, labelled with their job too
        merged["rank_samples"] = [{**s, "process": k} for k, r in enumerate(records) for s in r.rank_samples]
    merged["timestamp"] = records[0].timestamp
    merged["wall_s"] = sum(r.wall_s for r in records)
    merged["processes"] = [{"process": k, "timestamp": r.timestamp, "build_s": r.build_s, "wall_s": r.wall_s,
                            "memory": r.data["memory"], "telemetry": r.data["telemetry"],
                            **({"ranks": r.distributed["ranks"]} if r.distributed.get("ranks") else {})}
                           for k, r in enumerate(records)]
    merged["telemetry"] = merge_telemetry([r.data["telemetry"] for r in records])
    graphs = [r.graph for r in records if r.graph and "error" not in r.graph]
    if graphs:
        merged["graph"] = {"warmup_ms": [v for g in graphs for v in g["warmup_ms"]],
                           "samples_ms": [v for g in graphs for v in g["samples_ms"]]}
        merged["graph"]["stats"] = summarize(merged["graph"]["samples_ms"]).as_dict()
    merged["sampling"] = describe([r.mean_ms() for r in records if r.ok])
    if merged["status"] == "ok":
        derive(merged)
    return Record(merged)


def merge_telemetry(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The telemetry summary over several processes: the lowest minimum, the mean of the means, the highest
    maximum of each field, and every clock-event reason seen (the samples stay with each process)."""
    summaries = [p.get("summary", {}) for p in parts if p]
    if not summaries:
        return {}
    summary: dict[str, Any] = {}
    for key in dict.fromkeys(k for s in summaries for k in s):
        values = [s[key] for s in summaries if key in s]
        if key == "throttle_reasons":
            summary[key] = sorted({int(v) for vs in values for v in vs})
        else:
            summary[key] = {"min": min(v["min"] for v in values), "max": max(v["max"] for v in values),
                            "mean": sum(v["mean"] for v in values) / len(values)}
    first = next(p for p in parts if p)
    return {"sources": first.get("sources"), "interval_s": first.get("interval_s"), "summary": summary}
