"""Measure the attention grid (`lmbench attention`): every implementation at every head dimension and sequence
length, one stored record per cell (results/attention.py), so an interrupted grid keeps what it measured.

A cell, in this process and in this order (q, k, v ~ N(0, 1) of shape (batch, heads, T, hd), requiring grad):
1. the first call: one forward and backward, untimed by the passes; its wall time is stored (for naive-compiled it is
   the compile). An SDPA backend that torch refuses here is stored as "unsupported" with torch's reason;
2. `warmup` untimed forward + backward passes;
3. the memory pass: one forward, then the memory in use is read (before the backward), then its backward;
4. `passes` timed forward passes, each output dropped at once (so its graph is freed before the next);
5. `passes` timed backward passes, each after an untimed forward: torch.autograd.grad of a fixed output gradient
   (no .grad accumulation), timed from after the forward was issued to the end of the backward.
Each pass is timed by measure/timers.py's phase timer, as a bench step is: CUDA events with one synchronize per
pass on the GPU, perf_counter on the CPU. fp32 matmuls run in full IEEE precision (no TF32).

Running out of memory in any phase stores an OOM record naming the phase; what the cell allocated is released and
the grid goes on. On the CPU, where memory beyond RAM is paged or killed rather than refused, a cell of an
implementation that materialises scores (MATERIALISED) is refused before it runs when three (B, h, T, T) score
tensors, the fewest its backward holds, exceed the machine's memory (measure/environment.physical_memory).
"""

from __future__ import annotations

import gc
import re
import time
import warnings
from typing import Any, Callable

import torch

from lmbench.config import size_text
from lmbench.measure.attention_impls import MATERIALISED, build, mask_for
from lmbench.measure.attention_options import AttentionOptions
from lmbench.measure.model_factory import TORCH_DTYPES
from lmbench.measure.environment import capture, numerics, physical_memory, utc_now
from lmbench.measure.harness import OOM_ERRORS, first_sentences, matmul_precision, oom_message
from lmbench.measure.timers import make_timer
from lmbench.results.attention import COMPILED, NAIVE, AttentionRecord, AttentionStore, measurement_key, new_record

REASON_CHARS = 300  # of an unsupported backend's reason
MB = 2**20


def measure_grid(options: AttentionOptions, device: torch.device, store: AttentionStore, resume: bool,
                 on_line: Callable[[str], None]) -> None:
    """Every cell of the grid, sequence lengths ascending within each head dimension and every implementation at one
    (head dim, length) before the next; each record stored as it is measured. With `resume`, stored cells are
    skipped."""
    done = store.done_keys() if resume else set()
    with matmul_precision(False):
        environment = {**capture(device), "numerics": numerics(device, None)}
        for head_dim in options.head_dims():
            for seq_len in options.seq_lens():
                for impl in options.impls():
                    fields = cell_fields(options, impl, head_dim, seq_len, device)
                    what = f"{impl} hd {head_dim} T {seq_len}"
                    if measurement_key(fields) in done:
                        on_line(f"{what}: stored already, skipped (--resume)")
                        continue
                    record = measure_cell(fields, device, environment)
                    store.append(record)
                    on_line(f"{what}: {outcome(record)}")


def cell_fields(options: AttentionOptions, impl: str, head_dim: int, seq_len: int,
                device: torch.device) -> dict[str, Any]:
    return {"impl": impl, "head_dim": head_dim, "seq_len": seq_len, "batch": options.batch, "heads": options.heads,
            "precision": options.precision, "causal": options.causal, "device_type": device.type,
            "passes": options.passes, "warmup": options.warmup,
            "compile_backend": options.compile_backend if impl == COMPILED else None, "timestamp": utc_now()}


def outcome(record: AttentionRecord) -> str:
    if record.status == "oom":
        return f"out of memory in {record.oom_phase} ({record.oom_message})"
    if record.status == "unsupported":
        return f"unsupported ({record.unsupported_reason})"
    return (f"forward {record.forward.mean:.4g} ms, backward {record.backward.mean:.4g} ms, "
            f"{record.memory_mb:.4g} MB before backward")


def measure_cell(fields: dict[str, Any], device: torch.device, environment: dict[str, Any]) -> AttentionRecord:
    """Run one cell (module docstring) and return its record: ok, oom or unsupported."""
    refused = _refused_on_cpu(fields, device)
    if refused:
        return new_record(fields, environment, oom={"message": refused, "phase": "before running"})
    progress: dict[str, Any] = {"phase": "inputs"}
    try:
        record = new_record(fields, environment, **_run_cell(fields, device, progress))
    except (*OOM_ERRORS, RuntimeError) as error:
        oom = oom_message(error)
        if oom is not None:
            progress["oom"] = True
            record = new_record(fields, environment, oom={"message": oom, "phase": progress["phase"]})
        elif progress["phase"] == "first call" and fields["impl"].startswith("sdpa-"):
            record = new_record(fields, environment, unsupported=_reason(progress.get("warnings", []), str(error)))
        else:
            raise
    if progress.get("oom"):
        # Leaving the except clause dropped the traceback, whose frames held the cell's tensors, maybe in cycles:
        # collect them before the next cell. Only here: a collection costs a few hundred ms with dynamo loaded, and
        # a cell that ran (or was refused at its first call, with little allocated) frees its tensors as it returns.
        gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return record


def _run_cell(fields: dict[str, Any], device: torch.device, progress: dict[str, Any]) -> dict[str, Any]:
    impl, causal = fields["impl"], fields["causal"]
    shape = (fields["batch"], fields["heads"], fields["seq_len"], fields["head_dim"])
    q, k, v = (torch.randn(shape, dtype=TORCH_DTYPES[fields["precision"]], device=device, requires_grad=True)
               for _ in range(3))
    grad_out = torch.randn_like(q)
    mask = mask_for(fields["seq_len"], causal, device) if impl in (NAIVE, COMPILED) else None
    inputs = [t for t in (q, k, v, grad_out, mask) if t is not None]
    attention, context = build(impl, mask, causal, fields["compile_backend"])

    def forward() -> torch.Tensor:
        return attention(q, k, v)

    def backward(out: torch.Tensor) -> None:
        torch.autograd.grad(out, (q, k, v), grad_out)

    with context:
        enter(progress, "first call")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:  # torch says why a backend cannot run as warnings
            warnings.simplefilter("always")
            progress["warnings"] = caught
            backward(forward())
            _synchronize(device)
        first_call_s = time.perf_counter() - start
        enter(progress, "warmup")
        for _ in range(fields["warmup"]):
            backward(forward())
        enter(progress, "memory")
        memory = _memory_pass(forward, backward, inputs, device)
        enter(progress, "forward")
        timer, forward_ms = make_timer(device), []
        for _ in range(fields["passes"]):
            timer.start()
            forward()  # the output, and with it the graph, is dropped at once
            timer.mark("forward")
            forward_ms.append(timer.finish()[0]["forward"])
        enter(progress, "backward")
        backward_ms = []
        for _ in range(fields["passes"]):
            out = forward()
            timer.start()
            backward(out)
            timer.mark("backward")
            backward_ms.append(timer.finish()[0]["backward"])
            del out
    return {"forward_ms": forward_ms, "backward_ms": backward_ms, "memory": memory, "first_call_s": first_call_s}


def _memory_pass(forward: Callable[[], torch.Tensor], backward: Callable[[torch.Tensor], None],
                 inputs: list[torch.Tensor], device: torch.device) -> dict[str, Any]:
    """One forward and backward: memory in use before the backward, the inputs' share of it and (CUDA) the peak, MB
    (results/attention.py says how each is read). On CUDA the inputs' bytes plus what the forward and the backward
    allocate beyond what was held before them, so the workspaces cuBLAS and others keep across cells stay out."""
    storages: dict[int, int] = {}

    def count(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    for tensor in inputs:
        count(tensor)
    inputs_bytes = sum(storages.values())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        held = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = forward()
        torch.cuda.synchronize(device)
        before = inputs_bytes + torch.cuda.memory_allocated(device) - held
        backward(out)
        torch.cuda.synchronize(device)
        peak = inputs_bytes + torch.cuda.max_memory_allocated(device) - held
        return {"before_backward_mb": before / MB, "inputs_mb": inputs_bytes / MB, "peak_mb": peak / MB,
                "method": "cuda_allocated"}
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        out = forward()
    count(out)
    before = sum(storages.values())
    backward(out)
    return {"before_backward_mb": before / MB, "inputs_mb": inputs_bytes / MB, "peak_mb": None, "method": "tensor_bytes"}


def enter(progress: dict[str, Any], phase: str) -> None:
    """Note the phase the cell is in: an OOM record names it."""
    progress["phase"] = phase


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _refused_on_cpu(fields: dict[str, Any], device: torch.device) -> str | None:
    """Why a CPU cell cannot fit (module docstring), or None."""
    if device.type != "cpu" or fields["impl"] not in MATERIALISED:
        return None
    scores = fields["batch"] * fields["heads"] * fields["seq_len"] ** 2 * TORCH_DTYPES[fields["precision"]].itemsize
    capacity = physical_memory()
    if capacity is None or 3 * scores <= capacity:
        return None
    return (f"refused before running: three (B, h, T, T) score tensors need {size_text(3 * scores)}, more than the "
            f"cpu has ({size_text(capacity)})")


# The suffix torch's C++ warnings carry, and the lines that only say which backends sdpa_kernel switched off: on
# the H200 they came first and filled the stored reason before the one line that says why (the dtype).
_TRIGGERED = re.compile(r"\s*\(Triggered internally at [^)]*\)\.?")
_NOT_REASONS = ("because:", "has been runtime disabled.")


def _reason(caught: list[warnings.WarningMessage], message: str) -> str:
    """torch's reason a backend cannot run: its warnings (without the headers 'X not used because:', the notes that
    a backend was switched off and the C++ source locations), else the error's first sentences; at most
    REASON_CHARS characters."""
    reasons = [_TRIGGERED.sub("", str(w.message)).strip() for w in caught]
    reasons = list(dict.fromkeys(r for r in reasons if r and not r.endswith(_NOT_REASONS)))
    text = " ".join(" ".join(reasons).split()) if reasons else first_sentences(message)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"

