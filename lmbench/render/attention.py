"""The attention micro-benchmark's report of a run directory: attention.md, the cell table as attention.csv (numbers
as numbers), the fits and the largest lengths as attention-fits.csv and attention-largest.csv, the Markdown tables as
attention.tex, and per setup and head dimension a log-log plot of time and memory against sequence length under
plots/.

Everything is read from RUN_DIR/attention.jsonl (results/attention.py), so `lmbench report RUN_DIR` on an old run
gives the same report. The numbers come from analysis/attention.py and the findings from
analysis/findings/attention.py; this module only formats and draws.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.attention import QUANTITIES, Setup, cells_table, fits_table, largest_fitting, setups
from lmbench.analysis.findings.attention import findings
from lmbench.analysis.fits import GOOD_FIT_R2
from lmbench.render.markdown import finding_lines, table as markdown_table
from lmbench.render.files import latex_table, write_files
from lmbench.render.plots import PLOTS_DIR, new_figure, value_axis
from lmbench.results.attention import ATTENTION_FILE, COMPILED, NAIVE, AttentionRecord, AttentionStore

REPORT_FILE = "attention.md"
MEMORY_METHODS = {"cuda_allocated": "the inputs' bytes plus what torch.cuda.memory_allocated gained over the forward "
                                    "(workspaces kept across cells left out)",
                  "tensor_bytes": "the bytes of the tensors alive after the forward (inputs, output and what autograd "
                                  "saved), each storage once; not the process's RSS"}


def plot_name(setup: Setup, head_dim: int) -> str:
    return f"attention-{setup.slug}-hd{head_dim}"


def _cell_text(row: Any) -> str:
    if row.status == "oom":
        return "OOM"
    if row.status == "unsupported":
        return "unsupported"
    return f"{row.forward_ms:.4g} / {row.backward_ms:.4g} ms, {row.memory_mb:.4g} MB"


def _speedup_text(row: Any) -> str:
    if math.isnan(row.forward_speedup):
        return "—"
    return f"×{row.forward_speedup:.2f} / ×{row.backward_speedup:.2f}"


def _notes(cells: pd.DataFrame) -> list[str]:
    """Why cells have no numbers, one line per distinct reason with the cells it holds for."""
    by_note: dict[str, list[str]] = {}
    for r in cells[cells["note"].astype(bool)].itertuples():
        by_note.setdefault(r.note, []).append(f"hd {r.head_dim} T {r.seq_len}")
    return [f"- {'every cell' if len(where) == len(cells) else ', '.join(where)}: {note}"
            for note, where in by_note.items()]


LABELS = {"impl": "Implementation", "head_dim": "Head dim", "quantity": "Quantity"}


def _wide(table: pd.DataFrame, text: Any, rows: list[str], across: str, heading: Any) -> pd.DataFrame:
    """`table`'s cells as text (`text` of a row), `rows` down in their order of appearance, the values of `across`
    as columns headed `heading(value)`, "—" where a combination has no cell."""
    shown = table.assign(cell=[text(r) for r in table.itertuples()])
    order = list(dict.fromkeys(zip(*(shown[r] for r in rows)))) if len(rows) > 1 else list(dict.fromkeys(shown[rows[0]]))
    wide = shown.pivot(index=rows, columns=across, values="cell").reindex(order).fillna("—").reset_index()
    wide.columns = [LABELS[c] if c in rows else heading(c) for c in wide.columns]
    return wide.astype(str)


def pivot(table: pd.DataFrame, text: Any, rows: list[str]) -> pd.DataFrame:
    """`table`'s cells as text (`text` of a row), `rows` down and sequence lengths across."""
    return _wide(table, text, rows, "seq_len", lambda t: f"T = {t}")


def largest_display(largest: pd.DataFrame) -> pd.DataFrame:
    def text(row: Any) -> str:
        if row.unsupported:
            return "unsupported"
        if math.isnan(row.largest):
            return "none"
        return f"{int(row.largest)}" + ("" if math.isnan(row.first_oom) else f" (OOM at {int(row.first_oom)})")

    return _wide(largest, text, ["impl"], "head_dim", lambda d: f"hd {d}")


def fits_display(fits: pd.DataFrame) -> pd.DataFrame:
    def text(row: Any) -> str:
        exponent = f"{row.exponent:.2f}" if row.r2 >= GOOD_FIT_R2 else "—"
        return f"{exponent} (R² {row.r2:.3f}, n {row.n})"

    return _wide(fits.assign(quantity=fits["quantity"].map(QUANTITIES)), text, ["impl", "quantity"], "head_dim",
                 lambda d: f"hd {d}")


def _speedup_table(table: pd.DataFrame) -> str:
    """The speedup pivot of the implementations with a cell that ran beside naive's."""
    shown = table[(table["impl"] != NAIVE) & table.groupby("impl")["forward_speedup"].transform(lambda s: s.notna().any())]
    return markdown_table(pivot(shown, _speedup_text, ["impl", "head_dim"])) if len(shown) else "(no cell ran beside naive)"


def environment_line(records: list[AttentionRecord]) -> str:
    env = records[-1].environment
    numerics = env.get("numerics", {})
    cuda = f" · CUDA {env['cuda']}" if env.get("cuda") else ""
    return (f"{env.get('device_name')} · torch {env.get('torch')}{cuda} · commit {env.get('git_commit')} · fp32 matmul "
            f"precision {numerics.get('float32_matmul_precision')}")


def render(records: list[AttentionRecord], name: str) -> tuple[str, dict[str, pd.DataFrame], dict[Setup, pd.DataFrame]]:
    """(attention.md, the three CSV tables of every setup stacked, each setup's cell table)."""
    lines = [f"# Attention micro-benchmark — {name}", "",
             f"Generated from `{ATTENTION_FILE}` by `lmbench attention` / `lmbench report`. Per cell (implementation "
             "× head dim × sequence length T): forward = mean ms of the timed forward passes (inputs require grad, so "
             "each builds the graph a backward uses); backward = mean ms of the timed backward passes, each on a fresh "
             "forward's graph, timing the backward only; memory = MB in use just before the backward. Speedup = "
             "naive's mean / the implementation's, per cell. OOM: ran out of memory (the grid went on).", ""]
    stacked: dict[str, list[pd.DataFrame]] = {"cells": [], "fits": [], "largest": []}
    tables = {}
    for setup, members in setups(records).items():
        table = cells_table(members)
        largest, fits = largest_fitting(table), fits_table(table)
        tables[setup] = table
        for key, frame in (("cells", table), ("fits", fits), ("largest", largest)):
            stacked[key].append(frame.assign(**setup._asdict()))
        methods = sorted({r.memory_method for r in members if r.memory_method})
        passes = ", ".join(sorted({f"{r.warmup} warm-up + {r.passes} timed" for r in members}))
        lines += [f"## {setup.title}", "", f"{environment_line(members)}. Passes per cell: {passes}, each way. Memory: "
                  + "; ".join(MEMORY_METHODS[m] for m in methods) + ".", "",
                  "### Findings", "", *finding_lines(findings(members, table, largest)), "",
                  "### Largest sequence length that fits", "", markdown_table(largest_display(largest)), "",
                  "### Fitted exponents (quantity ∝ T^k)", "",
                  f"k with R² and the number of lengths; — where R² < {GOOD_FIT_R2:g} (no clear power law).", "",
                  markdown_table(fits_display(fits)) if len(fits) else "(too few lengths to fit)", ""]
        for impl, cells in table.groupby("impl", sort=False):
            lines += [f"### {impl}: forward / backward ms, memory MB", "",
                      markdown_table(pivot(cells, _cell_text, ["head_dim"])), ""]
            notes = _notes(cells)
            if impl == COMPILED and cells["first_call_s"].notna().any():
                seconds = cells["first_call_s"].dropna()
                backend = next(r.compile_backend for r in members if r.impl == COMPILED)
                notes.append(f"- compile ({backend}; the first forward + backward): {seconds.min():.3g}–"
                             f"{seconds.max():.3g} s per cell, outside the timed passes")
            lines += [*notes, ""] if notes else []
        lines += ["### Speedup against naive (forward / backward)", "",
                  _speedup_table(table), "",
                  "### Time and memory against sequence length (log-log)", ""]
        lines += [f"![Time and memory against T, {setup.title}, hd {d}]({PLOTS_DIR}/{plot_name(setup, d)}.png)"
                  for d in sorted(table["head_dim"].unique())] + [""]
    return "\n".join(lines), {key: pd.concat(frames, ignore_index=True) for key, frames in stacked.items()}, tables


def draw(table: pd.DataFrame, setup: Setup, head_dim: int) -> tuple[Any, dict[str, Any]]:
    """Forward time, backward time and memory against T at one head dim, log-log, a line per implementation (an
    implementation's legend entry names where it ran out of memory); returns the figure and the data drawn."""
    from matplotlib.ticker import FuncFormatter

    figure, [axes] = new_figure(14, 4.6, 1, 3)
    cells = table[table["head_dim"] == head_dim]
    series = []
    for impl, rows in cells.groupby("impl", sort=False):
        ran, oom = rows[rows["status"] == "ok"], rows[rows["status"] == "oom"]
        if ran.empty:
            continue
        label = impl + (f" (OOM from T = {int(oom['seq_len'].min())})" if len(oom) else "")
        drawn = {"impl": impl, "seq_len": [int(t) for t in ran["seq_len"]]}
        for ax, quantity in zip(axes, QUANTITIES):
            drawn[quantity] = [float(v) for v in ran[quantity]]
            ax.plot(drawn["seq_len"], drawn[quantity], "o-", lw=1.2, ms=4, label=label)
        series.append(drawn)
    for ax, (quantity, title) in zip(axes, QUANTITIES.items()):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        value_axis(ax, [], log=True)
        ax.set(xlabel="sequence length T (log₂)", ylabel=("MB" if quantity == "memory_mb" else "ms per pass") + " (log)",
               title=title)
        ax.grid(True, which="both", alpha=0.3)
    if series:
        axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"Attention, head dim {head_dim} — {setup.title}")
    return figure, {"series": series}


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write attention.md, its CSV tables, attention.tex and plots/attention-<setup>-hd<d>.png from the stored
    records; returns the path of attention.md."""
    run = Path(run_dir)
    markdown, stacked, tables = render(AttentionStore(run).records(), run.name)
    figures = ((plot_name(setup, int(d)), draw(table, setup, int(d))[0])
               for setup, table in tables.items() for d in sorted(table["head_dim"].unique()))
    csvs = {name: stacked[key] for key, name in (("cells", "attention.csv"), ("fits", "attention-fits.csv"),
                                                 ("largest", "attention-largest.csv"))}
    latex = [latex_table(pivot(cells, _cell_text, ["head_dim"]), f"{setup.title}: {impl}, forward / backward ms, "
                         "memory MB")
             for setup, table in tables.items() for impl, cells in table.groupby("impl", sort=False)]
    return write_files(Path(out_dir) if out_dir is not None else run, figures, ("attention-*.png",), csvs,
                       "attention.tex", latex, REPORT_FILE, markdown)[0]  # the Markdown
