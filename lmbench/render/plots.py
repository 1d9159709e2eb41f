"""Plots of stored results, as PNG files next to the report: step time against FLOPs, time per step,
CV, phase breakdown, memory against context, MFU.

Drawing only: the numbers come from the records through the computing functions of lmbench/analysis/
and analysis.tables.scaling_fit, and every plot function returns the data it drew with its figure.
`plan(records)` says which plots the records support (the report links exactly those), `figures(records)`
draws them and `write_pngs(dir, figures, owned)` writes them. matplotlib is imported on first draw and used
through its Agg canvas (no pyplot, no display), so reports render headless and other commands skip the import.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from lmbench.analysis.groups import group_label, group_records, size_order, varying_fields
from lmbench.analysis.fits import MIN_FIT_POINTS
from lmbench.analysis.memory import memory_table
from lmbench.analysis.tables import phase_stats, scaling_fit, scaling_points, throughput_table
from lmbench.config import PHASES
from lmbench.results.record import Record, process_indices, process_of
from lmbench.results.store import atomic_write
from lmbench.results.stats import NOISY_CV_PCT

PLOTS_DIR = "plots"
PHASE_COLORS = dict(zip(PHASES, ("tab:blue", "tab:orange", "tab:green"), strict=True))
TIMING_PLOTS = ("scaling.png", "steps-*.png", "cv.png", "phases.png", "memory-ctx.png", "mfu.png")  # _plan's names
LOG_RANGE = 10.0  # a time axis spanning more than this factor is drawn on a log scale
DPI = 100
PROCESS_STYLES = ("-", "--", ":", "-.")  # line style of each fresh process of one size in the step plots
ALWAYS_NAMED = ("mode", "precision")  # group fields every legend label shows; others only when they vary

Drawn = tuple[Any, dict[str, Any]]  # (matplotlib Figure, the data drawn)


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: plots/<name>.png
    title: str  # the report's heading and the image's alt text
    kind: str
    group: str | None = None  # the group label of a per-group plot


@dataclass(frozen=True)
class Group:
    label: str  # legend text: mode, precision and the group fields that vary across the run
    slug: str
    fields: dict[str, Any]
    varying: tuple[str, ...]
    records: list[Record]  # sorted by size, OOM included

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if r.ok]


def groups_of(records: list[Record]) -> list[Group]:
    """The report's groups (analysis.tables.group_records), labelled for legends and file names."""
    grouped = group_records(records)
    varying = varying_fields([g for g, _ in grouped])
    out, slugs = [], set()
    for fields, members in grouped:
        label = group_label(fields, varying, ALWAYS_NAMED)
        slug = base = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-") or "all"
        n = 1
        while slug in slugs:  # labels that differ only in punctuation
            n += 1
            slug = f"{base}-{n}"
        slugs.add(slug)
        out.append(Group(label, slug, fields, varying, members))
    return out


def plan(records: list[Record]) -> list[Plot]:
    """The plots these records support, in report order; a plot without data is left out."""
    return _plan(groups_of(records))


def _plan(all_groups: list[Group]) -> list[Plot]:
    groups = [g for g in all_groups if g.ok]
    plots = []
    if any(len(scaling_points(g.ok)) >= 2 for g in groups):
        plots.append(Plot("scaling", "Step time against model FLOPs (log-log, power-law fit)", "scaling"))
    plots += [Plot(f"steps-{g.slug}", f"Time of every step: {g.label}", "steps", g.label)
              for g in groups if any(r.samples for r in g.ok)]
    if groups:
        plots.append(Plot("cv", "Coefficient of variation per size and phase", "cv"))
        plots.append(Plot("phases", "Phase breakdown of the step (mean ms)", "phases"))
    if len({row.ctx for g in groups for row in memory_table(g.ok).itertuples() if pd.notna(row.peak_mb)}) > 1:
        plots.append(Plot("memory-ctx", "Peak memory against context length", "memory-ctx"))
    if any(throughput_table(g.ok)["mfu_total"].notna().any() for g in groups):
        plots.append(Plot("mfu", "Model FLOPs utilisation per size", "mfu"))
    return plots


def figures(records: list[Record], drawn: dict[str, dict[str, Any]] | None = None) -> Iterator[tuple[str, Any]]:
    """(name, matplotlib figure) of every planned plot, each drawn when it is reached; `drawn` collects
    {name: data drawn}."""
    groups = groups_of(records)
    for plot in _plan(groups):
        figure, data = DRAW[plot.kind](groups, plot)
        if drawn is not None:
            drawn[plot.name] = data
        yield plot.name, figure


def write_pngs(out_dir: Path, named_figures: Iterable[tuple[str, Any]], owned: tuple[str, ...]) -> list[str]:
    """Each (name, figure) to out_dir/<name>.png, atomically; returns the names. PNGs matching the `owned` globs (the
    names this kind of report draws) that were not drawn now are removed, so the directory holds what the report
    links; another report's plots in the same directory stay."""
    names = []
    for name, figure in named_figures:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / f"{name}.png", png_bytes(figure))
        names.append(name)
    stale = {path for pattern in owned for path in out_dir.glob(pattern)} if out_dir.is_dir() else set()
    for path in sorted(stale):
        if path.stem not in names:
            path.unlink()
    return names


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG at DPI, drawn once on an Agg canvas, the constrained layout running inside that draw
    (figure.savefig draws twice, once to lay out and once to print: the same pixels in about a third more time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.dpi = DPI
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})  # no version stamp: stable bytes
    return buffer.getvalue()


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A figure of rows x cols axes (a 2-D array), laid out when it is drawn, on matplotlib's Agg canvas."""
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot state, no display needed

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False, **kwargs)
    return figure, axes


def _colours() -> list[str]:
    """matplotlib's default colour cycle."""
    from matplotlib import rcParams

    return rcParams["axes.prop_cycle"].by_key()["color"]


def _grid(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    return -(-n // cols), cols


def spans_decades(values: list[float]) -> bool:
    """Whether `values` span more than LOG_RANGE, so that a log axis reads them (a value at or below zero: no)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_RANGE


def value_axis(ax: Any, values: list[float], log: bool | None = None) -> bool:
    """The y axis of `values`: log scale when they span more than LOG_RANGE (or when asked), ticks as plain numbers
    (minor ones labelled over a short log span); returns whether it is log."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    if log is None:
        log = spans_decades(values)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"))
    return log


def _hide_unused(axes: Any, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def draw_scaling(groups: list[Group], plot: Plot) -> Drawn:
    """Mean step time against model FLOPs per step, log-log, a series per group, its power-law fit dashed."""
    figure, axes = new_figure(9, 5.5)
    ax = axes[0, 0]
    series, labels_at = [], {}
    for group in groups:
        points = scaling_points(group.ok)
        if not points:
            continue
        flops, times, labels = (list(v) for v in zip(*points))
        fitted = scaling_fit(group.ok)
        fit = {k: getattr(fitted[1], k) for k in ("exponent", "prefactor", "r2")} if fitted else None
        (line,) = ax.plot(flops, times, "o-", lw=1, label=group.label)
        if fit:
            ends = [flops[0], flops[-1]]
            ax.plot(ends, [fit["prefactor"] * x ** fit["exponent"] for x in ends], "--", color=line.get_color(),
                    lw=1.5, label=f"  fit: time ∝ FLOPs^{fit['exponent']:.2f}, R² = {fit['r2']:.3f}")
        for x, y, label in points:
            labels_at.setdefault(x, [y, []])[1].append(label)
            labels_at[x][0] = max(labels_at[x][0], y)
        series.append({"label": group.label, "sizes": labels, "flops": flops, "time_ms": times, "fit": fit})
    for x, (y, labels) in labels_at.items():
        ax.annotate("/".join(dict.fromkeys(labels)), (x, y), xytext=(0, 6), textcoords="offset points",
                    ha="center", fontsize=8, color="0.3")
    value_axis(ax, [t for s in series for t in s["time_ms"]], log=True)
    ax.set(xscale="log", xlabel="model FLOPs per step (log)", ylabel="mean step time, ms (log)",
           title=f"Step time against model FLOPs (fit over ≥ {MIN_FIT_POINTS} sizes, measured steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return figure, {"series": series}


def draw_steps(groups: list[Group], plot: Plot) -> Drawn:
    """Sum of the phases of every step (warm-up included, shaded and hollow), a line per size, and per process
    when a record merges several (--repeats): each fresh process starts again from step 0."""
    group = next(g for g in groups if g.label == plot.group)
    figure, axes = new_figure(11, 5)
    ax = axes[0, 0]
    series = []
    colours = _colours()
    for index, record in enumerate(group.ok):
        totals = record.totals(include_warmup=True)
        processes = process_indices(record.samples)
        for process in processes:  # one colour per size, one line style per process
            chosen = [(s, t) for s, t in zip(record.samples, totals) if process_of(s) == process]
            steps, process_totals = [s["step"] for s, _ in chosen], [t for _, t in chosen]
            warmup = [bool(s["warmup"]) for s, _ in chosen]
            label = record.label + (f" process {process}" if len(processes) > 1 else "")
            (line,) = ax.plot(steps, process_totals, "o", ls=PROCESS_STYLES[process % len(PROCESS_STYLES)], ms=4, lw=1,
                              color=colours[index % len(colours)], label=label)
            hollow = [(x, y) for x, y, w in zip(steps, process_totals, warmup) if w]
            if hollow:
                ax.plot(*zip(*hollow), "o", ms=6, mfc="white", color=line.get_color())
            series.append({"label": label, "step": steps, "total_ms": process_totals, "warmup": warmup})
    warm_steps = sorted({x for s in series for x, w in zip(s["step"], s["warmup"]) if w})
    if warm_steps:
        ax.axvspan(warm_steps[0] - 0.5, warm_steps[-1] + 0.5, color="0.85", zorder=0,
                   label="warm-up (hollow; not in the statistics)")
    log_y = value_axis(ax, [v for s in series for v in s["total_ms"]])
    phases = " + ".join(group.ok[0].phases)
    ax.set(xlabel="step", ylabel=f"step time, ms ({phases}){' (log)' if log_y else ''}",
           title=f"Time of every step — {group.label}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: lines run edge to edge
    return figure, {"series": series, "warmup_steps": warm_steps, "log_y": log_y}


def _per_group(groups: list[Group], plot: Plot, width: float = 4.8, height: float = 3.6) -> tuple[Any, Any, list[Group]]:
    drawn = [g for g in groups if g.ok]
    rows, cols = _grid(len(drawn))
    figure, axes = new_figure(max(width * cols, 6.5), height * rows + 0.8, rows, cols)
    figure.suptitle(plot.title)
    _hide_unused(axes, len(drawn))
    return figure, axes, drawn


def _size_axis(ax: Any, sizes: list[str]) -> None:
    ax.set_xticks(range(len(sizes)), sizes, rotation=30 if len(sizes) > 3 else 0, fontsize=8)
    ax.set_xlim(-0.5 - (len(sizes) == 1) * 0.5, len(sizes) - 0.5 + (len(sizes) == 1) * 0.5)  # a lone bar stays narrow


def _shared_legend(figure: Any, axes: Any, used: int) -> None:
    """One legend below the subplots, from the subplot with the most entries (phases are coloured alike)."""
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes.flat[:used]), key=lambda hl: len(hl[1]))
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)


def draw_cv(groups: list[Group], plot: Plot) -> Drawn:
    """CV of each phase per size (measured steps), bars grouped by size, a subplot per group."""
    figure, axes, drawn = _per_group(groups, plot)
    out = []
    for ax, group in zip(axes.flat, drawn):
        stats = phase_stats(group.ok).set_index(["key", "phase"])
        phases = [p for p in PHASES if p in group.ok[0].phases]
        sizes = [r.label for r in group.ok]
        cv = {p: [float(stats.loc[(r.key, p), "cv_pct"]) for r in group.ok] for p in phases}
        width = 0.8 / len(phases)
        for i, phase in enumerate(phases):
            ax.bar([x + (i - (len(phases) - 1) / 2) * width for x in range(len(sizes))], cv[phase], width,
                   color=PHASE_COLORS[phase], label=phase)
        ax.axhline(NOISY_CV_PCT, color="tab:red", ls="--", lw=1, label=f"noisy above {NOISY_CV_PCT:g}%")
        _size_axis(ax, sizes)
        ax.set(ylabel="CV, % (std / mean)", title=group.label)
        ax.title.set_fontsize(9)
        out.append({"label": group.label, "sizes": sizes, "cv_pct": cv})
    _shared_legend(figure, axes, len(drawn))
    return figure, {"groups": out}


def draw_phases(groups: list[Group], plot: Plot) -> Drawn:
    """Mean ms of each phase per size, stacked, the total written on top; an OOM size is marked."""
    figure, axes, drawn = _per_group(groups, plot)
    out = []
    for ax, group in zip(axes.flat, drawn):
        stats = phase_stats(group.records).set_index(["key", "phase"])
        phases = group.records[0].phases
        sizes = [r.label for r in group.records]
        means = {p: [float(stats.loc[(r.key, p), "mean"]) if r.ok else 0.0 for r in group.records]
                 for p in phases}
        bottom = [0.0] * len(sizes)
        for phase in phases:
            ax.bar(range(len(sizes)), means[phase], 0.6, bottom=bottom, color=PHASE_COLORS[phase], label=phase)
            bottom = [b + m for b, m in zip(bottom, means[phase])]
        oom = []
        for x, record in enumerate(group.records):
            text = f"{bottom[x]:.1f}" if record.ok else f"OOM ({record.oom_phase})"
            ax.annotate(text, (x, bottom[x]), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7,
                        color="tab:red" if not record.ok else "black")
            if not record.ok:
                oom.append(record.label)
        _size_axis(ax, sizes)
        ax.set(ylabel="mean time per step, ms", title=group.label)
        ax.set_ylim(top=max(bottom + [1e-9]) * 1.15)
        ax.title.set_fontsize(9)
        out.append({"label": group.label, "sizes": sizes, "mean_ms": means, "total_ms": bottom, "oom": oom})
    _shared_legend(figure, axes, len(drawn))
    return figure, {"groups": out}


def draw_memory_ctx(groups: list[Group], plot: Plot) -> Drawn:
    """Measured peak and peak minus the persistent state against ctx, a line per size (and mode/precision…)."""
    lines: dict[str, dict[str, list]] = {}
    for group in groups:
        fields = tuple(f for f in group.varying if f != "ctx")
        for row in memory_table(group.ok).itertuples():
            if pd.isna(row.peak_mb):
                continue
            rank = "" if pd.isna(row.rank) else f" rank {row.rank}"  # a data-parallel job: a line per rank
            line = lines.setdefault(f"{row.label}{rank} {group_label(group.fields, fields, ALWAYS_NAMED)}",
                                    {"ctx": [], "peak_mb": [], "beyond_state_mb": []})
            line["ctx"].append(int(row.ctx))
            line["peak_mb"].append(float(row.peak_mb))
            line["beyond_state_mb"].append(float(row.beyond_state_mb))
    cuda = any(r.on_cuda for g in groups for r in g.ok)
    peak = "peak allocated" if cuda else "peak RSS"
    figure, axes = new_figure(12, 5, 1, 2)
    series = []
    for label, line in lines.items():
        order = sorted(range(len(line["ctx"])), key=line["ctx"].__getitem__)
        line = {k: [v[i] for i in order] for k, v in line.items()}
        (drawn,) = axes[0, 0].plot(line["ctx"], line["peak_mb"], "o-", label=label)
        axes[0, 1].plot(line["ctx"], line["beyond_state_mb"], "o-", color=drawn.get_color(), label=label)
        series.append({"label": label, **line})
    ticks = sorted({c for s in series for c in s["ctx"]})
    log_y = []
    for ax, key, ylabel, title in ((axes[0, 0], "peak_mb", f"{peak}, MB", f"Measured {peak}"),
                                   (axes[0, 1], "beyond_state_mb", f"{peak} − params, grads, AdamW state, MB",
                                    "Beyond the persistent state (mostly activations)")):
        log_y.append(value_axis(ax, [v for s in series for v in s[key]]))
        ylabel += " (log)" if log_y[-1] else ""
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set(xlabel="context length, tokens (log₂)", ylabel=ylabel, title=title)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(plot.title)
    return figure, {"series": series, "peak": peak, "log_y": log_y}


def draw_mfu(groups: list[Group], plot: Plot) -> Drawn:
    """MFU of the whole step per size, a line per group, against each group's datasheet peak."""
    figure, axes = new_figure(9, 5)
    ax = axes[0, 0]
    known = [r for g in groups for r in g.ok if r.throughput.get("mfu", {}).get("total") is not None]
    order = list(dict.fromkeys(r.label for r in sorted(known, key=size_order)))
    series = []
    for group in (g for g in groups if g.ok):
        table = throughput_table(group.ok)
        table = table[table["mfu_total"].notna()]
        if table.empty:
            continue
        x = [order.index(label) for label in table["label"]]
        mfu = [100 * float(v) for v in table["mfu_total"]]
        peak = float(table["peak_tflops"].iloc[0])
        ax.plot(x, mfu, "o-", label=f"{group.label} (peak {peak:g} TFLOP/s)")
        series.append({"label": group.label, "sizes": list(table["label"]), "mfu_pct": mfu, "peak_tflops": peak})
    ax.set_xticks(range(len(order)), order)
    ax.set(xlabel="model size", ylabel="MFU, % of the datasheet peak", ylim=(0, None),
           title="Model FLOPs utilisation of the whole step (model FLOPs / mean step time / peak)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return figure, {"series": series}


DRAW: dict[str, Callable[[list[Group], Plot], Drawn]] = {
    "scaling": draw_scaling, "steps": draw_steps, "cv": draw_cv, "phases": draw_phases,
    "memory-ctx": draw_memory_ctx, "mfu": draw_mfu,
}
