"""The analytic FLOP formula against torch's FlopCounterMode, parameter count, and datasheet peaks."""

from __future__ import annotations

import pytest
import torch

from lmbench.results import flops
from lmbench.config import BenchConfig, ModelConfig
from lmbench.measure.model_factory import count_flops, cpu_sdpa_mapping
from lmbench.model import build_model

BATCH, CTX, VOCAB = 2, 32, 512


def model_config(attention: str, **dims) -> ModelConfig:
    return BenchConfig(size="tiny", ctx=CTX, batch=BATCH, vocab_size=VOCAB, attention=attention, **dims).model_config()


def counted_flops(cfg: ModelConfig, device: str) -> tuple[int, int]:
    """(forward, backward) FLOPs that FlopCounterMode counts for one training step's loss and gradients, through
    lmbench's own counter (measure/model_factory.py: it counts a --model of your own the same way)."""
    torch.manual_seed(0)
    config = BenchConfig(size="tiny", ctx=CTX, batch=BATCH, vocab_size=cfg.vocab_size, attention=cfg.attention,
                         d_model=cfg.d_model, d_ff=cfg.d_ff, n_layers=cfg.n_layers, n_heads=cfg.n_heads)
    model = build_model(cfg, device)
    tokens = torch.randint(0, cfg.vocab_size, (BATCH, CTX), device=device)
    counted = count_flops(config, model, tokens, tokens)
    assert all(p.grad is None for p in model.parameters())  # the count leaves no gradients behind
    return counted["forward"], counted["backward"]


def test_naive_attention_flops_match_flop_counter_exactly():
    cfg = model_config("naive")
    forward, backward = counted_flops(cfg, "cpu")
    assert forward == flops.forward_flops(cfg, BATCH, CTX)
    assert backward == flops.backward_flops(cfg, BATCH, CTX)
    assert backward == 2 * forward


def test_naive_flops_match_with_overridden_dimensions():
    cfg = model_config("naive", d_model=48, d_ff=80, n_layers=3, n_heads=3)  # head dim 16
    forward, backward = counted_flops(cfg, "cpu")
    assert forward == flops.forward_flops(cfg, BATCH, CTX)
    assert backward == flops.backward_flops(cfg, BATCH, CTX)


def test_sdpa_flops_match_flop_counter_cpu():
    """The one difference from the formula: a fused SDPA backward recomputes Q K^T, which FlopCounterMode counts
    (hardware FLOPs): 1.2% of the backward here (tiny, ctx 32), 1.8% for small at ctx 512, growing with ctx."""
    assert cpu_sdpa_mapping(), "this torch has no CPU fused SDPA kernel; model_factory's mapping needs updating"
    cfg = model_config("sdpa")
    forward, backward = counted_flops(cfg, "cpu")
    assert forward == flops.forward_flops(cfg, BATCH, CTX)
    assert backward == flops.backward_flops(cfg, BATCH, CTX) + flops.sdpa_recompute_flops(cfg, BATCH, CTX)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (fused SDPA kernels)")
def test_sdpa_flops_match_flop_counter_cuda():
    cfg = model_config("sdpa")
    forward, backward = counted_flops(cfg, "cuda")
    assert forward == flops.forward_flops(cfg, BATCH, CTX)
    assert backward == flops.backward_flops(cfg, BATCH, CTX) + flops.sdpa_recompute_flops(cfg, BATCH, CTX)


def test_forward_flops_formula_by_hand():
    cfg = ModelConfig(d_model=64, d_ff=256, n_layers=2, n_heads=4, vocab_size=1000, context_length=16)
    # N = 2*16 = 32 tokens; per layer 8*N*d^2 + 4*N*T*d + 6*N*d*f
    #   = 8*32*4096 + 4*32*16*64 + 6*32*64*256 = 1_048_576 + 131_072 + 3_145_728 = 4_325_376
    # 2 layers = 8_650_752; LM head 2*N*d*V = 2*32*64*1000 = 4_096_000; total 12_746_752
    assert flops.forward_flops(cfg, 2, 16) == 12_746_752
    assert flops.backward_flops(cfg, 2, 16) == 2 * 12_746_752
    # recompute of Q K^T: L * 2 * B * T^2 * d = 2 * 2 * 2 * 256 * 64 = 131_072
    assert flops.sdpa_recompute_flops(cfg, 2, 16) == 131_072


def test_phase_flops_per_mode():
    cfg = model_config("sdpa")
    fwd, bwd = flops.forward_flops(cfg, BATCH, CTX), flops.backward_flops(cfg, BATCH, CTX)
    assert flops.phase_flops(cfg, BATCH, CTX, "forward") == {"forward": fwd}
    assert flops.phase_flops(cfg, BATCH, CTX, "forward-backward") == {"forward": fwd, "backward": bwd}
    assert flops.phase_flops(cfg, BATCH, CTX, "train-step") == {"forward": fwd, "backward": bwd, "optimizer": 0}


@pytest.mark.parametrize("dims", [{}, {"d_model": 48, "d_ff": 80, "n_layers": 3, "n_heads": 3}])
def test_param_count_equals_model(dims):
    cfg = model_config("sdpa", **dims)
    model = build_model(cfg, "cpu")
    assert flops.param_count(cfg) == model.num_parameters()
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_param_count_of_named_size_by_hand():
    cfg = BenchConfig(size="small").model_config()
    # d 768, f 3072, L 12, V 10000: per layer 4*768^2 + 3*768*3072 + 2*768 = 2_359_296 + 7_077_888 + 1_536
    # = 9_438_720; 12 layers 113_264_640; embedding + head 2*10000*768 = 15_360_000; final norm 768
    assert flops.param_count(cfg) == 113_264_640 + 15_360_000 + 768


@pytest.mark.parametrize(
    ("device", "precision", "tf32", "expected"),
    [
        ("NVIDIA H200", "bf16", False, 989.4),
        ("NVIDIA H200", "fp16", False, 989.4),
        ("NVIDIA H200", "fp32", False, 66.9),
        ("NVIDIA H200", "fp32", True, 494.7),  # fp32 with TF32 reads the TF32 column
        ("NVIDIA H200 NVL", "bf16", False, 835.0),
        ("NVIDIA H100 80GB HBM3", "bf16", False, 989.4),
        ("NVIDIA H100 PCIe", "bf16", False, 756.0),  # not the SXM 989.4
        ("NVIDIA H100 NVL", "bf16", False, 835.0),
        ("NVIDIA A100-SXM4-80GB", "bf16", False, 312.0),
        ("NVIDIA A100-SXM4-80GB", "fp32", True, 156.0),
        ("NVIDIA A10G", "bf16", False, 125.0),  # an A10 variant, not an A100
        ("NVIDIA A10G", "fp32", False, 31.2),
        ("NVIDIA L40S", "bf16", False, 362.0),
        ("NVIDIA L4", "bf16", False, 121.0),
        ("nvidia h200", "bf16", False, 989.4),  # case-insensitive
        ("Tesla V100-SXM2-16GB", "bf16", False, None),  # V100 has no bf16 column
        ("Some Unknown Accelerator", "bf16", False, None),
        ("AMD EPYC", "fp32", False, None),
    ],
)
def test_peak_tflops(device, precision, tf32, expected):
    assert flops.peak_tflops(device, precision, tf32) == expected
