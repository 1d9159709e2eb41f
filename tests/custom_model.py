"""Models of one's own for `--model tests.custom_model:FACTORY` (tests/test_custom_model.py): a small embedding + MLP
+ head LM that reads its shape from the ModelConfig it is given, and factories that break the contract."""

from __future__ import annotations

import torch
from torch import nn

from lmbench.config import ModelConfig


class MlpLM(nn.Module):
    """Token embedding, a residual MLP per layer, LM head: no attention, and no `blocks` (FSDP shards it whole)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(),
                                                  nn.Linear(cfg.d_ff, cfg.d_model)) for _ in range(cfg.n_layers))
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        x = self.embed(tokens)
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


def build(cfg: ModelConfig) -> nn.Module:
    return MlpLM(cfg)


def flops_by_hand(cfg: ModelConfig, batch: int, ctx: int) -> int:
    """Forward matmul FLOPs of MlpLM: per layer two d x f matmuls, then the head (2 FLOPs per multiply-add)."""
    n = batch * ctx
    return cfg.n_layers * 2 * (2 * n * cfg.d_model * cfg.d_ff) + 2 * n * cfg.d_model * cfg.vocab_size


def not_a_module(cfg: ModelConfig) -> object:
    return object()


def wrong_shape(cfg: ModelConfig) -> nn.Module:
    """Logits flattened to (B * T, V): the harness's cross-entropy would take them, silently."""
    class Flat(MlpLM):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return super().forward(tokens).flatten(0, 1)

    return Flat(cfg)


NOT_CALLABLE = 42
