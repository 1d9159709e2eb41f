"""The Transformer LM: shapes, causality, naive vs fused attention, RMSNorm numerics, named sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lmbench.config import SIZES, BenchConfig, ModelConfig
from lmbench.errors import LmbenchError
from lmbench.model import RMSNorm, build_model

VOCAB = 128


def tiny_model(attention: str = "sdpa", seed: int = 0, ctx: int = 32):
    cfg = BenchConfig(size="tiny", ctx=ctx, vocab_size=VOCAB, attention=attention).model_config()
    torch.manual_seed(seed)
    return build_model(cfg, "cpu").eval()


def test_output_shape_is_batch_time_vocab():
    model = tiny_model()
    tokens = torch.randint(0, VOCAB, (3, 20))
    with torch.no_grad():
        logits = model(tokens)
    assert logits.shape == (3, 20, VOCAB)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("attention", ["naive", "sdpa"])
def test_changing_a_future_token_leaves_earlier_logits_alone(attention):
    model = tiny_model(attention)
    tokens = torch.randint(0, VOCAB, (2, 24))
    changed = tokens.clone()
    changed[:, 15] = (changed[:, 15] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    torch.testing.assert_close(after[:, :15], before[:, :15], rtol=0, atol=1e-6)
    # the change is visible from its own position on (so the check above is not vacuous)
    assert not torch.allclose(after[:, 15:], before[:, 15:], atol=1e-4)


def test_naive_and_sdpa_attention_give_the_same_logits():
    naive, fused = tiny_model("naive", seed=3), tiny_model("sdpa", seed=3)
    for (name_a, a), (name_b, b) in zip(naive.named_parameters(), fused.named_parameters()):
        assert name_a == name_b and torch.equal(a, b)  # same seed, same weights
    tokens = torch.randint(0, VOCAB, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(naive(tokens), fused(tokens), rtol=1e-4, atol=1e-5)


def test_different_seeds_give_different_weights():
    a, b = tiny_model(seed=0), tiny_model(seed=1)
    assert not torch.equal(a.lm_head.weight, b.lm_head.weight)


def test_rmsnorm_computes_in_fp32_and_returns_input_dtype():
    norm = RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(4, 8).mul(3).to(torch.bfloat16)
    y = norm(x)
    assert y.dtype == torch.bfloat16
    x32 = x.float()
    expected = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight).to(torch.bfloat16)
    assert torch.equal(y, expected)


def test_rmsnorm_in_fp16_does_not_overflow():
    # 300^2 = 90000 overflows fp16 (max 65504): computing the mean square in fp16 would give inf and zeros.
    norm = RMSNorm(4, eps=1e-5)
    x = torch.full((2, 4), 300.0, dtype=torch.float16)
    assert torch.isinf(x.pow(2)).all()
    y = norm(x)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y, torch.ones(2, 4, dtype=torch.float16))


def test_rmsnorm_fp32_values():
    norm = RMSNorm(2, eps=0.0)
    # x = [3, 4]: mean square (9 + 16) / 2 = 12.5; rms = 3.535534; y = [0.848528, 1.131371]
    y = norm(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(y, torch.tensor([[0.848528, 1.131371]]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("size", "dims"),
    [
        ("tiny", (64, 256, 2, 4)),
        ("small", (768, 3072, 12, 12)),
        ("medium", (1024, 4096, 24, 16)),
        ("large", (1280, 5120, 36, 20)),
        ("xl", (1600, 6400, 48, 25)),
        ("2.7B", (2560, 10240, 32, 32)),
        ("10B", (4608, 12288, 50, 36)),
    ],
)
def test_named_sizes_have_documented_dimensions(size, dims):
    assert SIZES[size] == dims
    cfg = BenchConfig(size=size).model_config()
    assert (cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.n_heads) == dims
    assert cfg.head_dim == dims[0] // dims[3]
    assert BenchConfig(size=size).label == size


def test_sizes_table_has_exactly_the_named_sizes():
    assert list(SIZES) == ["tiny", "small", "medium", "large", "xl", "2.7B", "10B"]


def test_every_dimension_can_be_overridden():
    config = BenchConfig(size="xl", d_model=96, d_ff=200, n_layers=3, n_heads=6, vocab_size=777, ctx=48,
                         attention="naive")
    cfg = config.model_config()
    assert (cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.n_heads) == (96, 200, 3, 6)
    assert (cfg.vocab_size, cfg.context_length, cfg.attention, cfg.head_dim) == (777, 48, "naive", 16)
    assert config.label == "xl(d_model=96,d_ff=200,n_layers=3,n_heads=6)"
    # the overridden model is what gets built
    model = build_model(cfg, "cpu")
    assert model.embed.weight.shape == (777, 96)
    assert len(model.blocks) == 3
    assert model.blocks[0].ffn.w1.weight.shape == (200, 96)
    assert model.blocks[0].attn.n_heads == 6


def test_single_override_keeps_other_dimensions():
    cfg = BenchConfig(size="medium", n_layers=2).model_config()
    assert (cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.n_heads) == (1024, 4096, 2, 16)


def test_config_key_is_stable_and_distinguishes_configs():
    a, b = BenchConfig(size="tiny", ctx=16), BenchConfig(size="tiny", ctx=16)
    assert a.key() == b.key() and len(a.key()) == 16
    assert a.key() != dataclasses.replace(a, ctx=32).key()
    assert a.key() != dataclasses.replace(a, steps=11).key()
    assert BenchConfig.from_dict({**dataclasses.asdict(a), "extra": 1}) == a


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        (dict(d_model=66, d_ff=8, n_layers=1, n_heads=4), "not divisible"),
        (dict(d_model=36, d_ff=8, n_layers=1, n_heads=4), "head dimension 9"),
        (dict(d_model=0, d_ff=8, n_layers=1, n_heads=4), "d_model"),
        (dict(d_model=64, d_ff=8, n_layers=-1, n_heads=4), "n_layers"),
        (dict(d_model=64, d_ff=8, n_layers=1, n_heads=4, attention="flash"), "attention"),
    ],
)
def test_model_config_validates(dims, message):
    with pytest.raises(LmbenchError, match=message):
        ModelConfig(**dims)
