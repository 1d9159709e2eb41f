"""The attention grid's tables, from stored records only (results/attention.py defines every number): one row per
cell with its times, memory and speedups against naive; the largest sequence length that fits; the power-law fits
of time and memory against sequence length."""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from lmbench.analysis.fits import MIN_FIT_POINTS
from lmbench.results.attention import IMPLS, NAIVE, AttentionRecord
from lmbench.results.stats import PowerLaw, power_law_fit

COLUMNS = ("impl", "head_dim", "seq_len", "status", "forward_ms", "forward_median_ms", "forward_ci_low_ms",
           "forward_ci_high_ms", "backward_ms", "backward_median_ms", "backward_ci_low_ms", "backward_ci_high_ms",
           "memory_mb", "inputs_mb", "peak_mb", "first_call_s", "forward_speedup", "backward_speedup", "passes",
           "note")
QUANTITIES = {"forward_ms": "forward time", "backward_ms": "backward time", "memory_mb": "memory before backward"}


class Setup(NamedTuple):
    """What makes cells comparable: one set of tables, plots and findings each."""

    precision: str
    batch: int
    heads: int
    causal: bool
    device_type: str

    @property
    def title(self) -> str:
        heads = f"{self.heads} head" + ("s" if self.heads != 1 else "")
        return f"{self.precision}, batch {self.batch}, {heads}, {'causal' if self.causal else 'full'}, {self.device_type}"

    @property
    def slug(self) -> str:
        return f"{self.precision}-b{self.batch}-h{self.heads}-{'causal' if self.causal else 'full'}-{self.device_type}"


def setups(records: list[AttentionRecord]) -> dict[Setup, list[AttentionRecord]]:
    """By setup, in the order first stored: the latest record of each cell (one measured again replaces it)."""
    grouped: dict[Setup, dict[tuple[str, int, int], AttentionRecord]] = {}
    for r in records:
        latest = grouped.setdefault(Setup(r.precision, r.batch, r.heads, r.causal, r.device_type), {})
        latest.pop((r.impl, r.head_dim, r.seq_len), None)
        latest[(r.impl, r.head_dim, r.seq_len)] = r
    return {setup: list(latest.values()) for setup, latest in grouped.items()}


def cells_table(records: list[AttentionRecord]) -> pd.DataFrame:
    """One row per cell of one setup (implementations in IMPLS order, then head dim, then length): mean, median and
    95% CI of the forward and backward pass in ms, memory in MB, the first call in s, and the speedup against naive
    of the same cell (naive's mean / this one's; NaN where either did not run); `note` says why a cell has no
    numbers."""
    rows = []
    for r in records:
        note = f"OOM in {r.oom_phase}: {r.oom_message}" if r.status == "oom" else r.unsupported_reason or ""
        row = {"impl": r.impl, "head_dim": r.head_dim, "seq_len": r.seq_len, "status": r.status, "passes": r.passes,
               "note": note}
        if r.ok:
            for phase, summary in (("forward", r.forward), ("backward", r.backward)):
                row.update({f"{phase}_ms": summary.mean, f"{phase}_median_ms": summary.median,
                            f"{phase}_ci_low_ms": summary.ci_low, f"{phase}_ci_high_ms": summary.ci_high})
            row.update(memory_mb=r.memory_mb, inputs_mb=r.inputs_mb, peak_mb=r.peak_mb, first_call_s=r.first_call_s)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    order = {impl: i for i, impl in enumerate(IMPLS)}
    table = table.sort_values(["impl", "head_dim", "seq_len"], key=lambda c: c.map(order) if c.name == "impl" else c)
    table = table.reset_index(drop=True)
    naive = table[table["impl"] == NAIVE].set_index(["head_dim", "seq_len"])
    for phase in ("forward", "backward"):
        reference = [naive[f"{phase}_ms"].get((d, t), math.nan) for d, t in zip(table["head_dim"], table["seq_len"])]
        table[f"{phase}_speedup"] = pd.Series(reference, dtype=float) / table[f"{phase}_ms"].astype(float)
    return table


def largest_fitting(table: pd.DataFrame) -> pd.DataFrame:
    """Per implementation and head dim: the largest sequence length whose cell ran (`largest`, NaN when none did),
    the largest measured, and the smallest that ran out of memory (NaN when none did)."""
    rows = []
    for (impl, head_dim), cells in table.groupby(["impl", "head_dim"], sort=False):
        ran, oom = cells[cells["status"] == "ok"]["seq_len"], cells[cells["status"] == "oom"]["seq_len"]
        rows.append({"impl": impl, "head_dim": head_dim, "largest": ran.max() if len(ran) else math.nan,
                     "measured_max": cells["seq_len"].max(), "first_oom": oom.min() if len(oom) else math.nan,
                     "unsupported": bool((cells["status"] == "unsupported").all())})
    return pd.DataFrame(rows, columns=["impl", "head_dim", "largest", "measured_max", "first_oom", "unsupported"])


def fit(cells: pd.DataFrame, quantity: str) -> PowerLaw | None:
    """`quantity` ∝ seq_len^k over the cells that ran (one implementation and head dim), or None with fewer than
    MIN_FIT_POINTS lengths."""
    ran = cells[(cells["status"] == "ok") & (cells[quantity].astype(float) > 0)]
    if len(ran) < MIN_FIT_POINTS:
        return None
    return power_law_fit(ran["seq_len"].astype(float).tolist(), ran[quantity].astype(float).tolist())


def fits_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per implementation, head dim and quantity (QUANTITIES): the fitted exponent k of quantity ∝ seq_len^k, its
    95% CI, R² and the number of lengths it rests on; implementations and head dims with too few lengths left out."""
    rows = []
    for (impl, head_dim), cells in table.groupby(["impl", "head_dim"], sort=False):
        for quantity in QUANTITIES:
            found = fit(cells, quantity)
            if found is not None:
                rows.append({"impl": impl, "head_dim": head_dim, "quantity": quantity, "exponent": found.exponent,
                             "ci_low": found.ci_low, "ci_high": found.ci_high, "r2": found.r2, "n": found.n})
    return pd.DataFrame(rows, columns=["impl", "head_dim", "quantity", "exponent", "ci_low", "ci_high", "r2", "n"])
