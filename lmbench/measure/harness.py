"""The timing harness: build the model, run warm-up and measured steps phase by phase, catch OOM.

A step is a list of named phases (forward, backward, optimizer); the phase timer marks the end of
each, so every step yields per-phase times, the step's wall-clock time and per-phase memory peaks.
Warm-up samples are kept and labelled. An out-of-memory error is recorded with the phase it hit,
and everything the failed configuration allocated is released before returning.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import torch
import torch.nn.functional as F

from lmbench.errors import LmbenchError
from lmbench.measure.ranges import annotate, annotations, capture_range
from lmbench.config import COMPILE_RANGE, GRAPH_RANGE, MEMORY_RANGE, PHASES, STEP_RANGES, BenchConfig, indexed_range
from lmbench.measure.compile import CompileWatch, compile_model, release
from lmbench.measure.cuda_graph import graph_replays
from lmbench.measure.environment import check_runnable, external_profiler, numerics
from lmbench.measure.model_factory import TORCH_DTYPES, autocast, build, count_flops
from lmbench.measure.sampling import Sampling
from lmbench.measure.sdpa import backend_in_force, no_kernel_error
from lmbench.measure.telemetry import Sampler
from lmbench.measure.timers import make_timer

AUTOCAST_DTYPES = {name: dtype for name, dtype in TORCH_DTYPES.items() if name != "fp32"}
OOM_ERRORS = (torch.OutOfMemoryError, MemoryError)
CPU_OOM = "DefaultCPUAllocator: can't allocate memory"  # torch's CPU allocator fails with a plain RuntimeError
# AdamW's implementation per --optimizer, asked for explicitly: left to itself torch picks foreach on CUDA only.
OPTIMIZER_FLAGS = {"adamw": {"foreach": False, "fused": False}, "adamw-foreach": {"foreach": True, "fused": False},
                   "adamw-fused": {"foreach": False, "fused": True}}


@dataclass
class Measurement:
    """What one configuration produced: raw samples, memory peaks, and how it ended."""

    device: torch.device
    params: int | None = None
    flops: dict[str, int] | None = None  # per phase, counted for a --model of your own (model_factory.py)
    build_s: float | None = None
    samples: list[dict] = field(default_factory=list)  # one per step, warm-up ones labelled
    memory: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> peaks, from an untimed step
    telemetry: dict = field(default_factory=dict)  # host/GPU samples over the measured steps (telemetry.py)
    graph: dict = field(default_factory=dict)  # CUDA graph replays of the whole step (cuda_graph.py), if asked
    numerics: dict = field(default_factory=dict)  # the numeric modes read back while the steps ran
    compile: dict = field(default_factory=dict)  # torch.compile's first step and recompilations (compile.py), if on
    profiler: str | None = None  # the profiler the steps ran under (torch.profiler, nsys, ncu), if any
    stopping: dict = field(default_factory=dict)  # how many measured steps, and what ended them (sampling.py)
    status: str = "ok"  # or "oom"
    oom_phase: str | None = None
    oom_message: str | None = None


class ParallelRank(Protocol):
    """One rank of a data-parallel job, as the harness sees it (measure/data_parallel.py): its device, its rank
    (which seeds its inputs) and how the built model is wrapped (DDP, FSDP)."""

    device: torch.device
    rank: int

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module: ...


def oom_message(error: BaseException) -> str | None:
    """The first sentences of an out-of-memory error (CUDA's, or the CPU allocator's plain RuntimeError, from where
    it says so), None when the error is not one."""
    message = str(error)
    if not isinstance(error, OOM_ERRORS) and CPU_OOM not in message:
        return None
    return first_sentences(message[message.find(CPU_OOM):] if CPU_OOM in message else message) or type(error).__name__


@contextlib.contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """fp32 matmuls in full IEEE precision unless TF32 was asked for; the previous mode is restored."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def measure(config: BenchConfig, on_step: Callable[[int, dict], None] | None = None,
            sampling: Sampling = Sampling(), profiler: str | None = None,
            rank: ParallelRank | None = None) -> Measurement:
    """Run one configuration in this process, or as `rank` of a data-parallel job; `sampling` may extend the
    measured steps (--target-ci), and `profiler` names a profiler the caller runs around the steps. Bad input
    raises LmbenchError before anything is built."""
    device = check_runnable(config)
    if config.parallel != "none" and rank is None:
        raise LmbenchError(f"--parallel {config.parallel} runs on the ranks of a torchrun job, which lmbench bench and "
                           "sweep launch; this command measures one process")
    device = rank.device if rank is not None else device
    result = Measurement(device=device, profiler=profiler or external_profiler())
    progress = {"phase": "build"}
    start = time.perf_counter()
    with matmul_precision(config.tf32), backend_in_force(config), annotations(config.annotate, config.emit_nvtx):
        result.numerics = numerics(device, AUTOCAST_DTYPES.get(config.precision))  # in force, not after
        if config.mode == "train-step":
            result.numerics["optimizer"] = {"name": "AdamW", **OPTIMIZER_FLAGS[config.optimizer]}
        try:
            _run_steps(config, result, progress, on_step, sampling, rank)
        except (*OOM_ERRORS, RuntimeError) as error:
            if refused := no_kernel_error(error, config, device):
                raise refused from None
            message = oom_message(error)
            if message is None:
                raise
            if result.build_s is None:  # out of memory while building: how long it took to fail
                result.build_s = time.perf_counter() - start
            result.status, result.oom_phase, result.oom_message = "oom", progress["phase"], message
        finally:
            if config.compile != "off":
                release()
    # Leaving the except clause dropped the traceback, and with it the failed step's tensors.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def first_sentences(message: str, count: int = 2) -> str:
    """'CUDA out of memory. Tried to allocate 216.00 MiB.' without the allocator's long advice."""
    lines = message.strip().splitlines()
    return ". ".join(lines[0].split(". ")[:count]).rstrip(".") + "." if lines else ""


def _run_steps(config: BenchConfig, result: Measurement, progress: dict, on_step: Callable | None,
               sampling: Sampling, rank: ParallelRank | None) -> None:
    device = result.device
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    built = build(config, device)
    build_s = time.perf_counter() - t0
    result.params = sum(p.numel() for p in built.parameters())
    result.numerics["param_dtypes"] = sorted({str(p.dtype).removeprefix("torch.") for p in built.parameters()})
    if config.model is not None:  # once, on the module as built (before wrapping and compiling), not timed
        progress["phase"] = "flop count"
        result.flops = count_flops(config, built, *make_inputs(config, device, rank.rank if rank else 0))
        progress["phase"] = "build"
    t1 = time.perf_counter()
    # DDP's broadcast of the parameters and FSDP's sharding are part of building.
    model = rank.wrap(built) if rank is not None else built
    if config.compile != "off":
        model = compile_model(model, config.compile)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.build_s = build_s + time.perf_counter() - t1
    step = Step(config, model, device, rank=rank.rank if rank is not None else 0)

    def run(index: int, label: str) -> float:
        times, wall_ms, _ = step.run(progress, label=label)
        sample = {"step": index, "warmup": index < config.warmup, **{f"{k}_ms": v for k, v in times.items()},
                  "step_ms": wall_ms}
        result.samples.append(sample)
        if on_step:
            on_step(index, sample)
        return sum(times.values())

    watch = CompileWatch(config.compile) if config.compile != "off" else None
    if watch:  # compiling happens in the first call: one untimed step, kept out of the samples
        result.compile = watch.result
        watch.first_step(lambda: step.run(progress, label=COMPILE_RANGE))
    for index in range(config.warmup):
        run(index, indexed_range(STEP_RANGES[0], index))
    if watch:
        watch.mark("warmup")
    totals: list[float] = []
    with capture_range(device), Sampler(device) as sampler:  # a profiler waiting on cudaProfilerStart
        ended_by = None                                        # records the measured steps only
        while ended_by is None:
            totals.append(run(config.warmup + len(totals), indexed_range(STEP_RANGES[1], len(totals))))
            ended_by = sampling.ended_by(totals, time.perf_counter() - t0, minimum=config.steps)
    if watch:
        watch.mark("measured")
    result.telemetry = sampler.result()
    result.stopping = sampling.describe(totals, ended_by, unit="step")
    # Per-phase memory peaks from one more step in the same steady state, kept out of the samples.
    result.memory = step.run(progress, memory=True, label=MEMORY_RANGE)[2]
    if config.cuda_graph:
        progress["phase"] = "cuda graph"
        result.graph = graph_replays(config, Step(config, model, device, graphable=True), device)


def make_inputs(config: BenchConfig, device: torch.device, rank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random (tokens, targets), each (batch, ctx); each rank of a data-parallel job draws its own."""
    generator = torch.Generator(device=device).manual_seed((config.seed + rank) % 2**64)
    shape = (config.batch, config.ctx)
    tokens = torch.randint(0, config.vocab_size, shape, device=device, generator=generator)
    targets = torch.randint(0, config.vocab_size, shape, device=device, generator=generator)
    return tokens, targets


class Step:
    """One timed step of a configuration over a given model: its phases run in order, each marked."""

    def __init__(self, config: BenchConfig, model: torch.nn.Module, device: torch.device, graphable: bool = False,
                 rank: int = 0) -> None:
        self.model = model
        self.tokens, self.targets = make_inputs(config, device, rank)
        self.phases = _phases(config, model, self.tokens, self.targets, device, graphable)
        self.timer = make_timer(device)

    def run(
        self, progress: dict | None = None, memory: bool = False, label: str = GRAPH_RANGE
    ) -> tuple[dict[str, float], float, dict[str, dict[str, float]]]:
        """(phase -> ms, step wall-clock ms, phase -> memory peaks if `memory`); `progress["phase"]` names
        the phase in flight, so an out-of-memory error can be attributed. `label` names the step's range."""
        self.model.zero_grad(set_to_none=True)  # forward-backward: fresh gradients each step, outside the timing
        with annotate(label):
            self.timer.start(memory)
            for name, run_phase in self.phases:
                if progress is not None:
                    progress["phase"] = name
                with annotate(name):
                    run_phase()
                self.timer.mark(name)
            return self.timer.finish()


def _phases(
    config: BenchConfig, model: torch.nn.Module, tokens: torch.Tensor, targets: torch.Tensor, device: torch.device,
    graphable: bool = False,
) -> list[tuple[str, Callable[[], None]]]:
    """The named phases of one step for the configured mode; they share the loss through `state`.
    `graphable` builds them for CUDA graph capture: no autocast weight cache (a graph must not keep
    casts made outside it) and an AdamW whose step count lives on the device."""
    state: dict[str, torch.Tensor] = {}

    def forward() -> None:
        grad_mode = torch.inference_mode() if config.mode == "forward" else contextlib.nullcontext()
        with grad_mode, autocast(config, device.type, cache_enabled=not graphable):
            logits = model(tokens)  # (B, T, V)
            state["loss"] = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    if config.mode == "forward":
        return list(zip(PHASES, [forward]))

    # fp16 needs loss scaling to train; scaling is part of what an fp16 step costs.
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None

    def backward() -> None:
        loss = state.pop("loss")
        (scaler.scale(loss) if scaler else loss).backward()

    if config.mode == "forward-backward":
        return list(zip(PHASES, [forward, backward]))

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, capturable=graphable,
                                  **OPTIMIZER_FLAGS[config.optimizer])

    def optimizer_step() -> None:
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return list(zip(PHASES, [forward, backward, optimizer_step], strict=True))
