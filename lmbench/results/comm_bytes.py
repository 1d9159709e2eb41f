"""The bytes a data-parallel step moves, per phase and collective, from the job's configuration alone: what the
kernel report of an `lmbench nsys` capture sets beside the NCCL kernel times, since `nsys stats` holds no message
sizes. Sizes are nccl-tests' S (results/collectives.py: the larger buffer of one rank), so that bus bandwidth is
S x bus_factor over the collective's time, as for a measured size.

In the steady state of a measured step of the built-in model (the tensors' shapes from results/sizes.py):
- ddp (torch/nn/parallel/distributed.py, torch 2.13; bucket_cap_mb and gradient_as_bucket_view only change how the
  bytes are cut into buckets, not their sum):
  - backward: one all_reduce of every gradient, in the gradients' dtype: the parameters' fp32, which autocast leaves
    as it is. The buckets' count is not predicted: the reducer rebuilds them in the order gradients arrive.
  - forward: with a gradient, DDP broadcasts the module's buffers from rank 0 before each forward
    (`_pre_forward` -> `_sync_buffers` while `will_sync_module_buffers`: broadcast_buffers is True by default and
    `require_forward_param_sync` is set by every forward that records a graph), coalesced per dtype
    (`_default_broadcast_coalesced`). The model's buffers are RoPE's cos and sin (one module shared by every
    block, counted once, as `named_buffers` does), fp32 (T_max, ceil(hd/2)) each, and with naive attention every
    block's own bool causal mask (T_max, T_max). Under inference_mode (--mode forward) `require_forward_param_sync`
    is False after the first forward: nothing moves.
- fsdp (FSDP2 `fully_shard` on each block, then the model: the root unit holds the embedding, final norm and head;
  torch/distributed/fsdp/_fully_shard/, torch 2.13):
  - forward: one all_gather_into_tensor per unit, S = the unit's padded shards (each parameter's dim 0 cut into
    world-size chunks of ceil(dim0 / n), results/sizes.shard_numel; summed over the units by fsdp_shard_numel) times
    n, in the param dtype (MixedPrecisionPolicy param_dtype: the autocast dtype, fp32 for fp32)
    (`foreach_all_gather`: output numel = all_gather_input_numel x world_size). With --no-reshard-after-forward
    and no backward (--mode forward) the units stay gathered after the first forward: nothing moves.
  - backward: with reshard_after_forward every unit is gathered again, the root too (lmbench passes True; only None
    keeps the root gathered, `_fsdp_state.py` `_auto_reshard_after_forward`); then one reduce_scatter_tensor per
    unit of its dim-0-padded gradients in fp32, the reduce dtype (`foreach_reduce`: reduce_scatter_input_numel =
    the sum of the padded unsharded sizes).
Not counted: one-off traffic outside the steady state, which lands in a measured step only with fewer than two
warm-up steps (DDP broadcasts its buffers on the first forward even without a gradient, and on the second forward
with one broadcasts the rebuilt buckets' parameter order, `sync_bucket_indices`). tests/test_comm_bytes.py checks
every number against the message sizes of real 2-rank gloo jobs' traces (ddp; fsdp padded: an odd vocabulary).

A --model of your own: unknown (None), its buffers and units are not known here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmbench.config import PHASES, BenchConfig
from lmbench.results.collectives import bus_factor
from lmbench.results.flops import param_count
from lmbench.results.sizes import ACTIVATION_BYTES, FP32, fsdp_shard_numel

OPS = ("all_reduce", "broadcast", "all_gather_into_tensor", "reduce_scatter_tensor")
BOOL = 1  # a bool element's bytes


@dataclass(frozen=True)
class Collective:
    """One kind of collective a step runs: in which phase, which one (nccl-tests' name), of what, and the bytes
    (nccl-tests' S) summed over its calls in one step."""

    phase: str
    op: str
    what: str
    bytes: int

    def __post_init__(self) -> None:
        if self.phase not in PHASES or self.op not in OPS or self.bytes < 0:
            raise ValueError(f"not a collective of a step: {self}")

    def bus_bytes(self, world_size: int) -> float:
        """S x nccl-tests' bus factor: over the collective's time, its bus bandwidth."""
        return self.bytes * bus_factor(self.op, world_size)


def step_collectives(config: BenchConfig, world_size: int) -> list[Collective] | None:
    """What one measured step of `config` on `world_size` ranks moves (module docstring); [] for one process, None
    for a custom model."""
    if config.model is not None:
        return None
    if config.parallel == "ddp":
        return _ddp(config)
    if config.parallel == "fsdp":
        return _fsdp(config, world_size)
    return []


def _ddp(config: BenchConfig) -> list[Collective]:
    if config.mode == "forward":  # inference_mode: no buffer broadcast after the first forward, no gradient
        return []
    cfg = config.model_config()
    rope = 2 * cfg.context_length * len(range(0, cfg.head_dim, 2)) * FP32  # cos and sin, shared by the blocks
    masks = cfg.n_layers * cfg.context_length ** 2 * BOOL if cfg.attention == "naive" else 0
    return [Collective("forward", "broadcast", "buffers", rope + masks),
            Collective("backward", "all_reduce", "gradients", param_count(cfg) * FP32)]


def _fsdp(config: BenchConfig, world_size: int) -> list[Collective]:
    padded = fsdp_shard_numel(config.model_config(), world_size) * world_size  # every unit, gathered
    gather = Collective("forward", "all_gather_into_tensor", "parameters", padded * ACTIVATION_BYTES[config.precision])
    if config.mode == "forward":
        return [gather] if config.reshard_after_forward else []
    again = [Collective("backward", gather.op, gather.what, gather.bytes)] if config.reshard_after_forward else []
    return [gather, *again, Collective("backward", "reduce_scatter_tensor", "gradients", padded * FP32)]


def phase_bytes(collectives: list[Collective], world_size: int) -> dict[str, tuple[int, float]]:
    """Per phase that moves anything, and for the whole step ('step'): (bytes, bus bytes) per step."""
    out: dict[str, tuple[int, float]] = {}
    for c in collectives:
        for key in (c.phase, "step"):
            total, bus = out.get(key, (0, 0.0))
            out[key] = (total + c.bytes, bus + c.bus_bytes(world_size))
    return {key: value for key, value in out.items() if value[0]}
