"""Render stored results as the seed-format report: Markdown, plus the same tables as CSV and LaTeX, and
the plots (plots.py) as PNG files under plots/, linked from the Markdown.

Everything comes from the records in RUN_DIR/results.jsonl, so re-running `lmbench report` on an old
run directory reproduces its tables exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.findings import findings, run_findings
from lmbench.analysis.memory import memory_table
from lmbench.analysis.findings.overhead import overhead_table
from lmbench.analysis.groups import group_records, group_title, value_text, varying_fields
from lmbench.analysis.tables import backward_forward_ratio, phase_stats, throughput_table
from lmbench.config import PHASES
from lmbench.render.markdown import finding_lines, table as markdown_table
from lmbench.render.plots import PLOTS_DIR, Plot, plan, write_plots
from lmbench.results.record import Record, process_indices
from lmbench.results.store import ResultsStore, atomic_write, latest_per_key
from lmbench.results.stats import NOISY_CI_PCT, NOISY_CV_PCT

PHASE_TITLES = {phase: phase.capitalize() for phase in (*PHASES, "total")}



def ms(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def timing_table(records: list[Record]) -> pd.DataFrame:
    """Model Size | Forward (ms) | Backward (ms) | [Optimizer (ms)] | Total (ms): mean ± std, or OOM."""
    stats = phase_stats(records).set_index(["key", "phase"])
    phases = records[0].phases
    rows = []
    for record in records:
        row = {"Model Size": record.label}
        for phase in (*phases, "total"):
            s = stats.loc[(record.key, phase)]
            title = f"{PHASE_TITLES[phase]} (ms)"
            if record.status == "oom":
                row[title] = "OOM" if phase in (s["oom_phase"], "total") else "—"
            else:
                row[title] = ms(s["mean"], s["std"])
        rows.append(row)
    return pd.DataFrame(rows)


def cv_table(records: list[Record]) -> pd.DataFrame:
    """Model | <Phase> CV per phase; a phase flagged noisy is marked with '*'. Records measured in several
    processes add the total's CV within a process beside the CV between the processes' means."""
    stats = phase_stats(records).set_index(["key", "phase"])
    repeated = any(r.process_stats for r in records)
    rows = []
    for record in records:
        row = {"Model": record.label}
        for phase in record.phases:
            s = stats.loc[(record.key, phase)]
            row[f"{PHASE_TITLES[phase]} CV"] = (
                "OOM" if record.status == "oom" else f"{s['cv_pct']:.1f}%" + ("*" if s["noisy"] else "")
            )
        if repeated:
            between = record.process_stats.get("total")
            row["Total CV within a process"] = f"{between['within_cv_pct']:.1f}%" if between else "—"
            row["Total CV between processes"] = (f"{between['cv_pct']:.1f}% ({between['n']} processes)"
                                                 if between else "— (1 process)")
        rows.append(row)
    return pd.DataFrame(rows)


def ratio_table(records: list[Record]) -> pd.DataFrame:
    rows = []
    for record in records:
        if record.ok:
            rows.append({"Model": record.label, "Ratio": f"{backward_forward_ratio(record):.2f}x"})
        else:
            rows.append({"Model": record.label, "Ratio": "OOM"})
    return pd.DataFrame(rows)


def throughput_display(records: list[Record]) -> pd.DataFrame:
    table = throughput_table(records)
    memory = "Peak alloc (MB)" if records[0].on_cuda else "Peak RSS (MB)"
    fmt = lambda v, spec: "—" if pd.isna(v) else format(v, spec)  # noqa: E731
    return pd.DataFrame({
        "Model": table["label"],
        "Params (M)": [fmt(p / 1e6, ".1f") if pd.notna(p) else "—" for p in table["params"]],
        "Tokens/s": [fmt(v, ",.0f") for v in table["tokens_per_s"]],
        "Forward TFLOP/s": [fmt(v, ".2f") for v in table["tflops_forward"]],
        "Step TFLOP/s": [fmt(v, ".2f") for v in table["tflops_total"]],
        "MFU": [fmt(100 * v, ".1f") + "%" if pd.notna(v) else "—" for v in table["mfu_total"]],
        memory: [fmt(v, ",.0f") for v in table["peak_memory_mb"]],
    })


def memory_display(records: list[Record]) -> pd.DataFrame:
    """Measured peak beside the analytic sizes of the key tensors (analysis/memory.py), in MB."""
    table = memory_table(records)
    peak = "Peak alloc" if records[0].on_cuda else "Peak RSS"
    fmt = lambda v: "—" if v is None or pd.isna(v) else f"{v:,.0f}"  # noqa: E731
    return pd.DataFrame({
        "Model": table["label"],
        f"{peak} (MB)": ["OOM" if status == "oom" else fmt(v) for v, status in zip(table["peak_mb"], table["status"])],
        "Params": [fmt(v) for v in table["params_mb"]],
        "Grads": [fmt(v) for v in table["grads_mb"]],
        "AdamW state": [fmt(v) for v in table["optimizer_mb"]],
        "Peak − state": [fmt(v) for v in table["beyond_state_mb"]],
        "Residual (1)": [f"{v:,.1f}" for v in table["residual_mb"]],
        "Scores (1 layer)": [f"{v:,.1f}" for v in table["scores_mb"]],
        "Logits": [f"{v:,.1f}" for v in table["logits_mb"]],
    })


def graph_display(records: list[Record]) -> pd.DataFrame:
    """The eager step beside its CUDA graph replay (analysis/findings/overhead.py): device work and host overhead."""
    table = overhead_table(records)
    if table.empty:
        return table
    fmt = lambda v, spec, unit="": "—" if pd.isna(v) else format(v, spec) + unit  # noqa: E731
    return pd.DataFrame({
        "Model": table["label"],
        "Eager step (ms)": [fmt(v, ".2f") for v in table["eager_ms"]],
        "Eager CV": [fmt(v, ".1f", "%") for v in table["eager_cv_pct"]],
        "Graph replay (ms)": [fmt(v, ".2f") for v in table["graph_ms"]],
        "Replay CV": [fmt(v, ".2f", "%") for v in table["graph_cv_pct"]],
        "Exposed host time (ms)": [fmt(v, ".2f") if pd.isna(error) else error
                               for v, error in zip(table["host_ms"], table["error"])],
        "Host share": [fmt(v, ".0f", "%") for v in table["host_pct"]],
    })


def detail_table(records: list[Record]) -> pd.DataFrame:
    """Per size and phase: n, median, the step-level 95% CI of the mean and, for records measured in several
    processes, the 95% CI whose unit is the process (t with R − 1 degrees of freedom), p5–p95, IQR, outliers."""
    ok = [r for r in records if r.ok]
    stats = phase_stats(ok)
    if stats.empty:
        return stats
    stats = stats[stats["phase"] != "step"]
    table = pd.DataFrame({
        "Model": stats["label"],
        "Phase": stats["phase"],
        "n": stats["n"].astype(int),
        "Median (ms)": stats["median"].map("{:.2f}".format),
        "95% CI of mean, steps (ms)": [_span(lo, hi) for lo, hi in zip(stats["ci_low"], stats["ci_high"])],
        "p5 – p95 (ms)": [_span(lo, hi) for lo, hi in zip(stats["p5"], stats["p95"])],
        "IQR (ms)": stats["iqr"].map("{:.2f}".format),
        "Outliers": stats["outliers"].astype(int),
    })
    if any(r.process_stats for r in ok):
        by_key = {r.key: r.process_stats for r in ok}
        spans = []
        for key, phase in zip(stats["key"], stats["phase"]):
            between = by_key[key].get(phase)
            spans.append(f"{_span(between['ci_low'], between['ci_high'])} ({between['n']})" if between else "—")
        table.insert(5, "95% CI of mean, processes (ms)", spans)
    return table


def _span(lo: float, hi: float) -> str:
    return "—" if pd.isna(lo) or pd.isna(hi) else f"{lo:.2f} – {hi:.2f}"  # one measured step has no CI


def section_tables(records: list[Record]) -> dict[str, pd.DataFrame]:
    tables = {"results": timing_table(records), "cv": cv_table(records)}
    if "backward" in records[0].phases:
        tables["ratio"] = ratio_table(records)
    tables["throughput"] = throughput_display(records)
    tables["memory"] = memory_display(records)
    tables["graph"] = graph_display(records)
    tables["statistics"] = detail_table(records)
    return tables


SECTION_TITLES = {
    "results": "Results Table",
    "cv": "Coefficient of Variation (CV)",
    "ratio": "Backward/Forward Time Ratios",
    "throughput": "Throughput, MFU and Memory",
    "memory": "Peak Memory and Key Tensor Sizes (MB)",
    "graph": "Eager Step against its CUDA Graph Replay (device work + exposed host time)",
    "statistics": "Detailed Statistics",
}


def configuration_lines(records: list[Record], groups: list[dict[str, Any]]) -> list[str]:
    env = records[0].environment
    def values(field: str) -> list[str]:  # numbers in numeric order: ctx 128, 256, 512, 1024
        return [str(value_text(v)) for v in sorted({g[field] for g in groups}, key=lambda v: (isinstance(v, str), v))]

    device = env["device_name"] + (f" (driver {env['driver']})" if env.get("driver") else "")
    lines = [
        f"- Device: {device}; torch {env['torch']}" + (f", CUDA {env['cuda']}" if env.get("cuda") else "")
        + f", Python {env['python']}, host {env['host']}",
        f"- Batch size: {', '.join(values('batch'))}",
        f"- Sequence length: {', '.join(values('ctx'))}",
        f"- Warm-up steps: {', '.join(values('warmup'))}",
        f"- Measurement steps: {', '.join(values('steps'))}",
        f"- Modes: {', '.join(values('mode'))}",
        f"- Precision: {', '.join(values('precision'))}; TF32 {'/'.join(values('tf32'))}",
        f"- Attention: {', '.join(values('attention'))}; compile: "
        + "/".join(sorted({value_text(bool(r.numerics["compile"])) for r in records})),
        f"- Vocabulary: {', '.join(values('vocab_size'))}",
        f"- Ranges (--annotate): {', '.join(values('annotate'))}; op-level NVTX (--emit-nvtx): "
        + "/".join(values("emit_nvtx")),
        f"- Processes per configuration: {_processes_line(records)}",
        f"- lmbench {env['lmbench']}, commit {env['git_commit']}; {len(records)} record(s), "
        f"{min(r.timestamp for r in records)} – {max(r.timestamp for r in records)} (UTC)",
    ]
    profiled = sorted({r.profiler for r in records if r.profiler})
    if profiled:
        lines.append(f"- **Measured under a profiler** ({', '.join(profiled)}) in {sum(bool(r.profiler) for r in records)} "
                     "of these records: its host overhead is inside their times, which are not comparable with plain runs")
    rules: dict[tuple[float, float], list[str]] = {}  # (target %, budget s) -> how each such record ended
    for record in records:
        sampling = record.sampling or {}
        if sampling.get("target_ci_pct"):
            rules.setdefault((sampling["target_ci_pct"], sampling["max_time_s"]), []).append(sampling["ended_by"])
    for (target, budget), ends in rules.items():
        counted = ", ".join(f"{ends.count(reason)} by {reason}" for reason in dict.fromkeys(ends))
        lines.append(f"- Measured until the 95% CI half-width was ≤ {target:g}% of the mean or {budget:g} s ran out: "
                     f"{counted}")
    return lines


def _processes_line(records: list[Record]) -> str:
    """'1 (statistics cover step-to-step noise only)' or '3 (...)': how many fresh processes measured each."""
    counts = sorted({len(process_indices(r.samples)) for r in records if r.samples})
    if counts == [1]:
        return ("1 — every CI below covers step-to-step noise within one process, not the larger variation "
                "between fresh processes (measure with --repeats 3 to include it)")
    return (f"{'/'.join(map(str, counts))} — records with 2 or more also give the between-process CV and a CI "
            "whose unit is the process")


def render(run_dir: str | os.PathLike) -> tuple[str, dict[str, pd.DataFrame]]:
    """The Markdown report and all tables (one DataFrame per kind, group columns prepended)."""
    return render_records(latest_per_key(ResultsStore(run_dir).records()), Path(run_dir).name)


def render_records(records: list[Record], name: str) -> tuple[str, dict[str, pd.DataFrame]]:
    """render() of records already read; its Plots section links the plots that write_plots draws from them."""
    grouped = group_records(records)
    group_fields = [g for g, _ in grouped]
    varying = varying_fields(group_fields)
    lines = [f"# Benchmark Results — {name}", "",
             "Generated by `lmbench report` from `results.jsonl`; every number below is computed from the stored "
             "per-step samples. Times are mean ± sample std over the measured steps (warm-up excluded).", "",
             "## Configuration", *configuration_lines(records, group_fields), ""]
    combined: dict[str, list[pd.DataFrame]] = {}
    for group, members in grouped:
        title = group_title(group, varying)
        lines += [f"## Results{': ' + title if title else ''}", ""]
        for kind, table in section_tables(members).items():
            if table.empty:
                continue
            lines += [f"### {SECTION_TITLES[kind]}", "", markdown_table(table), ""]
            if kind == "cv":
                lines += [f"`*` noisy: CV > {NOISY_CV_PCT:g}% or 95% CI half-width > {NOISY_CI_PCT:g}% of the mean.", ""]
            axes = pd.DataFrame({f: [group[f]] * len(table) for f in varying}, index=table.index)
            combined.setdefault(kind, []).append(pd.concat([axes, table], axis=1))
        lines += ["### Findings", ""]
        lines += finding_lines(findings(members)) or ["None."]
        lines.append("")
    stacked = {kind: _stack(frames) for kind, frames in combined.items()}
    across = run_findings(records)
    if across:
        lines += ["## Findings across groups", "",
                  *finding_lines(across), ""]
    if len(grouped) > 1 and "memory" in stacked:  # one table to read memory across sizes, contexts and modes
        lines += ["## Peak memory across all configurations (MB)", "",
                  markdown_table(stacked["memory"]), ""]
    lines += ["## Plots", "", *plot_lines(plan(records))]
    return "\n".join(lines), stacked


def plot_lines(plots: list[Plot]) -> list[str]:
    """Markdown image links, relative to report.md, to the plots write_report draws."""
    if not plots:
        return ["None: no configuration finished.", ""]
    lines = ["Drawn by `lmbench report` from the same records as the tables (measured steps unless marked).", ""]
    for plot in plots:
        lines += [f"### {plot.title}", "", f"![{plot.title}]({PLOTS_DIR}/{plot.name}.png)", ""]
    return lines


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate one kind of table across groups; a phase some groups lack reads '—' there."""
    widest = max(frames, key=lambda f: len(f.columns))
    order = list(widest.columns) + [c for f in frames for c in f.columns if c not in widest.columns]
    return pd.concat(frames, ignore_index=True)[list(dict.fromkeys(order))].fillna("—")


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write report.md, <table>.csv, report.tex and plots/<plot>.png into out_dir (default: the run directory)."""
    store = ResultsStore(run_dir)
    records = latest_per_key(store.records())
    markdown, tables = render_records(records, Path(run_dir).name)
    out = Path(out_dir) if out_dir else store.run_dir
    out.mkdir(parents=True, exist_ok=True)
    write_plots(records, out / PLOTS_DIR)  # first, so report.md never links a plot that failed to draw
    atomic_write(out / "report.md", markdown.encode())
    for kind, table in tables.items():
        atomic_write(out / f"{kind}.csv", table.to_csv(index=False).encode())
    latex = [f"% {SECTION_TITLES[k]}\n" + _latex(t) for k, t in tables.items()]
    atomic_write(out / "report.tex", "\n".join(latex).encode())
    return out / "report.md"


def _latex(table: pd.DataFrame) -> str:
    return table.to_latex(index=False, escape=True)  # ±, – and × are plain UTF-8 text to LaTeX
