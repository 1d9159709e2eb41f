"""A/B comparison of two result sets: paired configurations, the change with a confidence interval and
the verdict that interval gives.

A side is a run directory, optionally narrowed by `field=value` filters (`runs/x:precision=bf16`), so
both sides can come from one sweep. Configurations are paired on every configuration field except the
ones being compared: a field whose value is single on each side and different between them (found on
its own, e.g. precision fp32 → bf16) or named with `ignore`.

Each pair is decided by the project's one rule (analysis/decision.py): Δ% of the mean per-step total with
Welch's CI at 1 − alpha, significant exactly when that printed interval excludes zero. The unit is the
process when both records hold several (--repeats), so the interval covers the variation between fresh
processes; with a single process on a side it is the step, and the rendered comparison says that the
interval covers only step-to-step noise. Mann–Whitney U is shown beside it as an extra column.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.decision import TOO_FEW, compare_records, plural
from lmbench.analysis.groups import config_key
from lmbench.config import LATER_FIELDS, BenchConfig
from lmbench.errors import LmbenchError
from lmbench.render.markdown import table as markdown_table
from lmbench.results.record import CONFIG_DEFAULTS, Record
from lmbench.results.store import ResultsStore, latest_per_key

FIELDS = tuple(f.name for f in dataclasses.fields(BenchConfig))
COMPARED = (*FIELDS, "world_size")  # what a configuration is: its fields and the ranks that measured it
_DEFAULTS = {**CONFIG_DEFAULTS, "world_size": 1}
ENVIRONMENT_FIELDS = {"device_name": "GPU/CPU", "torch": "torch version"}
RESULT_COLUMNS = ("a_mean_ms", "b_mean_ms", "delta_pct", "ci_low_pct", "ci_high_pct", "unit", "n_a", "n_b",
                  "p_welch", "p_mannwhitney", "known_between_cv_pct", "verdict")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a run directory and the `field=value` filters that select records."""

    run_dir: Path
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Side:
        """'runs/a' or 'runs/a:precision=bf16,ctx=512'."""
        path, _, spec = text.partition(":")
        filters = []
        for item in filter(None, spec.split(",")):
            field, eq, value = item.partition("=")
            if not eq or field not in FIELDS:
                raise LmbenchError(f"bad filter {item!r} in {text!r}: expected FIELD=VALUE with FIELD one of "
                                   f"{', '.join(FIELDS)}")
            filters.append((field, value))
        return cls(Path(path), tuple(filters))

    def records(self, stored: list[Record] | None = None) -> list[Record]:
        """The latest record of each configuration that matches the filters, from `stored` (the run directory's
        records, read here when not given)."""
        stored = ResultsStore(self.run_dir).records() if stored is None else stored
        chosen = [r for r in latest_per_key(stored)
                  if all(str(r.config_value(f)) == v for f, v in self.filters)]
        if not chosen:
            raise LmbenchError(f"no records in {self.run_dir} match {', '.join(f'{f}={v}' for f, v in self.filters)}")
        return chosen

    def __str__(self) -> str:
        return str(self.run_dir) + (":" + ",".join(f"{f}={v}" for f, v in self.filters) if self.filters else "")


def value(record: Record, field: str) -> Any:
    """A configuration field of the record, or its world size."""
    return record.world_size if field == "world_size" else record.config_value(field)


def compared_fields(a: list[Record], b: list[Record]) -> list[str]:
    """Fields with one value on each side and different values between the sides: what changed."""
    fields = []
    for field in COMPARED:
        values_a, values_b = {str(value(r, field)) for r in a}, {str(value(r, field)) for r in b}
        if len(values_a) == len(values_b) == 1 and values_a != values_b:
            fields.append(field)
    return fields


def compare(side_a: Side, side_b: Side, ignore: tuple[str, ...] = (), alpha: float = 0.05
            ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(one row per paired configuration, the compared fields, warnings). Configurations found on one
    side only are rows with verdict 'only in A' / 'only in B'."""
    stored_a, stored_b = ResultsStore(side_a.run_dir).records(), ResultsStore(side_b.run_dir).records()
    a, b = side_a.records(stored_a), side_b.records(stored_b)
    changed = compared_fields(a, b)
    unknown = [f for f in ignore if f not in COMPARED]
    if unknown:
        raise LmbenchError(f"--ignore: unknown field(s) {', '.join(unknown)}")
    leave_out = tuple(f for f in COMPARED if f in changed or f in ignore)
    # Fields of data-parallel jobs become columns only when a record has them away from their defaults.
    unused = {f for f in (*LATER_FIELDS, "world_size") if all(value(r, f) == _DEFAULTS[f] for r in a + b)}
    pair_on = [f for f in COMPARED if f not in leave_out and f not in unused]
    index_a = {config_key(r, leave_out): r for r in a}
    index_b = {config_key(r, leave_out): r for r in b}
    known = {**known_between_cv(stored_a), **known_between_cv(stored_b)}
    rows, warnings = [], []
    for key in list(index_a) + [k for k in index_b if k not in index_a]:
        ra, rb = index_a.get(key), index_b.get(key)
        base = ra or rb
        # The label names the size and a custom model's spec, so neither field is a column of its own.
        row = {"model": base.label, **{f: value(base, f) for f in pair_on if f not in ("size", "model")}}
        if ra is None or rb is None:
            rows.append({**row, "verdict": "only in A" if rb is None else "only in B"})
            continue
        if not (ra.ok and rb.ok):
            rows.append({**row, "verdict": f"OOM in {'A' if not ra.ok else 'B'}"})
            continue
        result = compare_records(ra, rb, alpha)
        if result["unit"] == "step":
            cvs = [known[r.key] for r in (ra, rb) if r.key in known]
            result["known_between_cv_pct"] = max(cvs) if cvs else math.nan
        rows.append({**row, **result})
        warnings += _environment_warnings(ra, rb, row["model"])
    return pd.DataFrame(rows), changed, list(dict.fromkeys(warnings))


def known_between_cv(stored: list[Record]) -> dict[str, float]:
    """Configuration key -> the between-process CV of its total, from the latest record among `stored` that was
    measured in several processes: what a single-process comparison of that configuration leaves out."""
    records = [r for r in stored if r.process_stats]
    return {r.key: r.process_stats["total"]["cv_pct"] for r in latest_per_key(records)}


def _environment_warnings(ra: Record, rb: Record, label: str) -> list[str]:
    out = []
    for field, title in ENVIRONMENT_FIELDS.items():
        va, vb = ra.environment.get(field), rb.environment.get(field)
        if va != vb:
            out.append(f"{title} differs: {va} (A) vs {vb} (B)")
    if ra.config_value("precision") != rb.config_value("precision"):
        out.append(f"precision differs: {ra.config_value('precision')} (A) vs {rb.config_value('precision')} (B)")
    pa, pb = ra.profiler, rb.profiler
    if pa != pb:
        out.append(f"profiler differs: {pa or 'none'} (A) vs {pb or 'none'} (B); a profiler adds host time, so "
                   "the difference includes its overhead")
    return out


def regressions(table: pd.DataFrame, threshold_pct: float) -> pd.DataFrame:
    """Pairs whose change is significant (its interval excludes zero) and whose estimate exceeds `threshold_pct`.
    Refuses (LmbenchError, exit 2) a gate that cannot decide: a threshold that is not a finite non-negative
    percentage, nothing compared, or a pair with too few samples to reach significance."""
    if not (math.isfinite(threshold_pct) and threshold_pct >= 0):
        raise LmbenchError(f"--fail-on-regression must be a finite, non-negative percentage, got {threshold_pct}")
    few = table[table["verdict"] == TOO_FEW] if "verdict" in table else table
    if len(few):
        row = few.iloc[0]
        raise LmbenchError(f"--fail-on-regression: {row['model']} has too few {plural(row['unit'])} to reach significance "
                           f"({int(row['n_a'])} in A, {int(row['n_b'])} in B; 2 or more on each side are needed)")
    if table.empty or "delta_pct" not in table or table["delta_pct"].isna().all():
        raise LmbenchError("--fail-on-regression: nothing was compared (no configuration finished on both sides)")
    return table[(table["verdict"] == "slower") & (table["delta_pct"] > threshold_pct)]


def gate(table: pd.DataFrame, threshold_pct: float) -> dict[str, Any]:
    """The regression gate's result as data: `exit_code` 0 (passed), 1 (the rows in `regressions` are significantly
    slower by more than the threshold) or 2 (it cannot decide; `reason` says why, as regressions() would)."""
    try:
        regressed = regressions(table, threshold_pct)
    except LmbenchError as e:
        return {"threshold_pct": threshold_pct, "exit_code": 2, "reason": str(e), "regressions": []}
    return {"threshold_pct": threshold_pct, "exit_code": 1 if len(regressed) else 0, "reason": None,
            "regressions": regressed.to_dict("records")}


def render(table: pd.DataFrame, side_a: Side, side_b: Side, changed: list[str], warnings: list[str],
           alpha: float) -> str:
    level = f"{100 * (1 - alpha):g}%"
    lines = [f"# Comparison: A = `{side_a}`, B = `{side_b}`", ""]
    lines.append("Compared: " + (", ".join(changed) if changed else "nothing differs in the configurations") +
                 f". Δ is B against A in the mean per-step total (sum of the phases), with Welch's {level} CI; a "
                 "change is significant when that interval excludes zero, and the verdict says nothing else. "
                 "Mann–Whitney U is an extra column.")
    unit_counts = table["unit"].value_counts() if "unit" in table else pd.Series(dtype=int)
    if unit_counts.get("step", 0):
        known = table["known_between_cv_pct"].dropna() if "known_between_cv_pct" in table else pd.Series(dtype=float)
        lines += ["", f"**Covers step-to-step noise only** in {unit_counts['step']} row(s): their sides were each "
                  "measured in a single process, and separate processes of one configuration differ more than the "
                  "steps of one process do. Measure both sides with `--repeats 3` (or more) to make the process "
                  "the unit." + (f" This run directory's repeated runs put the between-process CV of these "
                                 f"configurations at {known.min():.1f}–{known.max():.1f}%." if len(known) else "")]
    if unit_counts.get("process", 0):
        lines += ["", f"The process is the unit in {unit_counts['process']} row(s): each side's process means are "
                  "the samples, so the interval covers the variation between fresh processes."]
    lines.append("")
    lines += [f"- warning: {w}" for w in warnings]
    if warnings:
        lines.append("")
    shown = []
    for row in table.to_dict("records"):
        cells = {k: v for k, v in row.items() if k not in RESULT_COLUMNS}
        if not pd.isna(row.get("delta_pct", math.nan)):
            cells.update({"A (ms)": f"{row['a_mean_ms']:.2f}", "B (ms)": f"{row['b_mean_ms']:.2f}",
                          "A/B (×)": f"{row['a_mean_ms'] / row['b_mean_ms']:.2f}", "Δ (%)": f"{row['delta_pct']:+.1f}",
                          f"{level} CI (%)": f"{row['ci_low_pct']:+.1f} to {row['ci_high_pct']:+.1f}",
                          "Unit (A vs B)": f"{int(row['n_a'])} vs {int(row['n_b'])} {plural(row['unit'])}",
                          "p (Welch)": f"{row['p_welch']:.3g}", "p (MWU)": f"{row['p_mannwhitney']:.3g}"})
            if not pd.isna(row.get("known_between_cv_pct", math.nan)):
                cells["Known between-process CV"] = f"{row['known_between_cv_pct']:.1f}%"
        cells["Verdict"] = row["verdict"]
        shown.append(cells)
    frame = pd.DataFrame(shown).fillna("—")
    # Configuration columns only where the rows differ: the compared fields are named above.
    # "model" is the label column (the --model field is in the label), kept like the verdict.
    constant = [c for c in frame.columns if c in COMPARED and c != "model" and frame[c].nunique() == 1]
    lines.append(markdown_table(frame.drop(columns=constant)))
    return "\n".join(lines) + "\n"
