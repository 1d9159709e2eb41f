"""The collective-bandwidth report of a run directory: collectives.md, the table as collectives.csv (numbers as
numbers) and collectives.tex, and a plot of bus bandwidth against message size per job under plots/.

Everything is read from RUN_DIR/collectives.jsonl (results/collectives.py), so `lmbench report RUN_DIR` on an old
run gives the same report. The numbers come from analysis/collectives.py and the findings from
analysis/findings/collectives.py; this module only formats and draws.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.collectives import Job, collectives_table, jobs, ranks
from lmbench.analysis.findings.collectives import PLATEAU_BAND_PCT, plateaus
from lmbench.config import size_text
from lmbench.render.markdown import finding_lines, table as markdown_table
from lmbench.render.files import latex_table, write_files
from lmbench.render.plots import PLOTS_DIR, new_figure, spans_decades
from lmbench.results.collectives import COLLECTIVES_FILE, CollectiveRecord, CollectivesStore

REPORT_FILE = "collectives.md"
TITLES = {"op": "Collective", "size": "Size", "bytes": "Bytes", "count": "Elements", "time_ms": "Time (ms)",
          "rank_mean_ms": "Mean of ranks (ms)", "algbw_gbps": "algbw (GB/s)", "busbw_gbps": "busbw (GB/s)"}


def plot_name(job: Job) -> str:
    return f"busbw-{job.slug}"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: sizes in binary units, times and bandwidths to 4 significant digits, OOM spelled out."""
    def number(value: Any, status: str) -> str:
        return "OOM" if status != "ok" else f"{value:.4g}"

    shown = pd.DataFrame({
        TITLES["op"]: table["op"],
        TITLES["size"]: [size_text(int(s)) for s in table["requested_bytes"]],
        TITLES["bytes"]: [str(int(b)) for b in table["bytes"]],
        TITLES["count"]: [str(int(c)) for c in table["count"]],
    })
    for column in ("time_ms", "rank_mean_ms", "algbw_gbps", "busbw_gbps"):
        shown[TITLES[column]] = [number(v, s) for v, s in zip(table[column], table["status"])]
    return shown


def environment_line(records: list[CollectiveRecord]) -> str:
    env = records[-1].environment
    nccl = f" · NCCL {env['nccl']}" if env.get("nccl") else ""
    hosts = ", ".join(env.get("hosts") or []) or "?"
    return (f"{env.get('device_name')} · {ranks(env.get('world_size', 0))} on {env.get('nodes')} node(s) ({hosts}) · "
            f"{env.get('backend')}{nccl} · torch {env.get('torch')} · commit {env.get('git_commit')}")


def render(records: list[CollectiveRecord], name: str) -> tuple[str, pd.DataFrame, dict[Job, pd.DataFrame]]:
    """(collectives.md, the numeric table of every job stacked, each job's numeric table)."""
    grouped = jobs(records)
    lines = [f"# Collective bandwidth — {name}", "",
             f"Generated from `{COLLECTIVES_FILE}` by `lmbench collectives` / `lmbench report`. Definitions as "
             "nccl-tests': size is the larger buffer of one rank (the gathered output of all_gather, the input of "
             "reduce_scatter, the whole send buffer of all_to_all); time is the slowest rank's mean over the timed "
             "steps (the ranks' mean beside it); algbw = size / time; busbw = algbw × 2(n−1)/n for all_reduce, "
             "(n−1)/n for all_gather, reduce_scatter and all_to_all, 1 for broadcast. GB/s are 10⁹ bytes/s.", ""]
    tables = {}
    for job, members in grouped.items():
        table = collectives_table(members)
        tables[job] = table
        steps = ", ".join(sorted({f"{r.data['warmup']} warm-up + {r.steps} timed" for r in members}))
        alone = (" One rank: no data crosses between ranks, so times show the calls' own cost and bus bandwidth is 0 "
                 "where its factor is (n−1)/n.") if job.world_size == 1 else ""
        lines += [f"## {job.title}", "", environment_line(members) + f". Steps per size: {steps}.{alone}", "",
                  markdown_table(display_table(table), ["left", "right", "right", "right", "right", "right", "right",
                                                        "right"]), ""]
        oom = table[table["status"] != "ok"]
        for row in oom.itertuples():
            message = next(r.oom_message for r in members if r.op == row.op and r.requested_bytes == row.requested_bytes)
            lines.append(f"- OOM: {row.op} {size_text(int(row.requested_bytes))}: {message}")
        lines += [""] if len(oom) else []
        lines += ["### Bus bandwidth against size", "", f"![Bus bandwidth against size, {job.title}]"
                  f"({PLOTS_DIR}/{plot_name(job)}.png)", "",
                  f"### Findings (plateau band {PLATEAU_BAND_PCT:g}%)", "", *(finding_lines(plateaus(table)) or
                                                                            ["None: fewer than two sizes measured."]), ""]
    stacked = pd.concat([t.assign(dtype=j.dtype, world_size=j.world_size, backend=j.backend, device_type=j.device_type)
                         for j, t in tables.items()], ignore_index=True)
    return "\n".join(lines), stacked, tables


def draw_busbw(table: pd.DataFrame, job: Job) -> tuple[Any, dict[str, Any]]:
    """Bus bandwidth against size, a line per collective, log₂ size axis (log bandwidth axis when it spans more
    than plots.LOG_RANGE); returns the figure and the data drawn."""
    from matplotlib.ticker import FuncFormatter

    figure, [[ax]] = new_figure(9, 5.5)
    series = []
    for op, rows in table[table["status"] == "ok"].groupby("op", sort=False):
        sizes, busbw = [int(s) for s in rows["bytes"]], [float(b) for b in rows["busbw_gbps"]]
        ax.plot(sizes, busbw, "o-", lw=1.2, ms=4, label=op)
        series.append({"op": op, "bytes": sizes, "busbw_gbps": busbw})
    values = [b for s in series for b in s["busbw_gbps"]]
    sizes = sorted({b for s in series for b in s["bytes"]})
    ax.set_xscale("log", base=2)
    if sizes:
        ticks = sizes[:: max(1, -(-len(sizes) // 12))]  # at most about 12 labels
        ax.set_xticks(ticks, [size_text(t) for t in ticks], rotation=45, ha="right")
        ax.minorticks_off()
    log_y = spans_decades(values)
    if log_y:  # plain numbers: gloo on a CPU moves well under 1 GB/s, where a LogFormatter would print 1e-01
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="message size (log₂)", ylabel="bus bandwidth, GB/s" + (" (log)" if log_y else ""),
           title=f"Bus bandwidth against message size — {job.title}")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=8, loc="upper left")
    return figure, {"series": series, "log_y": log_y}


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write collectives.md, collectives.csv, collectives.tex and plots/busbw-<job>.png from the stored records;
    returns the path of collectives.md."""
    run = Path(run_dir)
    markdown, stacked, tables = render(CollectivesStore(run).records(), run.name)
    figures = ((plot_name(job), draw_busbw(table, job)[0]) for job, table in tables.items())
    latex = [latex_table(display_table(table), job.title) for job, table in tables.items()]
    return write_files(Path(out_dir) if out_dir is not None else run, figures, ("busbw-*.png",),
                       {"collectives.csv": stacked}, "collectives.tex", latex, REPORT_FILE, markdown)[0]  # the Markdown
