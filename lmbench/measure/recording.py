"""Turn a Measurement into the record that the results store keeps, reading the environment while the run's
settings are still in force; what the samples determine is derived by results/record.py."""

from __future__ import annotations

import math
from typing import Any

from lmbench.config import BenchConfig
from lmbench.measure import environment
from lmbench.measure.harness import Measurement
from lmbench.results.record import Record, new_record
from lmbench.results.ranks import job_samples
from lmbench.results.stats import summarize


def base_numerics(config: BenchConfig) -> dict[str, Any]:
    """The numerics the configuration asks for (the harness adds what it read back while they were in force)."""
    return {"precision": config.precision, "autocast": config.precision != "fp32", "tf32": config.tf32,
            "attention": config.attention, "sdpa_backend": config.sdpa_backend, "compile": config.compile}


def build_record(config: BenchConfig, measurement: Measurement, wall_s: float,
                 distributed: dict[str, Any] | None = None, per_rank: list[list[dict]] | None = None) -> Record:
    """The record of `measurement`; a data-parallel job's rank 0 passes the job (`distributed`) and every rank's
    samples (`per_rank`, in rank order), whose slowest rank per step makes the job's samples (results/ranks.py)."""
    samples, rank_samples = job_samples(per_rank) if per_rank else (measurement.samples, None)
    sampling = measurement.stopping
    if per_rank and sampling:  # the CI half-width the job's steps reached, not rank 0's
        totals = Record({"samples": samples}).totals()
        sampling = {**sampling, "ci_half_width_pct": summarize(totals).ci_half_width_pct if len(totals) > 1 else math.nan}
    return new_record(
        config, status=measurement.status, timestamp=environment.utc_now(), params=measurement.params,
        environment=environment.capture(measurement.device),
        numerics={**base_numerics(config), **measurement.numerics},
        profiler=measurement.profiler, sampling=sampling, build_s=measurement.build_s, wall_s=wall_s,
        samples=samples, memory=measurement.memory, telemetry=measurement.telemetry,
        graph=measurement.graph, compile=measurement.compile, flops=measurement.flops,
        oom={"phase": measurement.oom_phase, "message": measurement.oom_message} if measurement.status == "oom"
        else None, distributed=distributed, rank_samples=rank_samples)
