"""The samples of a data-parallel job: every rank's own, and the job's, which per step are the slowest rank's; and
which one-rank record a job's weak scaling is measured against.

Every rank times its own phases (measure/timers.py). A step of the job is done when its slowest rank is done, so
the job's sample of a step is the sample of the rank whose phases took longest in it, whole (its phases still add
up to its total), labelled with that `slowest_rank`; the record's statistics are computed from these samples as
for one process. Every rank's samples are kept beside them, each labelled with its `rank`.
"""

from __future__ import annotations

import statistics
from typing import Any

from lmbench.results.record import Record, phase_names


def _total(sample: dict[str, Any], phases: list[str]) -> float:
    return sum(sample[f"{p}_ms"] for p in phases)


def _slowest(totals: list[float]) -> int:
    """The rank with the largest total; ties go to the lower rank."""
    return max(range(len(totals)), key=lambda rank: (totals[rank], -rank))


def job_samples(per_rank: list[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the job's samples, every rank's samples flat with its `rank`) from each rank's samples in rank order; the
    ranks ran the same steps in lockstep, so step k of one rank is step k of every other."""
    counts = {len(samples) for samples in per_rank}
    if len(counts) != 1:
        raise ValueError(f"the ranks measured different numbers of steps: {sorted(counts)}")
    phases = phase_names(per_rank[0])
    job = []
    for step in zip(*per_rank):
        slowest = _slowest([_total(sample, phases) for sample in step])
        job.append({**step[slowest], "slowest_rank": slowest})
    flat = [{**sample, "rank": rank} for rank, samples in enumerate(per_rank) for sample in samples]
    return job, flat


def step_totals(rank_samples: list[dict[str, Any]]) -> list[list[float]]:
    """Per measured step, in step order (a merged record's: job by job, `process`), each rank's total (the sum of
    its phases), in rank order."""
    measured = [s for s in rank_samples if not s["warmup"]]
    phases = phase_names(measured)
    steps: dict[tuple[int, int], dict[int, float]] = {}
    for sample in measured:
        steps.setdefault((sample.get("process", 0), sample["step"]), {})[sample["rank"]] = _total(sample, phases)
    return [[totals[rank] for rank in sorted(totals)] for _, totals in sorted(steps.items())]


def rank_means(rank_samples: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per rank, the mean of each phase and of their per-step sum (`total`) over its measured steps, in ms."""
    measured = [s for s in rank_samples if not s["warmup"]]
    phases = phase_names(measured)
    means: dict[int, dict[str, float]] = {}
    for rank in sorted({s["rank"] for s in measured}):
        own = [s for s in measured if s["rank"] == rank]
        means[rank] = {p: statistics.fmean(s[f"{p}_ms"] for s in own) for p in phases}
        means[rank]["total"] = statistics.fmean(_total(s, phases) for s in own)
    return means


def stragglers(rank_samples: list[dict[str, Any]]) -> tuple[list[int], list[list[float]]]:
    """(per rank, the measured steps it was the slowest in; per rank, by how many ms its total exceeded the
    next-slowest rank's in each of those steps)."""
    totals = step_totals(rank_samples)
    world = len(totals[0]) if totals else 0
    counts, margins = [0] * world, [[] for _ in range(world)]
    for step in totals:
        slowest = _slowest(step)
        counts[slowest] += 1
        margins[slowest].append(step[slowest] - max((t for r, t in enumerate(step) if r != slowest), default=0.0))
    return counts, margins


def one_gpu_of(records: list[Record], job: Record) -> Record | None:
    """The latest of `records` that is the one-rank run of `job`'s per-rank configuration (same key at one rank and
    the same per-rank batch: a --global-batch job's key leaves the per-rank batch out, and one rank of it doing the
    whole batch is strong scaling, not this); None for a job of one rank."""
    if job.world_size < 2:
        return None
    key = job.config.key(1)
    matches = [r for r in records if r.ok and r.world_size == 1 and r.config.key(1) == key
               and r.config.batch == job.config.batch]
    return matches[-1] if matches else None
