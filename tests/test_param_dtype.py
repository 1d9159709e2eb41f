"""--param-dtype bf16: the parameters, their gradients and AdamW's moments stored in bf16 under bf16 autocast (no
per-step casts of fp32 parameters); measured on the CPU with a tiny model, through the harness and the CLI."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers import read_lines, run_main, tiny
from lmbench.analysis.groups import capture_name
from lmbench.measure.harness import measure
from lmbench.measure.model_factory import build
from lmbench.results.sizes import tensor_bytes


def test_parameters_are_bf16_and_buffers_keep_their_precision() -> None:
    model = build(tiny(precision="bf16", param_dtype="bf16"), torch.device("cpu"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {b.dtype for b in model.buffers()} == {torch.float32}  # RoPE's cos and sin


def test_a_train_step_keeps_every_tensor_of_the_state_in_bf16() -> None:
    """The record reads the parameters' dtype back from the built model; AdamW's moments follow the parameters."""
    config = tiny(precision="bf16", param_dtype="bf16", mode="train-step")
    result = measure(config)
    assert result.status == "ok" and result.numerics["param_dtypes"] == ["bfloat16"]
    assert measure(tiny(precision="bf16", mode="train-step")).numerics["param_dtypes"] == ["float32"]


def test_the_estimated_state_halves() -> None:
    fp32, bf16 = (tensor_bytes(tiny(precision="bf16", mode="train-step", param_dtype=d)) for d in ("fp32", "bf16"))
    for name in ("params", "grads", "optimizer", "residual", "unsharded_params"):
        assert bf16[name] * 2 == fp32[name] > 0
    assert bf16["logits"] == fp32["logits"] and bf16["scores"] == fp32["scores"]  # in the autocast dtype either way


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
