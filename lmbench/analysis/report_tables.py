"""The timing report's tables as numbers, one group at a time: what report.md and report.tex show formatted
(render/timing_report.py), what the CSV tables hold as they are and what `--json` prints.

One row per record (per record and phase in `statistics`), columns in snake_case with their unit in the name
(`forward_mean_ms`, `forward_cv_pct`); a number that does not exist (an OOM row, a phase the mode lacks, one
process) is NaN, never text. `status` and `oom_phase` say why a row has no times, and `key`, the configuration's
hash, joins a row to its record (load_results' `key`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lmbench.analysis.findings.overhead import overhead_table
from lmbench.analysis.memory import memory_table
from lmbench.analysis.tables import backward_forward_ratio, phase_stats, throughput_table
from lmbench.results.ranks import rank_means
from lmbench.results.record import Record


def _stat(record: Record, phase: str, name: str) -> float:
    return record.stats.get(phase, {}).get(name, math.nan) if record.ok else math.nan


def timing_stats(records: list[Record]) -> pd.DataFrame:
    """Per record: mean and sample std of each phase of the group's mode and of their sum (`total`), in ms."""
    rows = []
    for record in records:
        row: dict[str, Any] = {"model": record.label}
        for phase in (*records[0].phases, "total"):
            row[f"{phase}_mean_ms"] = _stat(record, phase, "mean")
            row[f"{phase}_std_ms"] = _stat(record, phase, "std")
        rows.append({**row, "status": record.status, "oom_phase": record.oom_phase, "key": record.key})
    return pd.DataFrame(rows)


def cv_stats(records: list[Record]) -> pd.DataFrame:
    """Per record: each phase's CV (%) and noise flag; with several processes, the total's CV within a process,
    the CV between the processes' means and their count."""
    repeated = any(r.process_stats for r in records)
    rows = []
    for record in records:
        row: dict[str, Any] = {"model": record.label}
        for phase in record.phases:
            row[f"{phase}_cv_pct"] = _stat(record, phase, "cv_pct")
            row[f"{phase}_noisy"] = record.stats.get(phase, {}).get("noisy") if record.ok else None
        if repeated:
            between = record.process_stats.get("total") or {}
            row["total_within_cv_pct"] = between.get("within_cv_pct", math.nan)
            row["total_between_cv_pct"] = between.get("cv_pct", math.nan)
            row["processes"] = between.get("n")
        rows.append({**row, "status": record.status, "key": record.key})
    table = pd.DataFrame(rows)
    if repeated:
        table["processes"] = table["processes"].astype("Int64")
    return table


def ratio_stats(records: list[Record]) -> pd.DataFrame:
    """Per record: mean backward time over mean forward time."""
    return pd.DataFrame({"model": [r.label for r in records],
                         "backward_forward_ratio": [backward_forward_ratio(r) if r.ok else math.nan for r in records],
                         "status": [r.status for r in records], "key": [r.key for r in records]})


def peak_column(records: list[Record]) -> str:
    """The measured peak's column: allocated bytes on CUDA, the resident set on a CPU."""
    return "peak_alloc_mb" if records[0].on_cuda else "peak_rss_mb"


def throughput_stats(records: list[Record]) -> pd.DataFrame:
    """Per record: parameters, tokens/s, forward and whole-step TFLOP/s, MFU of the step (%), peak memory."""
    table = throughput_table(records)
    return pd.DataFrame({
        "model": table["label"],
        "params": table["params"].astype("Int64"),
        "tokens_per_s": table["tokens_per_s"].astype(float),
        "tflops_forward": table["tflops_forward"].astype(float),
        "tflops_step": table["tflops_total"].astype(float),
        "mfu_pct": 100 * table["mfu_total"].astype(float),
        peak_column(records): table["peak_memory_mb"].astype(float),
        "key": [r.key for r in records],
    })


def memory_stats(records: list[Record]) -> pd.DataFrame:
    """Per record (per rank of a data-parallel job, with its `rank`): the measured peak beside the analytic sizes of
    the key tensors (analysis/memory.py), in MB; a job's sizes are one rank's, with DDP's gradient buckets
    (`ddp_buckets_mb`, part of the state) and the units FSDP holds gathered (`fsdp_gathered_mb`, transient)."""
    table = memory_table(records)
    parallel = set(table["parallel"])
    columns = {
        "model": table["label"],
        **({"rank": table["rank"]} if parallel != {"none"} else {}),
        "status": table["status"],
        peak_column(records): table["peak_mb"].astype(float),
        "params_mb": table["params_mb"].astype(float),
        "grads_mb": table["grads_mb"].astype(float),
        "adamw_state_mb": table["optimizer_mb"].astype(float),
        **({"ddp_buckets_mb": table["buckets_mb"]} if "ddp" in parallel else {}),
        "peak_minus_state_mb": table["beyond_state_mb"].astype(float),
        **({"fsdp_gathered_mb": table["gathered_mb"]} if "fsdp" in parallel else {}),
        "residual_mb": table["residual_mb"],
        "scores_1_layer_mb": table["scores_mb"],
        "logits_mb": table["logits_mb"],
        "key": table["key"],
    }
    return pd.DataFrame(columns)


def graph_stats(records: list[Record]) -> pd.DataFrame:
    """Per record with a CUDA graph replay: the eager step and the replay (mean ms, CV %), the exposed host time
    (ms and share of the eager step, %), or why the capture failed (`error`). Empty without replays."""
    table = overhead_table(records)
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "model": table["label"],
        "eager_step_ms": table["eager_ms"].astype(float),
        "eager_cv_pct": table["eager_cv_pct"].astype(float),
        "graph_replay_ms": table["graph_ms"].astype(float),
        "replay_cv_pct": table["graph_cv_pct"].astype(float),
        "exposed_host_ms": table["host_ms"].astype(float),
        "host_share_pct": table["host_pct"].astype(float),
        "error": table["error"],
        "key": [r.key for r in records if r.graph],  # overhead_table's rows: the records with a replay, in order
    })


def detail_stats(records: list[Record]) -> pd.DataFrame:
    """Per finished record and phase (with `total`): n, median, the step-level 95% CI of the mean and, for records
    measured in several processes, the 95% CI whose unit is the process and their count; p5, p95, IQR (ms) and
    the Tukey outlier count. Empty when no record finished."""
    ok = [r for r in records if r.ok]
    stats = phase_stats(ok)
    if stats.empty:
        return stats
    stats = stats[stats["phase"] != "step"]
    table = pd.DataFrame({
        "model": stats["label"],
        "phase": stats["phase"],
        "n": stats["n"].astype("Int64"),
        "median_ms": stats["median"],
        "ci_low_ms": stats["ci_low"],
        "ci_high_ms": stats["ci_high"],
        "p5_ms": stats["p5"],
        "p95_ms": stats["p95"],
        "iqr_ms": stats["iqr"],
        "outliers": stats["outliers"].astype("Int64"),
        "key": stats["key"],
    })
    if any(r.process_stats for r in ok):
        by_key = {r.key: r.process_stats for r in ok}
        between = [by_key[key].get(phase) or {} for key, phase in zip(stats["key"], stats["phase"])]
        table.insert(6, "process_ci_low_ms", [b.get("ci_low", math.nan) for b in between])
        table.insert(7, "process_ci_high_ms", [b.get("ci_high", math.nan) for b in between])
        table.insert(8, "processes", pd.array([b.get("n") for b in between], dtype="Int64"))
    return table.reset_index(drop=True)


def rank_stats(records: list[Record]) -> pd.DataFrame:
    """Per finished data-parallel record of several ranks and phase (with `total`): each rank's mean over its
    measured steps (`rank_<r>_mean_ms`), the spread of those means (max − min, ms) and that spread as % of their
    mean. Empty without such records (a job of one rank has no spread to show)."""
    rows = []
    for record in records:
        if not (record.ok and record.rank_samples):
            continue
        means = rank_means(record.rank_samples)
        if len(means) < 2:
            continue
        for phase in (*record.phases, "total"):
            values = [means[rank][phase] for rank in sorted(means)]
            spread = max(values) - min(values)
            rows.append({"model": record.label, "phase": phase,
                         **{f"rank_{rank}_mean_ms": means[rank][phase] for rank in sorted(means)},
                         "spread_ms": spread, "spread_pct": 100 * spread / (sum(values) / len(values)),
                         "key": record.key})
    return pd.DataFrame(rows)


def section_stats(records: list[Record]) -> dict[str, pd.DataFrame]:
    """One group's tables in report order ('ratio' only for modes with a backward phase; 'ranks', 'graph' and
    'statistics' may be empty)."""
    tables = {"results": timing_stats(records), "ranks": rank_stats(records), "cv": cv_stats(records)}
    if "backward" in records[0].phases:
        tables["ratio"] = ratio_stats(records)
    tables["throughput"] = throughput_stats(records)
    tables["memory"] = memory_stats(records)
    tables["graph"] = graph_stats(records)
    tables["statistics"] = detail_stats(records)
    return tables


def across_groups(stacked: dict[str, pd.DataFrame], axes: tuple[str, ...]) -> pd.DataFrame:
    """Every configuration's mean step (ms), model TFLOP/s and, where a CUDA graph replayed the step, the replay's
    mean (ms), one row per record with the group's varying fields first: a sweep over modes read at a glance. From
    the groups' stacked `results`, `throughput` and `graph` numbers, joined by `key`."""
    table = stacked["results"][[*axes, "model", "total_mean_ms", "key"]].rename(columns={"total_mean_ms": "step_mean_ms"})
    table = table.merge(stacked["throughput"][["key", "tflops_step"]], on="key", how="left")
    graph = stacked.get("graph")
    if graph is not None and "graph_replay_ms" in graph:
        table = table.merge(graph[["key", "graph_replay_ms"]], on="key", how="left")
    return table[[c for c in table.columns if c != "key"] + ["key"]]
