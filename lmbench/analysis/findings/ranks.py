"""Findings on the ranks of a data-parallel job: a straggler, a rank that is consistently the slowest.

A job's step ends when its slowest rank's does (results/ranks.py), so a rank that is the slowest step after step
sets the job's pace. Which rank is slowest in a step is read from each rank's own phase total; "consistently"
means in at least STRAGGLER_SHARE of the measured steps, and more often than chance would make it: a binomial
test against every rank being equally likely to be the slowest in each step.
"""

from __future__ import annotations

import statistics

from lmbench.analysis.findings.finding import Finding
from lmbench.results.ranks import stragglers
from lmbench.results.record import Record

STRAGGLER_SHARE = 0.8  # a rank slowest in at least this share of the measured steps
ALPHA = 0.05  # ... and in more of them than chance gives with this probability


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), k ≥ 1 (scipy.stats.binom.sf(k - 1, n, p) without importing scipy.stats)."""
    from scipy.special import bdtrc

    return float(bdtrc(k - 1, n, p))


def straggler(record: Record) -> Finding | None:
    """The rank that was the slowest in most measured steps, when that is consistent (see the module)."""
    if not (record.ok and record.rank_samples and record.world_size > 1):
        return None
    counts, margins = stragglers(record.rank_samples)
    steps = sum(counts)
    rank = max(range(len(counts)), key=counts.__getitem__)
    p = binomial_tail(counts[rank], steps, 1 / len(counts))
    if counts[rank] < STRAGGLER_SHARE * steps or p >= ALPHA:
        return None
    margin = statistics.fmean(margins[rank])
    share = 100 * margin / record.mean_ms()
    return Finding(
        "straggler",
        f"{record.label}: rank {rank} of {len(counts)} was the slowest in {counts[rank]} of {steps} measured steps, "
        f"by {margin:.2f} ms on average over the next-slowest rank ({share:.1f}% of the job's mean step of "
        f"{record.mean_ms():.2f} ms).",
        {"label": record.label, "rank": rank, "slowest_steps": counts[rank], "steps": steps, "counts": counts,
         "mean_margin_ms": margin, "margin_pct": share, "p_value": p},
        f"the slowest rank of each measured step by its phase total; a straggler when one rank is the slowest in at "
        f"least {100 * STRAGGLER_SHARE:g}% of the steps and a binomial test against every rank being equally "
        f"likely to be the slowest gives p < {ALPHA:g} (here p = {p:.2g})")


def straggler_findings(records: list[Record]) -> list[Finding]:
    return [f for f in map(straggler, records) if f]
