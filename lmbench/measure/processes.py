"""Fresh `lmbench bench` child processes: the command line, running one, and repeats merged into one record.

A configuration measured with `--repeats R` runs as R children one after the other, each storing its own
record under RUN_DIR/processes/<key>-<timestamp>/ (kept, so nothing measured is lost if the parent stops).
The parent then merges them into one record: every sample labelled with its `process`, the step-level
statistics over all measured steps, and `process_stats`, whose unit is the process (record.derive). The
warm-up study and `lmbench nsys` start their children through the same command line.
"""

from __future__ import annotations

import copy
import datetime
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.results.record import derive
from lmbench.results.store import ResultsStore
from lmbench.measure.sampling import Sampling
from lmbench.results.stats import summarize

PROCESSES_DIR = "processes"


def child_command(config: BenchConfig, run_dir: Path, report: bool = False, python: str = sys.executable) -> list[str]:
    """`python -m lmbench bench <config> --run-dir RUN_DIR`; without `report` the child only stores its record."""
    return [python, "-m", "lmbench", "bench", *config.to_args(), "--run-dir", str(run_dir),
            *(() if report else ("--no-report",))]


def run_child(config: BenchConfig, run_dir: Path, what: str) -> dict[str, Any]:
    """Run one child bench into `run_dir` and return the record it stored; its failure is one LmbenchError."""
    completed = subprocess.run(child_command(config, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    if completed.returncode:
        tail = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no message"
        raise LmbenchError(f"{what} failed: {tail}")
    return ResultsStore(run_dir).records()[-1]


def run_repeats(config: BenchConfig, sampling: Sampling, run_dir: Path,
                on_process: Callable[[int], None] = lambda index: None) -> dict[str, Any]:
    """Measure `config` in fresh processes, at least `sampling.repeats`, more while a --target-ci is not met
    and its budget lasts; returns the merged record (not yet stored). A child that runs out of memory ends
    the repeats: its record, with the processes before it, is what is returned."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    children = run_dir / PROCESSES_DIR / f"{config.key()}-{stamp}"
    start, records, ended_by = time.perf_counter(), [], None
    while ended_by is None:
        on_process(len(records))
        record = run_child(config, children, f"process {len(records) + 1} of {config.label}")
        records.append(record)
        if record["status"] != "ok":
            ended_by = "oom"
            break
        means = [r["stats"]["total"]["mean"] for r in records]
        ended_by = sampling.ended_by(means, time.perf_counter() - start, minimum=sampling.repeats)
    return merge_processes(records, sampling, ended_by)


def merge_processes(records: list[dict[str, Any]], sampling: Sampling, ended_by: str) -> dict[str, Any]:
    """One record of a configuration from the records of its processes, in order. Samples keep every
    process's steps with a `process` label; per-process facts (timestamps, build and wall time, telemetry,
    memory) stay under `processes`; the telemetry summary spans all of them and the graph replays are pooled."""
    base = records[-1] if records[-1]["status"] != "ok" else records[0]
    merged = {k: copy.deepcopy(v) for k, v in base.items() if k not in ("samples", "telemetry")}  # both rebuilt below
    merged["samples"] = [{**s, "process": k} for k, r in enumerate(records) for s in r["samples"]]
    merged["timestamp"] = records[0]["timestamp"]
    merged["wall_s"] = sum(r["wall_s"] for r in records)
    merged["processes"] = [{"process": k, "timestamp": r["timestamp"], "build_s": r["build_s"],
                            "wall_s": r["wall_s"], "memory": r["memory"], "telemetry": r["telemetry"]}
                           for k, r in enumerate(records)]
    merged["telemetry"] = merge_telemetry([r["telemetry"] for r in records])
    graphs = [r["graph"] for r in records if r.get("graph") and "error" not in r["graph"]]
    if graphs:
        merged["graph"] = {"warmup_ms": [v for g in graphs for v in g["warmup_ms"]],
                           "samples_ms": [v for g in graphs for v in g["samples_ms"]]}
        merged["graph"]["stats"] = summarize(merged["graph"]["samples_ms"]).as_dict()
    ok = [r for r in records if r["status"] == "ok"]
    means = [r["stats"]["total"]["mean"] for r in ok]
    merged["sampling"] = sampling.describe(means, ended_by, unit="process")
    if merged["status"] == "ok":
        derive(merged)
    return merged


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
