"""--param-dtype bf16: the parameters, their gradients and AdamW's moments stored in bf16 under bf16 autocast (no
per-step casts of fp32 parameters); measured on the CPU with a tiny model, through the harness and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from helpers import read_lines, run_main, tiny
from lmbench.analysis.groups import capture_name
from lmbench.config import ModelConfig
from lmbench.measure.harness import measure
from lmbench.measure.model_factory import build
from lmbench.results.sizes import tensor_bytes


def test_parameters_are_bf16_and_buffers_keep_their_precision() -> None:
    model = build(tiny(precision="bf16", param_dtype="bf16"), torch.device("cpu"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {b.dtype for b in model.buffers()} == {torch.float32}  # RoPE's cos and sin


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device, optimizer", [
    ("cpu", "adamw-foreach"), pytest.param("cuda", "adamw-foreach", marks=CUDA),
    pytest.param("cuda", "adamw-fused", marks=CUDA)])
def test_a_train_step_keeps_every_tensor_of_the_state_in_bf16(device: str, optimizer: str) -> None:
    """The record reads the parameters' dtype back from the built model; the gradients and AdamW's moments, which
    the memory estimate counts in the same dtype, are bf16 too (read in the optimizer step, before zero_grad)."""
    seen: set[torch.dtype] = set()

    def read_state(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        for group in optimizer.param_groups:
            seen.update(p.grad.dtype for p in group["params"])
        seen.update(t.dtype for state in optimizer.state.values() for n, t in state.items() if n != "step")

    handle = register_optimizer_step_post_hook(read_state)
    try:
        result = measure(tiny(precision="bf16", param_dtype="bf16", mode="train-step", device=device,
                              optimizer=optimizer))
    finally:
        handle.remove()
    assert result.status == "ok" and result.numerics["param_dtypes"] == ["bfloat16"] and seen == {torch.bfloat16}
    assert measure(tiny(precision="bf16", mode="train-step", device=device)).numerics["param_dtypes"] == ["float32"]


def test_the_estimated_state_halves_but_building_does_not() -> None:
    fp32, bf16 = (tensor_bytes(tiny(precision="bf16", mode="train-step", param_dtype=d)) for d in ("fp32", "bf16"))
    for name in ("params", "grads", "optimizer", "residual"):
        assert bf16[name] * 2 == fp32[name] > 0
    assert bf16["unsharded_params"] == fp32["unsharded_params"]  # built in fp32, then cast
    assert bf16["logits"] == fp32["logits"] and bf16["scores"] == fp32["scores"]  # in the autocast dtype either way


class BufferedLM(torch.nn.Module):
    """A model of one's own that adds an fp32 buffer to bf16 parameters' output: it runs only under autocast."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.register_buffer("offset", torch.zeros(cfg.d_model))
        self.steps = torch.nn.Parameter(torch.arange(70_000), requires_grad=False)  # not a float: stays int64
        self.head = torch.nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        return self.head(self.embed(tokens) + self.offset)


def build_buffered(cfg: ModelConfig) -> torch.nn.Module:
    return BufferedLM(cfg)


def test_a_model_of_ones_own_with_fp32_buffers_runs_and_counts_its_flops() -> None:
    config = tiny(precision="bf16", param_dtype="bf16", model="test_param_dtype:build_buffered")
    model = build(config, torch.device("cpu"))
    assert model.steps.dtype == torch.int64 and int(model.steps[-1]) == 69_999 and model.offset.dtype == torch.float32
    result = measure(config)
    assert result.status == "ok" and result.flops["forward"] > 0


def test_a_sweep_over_the_dtype_names_and_compares_both(tmp_path: Path) -> None:
    proc = run_main(["sweep", "--size", "tiny", "--ctx", "16", "--batch", "2", "--vocab-size", "256", "--warmup", "1",
                     "--steps", "3", "--device", "cpu", "--precision", "bf16", "--param-dtype", "fp32,bf16",
                     "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_lines(tmp_path / "run" / "results.jsonl")
    assert [r["config"].get("param_dtype", "fp32") for r in records] == ["fp32", "bf16"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Results: params fp32" in report and "## Results: params bf16" in report
    assert "parameters stored in bf16, fp32" in report
    assert "**param_dtype** — Against params fp32" in report
    assert capture_name(tiny(precision="bf16", param_dtype="bf16")).endswith("-params-bf16")
