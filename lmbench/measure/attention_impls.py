"""The attention implementations `lmbench attention` times, each a function (q, k, v) -> output on (B, h, T, hd)
tensors, with the context it runs in.

- naive: model.py's naive_attention (scores, mask, softmax, value as separate ops), the model's own code. It masks
  with a (T, T) boolean matrix: the causal one, or with --no-causal an all-true one, so full attention pays the
  same masked_fill as causal attention does;
- sdpa-<backend>: F.scaled_dot_product_attention with is_causal, run inside torch.nn.attention.sdpa_kernel(backend)
  so torch may use that backend only (sdpa-auto: no restriction, torch picks). Backward needs no context: the
  forward's choice fixes its backward kernel;
- naive-compiled: torch.compile of the same naive_attention, static shapes, compiled afresh for every cell
  (torch._dynamo.reset: the grid's shapes would otherwise exhaust dynamo's recompile limit and fall back to eager).
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel

from lmbench.options import require_choice
from lmbench.measure.sdpa import BACKENDS
from lmbench.model import naive_attention
from lmbench.results.attention import COMPILED, NAIVE

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
MATERIALISED = (NAIVE, COMPILED, "sdpa-math")  # implementations that hold (B, h, T, T) scores


def check_compile_backend(name: str) -> None:
    """Refuse a torch.compile backend torch does not know, before any cell runs."""
    require_choice("torch.compile backend", name, tuple(sorted(torch._dynamo.list_backends(exclude_tags=()))))


def mask_for(seq_len: int, causal: bool, device: torch.device) -> torch.Tensor:
    """naive_attention's (T, T) mask, True where a query may look."""
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device)
    return mask.tril() if causal else mask


def build(impl: str, mask: torch.Tensor | None, causal: bool, compile_backend: str) -> tuple[Attention, ContextManager]:
    """The function of `impl` and the context its calls run in; `mask` is naive's (None for SDPA)."""
    if impl in (NAIVE, COMPILED):
        assert mask is not None
        if impl == NAIVE:
            return (lambda q, k, v: naive_attention(q, k, v, mask)), contextlib.nullcontext()
        torch._dynamo.reset()
        compiled = torch.compile(naive_attention, dynamic=False, backend=compile_backend)
        return (lambda q, k, v: compiled(q, k, v, mask)), contextlib.nullcontext()
    backend = impl.removeprefix("sdpa-")
    context = sdpa_kernel(BACKENDS[backend]) if backend in BACKENDS else contextlib.nullcontext()
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)), context
