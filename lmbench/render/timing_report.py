"""Render stored results as the seed-format report: Markdown and LaTeX, the same tables as numbers in CSV
(analysis/report_tables.py: mean and std in columns of their own, units in the column names), and the plots
(plots.py) as PNG files under plots/, linked from the Markdown.

Everything comes from the records in RUN_DIR/results.jsonl, so re-running `lmbench report` on an old
run directory reproduces its tables exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.findings import findings, run_findings
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.groups import group_records, group_title, varying_fields
from lmbench.analysis.report_tables import across_groups, section_stats
from lmbench.config import PHASES
from lmbench.render.configuration import configuration_lines
from lmbench.render.files import latex_table, write_files
from lmbench.render.markdown import finding_lines, table as markdown_table
from lmbench.render.plots import PLOTS_DIR, TIMING_PLOTS, Plot, figures, plan
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore, latest_per_key
from lmbench.results.stats import NOISY_CI_PCT, NOISY_CV_PCT

PHASE_TITLES = {phase: phase.capitalize() for phase in (*PHASES, "total")}


def ms(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def timing_table(data: pd.DataFrame) -> pd.DataFrame:
    """Model Size | Forward (ms) | Backward (ms) | [Optimizer (ms)] | Total (ms): mean ± std, or OOM."""
    phases = [c.removesuffix("_mean_ms") for c in data.columns if c.endswith("_mean_ms")]
    rows = []
    for row in data.to_dict("records"):
        shown = {"Model Size": row["model"]}
        for phase in phases:
            title = f"{PHASE_TITLES[phase]} (ms)"
            if row["status"] == "oom":
                shown[title] = "OOM" if phase in (row["oom_phase"], "total") else "—"
            else:
                shown[title] = ms(row[f"{phase}_mean_ms"], row[f"{phase}_std_ms"])
        rows.append(shown)
    return pd.DataFrame(rows)


def rank_table(data: pd.DataFrame) -> pd.DataFrame:
    """Model | Phase | Rank r (ms) per rank | Spread (ms) | Spread (% of mean): each rank's mean of a data-parallel job."""
    if data.empty:
        return data
    ranks = [c for c in data.columns if c.startswith("rank_") and c.endswith("_mean_ms")]
    table = pd.DataFrame({"Model": data["model"], "Phase": data["phase"]})
    for column in ranks:
        table[f"Rank {column.removeprefix('rank_').removesuffix('_mean_ms')} (ms)"] = data[column].map(_maybe)
    table["Spread (ms)"] = data["spread_ms"].map(_maybe)
    table["Spread (% of mean)"] = data["spread_pct"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}%")
    return table


def _maybe(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.2f}"


def cv_table(data: pd.DataFrame) -> pd.DataFrame:
    """Model | <Phase> CV per phase; a phase flagged noisy is marked with '*'. Records measured in several
    processes add the total's CV within a process beside the CV between the processes' means."""
    phases = [c.removesuffix("_cv_pct") for c in data.columns if c.endswith("_cv_pct") and not c.startswith("total_")]
    rows = []
    for row in data.to_dict("records"):
        shown = {"Model": row["model"]}
        for phase in phases:
            cv = f"{row[f'{phase}_cv_pct']:.1f}%" + ("*" if row[f"{phase}_noisy"] else "")
            shown[f"{PHASE_TITLES[phase]} CV"] = "OOM" if row["status"] == "oom" else cv
        if "processes" in data:
            one = pd.isna(row["processes"])
            shown["Total CV within a process"] = "—" if one else f"{row['total_within_cv_pct']:.1f}%"
            shown["Total CV between processes"] = (
                "— (1 process)" if one else f"{row['total_between_cv_pct']:.1f}% ({row['processes']} processes)")
        rows.append(shown)
    return pd.DataFrame(rows)


def ratio_table(data: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Model": data["model"],
                         "Ratio": [f"{r:.2f}x" if status == "ok" else "OOM"
                                   for r, status in zip(data["backward_forward_ratio"], data["status"])]})


def _peak_title(data: pd.DataFrame) -> str:
    return "Peak alloc" if "peak_alloc_mb" in data else "Peak RSS"


def _peak(data: pd.DataFrame) -> pd.Series:
    return data["peak_alloc_mb"] if "peak_alloc_mb" in data else data["peak_rss_mb"]


def throughput_display(data: pd.DataFrame) -> pd.DataFrame:
    fmt = lambda v, spec: "—" if pd.isna(v) else format(v, spec)  # noqa: E731
    return pd.DataFrame({
        "Model": data["model"],
        "Params (M)": [fmt(p / 1e6, ".1f") if pd.notna(p) else "—" for p in data["params"]],
        "Tokens/s": [fmt(v, ",.0f") for v in data["tokens_per_s"]],
        "Forward TFLOP/s": [fmt(v, ".2f") for v in data["tflops_forward"]],
        "Step TFLOP/s": [fmt(v, ".2f") for v in data["tflops_step"]],
        "MFU": [fmt(v, ".1f") + "%" if pd.notna(v) else "—" for v in data["mfu_pct"]],
        f"{_peak_title(data)} (MB)": [fmt(v, ",.0f") for v in _peak(data)],
    })


def memory_display(data: pd.DataFrame) -> pd.DataFrame:
    """Measured peak beside the analytic sizes of the key tensors (analysis/memory.py), in MB; a data-parallel job's
    per rank, its sizes one rank's."""
    fmt = lambda v: "—" if v is None or pd.isna(v) else f"{v:,.0f}"  # noqa: E731
    optional = lambda column, title: {title: [fmt(v) for v in data[column]]} if column in data else {}  # noqa: E731
    return pd.DataFrame({
        "Model": data["model"],
        **({"Rank": ["—" if pd.isna(v) else str(v) for v in data["rank"]]} if "rank" in data else {}),
        f"{_peak_title(data)} (MB)": ["OOM" if status == "oom" else fmt(v)
                                      for v, status in zip(_peak(data), data["status"])],
        "Params": [fmt(v) for v in data["params_mb"]],
        "Grads": [fmt(v) for v in data["grads_mb"]],
        "AdamW state": [fmt(v) for v in data["adamw_state_mb"]],
        **optional("ddp_buckets_mb", "DDP buckets"),
        "Peak − state": [fmt(v) for v in data["peak_minus_state_mb"]],
        **optional("fsdp_gathered_mb", "FSDP gathered"),
        # "—" where a size is unknown: a custom model's activations (results/sizes.py)
        "Residual (1)": ["—" if pd.isna(v) else f"{v:,.1f}" for v in data["residual_mb"]],
        "Scores (1 layer)": ["—" if pd.isna(v) else f"{v:,.1f}" for v in data["scores_1_layer_mb"]],
        "Logits": [f"{v:,.1f}" for v in data["logits_mb"]],
    })


def graph_display(data: pd.DataFrame) -> pd.DataFrame:
    """The eager step beside its CUDA graph replay (analysis/findings/overhead.py): device work and host overhead."""
    if data.empty:
        return data
    fmt = lambda v, spec, unit="": "—" if pd.isna(v) else format(v, spec) + unit  # noqa: E731
    return pd.DataFrame({
        "Model": data["model"],
        "Eager step (ms)": [fmt(v, ".2f") for v in data["eager_step_ms"]],
        "Eager CV": [fmt(v, ".1f", "%") for v in data["eager_cv_pct"]],
        "Graph replay (ms)": [fmt(v, ".2f") for v in data["graph_replay_ms"]],
        "Replay CV": [fmt(v, ".2f", "%") for v in data["replay_cv_pct"]],
        "Exposed host time (ms)": [fmt(v, ".2f") if pd.isna(error) else error
                                   for v, error in zip(data["exposed_host_ms"], data["error"])],
        "Host share": [fmt(v, ".0f", "%") for v in data["host_share_pct"]],
    })


def detail_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per size and phase: n, median, the step-level 95% CI of the mean and, for records measured in several
    processes, the 95% CI whose unit is the process (t with R − 1 degrees of freedom), p5–p95, IQR, outliers."""
    if data.empty:
        return data
    table = pd.DataFrame({
        "Model": data["model"],
        "Phase": data["phase"],
        "n": data["n"].astype(int),
        "Median (ms)": data["median_ms"].map("{:.2f}".format),
        "95% CI of mean, steps (ms)": [_span(lo, hi) for lo, hi in zip(data["ci_low_ms"], data["ci_high_ms"])],
        "p5 – p95 (ms)": [_span(lo, hi) for lo, hi in zip(data["p5_ms"], data["p95_ms"])],
        "IQR (ms)": data["iqr_ms"].map("{:.2f}".format),
        "Outliers": data["outliers"].astype(int),
    })
    if "processes" in data:
        table.insert(5, "95% CI of mean, processes (ms)",
                     ["—" if pd.isna(n) else f"{_span(lo, hi)} ({n})"
                      for lo, hi, n in zip(data["process_ci_low_ms"], data["process_ci_high_ms"], data["processes"])])
    return table


def _span(lo: float, hi: float) -> str:
    return "—" if pd.isna(lo) or pd.isna(hi) else f"{lo:.2f} – {hi:.2f}"  # one measured step has no CI


DISPLAY = {"results": timing_table, "ranks": rank_table, "cv": cv_table, "ratio": ratio_table,
           "throughput": throughput_display, "memory": memory_display, "graph": graph_display,
           "statistics": detail_table}


def section_tables(records: list[Record]) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """One group's tables: (as shown, formatted text; as numbers, analysis/report_tables.py), kind by kind."""
    data = section_stats(records)
    return {kind: DISPLAY[kind](table) for kind, table in data.items()}, data


SECTION_TITLES = {
    "results": "Results Table",
    "ranks": "Per-Rank Means (the job's step is its slowest rank's, step by step)",
    "cv": "Coefficient of Variation (CV)",
    "ratio": "Backward/Forward Time Ratios",
    "throughput": "Throughput, MFU and Memory",
    "memory": "Peak Memory and Key Tensor Sizes (MB)",
    "graph": "Eager Step against its CUDA Graph Replay (device work + exposed host time)",
    "statistics": "Detailed Statistics",
    "across": "Mean Step across All Configurations (ms; model TFLOP/s in brackets)",
}


@dataclass(frozen=True)
class Report:
    """A timing report composed once from its records: the Markdown, every table as shown (Markdown, LaTeX) and as
    numbers (CSV, `--json`), group columns prepended to both, and the findings beside the heading of the group they
    belong to (None: the findings across groups)."""

    markdown: str
    tables: dict[str, pd.DataFrame]
    data: dict[str, pd.DataFrame]
    findings: list[tuple[str | None, Finding]]
    records: list[Record]
    titles: dict[str, str]  # each table's title (SECTION_TITLES, the across table's naming its replay rows)


def render(run_dir: str | os.PathLike) -> tuple[str, dict[str, pd.DataFrame]]:
    """The Markdown report and all tables as shown (one DataFrame per kind, group columns prepended)."""
    return render_records(latest_per_key(ResultsStore(run_dir).records()), Path(run_dir).name)


def render_records(records: list[Record], name: str) -> tuple[str, dict[str, pd.DataFrame]]:
    """render() of records already read; its Plots section links the plots that plots.figures draws from them."""
    report = compose(records, name)
    return report.markdown, report.tables


def compose(records: list[Record], name: str) -> Report:
    """The report of records already read, titled by `name` (the run directory's)."""
    grouped = group_records(records)
    group_fields = [g for g, _ in grouped]
    varying = varying_fields(group_fields)
    lines = [f"# Benchmark Results — {name}", "",
             "Generated by `lmbench report` from `results.jsonl`; every number below is computed from the stored "
             "per-step samples. Times are mean ± sample std over the measured steps (warm-up excluded).", "",
             "## Configuration", *configuration_lines(records, group_fields), ""]
    shown: dict[str, list[pd.DataFrame]] = {}
    numbers: dict[str, list[pd.DataFrame]] = {}
    found: list[tuple[str | None, Finding]] = []
    for group, members in grouped:
        title = group_title(group, varying)
        lines += [f"## Results{': ' + title if title else ''}", ""]
        tables, data = section_tables(members)
        for kind, table in tables.items():
            if table.empty:
                continue
            lines += [f"### {SECTION_TITLES[kind]}", "", markdown_table(table), ""]
            if kind == "cv":
                lines += [f"`*` noisy: CV > {NOISY_CV_PCT:g}% or 95% CI half-width > {NOISY_CI_PCT:g}% of the mean.", ""]
            shown.setdefault(kind, []).append(_with_axes(table, group, varying))
            numbers.setdefault(kind, []).append(_with_axes(data[kind], group, varying))
        group_findings = findings(members)
        found += [(title, f) for f in group_findings]
        lines += ["### Findings", ""]
        lines += finding_lines(group_findings) or ["None."]
        lines.append("")
    stacked = {kind: _stack(frames).fillna("—") for kind, frames in shown.items()}  # a phase a group lacks: '—'
    across = run_findings(records)
    found += [(None, f) for f in across]
    if across:
        lines += ["## Findings across groups", "",
                  *finding_lines(across), ""]
    data = {kind: _stack(frames) for kind, frames in numbers.items()}
    titles = dict(SECTION_TITLES)
    if len(grouped) > 1:  # one table each to read step time and memory across sizes, contexts and modes
        data["across"] = across_groups(data, varying)
        stacked["across"] = across_display(data["across"], varying)
        titles["across"] = across_title(data["across"])
        lines += [f"## {titles['across']}", "", markdown_table(stacked["across"]), ""]
    if len(grouped) > 1 and "memory" in stacked:
        lines += ["## Peak memory across all configurations (MB)", "",
                  markdown_table(stacked["memory"]), ""]
    lines += ["## Plots", "", *plot_lines(plan(records))]
    return Report("\n".join(lines), stacked, data, found, records, titles)


def across_title(data: pd.DataFrame) -> str:
    """The across table's title, naming the CUDA graph replay rows where across_display adds them."""
    title = SECTION_TITLES["across"]
    if "graph_replay_ms" in data and data["graph_replay_ms"].notna().any():
        title = title[:-1] + "; CUDA graph replay below)"
    return title


def across_display(data: pd.DataFrame, axes: tuple[str, ...]) -> pd.DataFrame:
    """analysis.report_tables.across_groups as one row per group and a column per model, 'ms (TFLOP/s)', and the
    group's CUDA graph replay in the next row where one was timed."""
    cells: dict[str, dict[str, str]] = {}
    for row in data.itertuples(index=False):
        title = group_title({a: getattr(row, a) for a in axes}, axes)
        cells.setdefault(title, {})[row.model] = (f"{row.step_mean_ms:.2f} ({row.tflops_step:.1f})"
                                                  if row.step_mean_ms == row.step_mean_ms else "—")
        replay = getattr(row, "graph_replay_ms", float("nan"))
        if replay == replay:
            cells.setdefault(f"{title}, CUDA graph replay", {})[row.model] = f"{replay:.2f}"
    table = pd.DataFrame(cells).reindex(list(dict.fromkeys(data["model"]))).fillna("—").T
    return table.rename_axis("Configuration").reset_index()


def _with_axes(table: pd.DataFrame, group: dict[str, Any], varying: tuple[str, ...]) -> pd.DataFrame:
    """The table with a column per varying group field prepended, so tables of all groups stack into one."""
    axes = pd.DataFrame({f: [group[f]] * len(table) for f in varying}, index=table.index)
    return pd.concat([axes, table], axis=1)


def plot_lines(plots: list[Plot]) -> list[str]:
    """Markdown image links, relative to report.md, to the plots write_report draws."""
    if not plots:
        return ["None: no configuration finished.", ""]
    lines = ["Drawn by `lmbench report` from the same records as the tables (measured steps unless marked).", ""]
    for plot in plots:
        lines += [f"### {plot.title}", "", f"![{plot.title}]({PLOTS_DIR}/{plot.name}.png)", ""]
    return lines


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate one kind of table across groups (NaN where a group lacks a column, e.g. a phase)."""
    widest = max(frames, key=lambda f: len(f.columns))
    order = list(widest.columns) + [c for f in frames for c in f.columns if c not in widest.columns]
    return pd.concat(frames, ignore_index=True)[list(dict.fromkeys(order))]


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write report.md, <table>.csv, report.tex and plots/<plot>.png into out_dir (default: the run directory)."""
    return write_report_files(run_dir, out_dir)[1][0]


def write_report_files(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None
                       ) -> tuple[Report, list[Path]]:
    """write_report(), returning the report and the files written (report.md first, then the CSV tables of numbers,
    report.tex and the plots). A table CSV of an earlier rendering that this one has not (the per-rank means once
    the run's only multi-rank record is gone, say) is removed, as stale plots are."""
    store = ResultsStore(run_dir)
    report = compose(latest_per_key(store.records()), Path(run_dir).name)
    out = Path(out_dir) if out_dir else store.run_dir
    csvs = {f"{kind}.csv": table for kind, table in report.data.items()}
    latex = [latex_table(t, report.titles[k]) for k, t in report.tables.items()]
    return report, write_files(out, figures(report.records), TIMING_PLOTS, csvs, "report.tex", latex, "report.md",
                               report.markdown, owned_csvs=[f"{kind}.csv" for kind in (*DISPLAY, "across")])
