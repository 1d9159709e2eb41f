"""Turn a Measurement into the record that the results store keeps, reading the environment while the run's
settings are still in force; what the samples determine is derived by results/record.py."""

from __future__ import annotations

import dataclasses
from typing import Any

from lmbench.config import BenchConfig
from lmbench.measure import environment
from lmbench.measure.harness import Measurement
from lmbench.results.record import SCHEMA, derive


def build_record(config: BenchConfig, measurement: Measurement, wall_s: float) -> dict[str, Any]:
    device = measurement.device
    record: dict[str, Any] = {
        "lmbench": SCHEMA,
        "key": config.key(),
        "status": measurement.status,
        "timestamp": environment.utc_now(),
        "config": dataclasses.asdict(config),
        "model": {**dataclasses.asdict(config.model_config()), "label": config.label, "params": measurement.params},
        "environment": environment.capture(device),
        "numerics": {
            "precision": config.precision,
            "autocast": config.precision != "fp32",
            "tf32": config.tf32,
            "attention": config.attention,
            "compile": False,
            **measurement.numerics,
        },
        "profiler": measurement.profiler,
        "sampling": measurement.stopping,
        "build_s": measurement.build_s,
        "wall_s": wall_s,
        "samples": measurement.samples,
        "memory": measurement.memory,
        "telemetry": measurement.telemetry,
    }
    if measurement.graph:
        record["graph"] = measurement.graph
    if measurement.status == "oom":
        record["oom"] = {"phase": measurement.oom_phase, "message": measurement.oom_message}
        return record
    derive(record)
    return record
