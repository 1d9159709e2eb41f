"""Findings of one attention grid (analysis/attention.py's tables of one setup): how naive attention's memory and
time grow with sequence length (fitted exponents against the expected 2), how every implementation's memory grows,
the largest length each fits, which is fastest, and each one's speedup against naive.

Every sentence is built from measured values; a fit below fits.GOOD_FIT_R2 is said to be no clear power law and
nothing is read from it, and "fastest" is claimed only where the Welch CI against the runner-up excludes no change
(results/stats.difference, the rule analysis/decision.py applies).
"""

from __future__ import annotations

import math
import statistics

import pandas as pd

from lmbench.analysis.attention import QUANTITIES, fit
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.fits import GOOD_FIT_R2, MIN_FIT_POINTS, fit_numbers, fit_text, is_clear, relation_to
from lmbench.results.attention import NAIVE, AttentionRecord
from lmbench.results.stats import CONFIDENCE, difference

EXPECTED_EXPONENT = 2.0  # naive holds (B, h, T, T) scores and does O(T² hd) work: memory and time ∝ T² once T dominates
FIT_BASIS = ("least squares of log quantity on log sequence length over the lengths that ran; a fit with R² < "
             f"{GOOD_FIT_R2:g} is not read (analysis/fits.py)")


def findings(records: list[AttentionRecord], table: pd.DataFrame, largest: pd.DataFrame) -> list[Finding]:
    """All findings of one setup: naive's scaling first, then memory by implementation, the largest length that
    fits, the fastest implementation and the speedups against naive."""
    found = [naive_scaling(table, quantity) for quantity in QUANTITIES]
    found += [memory_by_impl(table), largest_lengths(largest), fastest(records), speedups(table)]
    return [f for f in found if f]


def naive_scaling(table: pd.DataFrame, quantity: str) -> Finding | None:
    """Naive's `quantity` ∝ seq_len^k per head dim, each fit set against EXPECTED_EXPONENT."""
    naive = table[table["impl"] == NAIVE]
    if naive.empty:
        return None
    fits = {int(d): fit(cells, quantity) for d, cells in naive.groupby("head_dim")}
    fitted = {d: f for d, f in fits.items() if f is not None}
    name = f"naive {QUANTITIES[quantity]}"
    if not fitted:
        return Finding(name, f"too few lengths ran to fit a power law (a fit needs {MIN_FIT_POINTS} at one head dim)",
                       {"head_dims": sorted(fits)}, FIT_BASIS)
    parts = [f"hd {d}: {fit_text(f, 'seq', 'lengths')}" for d, f in fitted.items()]
    relations: dict[str, list[int]] = {}
    for d, f in fitted.items():
        if is_clear(f):
            relations.setdefault(relation_to(f, EXPECTED_EXPONENT), []).append(d)
    against = "; ".join(f"{relation} at hd {', '.join(map(str, dims))}" for relation, dims in relations.items())
    claim = f"grows as {'; '.join(parts)}."
    if against:
        claim += f" Against the expected exponent {EXPECTED_EXPONENT:g} (by each exponent's 95% CI): {against}."
    return Finding(name, claim, {str(d): fit_numbers(f) for d, f in fitted.items()},
                   f"{FIT_BASIS}; expected {EXPECTED_EXPONENT:g} from the (B, h, T, T) scores, reached once they outweigh "
                   f"the (B, h, T, hd) inputs and fixed costs")


def memory_by_impl(table: pd.DataFrame) -> Finding | None:
    """Each implementation's memory exponent over its head dims (clear fits only), naive's beside the others'."""
    parts, numbers = [], {}
    for impl, cells in table.groupby("impl", sort=False):
        fits = [f for _, by_dim in cells.groupby("head_dim") if (f := fit(by_dim, "memory_mb")) is not None]
        clear = [f.exponent for f in fits if is_clear(f)]
        if not fits:
            continue
        numbers[impl] = {"exponents": clear, "fits": len(fits)}
        if clear:
            low, high = f"{min(clear):.2f}", f"{max(clear):.2f}"
            span = low if low == high else f"{low} to {high}"
            parts.append(f"{impl} seq^{span} ({len(clear)} of {len(fits)} head dims clear)")
        else:
            parts.append(f"{impl} no clear power law ({len(fits)} head dims)")
    if len(parts) < 2:
        return None
    return Finding("memory by implementation", f"memory before backward grows as {'; '.join(parts)}.", numbers,
                   f"{FIT_BASIS}; the exponent range spans the head dims")


def largest_lengths(largest: pd.DataFrame) -> Finding | None:
    """The largest sequence length each implementation ran, per head dim when they differ."""
    parts, numbers = [], {}
    for impl, rows in largest.groupby("impl", sort=False):
        numbers[impl] = {int(r.head_dim): (None if math.isnan(r.largest) else int(r.largest)) for r in rows.itertuples()}
        if rows["unsupported"].all():
            parts.append(f"{impl} unsupported")
            continue
        texts = {int(r.head_dim): _fit_text(r) for r in rows.itertuples()}
        if len(set(texts.values())) == 1:
            parts.append(f"{impl} {next(iter(texts.values()))} at every head dim")
        else:
            parts.append(f"{impl} " + ", ".join(f"{text} at hd {d}" for d, text in texts.items()))
    if not parts:
        return None
    return Finding("largest length that fits", "; ".join(parts) + ".", numbers,
                   "the largest measured sequence length whose forward and backward passes all ran; the next "
                   "length out of memory is named where one was measured")


def _fit_text(row: object) -> str:
    largest, first_oom, measured_max = (getattr(row, name) for name in ("largest", "first_oom", "measured_max"))
    if math.isnan(largest):
        return f"nothing (out of memory from {int(first_oom)})" if not math.isnan(first_oom) else "nothing"
    if math.isnan(first_oom):
        return f"{int(largest)}" + (" (the largest measured)" if largest == measured_max else "")
    return f"{int(largest)} ({int(first_oom)} out of memory)"


def fastest(records: list[AttentionRecord]) -> Finding | None:
    """Per cell, the implementation with the lowest mean forward + backward pass, counted where its Welch CI
    against the runner-up excludes no change and else counted as too close to call."""
    cells: dict[tuple[int, int], list[AttentionRecord]] = {}
    for r in records:
        if r.ok:
            cells.setdefault((r.head_dim, r.seq_len), []).append(r)
    wins: dict[str, int] = {}
    close: list[str] = []
    contested = 0
    for (head_dim, seq_len), ran in cells.items():
        if len(ran) < 2:
            continue
        contested += 1
        totals = {r.impl: [f + b for f, b in zip(r.forward_ms, r.backward_ms)] for r in ran}
        best, runner = sorted(totals, key=lambda impl: statistics.fmean(totals[impl]))[:2]
        if len(totals[best]) > 1 and difference(totals[best], totals[runner]).significant:
            wins[best] = wins.get(best, 0) + 1
        else:
            close.append(f"hd {head_dim} T {seq_len}: {best} ≈ {runner}")
    if not contested:
        return None
    ranked = sorted(wins.items(), key=lambda item: -item[1])
    claim = "fastest forward + backward: " + (", ".join(f"{impl} in {n} of {contested} cells" for impl, n in ranked)
                                              or "no implementation significantly ahead in any cell")
    if close:
        claim += f"; too close to call in {len(close)} ({', '.join(close[:4])}{', …' if len(close) > 4 else ''})"
    return Finding("fastest implementation", claim + ".", {"wins": wins, "close": close, "cells": contested},
                   f"mean of the i-th timed forward + the i-th timed backward; a win needs the Welch {CONFIDENCE:.0%} CI "
                   "of the runner-up's difference to exclude zero (the project's decision rule)")


def speedups(table: pd.DataFrame) -> Finding | None:
    """Each implementation's forward and backward speedup against naive, median and range over shared cells."""
    parts, numbers = [], {}
    for impl, cells in table[table["impl"] != NAIVE].groupby("impl", sort=False):
        shared = cells.dropna(subset=["forward_speedup", "backward_speedup"])
        if shared.empty:
            continue
        texts = []
        for phase in ("forward", "backward"):
            values = shared[f"{phase}_speedup"].astype(float)
            numbers.setdefault(impl, {})[phase] = {"median": float(values.median()), "min": float(values.min()),
                                                   "max": float(values.max()), "cells": len(values)}
            texts.append(f"{phase} ×{values.median():.2f} (×{values.min():.2f}–×{values.max():.2f})")
        parts.append(f"{impl}: {', '.join(texts)} over {len(shared)} cells")
    if not parts:
        return None
    return Finding("speedup against naive", "; ".join(parts) + ".", numbers,
                   "naive's mean pass / the implementation's, per cell where both ran; median and range over those "
                   "cells")
