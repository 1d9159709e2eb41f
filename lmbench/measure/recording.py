"""Turn a Measurement into the record that the results store keeps, reading the environment while the run's
settings are still in force; what the samples determine is derived by results/record.py."""

from __future__ import annotations

from lmbench.config import BenchConfig
from lmbench.measure import environment
from lmbench.measure.harness import Measurement
from lmbench.results.record import Record, new_record


def build_record(config: BenchConfig, measurement: Measurement, wall_s: float) -> Record:
    return new_record(
        config, status=measurement.status, timestamp=environment.utc_now(), params=measurement.params,
        environment=environment.capture(measurement.device),
        numerics={"precision": config.precision, "autocast": config.precision != "fp32", "tf32": config.tf32,
                  "attention": config.attention, "compile": False, **measurement.numerics},
        profiler=measurement.profiler, sampling=measurement.stopping, build_s=measurement.build_s, wall_s=wall_s,
        samples=measurement.samples, memory=measurement.memory, telemetry=measurement.telemetry,
        graph=measurement.graph,
        oom={"phase": measurement.oom_phase, "message": measurement.oom_message} if measurement.status == "oom"
        else None)
