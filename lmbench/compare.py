"""A/B comparison of two result sets: paired configurations, the difference with a confidence interval,
a significance test and a verdict per configuration.

A side is a run directory, optionally narrowed by `field=value` filters (`runs/x:precision=bf16`), so
both sides can come from one sweep. Configurations are paired on every configuration field except the
ones being compared: a field whose value is single on each side and different between them (found on
its own, e.g. precision fp32 → bf16) or named with `ignore`. Each pair compares the measured per-step
totals (sum of the phases): Δ% of the mean with Welch's 95% CI, and Mann–Whitney U (two-sided) for the
verdict, which does not assume normal step times; a verdict needs p < alpha.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.tables import config_value, measured_totals
from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.results import ResultsStore, latest_per_key
from lmbench.stats import CONFIDENCE, t_quantile

FIELDS = tuple(f.name for f in dataclasses.fields(BenchConfig))
ENVIRONMENT_FIELDS = {"device_name": "GPU/CPU", "torch": "torch version"}


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

    def records(self) -> list[dict[str, Any]]:
        chosen = [r for r in latest_per_key(ResultsStore(self.run_dir).records())
                  if all(str(config_value(r, f)) == v for f, v in self.filters)]
        if not chosen:
            raise LmbenchError(f"no records in {self.run_dir} match {', '.join(f'{f}={v}' for f, v in self.filters)}")
        return chosen

    def __str__(self) -> str:
        return str(self.run_dir) + (":" + ",".join(f"{f}={v}" for f, v in self.filters) if self.filters else "")


def compared_fields(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Fields with one value on each side and different values between the sides: what changed."""
    fields = []
    for field in FIELDS:
        values_a, values_b = {str(config_value(r, field)) for r in a}, {str(config_value(r, field)) for r in b}
        if len(values_a) == len(values_b) == 1 and values_a != values_b:
            fields.append(field)
    return fields


def welch_interval(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """(mean(b) - mean(a), CI low, CI high) at CONFIDENCE, Welch–Satterthwaite degrees of freedom."""
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    diff = mb - ma
    if se2 == 0:
        return diff, diff, diff
    dof = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, dof) * math.sqrt(se2)
    return diff, diff - half, diff + half


def compare_samples(a: list[float], b: list[float], alpha: float = 0.05) -> dict[str, Any]:
    """B against A: Δ% of the mean with its CI, Mann–Whitney and Welch p-values, and the verdict."""
    from scipy.stats import mannwhitneyu, ttest_ind

    if len(a) < 2 or len(b) < 2:
        raise LmbenchError("a comparison needs at least 2 measured steps on each side")
    ma = sum(a) / len(a)
    diff, low, high = welch_interval(a, b)
    p_mwu = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    with warnings.catch_warnings():  # near-identical samples make scipy warn of precision loss; p stays usable
        warnings.simplefilter("ignore", RuntimeWarning)
        p_welch = float(ttest_ind(a, b, equal_var=False).pvalue) if len(set(a) | set(b)) > 1 else 1.0
    verdict = "no significant change"
    if p_mwu < alpha:
        verdict = "slower" if diff > 0 else "faster"
    return {"a_mean_ms": ma, "b_mean_ms": ma + diff, "delta_pct": 100 * diff / ma, "ci_low_pct": 100 * low / ma,
            "ci_high_pct": 100 * high / ma, "p_mannwhitney": p_mwu, "p_welch": p_welch, "verdict": verdict}


def compare(side_a: Side, side_b: Side, ignore: tuple[str, ...] = (), alpha: float = 0.05
            ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(one row per paired configuration, the compared fields, warnings). Configurations found on one
    side only are rows with verdict 'only in A' / 'only in B'."""
    a, b = side_a.records(), side_b.records()
    changed = compared_fields(a, b)
    unknown = [f for f in ignore if f not in FIELDS]
    if unknown:
        raise LmbenchError(f"--ignore: unknown field(s) {', '.join(unknown)}")
    pair_on = [f for f in FIELDS if f not in changed and f not in ignore]
    index_a = {tuple(str(config_value(r, f)) for f in pair_on): r for r in a}
    index_b = {tuple(str(config_value(r, f)) for f in pair_on): r for r in b}
    rows, warnings = [], []
    for key in list(index_a) + [k for k in index_b if k not in index_a]:
        ra, rb = index_a.get(key), index_b.get(key)
        base = ra or rb
        row = {"model": base["model"]["label"], **{f: config_value(base, f) for f in pair_on if f != "size"}}
        if ra is None or rb is None:
            rows.append({**row, "verdict": "only in A" if rb is None else "only in B"})
            continue
        if "oom" in (ra["status"], rb["status"]):
            rows.append({**row, "verdict": f"OOM in {'A' if ra['status'] == 'oom' else 'B'}"})
            continue
        rows.append({**row, **compare_samples(measured_totals(ra), measured_totals(rb), alpha)})
        warnings += _environment_warnings(ra, rb, row["model"])
    return pd.DataFrame(rows), changed, list(dict.fromkeys(warnings))


def _environment_warnings(ra: dict[str, Any], rb: dict[str, Any], label: str) -> list[str]:
    out = []
    for field, title in ENVIRONMENT_FIELDS.items():
        va, vb = ra["environment"].get(field), rb["environment"].get(field)
        if va != vb:
            out.append(f"{title} differs: {va} (A) vs {vb} (B)")
    if config_value(ra, "precision") != config_value(rb, "precision"):
        out.append(f"precision differs: {config_value(ra, 'precision')} (A) vs {config_value(rb, 'precision')} (B)")
    return out


def regressions(table: pd.DataFrame, threshold_pct: float) -> pd.DataFrame:
    """Pairs significantly slower by more than `threshold_pct` percent."""
    if table.empty or "delta_pct" not in table:
        return table.iloc[0:0]
    return table[(table["verdict"] == "slower") & (table["delta_pct"] > threshold_pct)]


def render(table: pd.DataFrame, side_a: Side, side_b: Side, changed: list[str], warnings: list[str],
           alpha: float) -> str:
    lines = [f"# Comparison: A = `{side_a}`, B = `{side_b}`", ""]
    lines.append("Compared: " + (", ".join(changed) if changed else "nothing differs in the configurations") +
                 f". Δ is B against A in the mean per-step total (sum of the phases), with Welch's "
                 f"{100 * CONFIDENCE:.0f}% CI; the verdict needs Mann–Whitney U p < {alpha:g}.")
    lines.append("")
    lines += [f"- warning: {w}" for w in warnings]
    if warnings:
        lines.append("")
    shown = []
    for row in table.to_dict("records"):
        cells = {k: v for k, v in row.items() if k not in ("a_mean_ms", "b_mean_ms", "delta_pct", "ci_low_pct",
                                                           "ci_high_pct", "p_mannwhitney", "p_welch", "verdict")}
        if "delta_pct" in row and not pd.isna(row.get("delta_pct")):
            cells.update({"A (ms)": f"{row['a_mean_ms']:.2f}", "B (ms)": f"{row['b_mean_ms']:.2f}",
                          "A/B (×)": f"{row['a_mean_ms'] / row['b_mean_ms']:.2f}", "Δ (%)": f"{row['delta_pct']:+.1f}",
                          "95% CI (%)": f"{row['ci_low_pct']:+.1f} to {row['ci_high_pct']:+.1f}",
                          "p (MWU)": f"{row['p_mannwhitney']:.3g}", "p (Welch)": f"{row['p_welch']:.3g}"})
        cells["Verdict"] = row["verdict"]
        shown.append(cells)
    frame = pd.DataFrame(shown).fillna("—")
    constant = [c for c in frame.columns if c not in ("model",) and frame[c].nunique() == 1 and len(frame) > 1
                and c in FIELDS]
    lines.append(frame.drop(columns=constant).to_markdown(index=False, disable_numparse=True))
    return "\n".join(lines) + "\n"
