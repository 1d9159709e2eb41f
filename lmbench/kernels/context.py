"""The header every kernel report opens with (the nsys and torch.profiler kernel report, the CPU operator report,
the Nsight Compute table): what ran, on what, and how the capture took its steps.

It reads only the run's record, so the three reports share it without depending on each other."""

from __future__ import annotations

from lmbench.analysis.groups import value_text
from lmbench.results.record import Record


def context_lines(record: Record | None, captured: str) -> list[str]:
    """The configuration line and the machine line of `record` (or a line saying there is no record), ending with
    `captured`: how the capture took the measured steps."""
    if not record:
        return ["No lmbench record was found next to this capture, so lmbench's own timings are not shown.",
                "", f"Captured: {captured}."]
    c, env = record.config, record.environment
    return [
        f"{record.label} · {c.mode} · {c.precision}{' (TF32 on)' if c.tf32 else ''} · "
        f"{f'parameters {c.param_dtype} · ' if c.param_dtype != 'fp32' else ''}"
        f"{f'compile {c.compile} · ' if c.compile != 'off' else ''}"
        f"attention {c.attention} · batch {c.batch} · ctx {c.ctx} · annotate {c.annotate}"
        f"{' + emit_nvtx' if c.emit_nvtx else ''}",
        "",
        f"{env.get('device_name')} · torch {env.get('torch')} · " + (
            f"CUDA {env.get('cuda')} · driver {env.get('driver')} · TF32 matmul "
            f"{value_text(bool(record.numerics.get('tf32')))}" if record.on_cuda
            else f"{env.get('cpu_count')} cores, {env.get('torch_threads')} torch threads")
        + f" · commit {env.get('git_commit')} · {c.steps} measured and {c.warmup} warm-up step(s); {captured}.",
    ]
