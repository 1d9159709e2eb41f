"""The warm-up study: one configuration measured with 0, 1, 2 and 5 warm-up steps, each in a fresh
process, so the costs of a cold start (CUDA context and library handles, kernel selection, allocator
growth, lazy imports) land where a real first run puts them.

The table gives, per warm-up count, mean ± std and CV of the measured steps, their median, the first
measured step against that median, and the mean against the run that warmed up the most (difference,
95% CI and the verdict that interval gives, analysis/decision.py's rule). The finding names the smallest count from which the first measured step
stays within TOLERANCE_PCT of its run's median (the cold start is absorbed), and says when the means of
separate processes differ by more than that anyway.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from lmbench.analysis.decision import compare_samples
from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.measure.processes import run_child
from lmbench.render.markdown import table as markdown_table
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore, atomic_write
from lmbench.results.stats import summarize

TOLERANCE_PCT = 5.0


def study_configs(config: BenchConfig, counts: tuple[int, ...]) -> dict[int, BenchConfig]:
    """The configuration with each warm-up count, each validated (so a bad count is refused before any is run)."""
    return {count: dataclasses.replace(config, warmup=count) for count in counts}


def run_study(configs: dict[int, BenchConfig], store: ResultsStore,
              on_start: Callable[[int], None] = lambda count: None) -> None:
    """One `lmbench bench` process per warm-up count (study_configs), all storing into `store`."""
    for count, config in configs.items():
        on_start(count)
        run_child(config, store.run_dir, f"the run with {count} warm-up steps")


def warmup_table(records: list[Record]) -> pd.DataFrame:
    """One row per warm-up count (latest record of each), ordered by count, each compared with the run that
    warmed up the most (the last row): mean difference with its CI and the verdict it gives (analysis/decision.py)."""
    runs = {r.config.warmup: r.totals() for r in records if r.ok}
    if not runs:
        raise LmbenchError("no successful runs to study")
    reference = runs[max(runs)]
    rows = []
    for count in sorted(runs):
        values, s = runs[count], summarize(runs[count])
        row = {"warmup": count, "steps": s.n, "mean_ms": s.mean, "std_ms": s.std, "cv_pct": s.cv_pct,
               "median_ms": s.median, "first_ms": values[0], "first_vs_median": values[0] / s.median}
        if count != max(runs) and len(values) > 1 and len(reference) > 1:
            c = compare_samples(reference, values)
            row.update({k: c[k] for k in ("delta_pct", "ci_low_pct", "ci_high_pct", "p_mannwhitney", "verdict")})
        rows.append(row)
    return pd.DataFrame(rows)


def finding(table: pd.DataFrame) -> str:
    """The computed conclusion: from which count the first measured step no longer stands out (the cold
    start is absorbed), each count's mean against the reference run, and the spread left between runs."""
    reference = table.iloc[-1]
    parts = []
    for row in table.iloc[:-1].itertuples():
        against = (f"mean {row.delta_pct:+.1f}% (95% CI {row.ci_low_pct:+.1f}% to {row.ci_high_pct:+.1f}%, "
                   f"{row.verdict})" if "delta_pct" in table and pd.notna(row.delta_pct) else "mean not comparable")
        parts.append(f"{row.warmup} warm-up: {against}, first measured step {row.first_vs_median:.2f}× its run's median")
    calm = table["first_vs_median"] <= 1 + TOLERANCE_PCT / 100
    settled = next((int(c) for i, c in enumerate(table["warmup"]) if calm.iloc[i:].all()), None)
    if settled is None:
        verdict = (f"Even with {int(reference.warmup)} warm-up steps the first measured step is more than "
                   f"{TOLERANCE_PCT:g}% above its run's median: warm up longer.")
    else:
        after = table[table["warmup"] >= settled]
        verdict = (f"From {settled} warm-up step(s) on, the first measured step is within {TOLERANCE_PCT:g}% of its "
                   f"run's median ({after['first_vs_median'].min():.2f}–{after['first_vs_median'].max():.2f}×): "
                   "the cold start is absorbed.")
        deltas = after["delta_pct"].dropna() if "delta_pct" in after else pd.Series(dtype=float)
        if len(deltas) and deltas.abs().max() > TOLERANCE_PCT:
            verdict += (f" Yet the means of these separate processes still differ from the reference by up to "
                        f"{deltas.abs().max():.1f}% (CV within runs {after['cv_pct'].min():.1f}–"
                        f"{after['cv_pct'].max():.1f}%): run-to-run variation here exceeds what more warm-up changes.")
    cold = table[table["warmup"] == 0]
    cold_note = ""
    if len(cold) and cold["first_vs_median"].iloc[0] > 1.5:
        cold_note = (f" Without warm-up the first step takes {cold['first_vs_median'].iloc[0]:.1f}× the median: the "
                     "one-time costs of a cold start land in the measurement.")
    return (f"Against the run with {int(reference.warmup)} warm-up steps ({reference.mean_ms:.2f} ± "
            f"{reference.std_ms:.2f} ms)" + (": " + "; ".join(parts) if parts else "") + f". {verdict}" + cold_note)


def render(table: pd.DataFrame, config: BenchConfig, environment: dict[str, Any]) -> str:
    shown = pd.DataFrame({
        "Warm-up steps": table["warmup"],
        "Measured": table["steps"],
        "Mean ± std (ms)": [f"{m:.2f} ± {s:.2f}" for m, s in zip(table["mean_ms"], table["std_ms"])],
        "CV": [f"{v:.1f}%" for v in table["cv_pct"]],
        "Median (ms)": [f"{v:.2f}" for v in table["median_ms"]],
        "First measured (ms)": [f"{v:.2f}" for v in table["first_ms"]],
        "First / median": [f"{v:.2f}×" for v in table["first_vs_median"]],
        "Mean vs last row (95% CI)": [_against(row) for row in table.to_dict("records")],
    })
    return "\n".join([
        f"# Warm-up study — {config.label} {config.mode} {config.precision}, batch {config.batch}, ctx {config.ctx}",
        "",
        f"{environment.get('device_name')} · torch {environment.get('torch')} · commit {environment.get('git_commit')}. "
        "Each row is a fresh `lmbench bench` process; times are per-step totals (sum of the phases). Each "
        "comparison has one process per side, so its interval covers step-to-step noise only: separate processes "
        "of one configuration can differ by more, whatever their warm-up.",
        "", markdown_table(shown), "", "**Finding.** " + finding(table), ""])


def _against(row: dict[str, Any]) -> str:
    if pd.isna(row.get("delta_pct", float("nan"))):
        return "—"
    return f"{row['delta_pct']:+.1f}% ({row['ci_low_pct']:+.1f} to {row['ci_high_pct']:+.1f}%), {row['verdict']}"


def is_study(records: list[Record]) -> bool:
    """Whether a run directory holds a warm-up study: several records of one configuration that differ only
    in their warm-up count (so `lmbench report` re-renders warmup.md from them too)."""
    rest = [dataclasses.replace(r.config, warmup=0) for r in records]
    return len({r.config.warmup for r in records}) > 1 and all(c == rest[0] for c in rest)


def write_study(records: list[Record], out_dir: Path) -> Path:
    """Write warmup.md and warmup.csv into out_dir from the study's stored records."""
    config = records[-1].config
    table = warmup_table(records)
    out = Path(out_dir)
    path = out / "warmup.md"
    atomic_write(out / "warmup.csv", table.to_csv(index=False).encode())
    atomic_write(path, render(table, config, records[-1].environment).encode())
    return path
