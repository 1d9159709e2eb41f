"""The model a configuration measures: the built-in TransformerLM (model.py), or your own through
`--model MODULE:FACTORY`, and the FLOPs of your own counted by torch's FlopCounterMode.

Your own model: `FACTORY(cfg: ModelConfig) -> torch.nn.Module`, called with the configuration's model shape
(BenchConfig.model_config(): --size and the dimension overrides, vocab_size, context_length = --ctx, attention), which
it may use or ignore; the module it returns maps (B, T) int64 token ids to (B, T, vocab_size) logits. It is called
inside `torch.device(<the run's device>)`, so parameters it creates without a device land there (and the module is
moved there after). MODULE is imported as `python -m` would: the current directory first, then sys.path and
PYTHONPATH; the commands' child processes (--repeats, nsys, torchrun's ranks) start in the same directory, so a
`mymodel.py` there is found by them too. Under --parallel fsdp the children listed in the module's `blocks`
attribute (as TransformerLM's) are sharded one unit each, then the whole module; without `blocks` the whole module
is one unit (measure/data_parallel.py).

FLOPs: the built-in model's are the analytic formula (results/flops.py); a custom model's are counted once, before
the timed steps, on the built module and the run's own inputs: FlopCounterMode over one forward, and over the
backward of its loss (modes with a backward). FlopCounterMode counts matmuls, convolutions and attention; on the
built-in model its forward equals the formula exactly, its backward adds the Q K^T a fused SDPA backward recomputes
(flops.sdpa_recompute_flops: hardware FLOPs, not model FLOPs; tests/test_flops.py). The optimizer counts 0, as
in the formula. That same forward checks the logits' shape.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from lmbench.config import BenchConfig, ModelConfig
from lmbench.errors import LmbenchError
from lmbench.model import build_model

Factory = Callable[[ModelConfig], torch.nn.Module]
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # --precision's, --param-dtype's


def autocast(config: BenchConfig, device_type: str, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    """The step's autocast for --precision (none for fp32): the measured step and the FLOP count run under it."""
    if config.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=TORCH_DTYPES[config.precision], cache_enabled=cache_enabled)


def load_factory(spec: str) -> Factory:
    """The factory `spec` ('module:factory', checked by BenchConfig) names; an import error, a missing attribute or
    something not callable is one LmbenchError."""
    module_name, _, path = spec.partition(":")
    if os.getcwd() not in sys.path:  # as `python -m` puts it first: a mymodel.py beside the user is found
        sys.path.insert(0, os.getcwd())
    try:
        target = importlib.import_module(module_name)
    except ImportError as e:
        raise LmbenchError(f"--model {spec}: cannot import {module_name} ({e}); it must be importable from the current "
                           "directory or PYTHONPATH") from None
    for name in path.split("."):
        if not hasattr(target, name):
            raise LmbenchError(f"--model {spec}: {getattr(target, '__name__', module_name)} has no attribute {name!r}")
        target = getattr(target, name)
    if not callable(target):
        raise LmbenchError(f"--model {spec}: {path} is of type {type(target).__name__}, not a callable factory")
    return target


def build(config: BenchConfig, device: torch.device) -> torch.nn.Module:
    """The configuration's model with its parameters on `device` in --param-dtype: TransformerLM, or what --model's
    factory returns. Built in fp32 and then cast: its floating-point parameters only, as Module.to(dtype) would cast
    them, but not its buffers (RoPE's angles keep their precision)."""
    model = _built(config, device)
    if config.param_dtype != "fp32":
        for parameter in model.parameters():
            if parameter.is_floating_point():
                parameter.data = parameter.data.to(TORCH_DTYPES[config.param_dtype])
    return model


def _built(config: BenchConfig, device: torch.device) -> torch.nn.Module:
    if config.model is None:
        return build_model(config.model_config(), device)
    factory = load_factory(config.model)
    with torch.device(device):
        model = factory(config.model_config())
    if not isinstance(model, torch.nn.Module):
        raise LmbenchError(f"--model {config.model} returned a value of type {type(model).__name__}, not a "
                           "torch.nn.Module")
    return model.to(device)


def cpu_sdpa_mapping() -> dict:
    """FlopCounterMode's SDPA formulas for the CPU fused kernel that F.scaled_dot_product_attention runs on a CPU:
    torch registers them for the CUDA kernels (flash, efficient, cuDNN) only, and counts the CPU one as 0."""
    aten = torch.ops.aten
    if not hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        return {}

    def forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    def backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # noqa
        return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)

    return {aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}


def count_flops(config: BenchConfig, model: torch.nn.Module, tokens: torch.Tensor,
                targets: torch.Tensor) -> dict[str, int]:
    """FLOPs per phase of the configuration's mode, counted by FlopCounterMode over one forward of `model` on
    `tokens` (and the backward of its loss against `targets`); the logits' shape is checked on that forward.
    Run under the step's autocast, as the step runs (a model mixing fp32 buffers with --param-dtype bf16 parameters
    needs it); autocast changes a matmul's dtype, not its FLOPs. Gradients are left unset."""
    mapping = cpu_sdpa_mapping()
    grad = torch.no_grad() if config.mode == "forward" else contextlib.nullcontext()
    with grad, autocast(config, tokens.device.type, cache_enabled=False), \
            FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        logits = model(tokens)
    check_logits(config, logits, tokens)
    flops = {"forward": counter.get_total_flops()}
    if config.mode != "forward":
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            loss.backward()
        flops["backward"] = counter.get_total_flops()
        model.zero_grad(set_to_none=True)
    if config.mode == "train-step":
        flops["optimizer"] = 0
    return flops


def check_logits(config: BenchConfig, logits: object, tokens: torch.Tensor) -> None:
    """Refuse a model whose output is not (B, T, vocab_size) floating-point logits for (B, T) tokens."""
    expected = (*tokens.shape, config.vocab_size)
    if not isinstance(logits, torch.Tensor):
        raise LmbenchError(f"--model {config.model}: forward returned a value of type {type(logits).__name__}, not "
                           f"a tensor of logits {expected}")
    if tuple(logits.shape) != expected or not logits.is_floating_point():
        raise LmbenchError(f"--model {config.model} returned {logits.dtype} of shape {tuple(logits.shape)} for tokens "
                           f"{tuple(tokens.shape)}; expected floating-point logits (B, T, vocab_size) = {expected}")
