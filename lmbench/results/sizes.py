"""Analytic sizes of a configuration's key tensors, in bytes, from the model (model.py) and the harness
(measure/harness.py): analysis/memory.py sets them beside the measured peak, and measure/environment.py checks
them against the machine before anything is built.

Parameters stay fp32 under autocast; gradients exist from backward on; AdamW keeps two fp32 moments per
parameter (train-step only); the residual stream is fp32 (RMSNorm and the residual adds run in fp32); attention
scores and logits are in the autocast dtype. Scores are one layer's (B, h, T, T) matrix, which naive attention
materialises and fused SDPA does not; the inputs are the (B, T) int64 tokens and targets. Python integers, so a
value far beyond any machine gives a huge number rather than an overflow.
"""

from __future__ import annotations

from lmbench.config import BenchConfig
from lmbench.results.flops import param_count

ACTIVATION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def tensor_bytes(config: BenchConfig, params: int | None = None) -> dict[str, int]:
    """Bytes of the parameters, gradients, optimizer state, inputs, one residual-stream activation, one layer's
    attention scores and the logits; `params` is a counted number of parameters (the formula's otherwise)."""
    cfg = config.model_config()
    params = param_count(cfg) if params is None else params
    act = ACTIVATION_BYTES[config.precision]
    trains = config.mode != "forward"
    return {
        "params": params * 4,
        "grads": params * 4 if trains else 0,
        "optimizer": 2 * params * 4 if config.mode == "train-step" else 0,
        "inputs": 2 * config.batch * config.ctx * 8,
        "residual": config.batch * config.ctx * cfg.d_model * 4,
        "scores": config.batch * cfg.n_heads * config.ctx * config.ctx * act,
        "logits": config.batch * config.ctx * cfg.vocab_size * act,
    }


# What building allocates (the model and the input batch), and what a step cannot run without on top of it;
# neither counts the activations autograd keeps, so both are lower bounds.
BUILD_TENSORS = ("params", "inputs")
STEP_TENSORS = (*BUILD_TENSORS, "grads", "optimizer", "logits")
