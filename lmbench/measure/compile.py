"""torch.compile around the model, and what compiling cost: the first step's time and torch._dynamo's counters.

The harness compiles the built (and wrapped) model, then runs one untimed step (the `compile` range) in which
dynamo traces and the backend compiles forward and backward; its wall-clock time is the compile time, kept
apart from the warm-up and measured steps. Dynamo's counters are read after that step, after the warm-up and
after the measured steps: graphs compiled after the first step are recompilations (a guard failed: a new shape,
a changed global), and one inside the measured steps put compile time into the timings. Graphs, not frames: dynamo
also counts frames it looked at and left to run eagerly (DDP's hooks), which compile nothing. `counters["frames"]` and
`counters["stats"]["unique_graphs"]` are read as torch 2.11 (the GPU machine) and 2.13 (the tests) keep them; a
counter a torch lacks reads 0 (dynamo's counters are defaultdicts). Each configuration ends with
torch._dynamo.reset(), so a sweep's compiles never leak into the next configuration's; inductor's on-disk caches
(FX graphs, autotuning results) outlive it, across processes too, so the first step also counts the graphs inductor
took from its FX graph cache: a first step with cache hits is a warm-cache time, not a cold compile.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

# The backend torch.compile uses; tests swap in "eager" (dynamo's tracing and guards, no compiler) to keep the CPU
# suite fast.
BACKEND = "inductor"
COUNTS = ("frames", "graphs", "graph_breaks", "fx_cache_hits", "fx_cache_misses", "cudagraph_skips")


def compile_model(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """The model under torch.compile with `mode` (config.COMPILE_MODES, not "off"); dynamo starts clean."""
    torch._dynamo.reset()
    return torch.compile(model, backend=BACKEND, mode=mode if BACKEND == "inductor" else None)


def dynamo_counts() -> dict[str, int]:
    """Frames dynamo compiled, graphs it produced, graph breaks, inductor's FX graph cache hits and misses, and the
    graphs inductor left out of CUDA graphs (reduce-overhead and max-autotune replay them; a skip is logged only
    under TORCH_LOGS=perf_hints), since the process started."""
    from torch._dynamo.utils import counters

    return {"frames": counters["frames"]["ok"], "graphs": counters["stats"]["unique_graphs"],
            "graph_breaks": sum(counters["graph_break"].values()),
            "fx_cache_hits": counters["inductor"]["fxgraph_cache_hit"],
            "fx_cache_misses": counters["inductor"]["fxgraph_cache_miss"],
            "cudagraph_skips": counters["inductor"]["cudagraph_skips"]}


class CompileWatch:
    """The record's `compile` entry, filled as the run goes: `first_step(run)` times the compiling step, `mark(kind)`
    reads the counters after the warm-up or measured steps."""

    def __init__(self, mode: str) -> None:
        self.start = dynamo_counts()
        self.result: dict[str, Any] = {"mode": mode, "backend": BACKEND}
        self.last = self.start

    def first_step(self, run: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        run()  # the step synchronises the device before it returns (measure/timers.py)
        self.result["first_step_s"] = time.perf_counter() - t0
        self.last = dynamo_counts()
        self.result.update({k: self.last[k] - self.start[k] for k in COUNTS})

    def mark(self, kind: str) -> None:
        """Graphs compiled since the last mark: `recompiles_<kind>` ('warmup', 'measured')."""
        now = dynamo_counts()
        self.result[f"recompiles_{kind}"] = now["graphs"] - self.last["graphs"]
        self.last = now


def release() -> None:
    """Forget every compiled graph, so the next configuration compiles its own."""
    torch._dynamo.reset()
