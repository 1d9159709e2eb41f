"""Where a step's memory goes: analytic sizes of the key tensors beside the measured peak.

Sizes follow the model (model.py) and the harness (measure/harness.py): parameters stay fp32 under autocast;
gradients exist from backward on; AdamW keeps two fp32 moments per parameter (train-step only); the
residual stream is fp32 (RMSNorm and the residual adds run in fp32), attention scores and logits are
in the autocast dtype. Scores are one layer's (B, h, T, T) matrix, which naive attention materialises
and fused SDPA does not. The measured peak is the allocator's peak over the step's phases.
"""

from __future__ import annotations

import pandas as pd

from lmbench.config import BenchConfig
from lmbench.results.record import Record

MB = 2**20
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def analytic_sizes_mb(config: BenchConfig, params: int) -> dict[str, float]:
    cfg = config.model_config()
    act = ACTIVATION_BYTES[config.precision]
    trains = config.mode != "forward"
    return {
        "params_mb": params * 4 / MB,
        "grads_mb": params * 4 / MB if trains else 0.0,
        "optimizer_mb": 2 * params * 4 / MB if config.mode == "train-step" else 0.0,
        "residual_mb": config.batch * config.ctx * cfg.d_model * 4 / MB,
        "scores_mb": config.batch * cfg.n_heads * config.ctx * config.ctx * act / MB,
        "logits_mb": config.batch * config.ctx * cfg.vocab_size * act / MB,
    }


def peak_mb(record: Record) -> float | None:
    """The largest measured peak over the step's phases: allocated bytes on CUDA, RSS on a CPU."""
    peaks = [value for phase in record.memory.values() for key, value in phase.items()
             if key in ("peak_allocated_mb", "peak_rss_mb")]
    return max(peaks) if peaks else None


def memory_table(records: list[Record]) -> pd.DataFrame:
    """One row per record: measured peak, analytic tensor sizes, and what the peak holds beyond the
    persistent state (parameters + gradients + optimizer moments): mostly saved activations."""
    rows = []
    for record in records:
        config = record.config
        sizes = analytic_sizes_mb(config, record.params or 0)
        peak = peak_mb(record) if record.ok else None
        state = sizes["params_mb"] + sizes["grads_mb"] + sizes["optimizer_mb"]
        rows.append({"label": record.label, "mode": config.mode, "ctx": config.ctx,
                     "precision": config.precision, "status": record.status, "peak_mb": peak, **sizes,
                     "state_mb": state, "beyond_state_mb": None if peak is None else peak - state})
    return pd.DataFrame(rows)
