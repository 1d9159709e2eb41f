"""TensorBoard scalars and hparams of one stored record, next to its profiler traces.

Per-step phase times (`time_ms/<phase>`, warm-up steps included at their step index), per-phase memory
peaks (`memory_mb/<phase>/<peak>`) and the configuration as hparams with the measured means as metrics,
so runs compare in TensorBoard's Scalars and HParams views as well as in the PyTorch Profiler plugin.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from lmbench.results.record import Record


def hparams_of(record: Record) -> tuple[dict[str, Any], dict[str, float]]:
    """(configuration fields TensorBoard can show, metrics: mean ms per phase, tokens/s, MFU)."""
    hparams = {k: v for k, v in dataclasses.asdict(record.config).items() if isinstance(v, (bool, int, float, str))}
    metrics = {f"hparam/{phase}_ms": s["mean"] for phase, s in record.stats.items()}
    throughput = record.throughput
    if "tokens_per_s" in throughput:
        metrics["hparam/tokens_per_s"] = throughput["tokens_per_s"]
    if throughput.get("mfu", {}).get("total") is not None:
        metrics["hparam/mfu_total"] = throughput["mfu"]["total"]
    return hparams, metrics


def log_run(log_dir: Path, record: Record) -> None:
    writer = SummaryWriter(str(log_dir))
    try:
        for sample in record.samples:
            for key, value in sample.items():
                if key.endswith("_ms"):
                    writer.add_scalar(f"time_ms/{key[:-3]}", value, sample["step"])
        last = record.samples[-1]["step"] if record.samples else 0
        for phase, peaks in record.memory.items():
            for name, value in peaks.items():
                writer.add_scalar(f"memory_mb/{phase}/{name}", value, last)
        hparams, metrics = hparams_of(record)
        writer.add_hparams(hparams, metrics, run_name=".")
    finally:
        writer.close()
