"""A pre-norm Transformer language model (RMSNorm, RoPE, SwiGLU), written to be read.

The math carries no profiling code; its one hook is `annotate(..., "detail")`, which names layers and
attention parts on profiler timelines and costs a comparison when annotation is off.
Shapes: B batch, T context, d d_model, h heads, hd head dim, f d_ff, V vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lmbench.config import (ATTENTION_RANGE, FFN_RANGE, LAYER_RANGE, SCORES_RANGE, SOFTMAX_RANGE, VALUE_RANGE,
                            ModelConfig, indexed_range)
from lmbench.measure.ranges import annotate


class RMSNorm(nn.Module):
    """Root-mean-square norm, computed in fp32 whatever the input dtype, returned in the input dtype."""

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., d)
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x32 * self.weight).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """Rotates each (even, odd) pair of a head's features by a position-dependent angle."""

    def __init__(self, head_dim: int, context_length: int, theta: float) -> None:
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (hd/2,)
        angles = torch.outer(torch.arange(context_length, dtype=torch.float32), inv_freq)  # (T_max, hd/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, h, T, hd) -> (B, h, T, hd)
        T = x.size(-2)
        cos, sin = self.cos[:T], self.sin[:T]  # (T, hd/2)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, h, T, hd/2) each
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, h, T, hd/2, 2)
        return rotated.flatten(-2).type_as(x)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
    """Causal attention as separate steps (scores, softmax, value) so each can be seen and timed alone.

    q, k, v: (B, h, T, hd); causal_mask: (T_max, T_max) bool, True where a query may look.
    """
    T, hd = q.size(-2), q.size(-1)
    with annotate(SCORES_RANGE, "detail"):
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, h, T, T)
        scores = scores.masked_fill(~causal_mask[:T, :T], float("-inf"))
    with annotate(SOFTMAX_RANGE, "detail"):
        probs = torch.softmax(scores, dim=-1)  # (B, h, T, T)
    with annotate(VALUE_RANGE, "detail"):
        return probs @ v  # (B, h, T, hd)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, rope: RotaryEmbedding) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.impl = cfg.n_heads, cfg.head_dim, cfg.attention
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.rope = rope
        if self.impl == "naive":
            mask = torch.ones(cfg.context_length, cfg.context_length, dtype=torch.bool).tril()
            self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 x (B, T, d)
        q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, h, T, hd)
        q, k = self.rope(q), self.rope(k)
        if self.impl == "naive":
            y = naive_attention(q, k, v, self.causal_mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, hd)
        return self.out(y.transpose(1, 2).reshape(B, T, d))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # inner: (B, T, f)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, rope: RotaryEmbedding, index: int) -> None:
        super().__init__()
        self.range_name = indexed_range(LAYER_RANGE, index)
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg, rope)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        with annotate(self.range_name, "detail"):
            with annotate(ATTENTION_RANGE, "detail"):
                x = x + self.attn(self.attn_norm(x))
            with annotate(FFN_RANGE, "detail"):
                return x + self.ffn(self.ffn_norm(x))


class TransformerLM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        rope = RotaryEmbedding(cfg.head_dim, cfg.context_length, cfg.rope_theta)  # shared by all blocks
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, rope, i) for i in range(cfg.n_layers))
        self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)  # untied from the embedding
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) int -> (B, T, V)
        x = self.embed(tokens)  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.final_norm(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(cfg: ModelConfig, device: torch.device | str) -> TransformerLM:
    """Create the model with its parameters allocated and initialised directly on `device`."""
    with torch.device(device):
        return TransformerLM(cfg)
