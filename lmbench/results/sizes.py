"""Analytic sizes of a configuration's key tensors, in bytes, from the model (model.py) and the harness
(measure/harness.py), for one process or for one rank of a data-parallel job (measure/data_parallel.py):
analysis/memory.py sets them beside the measured peak, and measure/environment.py checks them against the
machine before anything is built.

One process: parameters are in --param-dtype (fp32 by default, which autocast leaves fp32); gradients exist from
backward on; AdamW keeps two moments per parameter in the same dtype (train-step only); the residual stream is in it
too (fp32 by default: RMSNorm and the residual adds run in fp32);
attention scores and logits are in the autocast dtype. Scores are one layer's (B, h, T, T) matrix, which naive
attention materialises and fused SDPA does not; the inputs are the (B, T) int64 tokens and targets.

One rank of a job (the activations are those of its per-rank batch, as above):
- ddp: a full replica of the parameters, gradients and moments, plus `buckets`, DDP's flat copy of every gradient
  (fp32) that it all-reduces: with gradient_as_bucket_view=False (torch's default, which lmbench keeps) the
  gradients are copied into buckets rather than viewed from them, and torch's own docstring
  (torch/nn/parallel/distributed.py, gradient_as_bucket_view) puts the difference at "the total gradients size".
  The buckets are allocated when DDP is constructed (checked in torch 2.13: the profiler shows one aten::empty of
  the gradients' size inside DistributedDataParallel(model)), so they count in every mode. Measured on the H200
  (reports/h200-ddp-one-gpu against reports/h200-seed, bf16 train-step, small to 2.7B): the one-rank DDP peak
  exceeds the one-process peak by the fp32 parameters' size within 4%.
- fsdp (FSDP2 `fully_shard` on every block, then the model: the root unit holds the embedding, final norm and
  head): `params`, `grads` and `optimizer` are this rank's shards, each parameter split along dim 0 into
  world-size chunks padded to the first's size (torch 2.13 _fsdp_param.py: chunks[0].size() is every rank's);
  `gathered` is what the all-gathers hold unsharded at once, in the param dtype (the autocast dtype, as
  data_parallel.mixed_precision sets it). With reshard_after_forward (lmbench passes True explicitly, so the root
  reshards too: _fully_shard.py treats only None as "auto", which keeps the root) the root unit stays gathered
  from its pre-forward to its post-forward, around every block, and again through backward: root + one block.
  Without resharding every unit stays gathered from forward to backward: the whole model. A lower bound: the
  next block's prefetched all-gather and a unit's unsharded gradients before reduce-scatter are not counted.
  Building is not sharded: the harness builds the whole fp32 model on each rank before fully_shard shards it,
  so `unsharded_params` (params * 4) is what building needs.

A --model of your own (measure/model_factory.py): its parameters are the counted ones (None before it is built),
fsdp's shards are the parameters over the ranks without padding (their shapes are unknown here); the inputs and the
logits have the shapes the harness checks; the residual stream, the attention scores and fsdp's gathered units are
unknown: None, not guessed.

Python integers throughout, so a value far beyond any machine gives a huge number rather than an overflow.
"""

from __future__ import annotations

import math

from lmbench.config import BenchConfig, ModelConfig
from lmbench.results.flops import param_count

# Bytes per element of a dtype name. Parameters, gradients, AdamW's moments, DDP's buckets and the residual stream
# (the embedding's output, which autocast leaves in the parameters' dtype) are in --param-dtype whatever the
# autocast dtype; activations that autocast makes are in --precision.
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
FP32 = 4  # buffers (RoPE's angles), a data-parallel job's parameters (always fp32), and every model as built

Shapes = list[tuple[int, ...]]


def unit_shapes(cfg: ModelConfig) -> tuple[Shapes, Shapes]:
    """(one block's parameter shapes, the root unit's: embedding, final norm, head), as TransformerLM makes them;
    the root's with n_layers blocks add up to flops.param_count."""
    d, f, V = cfg.d_model, cfg.d_ff, cfg.vocab_size
    block = [(d,), (3 * d, d), (d, d), (d,), (f, d), (d, f), (f, d)]  # norm, qkv, out, norm, w1, w2, w3
    return block, [(V, d), (d,), (V, d)]


def shard_numel(shapes: Shapes, world_size: int) -> int:
    """Elements of one rank's padded shards: each tensor's dim 0 split into world_size chunks of ceil(dim0 / N)."""
    return sum(-(-shape[0] // world_size) * math.prod(shape[1:]) for shape in shapes)


def fsdp_shard_numel(cfg: ModelConfig, world_size: int, blocks: int | None = None) -> int:
    """Elements of one rank's padded shards of the root unit and `blocks` blocks (all n_layers by default): times
    world_size, what the all-gathers of those units move and hold."""
    block, root = unit_shapes(cfg)
    return (cfg.n_layers if blocks is None else blocks) * shard_numel(block, world_size) + shard_numel(root, world_size)


def tensor_bytes(config: BenchConfig, params: int | None = None, world_size: int = 1) -> dict[str, int | None]:
    """Bytes of the parameters, gradients, optimizer state, inputs, one residual-stream activation, one layer's
    attention scores and the logits, and of a data-parallel rank's `buckets` (ddp), `gathered` units (fsdp) and
    `unsharded_params` (what building allocates), for one of `world_size` ranks of config.parallel (module
    docstring); `params` is a counted number of parameters (the formula's otherwise). A custom model's unknown sizes
    are None (module docstring)."""
    if config.model is not None:
        return _custom_bytes(config, params, world_size)
    cfg = config.model_config()
    params = param_count(cfg) if params is None else params
    act = ACTIVATION_BYTES[config.precision]
    state = params
    gathered = 0
    if config.parallel == "fsdp":
        state = fsdp_shard_numel(cfg, world_size)
        kept_blocks = 1 if config.reshard_after_forward else cfg.n_layers
        gathered = fsdp_shard_numel(cfg, world_size, kept_blocks) * world_size * act
    return {**_state_bytes(config, state, params), "gathered": gathered,
            "residual": config.batch * config.ctx * cfg.d_model * ACTIVATION_BYTES[config.param_dtype],
            "scores": config.batch * cfg.n_heads * config.ctx * config.ctx * act}


def _state_bytes(config: BenchConfig, state: int, params: int) -> dict[str, int]:
    """The sizes that follow from the parameter count: `state` elements of this rank's (sharded) parameters out of
    `params`; and the inputs and logits, whose shapes any model shares."""
    per_param = ACTIVATION_BYTES[config.param_dtype]
    return {
        "params": state * per_param,
        "grads": state * per_param if config.mode != "forward" else 0,
        "optimizer": 2 * state * per_param if config.mode == "train-step" else 0,
        "inputs": 2 * config.batch * config.ctx * 8,
        "logits": config.batch * config.ctx * config.vocab_size * ACTIVATION_BYTES[config.precision],
        "buckets": params * per_param if config.parallel == "ddp" else 0,
        "unsharded_params": params * FP32,  # model_factory.build builds in fp32, then casts to --param-dtype
    }


def _custom_bytes(config: BenchConfig, params: int | None, world_size: int) -> dict[str, int | None]:
    unknown: dict[str, int | None] = {"residual": None, "scores": None,
                                      "gathered": None if config.parallel == "fsdp" else 0}
    if params is None:  # before building: only the inputs and logits are known
        known = _state_bytes(config, 0, 0)
        return {**{name: None for name in known}, "inputs": known["inputs"], "logits": known["logits"], **unknown}
    state = -(-params // world_size) if config.parallel == "fsdp" else params
    return {**_state_bytes(config, state, params), **unknown}


# The persistent state a rank keeps between steps; the part of a step's peak that is not activations.
STATE_TENSORS = ("params", "grads", "optimizer", "buckets")
# What building allocates (the model, before any sharding, DDP's buckets and the input batch), and what a step
# cannot run without; neither counts the activations autograd keeps, so both are lower bounds.
BUILD_TENSORS = ("unsharded_params", "buckets", "inputs")
STEP_TENSORS = ("params", "inputs", "grads", "optimizer", "buckets", "gathered", "logits")


def state_bytes(sizes: dict[str, int | None]) -> int | None:
    """The persistent state's bytes; None when a part is unknown (a custom model not yet built)."""
    parts = [sizes[name] for name in STATE_TENSORS]
    return None if None in parts else sum(parts)  # type: ignore[arg-type]
