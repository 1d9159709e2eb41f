"""The whole step as one CUDA graph: how long the device work takes without the host in the loop.

After the eager steps, the harness builds a second, capture-ready step on the same model (no autocast
weight cache, AdamW with its step count on the device), runs it a few times on a side stream as the
CUDA graph recipe requires, captures forward, backward and optimizer into one graph, and times
`replay()` with CUDA events, one synchronise per replay as for the eager steps. The replay time is the
step's device work; eager minus replay is what the host adds (Python, dispatch, kernel launches,
allocator). A capture that fails (an operation that cannot be captured) is recorded with its reason
and the run goes on.
"""

from __future__ import annotations

from typing import Any

import torch

from lmbench.config import BenchConfig
from lmbench.results.stats import summarize

SIDE_STREAM_WARMUP = 3  # eager iterations on a side stream before capture, as torch's recipe asks


def graph_replays(config: BenchConfig, step: Any, device: torch.device) -> dict[str, Any]:
    """{"samples_ms": [...], "warmup_ms": [...], "stats": {...}} or {"error": reason}."""
    def run_phases() -> None:
        for _, run_phase in step.phases:
            run_phase()

    try:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(SIDE_STREAM_WARMUP):
                step.model.zero_grad(set_to_none=True)
                run_phases()
        torch.cuda.current_stream(device).wait_stream(side)
        step.model.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run_phases()
    except Exception as error:  # capture is all or nothing; say why and keep the eager results
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {"error": f"CUDA graph capture failed: {reason}"}

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def replay() -> float:
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    warmup = [replay() for _ in range(max(config.warmup, 1))]
    samples = [replay() for _ in range(config.steps)]
    del graph
    return {"warmup_ms": warmup, "samples_ms": samples, "stats": summarize(samples).as_dict()}
