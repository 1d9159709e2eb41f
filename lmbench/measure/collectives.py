"""The `lmbench collectives` worker: every rank of the torchrun job runs this module (studies/collectives.py
launches it through measure/launch.py), times each collective at each size and rank 0 stores the records.

    python -m torch.distributed.run ... -m lmbench.measure.collectives --options JSON --backend gloo \
        --timeout 300 --run-dir RUN_DIR [--resume]

Per collective, per size (sizes and bandwidths as nccl-tests defines them, results/collectives.py): the buffers
are allocated (zeros: no denormal or NaN arithmetic slows a reduction), `warmup` untimed iterations run, the
ranks meet at a barrier, then `steps` timed iterations run back to back. On CUDA an event is recorded before the
first and after every iteration and read after one synchronize at the end (no host sync between iterations);
on the CPU `perf_counter` marks the same points (gloo's collectives return when done). Every rank's step times
go to rank 0, which appends the record at once, so an interrupted job keeps what it measured.

Buffers that do not fit are an OOM record and the sweep goes on: on CUDA when an allocation raises, on the CPU
when the node's buffers would exceed MemAvailable (host memory overcommits, and the kernel's OOM killer would end
the rank instead of raising). The ranks agree on it before any collective runs, so none waits for a rank that
skipped. Only the allocations are guarded: running out of memory inside the collective fails the job.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from lmbench.config import size_text
from lmbench.measure.collectives_options import CollectivesOptions
from lmbench.measure.distributed import Rank, distributed_environment, process_group, say, worker_main
from lmbench.measure.environment import capture, utc_now
from lmbench.measure.model_factory import TORCH_DTYPES
from lmbench.results.collectives import CollectivesStore, element_count, measurement_key, new_record

# torch 2.13 renamed the two tensor collectives (the old names still work, with a FutureWarning per call);
# older torch has only the old names.
ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


def collective(op: str, count: int, dtype: torch.dtype, device: torch.device, world_size: int) -> Callable[[], None]:
    """Allocate the buffers of `op` with `count` elements in the larger one; return one call of the collective."""
    def zeros(n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=dtype, device=device)

    if op == "all_reduce":
        buffer = zeros(count)
        return lambda: dist.all_reduce(buffer)
    if op == "broadcast":
        buffer = zeros(count)
        return lambda: dist.broadcast(buffer, src=0)
    if op == "all_gather_into_tensor":
        gathered, shard = zeros(count), zeros(count // world_size)
        return lambda: ALL_GATHER(gathered, shard)
    if op == "reduce_scatter_tensor":
        full, shard = zeros(count), zeros(count // world_size)
        return lambda: REDUCE_SCATTER(shard, full)
    if op == "all_to_all_single":
        sent, received = zeros(count), zeros(count)
        return lambda: dist.all_to_all_single(received, sent)
    raise ValueError(f"unknown collective {op!r}")


def buffer_bytes(op: str, size: int, world_size: int) -> int:
    """Bytes one rank allocates for `op` with a larger buffer of `size` bytes."""
    if op in ("all_reduce", "broadcast"):
        return size
    if op == "all_to_all_single":
        return 2 * size
    return size + size // world_size


def time_steps(run: Callable[[], None], warmup: int, steps: int, device: torch.device) -> list[float]:
    """ms of each of `steps` back-to-back calls after `warmup` untimed ones, all ranks starting together."""
    for _ in range(warmup):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        dist.barrier()
        events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
        events[0].record()
        for event in events[1:]:
            run()
            event.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in zip(events, events[1:])]
    dist.barrier()
    marks = [time.perf_counter()]
    for _ in range(steps):
        run()
        marks.append(time.perf_counter())
    return [(end - start) * 1e3 for start, end in zip(marks, marks[1:])]


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _agreed(rank: Rank, problem: str | None) -> str | None:
    """The first rank's problem, known to every rank (a collective: every rank calls it)."""
    problems: list[str | None] = [None] * rank.world_size
    dist.all_gather_object(problems, problem)
    return next((p for p in problems if p), None)


def measure_one(op: str, count: int, options: CollectivesOptions, rank: Rank,
                device: torch.device) -> tuple[list[list[float]] | None, str | None]:
    """(every rank's step times, or None on rank 0's side for the others), or (None, why the buffers do not fit)."""
    dtype = TORCH_DTYPES[options.dtype]
    size = count * dtype.itemsize
    problem = None
    if device.type == "cpu":
        need, available = buffer_bytes(op, size, rank.world_size) * rank.local_world_size, _mem_available()
        if available is not None and need > available:
            problem = f"its buffers need {size_text(need)} of host memory on this node, {size_text(available)} is available"
    problem = _agreed(rank, problem)
    run = None
    if problem is None:
        try:
            run = collective(op, count, dtype, device, rank.world_size)
        except torch.OutOfMemoryError as e:
            problem = f"rank {rank.rank}: {str(e).splitlines()[0]}"
        problem = _agreed(rank, problem)
    if problem is not None:
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return None, problem
    steps = time_steps(run, options.warmup, options.steps, device)
    gathered: list[list[float]] | None = [[] for _ in range(rank.world_size)] if rank.leader else None
    dist.gather_object(steps, gathered, dst=0)
    del run
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return gathered, None


def measure(options: CollectivesOptions, backend: str, timeout_s: float, run_dir: Path, resume: bool) -> None:
    """Every collective at every size, in the order nccl-tests runs them (one collective's sizes, then the next);
    rank 0 stores each record as it is measured."""
    with process_group(backend, options.device, timeout_s) as (rank, device):
        store = CollectivesStore(run_dir)
        environment = distributed_environment(rank, backend)
        if rank.leader:
            environment = {**capture(device), **environment}
        done = [store.done_keys() if rank.leader and resume else set()]
        dist.broadcast_object_list(done, src=0)
        element_size = TORCH_DTYPES[options.dtype].itemsize
        for op in options.op_list():
            for requested in options.size_list(device.type):
                count = element_count(op, requested, element_size, rank.world_size)
                fields = {"op": op, "requested_bytes": requested, "dtype": options.dtype, "device_type": device.type,
                          "backend": backend, "world_size": rank.world_size, "warmup": options.warmup,
                          "steps": options.steps, "bytes": count * element_size, "count": count,
                          "timestamp": utc_now()}
                what = f"{op} {size_text(requested)} {options.dtype}"
                if measurement_key(fields) in done[0]:
                    say(rank, f"{what}: stored already, skipped (--resume)")
                    continue
                samples, oom = measure_one(op, count, options, rank, device)
                if not rank.leader:
                    continue
                record = new_record(fields, samples, environment, oom)
                store.append(record)
                say(rank, f"{what}: out of memory ({oom})" if oom else
                    f"{what}: {record.time_ms:.4g} ms, busbw {record.busbw_gbps:.4g} GB/s, algbw "
                    f"{record.algbw_gbps:.4g} GB/s")


def worker_args(options: CollectivesOptions, backend: str, timeout_s: float, run_dir: Path, resume: bool) -> list[str]:
    """The arguments of this module that measure `options` (its sizes resolved) into `run_dir`."""
    return ["--options", json.dumps(dataclasses.asdict(options)), "--backend", backend, "--timeout", str(timeout_s),
            "--run-dir", str(run_dir), *(("--resume",) if resume else ())]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lmbench.measure.collectives",
                                     description="one rank of `lmbench collectives` (started by torchrun)")
    parser.add_argument("--options", required=True, help="CollectivesOptions as JSON")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    worker_main(lambda: measure(CollectivesOptions(**json.loads(args.options)), args.backend, args.timeout,
                                args.run_dir, args.resume))


if __name__ == "__main__":
    main()
