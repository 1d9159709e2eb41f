"""Turn a Measurement into the self-describing record that the results store keeps.

A record holds the configuration, the resolved model shape, the environment and numerics, every raw
sample, and what is derived from the measured ones: statistics per phase, model FLOPs, achieved
TFLOP/s, MFU and tokens/s. Reports read these fields and never re-measure.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lmbench import environment
from lmbench.config import BenchConfig
from lmbench.flops import peak_tflops, phase_flops
from lmbench.harness import Measurement
from lmbench.stats import summarize

SCHEMA = "lmbench.result/1"


def phase_names(samples: list[dict]) -> list[str]:
    """Phases present in the samples, in step order ('total' is their per-step sum)."""
    return [k[: -len("_ms")] for k in samples[0] if k.endswith("_ms") and k != "step_ms"] if samples else []


def build_record(config: BenchConfig, measurement: Measurement, wall_s: float) -> dict[str, Any]:
    device = measurement.device
    model_cfg = config.model_config()
    env = environment.capture(device)
    record: dict[str, Any] = {
        "lmbench": SCHEMA,
        "key": config.key(),
        "status": measurement.status,
        "timestamp": environment.utc_now(),
        "config": dataclasses.asdict(config),
        "model": {**dataclasses.asdict(model_cfg), "label": config.label, "params": measurement.params},
        "environment": env,
        "numerics": {
            "precision": config.precision,
            "autocast": config.precision != "fp32",
            "tf32": config.tf32,
            "attention": config.attention,
            "compile": False,
            **environment.numerics(device),
        },
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

    measured = [s for s in measurement.samples if not s["warmup"]]
    phases = phase_names(measured)
    series = {p: [s[f"{p}_ms"] for s in measured] for p in phases}
    series["total"] = [sum(s[f"{p}_ms"] for p in phases) for s in measured]
    series["step"] = [s["step_ms"] for s in measured]
    stats = {name: summarize(values).as_dict() for name, values in series.items()}
    record["stats"] = stats

    flops = phase_flops(model_cfg, config.batch, config.ctx, config.mode)
    flops["total"] = sum(flops.values())
    peak = peak_tflops(env["device_name"], config.precision, config.tf32) if device.type == "cuda" else None
    achieved = {p: f / (stats[p]["mean"] * 1e-3) / 1e12 for p, f in flops.items() if f and p in stats}
    record["throughput"] = {
        "tokens_per_s": config.batch * config.ctx / (stats["total"]["mean"] * 1e-3),
        "flops": flops,
        "tflops": achieved,
        "peak_tflops": peak,
        "mfu": {p: v / peak for p, v in achieved.items()} if peak else {},
    }
    return record
