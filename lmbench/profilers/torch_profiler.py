"""torch.profiler around lmbench's steps: a schedule, TensorBoard traces, and CUDA memory history.

`profiling(options, config, out_dir)` is a context manager that yields a `step(index)` callback for the
harness's `on_step`. With profiling off it yields a function that does nothing, so the harness runs
exactly as under `bench`. With profiling on, torch.profiler is stepped once per iteration on a schedule
that, by default, traces exactly the measured steps: it waits through all but the last warm-up step and
uses that one as the profiler's own warm-up. Finished cycles go through TensorBoard's trace handler into
`out_dir` as gzip Chrome traces (`*.pt.trace.json.gz`), which TensorBoard's PyTorch Profiler plugin lists
under `tensorboard --logdir <parent>` and ui.perfetto.dev opens directly.

`--memory-snapshot` (CUDA) records the allocator's history over the measured steps and dumps it as
`memory_snapshot.pickle` (drag it onto pytorch.org/memory_viz). With `--profile-memory`, the profiler's
memory timeline is also written as `memory_timeline.html`.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Callable, Iterator

import torch

from lmbench.config import BenchConfig, ProfileOptions
from lmbench.errors import LmbenchError

SNAPSHOT_FILE = "memory_snapshot.pickle"
TIMELINE_FILE = "memory_timeline.html"
HISTORY_ENTRIES = 1_000_000
# What Holistic Trace Analysis and TensorBoard read to place a trace in a job: one process, rank 0 of 1. A rank of a
# data-parallel job keeps what torch.profiler writes itself from the process group (backend, rank, world size).
DISTRIBUTED_INFO = json.dumps({"backend": "none", "rank": 0, "world_size": 1})  # allocator events kept; a 2.7B train step records a few tens of thousands


def check_profilable(options: ProfileOptions, device: torch.device, world_size: int = 1) -> None:
    if options.memory_snapshot and device.type != "cuda":
        raise LmbenchError(f"--memory-snapshot records the CUDA allocator; this run is on {device.type}")
    if world_size > 1 and (options.memory_snapshot or options.profile_memory):  # their files are named for one process
        raise LmbenchError(f"--memory-snapshot and --profile-memory profile one process; this job runs {world_size} "
                           "ranks")


@contextlib.contextmanager
def profiling(options: ProfileOptions | None, config: BenchConfig, out_dir: Path, device: torch.device,
              worker_name: str | None = None) -> Iterator[Callable[[int, dict], None]]:
    """Yield the harness's `on_step(index, sample)`: a no-op without `options`, else it steps the profiler
    and opens/closes the allocator history around the measured steps. `worker_name` starts the trace files' names
    (torch's default: host and PID); the ranks of a job writing into one directory give theirs (rank0, rank1...)."""
    if options is None:
        yield lambda index, sample: None
        return
    check_profilable(options, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    wait, warmup, active, repeat = options.schedule(config)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    profiler = torch.profiler.profile(
        activities=activities,
        schedule=torch.profiler.schedule(wait=wait, warmup=warmup, active=active, repeat=repeat),
        on_trace_ready=torch.profiler.tensorboard_trace_handler(str(out_dir), worker_name, use_gzip=True),
        record_shapes=options.record_shapes or options.profile_memory,  # the timeline needs shapes and stacks
        profile_memory=options.profile_memory,
        with_stack=options.with_stack or options.profile_memory,
        with_flops=options.with_flops,
    )
    history = _MemoryHistory(out_dir / SNAPSHOT_FILE, config) if options.memory_snapshot else None
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()

    def on_step(index: int, sample: dict) -> None:
        profiler.step()
        if profiler.current_action != torch.profiler.ProfilerAction.NONE and not distributed:  # being recorded
            profiler.add_metadata_json("distributedInfo", DISTRIBUTED_INFO)
        if history:
            history.after_step(index)

    with profiler:
        if history and config.warmup == 0:
            history.start()
        try:
            yield on_step
        finally:
            if history:
                history.stop()  # a run cut short (out of memory) must not leave the allocator recording
    if options.profile_memory:
        with warnings.catch_warnings():  # deprecated in favour of snapshots, which --memory-snapshot writes too;
            warnings.simplefilter("ignore", FutureWarning)  # the HTML timeline still needs no viewer
            profiler.export_memory_timeline(str(out_dir / TIMELINE_FILE), device=_indexed(device))


def _indexed(device: torch.device) -> str:
    """'cuda:0' rather than 'cuda': the memory timeline matches events by the full device name."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


class _MemoryHistory:
    """torch.cuda.memory's allocator history, on from the end of the last warm-up step to the end of
    the last measured step, then dumped as a snapshot pickle."""

    def __init__(self, path: Path, config: BenchConfig) -> None:
        self.path, self.first, self.last = path, config.warmup, config.warmup + config.steps - 1

    def start(self) -> None:
        torch.cuda.memory._record_memory_history(max_entries=HISTORY_ENTRIES)

    def stop(self) -> None:
        torch.cuda.memory._record_memory_history(enabled=None)

    def after_step(self, index: int) -> None:
        if index == self.first - 1:
            self.start()
        if index == self.last:
            torch.cuda.memory._dump_snapshot(str(self.path))
            self.stop()
