"""Which SDPA backend ran, read from the kernel names of a capture: what --sdpa-backend asked for (or torch
picked, under auto) is only a request, the kernels are what the GPU did.

Names seen on the H200: cuDNN's fused attention is `cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_...`
(reports/h200-profile; it says flash too, so it is matched first) and the memory-efficient kernels are xFormers'
CUTLASS ones, `fmha_cutlassF_f32_aligned_64x64_rf_sm80` forward and `fmha_cutlassB_...` backward (reports/h200-nsys).
FlashAttention-2's, `pytorch_flash::flash_fwd_kernel` / `flash_bwd_...`, are torch's kernel names, not yet seen in
a committed capture. The math backend
has no kernel of its own: it is batched matmuls and a softmax kernel, so a capture of sdpa attention with
softmax kernels and no fused attention kernel ran math.
"""

from __future__ import annotations

import re

import pandas as pd

from lmbench.kernels.frame import categorize, short_name, steps_in
from lmbench.results.record import Record

# First match wins: cuDNN's kernel names also say "flash".
BACKEND_RULES = (("cudnn", r"cudnn.*(sdpa|fmha|flash)"), ("flash", r"flash"),
                 ("efficient", r"fmha_cutlass|efficient_attention|mem_eff"))
_COMPILED = tuple((backend, re.compile(pattern)) for backend, pattern in BACKEND_RULES)
COLUMNS = ["backend", "kernels_per_step", "ms_per_step", "example"]


def backend_of(name: str) -> str | None:
    """The SDPA backend a kernel name belongs to, None for any other kernel."""
    lowered = name.lower()
    return next((backend for backend, pattern in _COMPILED if pattern.search(lowered)), None)


def attention_backends(kernels: pd.DataFrame) -> pd.DataFrame:
    """One row per SDPA backend whose kernels the frame (kernels/frame.py) holds: kernels and ms per measured step and
    the busiest kernel's short name; with no fused attention kernel but softmax kernels, one `math` row for those."""
    steps = steps_in(kernels)
    backend = kernels["name"].map(backend_of)
    if backend.isna().all():
        backend = kernels["name"].map(lambda name: "math" if categorize(name) == "softmax" else None)
    rows = []
    for name, chosen in kernels.assign(backend=backend).dropna(subset=["backend"]).groupby("backend"):
        busiest = chosen.groupby("name")["duration_ns"].sum().idxmax()
        rows.append({"backend": name, "kernels_per_step": len(chosen) / steps,
                     "ms_per_step": chosen["duration_ns"].sum() / steps / 1e6, "example": short_name(busiest)})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("ms_per_step", ascending=False, ignore_index=True)


def backend_lines(backends: pd.DataFrame | None, record: Record | None) -> list[str]:
    """The report's sentence on the backend that ran, against the one asked for; nothing without a backend table."""
    if backends is None:
        return []
    asked = record.config.sdpa_backend if record else "auto"
    if backends.empty:
        return [f"SDPA backend: not identified from the kernel names (asked for: {asked}).", ""]
    ran = [f"{r.backend} ({r.kernels_per_step:g} kernels, {r.ms_per_step:.3f} ms per step; e.g. `{r.example}`)"
           for r in backends.itertuples()]
    line = f"SDPA backend that ran, read from the kernel names: {'; '.join(ran)}. Asked for: {asked}."
    if asked != "auto" and asked not in set(backends["backend"]):
        line += f" The kernels are not {asked}'s."
    return [line, ""]
