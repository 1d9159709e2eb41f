"""The warm-up study: one configuration measured with 0, 1, 2 and 5 warm-up steps, each in a fresh
process, so the costs of a cold start (CUDA context and library handles, kernel selection, allocator
growth, lazy imports) land where a real first run puts them.

The table gives, per warm-up count, mean ± std and CV of the measured steps, their median, and the
first measured step against that median. The finding compares each count with the run that warmed up
the most, and names the smallest count whose mean is within TOLERANCE_PCT of it.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from lmbench.analysis.tables import measured_totals
from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.results import ResultsStore, atomic_write
from lmbench.stats import summarize

DEFAULT_COUNTS = (0, 1, 2, 5)
TOLERANCE_PCT = 5.0


def run_study(config: BenchConfig, counts: tuple[int, ...], store: ResultsStore,
              on_start: Callable[[int], None] = lambda count: None) -> None:
    """One `lmbench bench` process per warm-up count, all storing into `store`."""
    for count in counts:
        on_start(count)
        child = dataclasses.replace(config, warmup=count)
        command = [sys.executable, "-m", "lmbench", "bench", *child.to_args(), "--warmup", str(count),
                   "--run-dir", str(store.run_dir)]
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if completed.returncode:
            tail = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no message"
            raise LmbenchError(f"the run with {count} warm-up steps failed: {tail}")


def warmup_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per warm-up count (latest record of each), ordered by count."""
    rows = {}
    for record in records:
        if record["status"] != "ok":
            continue
        values = measured_totals(record)
        s = summarize(values)
        rows[record["config"]["warmup"]] = {
            "warmup": record["config"]["warmup"], "steps": s.n, "mean_ms": s.mean, "std_ms": s.std, "cv_pct": s.cv_pct,
            "median_ms": s.median, "first_ms": values[0], "first_vs_median": values[0] / s.median,
        }
    if not rows:
        raise LmbenchError("no successful runs to study")
    return pd.DataFrame([rows[k] for k in sorted(rows)])


def finding(table: pd.DataFrame) -> str:
    """The computed conclusion of the study, with the numbers behind it."""
    reference = table.iloc[-1]
    parts = []
    for row in table.itertuples():
        if row.warmup == reference.warmup:
            continue
        excess = 100 * (row.mean_ms / reference.mean_ms - 1)
        parts.append(f"{row.warmup} warm-up: mean {excess:+.1f}%, std {row.std_ms:.2f} ms "
                     f"(first measured step {row.first_vs_median:.1f}× its run's median)")
    within = [int(r.warmup) for r in table.itertuples()
              if abs(r.mean_ms / reference.mean_ms - 1) * 100 <= TOLERANCE_PCT]
    enough = (f"{min(within)} warm-up step(s) already give a mean within {TOLERANCE_PCT:g}% of it" if within
              else f"no count gives a mean within {TOLERANCE_PCT:g}% of it")
    cold = table[table["warmup"] == 0]
    cold_note = ""
    if len(cold) and cold["first_vs_median"].iloc[0] > 1.5:
        cold_note = (f" Without warm-up the first step takes {cold['first_vs_median'].iloc[0]:.1f}× the median: the "
                     "one-time costs of a cold start land in the measurement.")
    return (f"Against the run with {int(reference.warmup)} warm-up steps ({reference.mean_ms:.2f} ± "
            f"{reference.std_ms:.2f} ms): " + "; ".join(parts) + f". {enough}." + cold_note)


def render(table: pd.DataFrame, config: BenchConfig, environment: dict[str, Any]) -> str:
    shown = pd.DataFrame({
        "Warm-up steps": table["warmup"],
        "Measured": table["steps"],
        "Mean ± std (ms)": [f"{m:.2f} ± {s:.2f}" for m, s in zip(table["mean_ms"], table["std_ms"])],
        "CV": [f"{v:.1f}%" for v in table["cv_pct"]],
        "Median (ms)": [f"{v:.2f}" for v in table["median_ms"]],
        "First measured (ms)": [f"{v:.2f}" for v in table["first_ms"]],
        "First / median": [f"{v:.2f}×" for v in table["first_vs_median"]],
    })
    return "\n".join([
        f"# Warm-up study — {config.label} {config.mode} {config.precision}, batch {config.batch}, ctx {config.ctx}",
        "",
        f"{environment.get('device_name')} · torch {environment.get('torch')} · commit {environment.get('git_commit')}. "
        "Each row is a fresh `lmbench bench` process; times are per-step totals (sum of the phases).",
        "", shown.to_markdown(index=False, disable_numparse=True), "", "**Finding.** " + finding(table), ""])


def write_study(run_dir: Path, config: BenchConfig) -> Path:
    records = ResultsStore(run_dir).records()
    table = warmup_table(records)
    path = run_dir / "warmup.md"
    atomic_write(run_dir / "warmup.csv", table.to_csv(index=False).encode())
    atomic_write(path, render(table, config, records[-1]["environment"]).encode())
    return path
