"""The self-describing record that the results store keeps (built by measure/recording.py).

A record holds the configuration, the resolved model shape, the environment and numerics, every raw
sample, and what is derived from the measured ones: statistics per phase, model FLOPs, achieved
TFLOP/s, MFU and tokens/s. Reports read these fields and never re-measure.
"""

from __future__ import annotations

from typing import Any

from lmbench.config import BenchConfig
from lmbench.results.flops import peak_tflops, phase_flops
from lmbench.results.stats import between_processes, summarize

SCHEMA = "lmbench.result/1"


def phase_names(samples: list[dict]) -> list[str]:
    """Phases present in the samples, in step order ('total' is their per-step sum)."""
    return [k[: -len("_ms")] for k in samples[0] if k.endswith("_ms") and k != "step_ms"] if samples else []


def process_of(sample: dict[str, Any]) -> int:
    """The process a sample was measured in: 0 unless the record merges several (measure/processes.py)."""
    return sample.get("process", 0)


def process_indices(samples: list[dict[str, Any]]) -> list[int]:
    """The processes that measured these samples, in order: [0] unless a record merges several."""
    return sorted({process_of(s) for s in samples})


def derive(record: dict[str, Any]) -> None:
    """Fill in what the measured samples determine: statistics per phase with the step as unit, with
    several processes also the statistics whose unit is the process, and throughput (FLOPs, TFLOP/s, MFU)."""
    measured = [s for s in record["samples"] if not s["warmup"]]
    phases = phase_names(measured)

    def series(sample_set: list[dict]) -> dict[str, list[float]]:
        out = {p: [s[f"{p}_ms"] for s in sample_set] for p in phases}
        out["total"] = [sum(s[f"{p}_ms"] for p in phases) for s in sample_set]
        out["step"] = [s["step_ms"] for s in sample_set]
        return out

    record["stats"] = {name: summarize(values).as_dict() for name, values in series(measured).items()}
    processes = process_indices(measured)
    if len(processes) > 1:
        per_process = [series([s for s in measured if process_of(s) == k]) for k in processes]
        record["process_stats"] = {name: between_processes([p[name] for p in per_process])
                                   for name in per_process[0]}

    config = BenchConfig.from_dict(record["config"])
    stats, env = record["stats"], record["environment"]
    flops = phase_flops(config.model_config(), config.batch, config.ctx, config.mode)
    flops["total"] = sum(flops.values())
    peak = peak_tflops(env["device_name"], config.precision, config.tf32) if env["device_type"] == "cuda" else None
    achieved = {p: f / (stats[p]["mean"] * 1e-3) / 1e12 for p, f in flops.items() if f and p in stats}
    record["throughput"] = {
        "tokens_per_s": config.batch * config.ctx / (stats["total"]["mean"] * 1e-3),
        "flops": flops,
        "tflops": achieved,
        "peak_tflops": peak,
        "mfu": {p: v / peak for p, v in achieved.items()} if peak else {},
    }
