"""The kernel behind sdpa attention: --sdpa-backend through torch.nn.attention.sdpa_kernel, and its refusals.

`auto` leaves torch's own choice (on the H200 in bf16 that is cuDNN's fused attention). A named backend is the
only one enabled while the configuration runs, so a combination it cannot serve fails in the first forward:
what is known before building (a backend without a CPU kernel, flash or cuDNN in fp32) is refused then, and the
rest (head sizes, masks, architectures) is torch's "No available kernel" turned into one line.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
CPU_BACKENDS = ("flash", "math")  # the CPU has a flash-style fused kernel and the math fallback, nothing else
HALF_ONLY = ("flash", "cudnn")  # their CUDA kernels take fp16/bf16 inputs only
# What torch raises when no enabled backend can run the call: on CUDA, and on the CPU.
NO_KERNEL = ("No available kernel", "No viable backend for scaled_dot_product_attention")


def check_backend(config: BenchConfig, device: torch.device) -> None:
    """Refuse before building a backend that cannot run this configuration on `device`."""
    backend = config.sdpa_backend
    if backend == "auto":
        return
    if device.type == "cpu" and backend not in CPU_BACKENDS:
        raise LmbenchError(f"--sdpa-backend {backend} has no CPU kernel (the CPU runs {' or '.join(CPU_BACKENDS)})")
    if device.type == "cuda" and backend in HALF_ONLY and config.precision == "fp32":
        raise LmbenchError(f"--sdpa-backend {backend} runs fp16/bf16 inputs on CUDA, not fp32: use --precision bf16 "
                           "(or --sdpa-backend efficient / math for fp32)")


@contextlib.contextmanager
def backend_in_force(config: BenchConfig) -> Iterator[None]:
    """Only the configured backend enabled inside (nothing changed for auto); the previous set is restored."""
    if config.sdpa_backend == "auto":
        yield
        return
    with sdpa_kernel([BACKENDS[config.sdpa_backend]]):
        yield


def no_kernel_error(error: BaseException, config: BenchConfig, device: torch.device) -> LmbenchError | None:
    """The one-line error for torch's failure to find a kernel for the configured backend, None for other errors."""
    if config.sdpa_backend == "auto" or not any(text in str(error) for text in NO_KERNEL):
        return None
    return LmbenchError(f"--sdpa-backend {config.sdpa_backend} has no kernel for {config.label} {config.precision} "
                        f"batch {config.batch} ctx {config.ctx} on {device.type} (torch: "
                        f"{str(error).strip().splitlines()[0]})")
