"""Analytic FLOPs of the Transformer LM, device peak throughput, and MFU.

Counted: matrix multiplications only, 2*m*n*k FLOPs each (a multiply and an add), which is what
torch.utils.flop_counter.FlopCounterMode counts too. Norms, RoPE, softmax, SiLU and the loss are
elementwise and left out, as is the AdamW step (memory-bound, ~0 matmul FLOPs).

Forward, per layer, with N = B*T tokens:
    QKV projection      2 * N * d * 3d
    scores  Q K^T       2 * B * h * T * T * hd = 2 * N * T * d   (full T x T; the causal half is not skipped)
    values  P V         2 * N * T * d
    output projection   2 * N * d * d
    SwiGLU w1, w3, w2   3 * 2 * N * d * f
plus the LM head        2 * N * d * V
    forward = L * (8 N d^2 + 4 N T d + 6 N d f) + 2 N d V
Backward = 2 x forward: every matmul needs a gradient for its input and one for its weight. These are
"model FLOPs" (as in MFU); fused SDPA's backward also recomputes Q K^T (hardware FLOPs), which
FlopCounterMode adds as `sdpa_recompute_flops`.
"""

from __future__ import annotations

from lmbench.config import ModelConfig

# Dense (no sparsity) peak TFLOP/s from the vendors' datasheets, keyed by a substring of
# torch.cuda.get_device_name(); the first match wins, so specific variants come before their family.
# Columns: bf16/fp16 tensor core, TF32 tensor core, plain fp32.
DEVICE_PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H200 NVL", {"bf16": 835.0, "fp16": 835.0, "tf32": 417.0, "fp32": 60.0}),
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "tf32": 417.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    ("L40", {"bf16": 181.0, "fp16": 181.0, "tf32": 90.5, "fp32": 90.5}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    ("RTX 4090", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]


def param_count(cfg: ModelConfig) -> int:
    """Parameters of TransformerLM: embedding, per-layer attention + SwiGLU + two norms, final norm, head."""
    d, f, V = cfg.d_model, cfg.d_ff, cfg.vocab_size
    per_layer = 4 * d * d + 3 * d * f + 2 * d
    return V * d + cfg.n_layers * per_layer + d + d * V


def forward_flops(cfg: ModelConfig, batch: int, ctx: int) -> int:
    """Matmul FLOPs of one forward pass over (batch, ctx) tokens (formula in the module docstring)."""
    n, d, f = batch * ctx, cfg.d_model, cfg.d_ff
    per_layer = 8 * n * d * d + 4 * n * ctx * d + 6 * n * d * f
    return cfg.n_layers * per_layer + 2 * n * d * cfg.vocab_size


def backward_flops(cfg: ModelConfig, batch: int, ctx: int) -> int:
    return 2 * forward_flops(cfg, batch, ctx)


def sdpa_recompute_flops(cfg: ModelConfig, batch: int, ctx: int) -> int:
    """Extra FLOPs a fused attention backward spends recomputing Q K^T (not model FLOPs)."""
    return cfg.n_layers * 2 * batch * ctx * ctx * cfg.d_model


def phase_flops(cfg: ModelConfig, batch: int, ctx: int, mode: str) -> dict[str, int]:
    """Model FLOPs per phase for a mode; phases the mode does not run are absent."""
    flops = {"forward": forward_flops(cfg, batch, ctx)}
    if mode != "forward":
        flops["backward"] = backward_flops(cfg, batch, ctx)
    if mode == "train-step":
        flops["optimizer"] = 0
    return flops


def peak_tflops(device_name: str, precision: str, tf32: bool) -> float | None:
    """Datasheet peak for this device and number format, or None when the device is not in the table."""
    column = "tf32" if precision == "fp32" and tf32 else precision
    for pattern, peaks in DEVICE_PEAKS:
        if pattern.lower() in device_name.lower():
            return peaks.get(column)
    return None
