"""Findings on the ranks of a data-parallel job: a straggler, a rank that is consistently the slowest; and, across
the groups of a run, each job's weak-scaling efficiency against the one-GPU record of its per-rank configuration.

A job's step ends when its slowest rank's does (results/ranks.py), so a rank that is the slowest step after step
sets the job's pace. Which rank is slowest in a step is read from each rank's own phase total; "consistently"
means in at least STRAGGLER_SHARE of the measured steps, and more often than chance would make it: a binomial
test against every rank being equally likely to be the slowest in each step.
"""

from __future__ import annotations

import statistics

from lmbench.analysis.decision import plural
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.findings.variants import ratio_text, speedup
from lmbench.analysis.groups import describe, varying
from lmbench.results.ranks import one_gpu_of, stragglers
from lmbench.results.record import Record
from lmbench.results.stats import CONFIDENCE

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


def weak_scaling(records: list[Record]) -> Finding | None:
    """Each job of several ranks against the run's one-rank record of the same per-rank configuration
    (results/ranks.one_gpu_of, as the kernel report pairs them): efficiency = one-GPU step / job step, with the CI and verdict of
    decision.compare_records, and the time lost per step. Which part of the loss is exposed communication needs the
    job's traces (`lmbench profile` or `lmbench nsys` with the same launch options), not these records."""
    ok = [r for r in records if r.ok]
    named_by = varying(ok)  # two jobs of one size and rank count differ in these
    pairs = {f"{describe(job, named_by)} on {job.world_size} ranks": (base, job, speedup(base, job)) for job in ok
             if (base := one_gpu_of(ok, job))}
    if not pairs:
        return None
    lost = {name: job.mean_ms() - base.mean_ms() for name, (base, job, _) in pairs.items()}
    units = sorted({plural(pair['unit']) for _, _, pair in pairs.values()})
    listed = "; ".join(f"{name} {ratio_text(pair, percent=True)}, {lost[name]:.2f} ms lost per step "
                       f"({base.mean_ms():.2f} → {job.mean_ms():.2f} ms)" for name, (base, job, pair) in pairs.items())
    return Finding(
        "weak scaling",
        f"Weak-scaling efficiency (one-GPU step / the job's step, {CONFIDENCE:.0%} CI with {' and '.join(units)} as "
        f"the unit): {listed}.",
        {"efficiency_pct": {name: 100 * pair["speedup"] for name, (_, _, pair) in pairs.items()},
         "lost_ms": lost,
         "pairs": {name: pair for name, (_, _, pair) in pairs.items()}},
        "mean measured step of the one-rank record of the same per-rank configuration / the job's (each step its "
        "slowest rank's); lost = the job's mean step − the one-GPU one; the CI by compare's rule (process means when "
        "both sides hold several processes, else the measured steps, which leave out the variation between "
        "processes); the lost time split into exposed communication and the rest is in the kernel report of the "
        "job's `lmbench profile` or `lmbench nsys`")

