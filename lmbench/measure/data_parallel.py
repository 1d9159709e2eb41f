"""Data-parallel steps (DDP or FSDP2) on the ranks of a torchrun job, and the lmbench process that launches them.

The lmbench process (`bench`, `sweep`): `plan_jobs` resolves each configuration for its ranks (a global batch
divided into the per-rank batch) and refuses, as one line and before anything starts, what the job cannot run
(measure/distributed.py's check_launch: ranks per GPU, the backend for the device). `run_data_parallel` launches
torchrun on this module (measure/launch.py), one job per configuration (or per repeat, with --repeats:
measure/processes.py's run_repeats), so each starts with fresh processes and memory, and returns the record
rank 0 stored.

Each rank (`python -m lmbench.measure.data_parallel --config JSON --backend B --timeout S --run-dir DIR`) joins
the process group, builds the model, wraps it (DistributedDataParallel with --bucket-cap-mb; or FSDP2
`fully_shard` on every block and then the whole model, the parameters gathered in the autocast dtype), draws its
own inputs (seeded by its rank) and times its own phases exactly as one process does (harness.measure: CUDA
events, or perf_counter on the CPU; nothing is added to the steps). After the last step every rank sends its
samples to rank 0 (one gather_object), which builds the one record (results/ranks.py: the job's step is its
slowest rank's) and appends it.

Out of memory: the rank that runs out prints one "lmbench: oom: {...}" line (rank, phase, message) and exits;
torchrun then ends the others, which may be waiting in a collective for it, and the lmbench process stores the
OOM record (without samples: the job's would need every rank's), so no collective is added to the steps to agree
on it. Across nodes only node 0's lmbench process
stores; an OOM on another node is the job's one-line error there.

`lmbench profile` runs the same ranks from profilers/data_parallel_profile.py, its worker module (`worker` of
run_data_parallel), which wraps each rank's steps in torch.profiler (`around` of run_rank); `lmbench nsys` through
profilers/nsys_rank.py, which runs each rank of this module under its own `nsys profile`.

Test hooks: FAIL_RANK_ENV (distributed.py) fails a rank after joining; OOM_ENV="RANK:PHASE" makes that rank
raise torch.OutOfMemoryError in that phase (forward, backward or optimizer) of its first step.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import torch
import torch.distributed as dist

from lmbench.config import BenchConfig
from lmbench.errors import Interrupted, LmbenchError
from lmbench.measure.distributed import check_launch, distributed_environment, process_group, say, worker_main
from lmbench.measure.environment import capture, check_runnable, device_name, utc_now
from lmbench.measure.harness import AUTOCAST_DTYPES, measure
from lmbench.measure.launch import LINE_PREFIX, LaunchOptions, run_job, torchrun_command
from lmbench.measure.recording import base_numerics, build_record
from lmbench.measure.sampling import Sampling
from lmbench.results.record import Record, new_record
from lmbench.results.store import ResultsStore

WORKER = "lmbench.measure.data_parallel"
OOM_LINE = "oom: "  # after "lmbench: ": a rank that ran out of memory, as JSON
OOM_ENV = "LMBENCH_TEST_OOM"  # tests: "RANK:PHASE" runs out of memory on purpose


@dataclass(frozen=True)
class Job:
    """How one configuration runs: in this process (`launch` None), or on `world_size` ranks of a torchrun job."""

    config: BenchConfig  # as each rank runs it: a global batch divided into the per-rank batch
    world_size: int = 1
    launch: LaunchOptions | None = None
    backend: str = ""
    device_type: str = ""
    nproc: int = 1  # ranks on this node

    @property
    def key(self) -> str:
        return self.config.key(self.world_size)

    @property
    def where(self) -> str:
        """', ddp on 2 ranks (2 per node x 1 node, gloo on cpu)', or '' in this process."""
        if self.launch is None:
            return ""
        nodes = f"{self.launch.nnodes} node{'s' if self.launch.nnodes > 1 else ''}"
        batch = f", batch {self.config.batch} per rank" if self.config.global_batch is not None else ""
        return (f", {self.config.parallel} on {self.world_size} rank{'s' if self.world_size > 1 else ''} "
                f"({self.nproc} per node x {nodes}, {self.backend} on {self.device_type}){batch}")


def plan_jobs(configs: Sequence[BenchConfig], sampling: Sampling, launch: LaunchOptions) -> list[Job]:
    """Each configuration's job, every one checked before any runs (one line for the first that cannot)."""
    parallel = [c for c in configs if c.parallel != "none"]
    if launch != LaunchOptions() and not parallel:
        raise LmbenchError("--nproc-per-node, --nnodes and the other launch options run data-parallel jobs: give "
                           "--parallel ddp or fsdp")
    if launch.nnodes > 1 and len(parallel) < len(configs):
        raise LmbenchError(f"--nnodes {launch.nnodes} runs data-parallel jobs only: every configuration needs "
                           "--parallel ddp or fsdp")
    jobs = []
    for config in configs:
        if config.parallel == "none":
            job = Job(config.for_ranks(1))
        else:
            if sampling.target_ci is not None:  # every node would have to agree on when to stop
                raise LmbenchError(f"--parallel {config.parallel} runs a fixed number of torchrun jobs per "
                                   "configuration (--repeats, 1 by default); --target-ci does not apply to it")
            device, backend, nproc = check_launch(launch, config.device)
            world_size = nproc * launch.nnodes
            job = Job(config.for_ranks(world_size), world_size, launch, backend, device.type, nproc)
        check_runnable(job.config, job.world_size, job.nproc)
        jobs.append(job)
    return jobs


def one_process(config: BenchConfig, command: str) -> BenchConfig:
    """`config`, refused when it is a data-parallel job's: `lmbench <command>` measures or profiles one process."""
    if config.parallel != "none":
        raise LmbenchError(f"lmbench {command} measures one process; --parallel {config.parallel} runs on a torchrun "
                           "job through lmbench bench, sweep, profile or nsys")
    return config


def run_data_parallel(job: Job, store: ResultsStore, on_line: Callable[[str], None] = lambda line: None,
                      worker: Sequence[str] = (WORKER,)) -> Record | None:
    """Run `job` on torchrun into `store` (held by this process: the ranks inherit the hold) and return the record
    rank 0 stored, the OOM record when a rank ran out of memory, or None on a node other than node 0. `worker` is
    the ranks' module and its own arguments, after those of worker_parser."""
    assert job.launch is not None, "a job in this process is measured by harness.measure"
    ooms: list[dict[str, Any]] = []

    def line(text: str) -> None:
        oom = _oom_of(text)
        if oom is None:
            on_line(text)
        else:
            ooms.append(oom)

    start = time.perf_counter()
    what = f"{job.config.label} {job.config.mode} {job.config.parallel} on {job.world_size} ranks"
    try:
        run_job(job_command(job, store.run_dir, worker), what, job.launch.job_timeout, line)
    except LmbenchError as e:
        if not ooms or isinstance(e, Interrupted):
            raise
        oom = ooms[0]  # the first rank to run out; the others' errors follow from its leaving
        if job.launch.node_rank != 0:
            raise LmbenchError(f"{what}: rank {oom['rank']} ran out of memory in the {oom['phase']} phase "
                               f"({oom['message']})") from None
        record = oom_record(job, oom, time.perf_counter() - start)
        store.append(record)
        return record
    if job.launch.node_rank != 0:
        return None
    record = store.records()[-1] if store.path.exists() else None
    if record is None or record.key != job.key:
        raise LmbenchError(f"{what} ended without storing its record in {store.path}")
    return record


def job_command(job: Job, run_dir: Path, worker: Sequence[str] = (WORKER,), python: str = sys.executable) -> list[str]:
    """The torchrun command that runs `job` on this node's ranks, storing into `run_dir`: `worker`, the ranks'
    module and its own arguments, after those of worker_parser."""
    assert job.launch is not None
    child = [python, "-m", worker[0], "--config", json.dumps(dataclasses.asdict(job.config)), "--backend",
             job.backend, "--timeout", str(job.launch.timeout), "--run-dir", str(run_dir), *worker[1:]]
    return torchrun_command(job.launch, job.nproc, child)


def _oom_of(text: str) -> dict[str, Any] | None:
    """What a rank that ran out of memory said in its line; None for any other line, or one that came garbled."""
    if not text.startswith(OOM_LINE):
        return None
    try:
        return json.loads(text.removeprefix(OOM_LINE))
    except ValueError:
        return None


def oom_record(job: Job, oom: dict[str, Any], wall_s: float) -> Record:
    """The record of a job in which rank `oom["rank"]` ran out of memory, from that rank's line."""
    assert job.launch is not None
    return new_record(
        job.config, status="oom", timestamp=utc_now(), params=None,
        environment=capture(torch.device(job.device_type)), numerics=base_numerics(job.config), profiler=None,
        sampling=None, build_s=oom["build_s"], wall_s=wall_s, samples=[], memory={}, telemetry={},
        oom={"phase": oom["phase"], "message": oom["message"], "rank": oom["rank"]},
        distributed={"backend": job.backend, "world_size": job.world_size, "ranks_per_node": job.nproc,
                     "nodes": job.launch.nnodes, "parallel": job.config.parallel})


@dataclass(frozen=True)
class DataParallelRank:
    """This rank of the job as the harness runs it (harness.ParallelRank): its device, its rank, the model wrapped."""

    config: BenchConfig
    rank: int
    device: torch.device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP around the model, or FSDP2: each child in the model's `blocks` (TransformerLM's, or a custom model's
        of that name) its own unit, then the model; a custom model without `blocks` is sharded as one unit."""
        _out_of_memory_on_purpose(model, self.rank)
        if self.config.parallel == "ddp":
            ids = [self.device.index] if self.device.type == "cuda" else None
            return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                             bucket_cap_mb=self.config.bucket_cap_mb)
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        # The mesh on this rank's device type: left to itself, FSDP2 shards onto CUDA whenever CUDA exists, so a
        # --device cpu job on a GPU machine would put the parameters on the GPU and its inputs on the CPU.
        mesh = init_device_mesh(self.device.type, (dist.get_world_size(),))
        options = {"reshard_after_forward": self.config.reshard_after_forward,
                   "mp_policy": mixed_precision(self.config), "mesh": mesh}
        for block in getattr(model, "blocks", ()):  # one all-gather per block, overlapped with the block before it
            fully_shard(block, **options)
        fully_shard(model, **options)  # the rest: embedding, final norm, head
        return model


def mixed_precision(config: BenchConfig) -> Any:
    """FSDP2's policy: parameters gathered in the autocast dtype, gradients reduced in fp32; fp32 is left as is."""
    from torch.distributed.fsdp import MixedPrecisionPolicy
    dtype = AUTOCAST_DTYPES.get(config.precision)
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32 if dtype else None)


def _out_of_memory_on_purpose(model: torch.nn.Module, rank: int) -> None:
    """The OOM_ENV test hook: torch.OutOfMemoryError on this rank in the phase it names."""
    spec = os.environ.get(OOM_ENV)
    target, _, phase = (spec or "").partition(":")
    if target != str(rank):
        return

    def fail(*_: Any) -> None:
        raise torch.OutOfMemoryError(f"out of memory on purpose ({OOM_ENV}={spec})")

    if phase == "forward":
        model.register_forward_pre_hook(fail)
    elif phase == "backward":  # the logits' gradient is the first backward computes
        def on_logits(module: torch.nn.Module, args: Any, logits: torch.Tensor) -> None:
            if logits.requires_grad:
                logits.register_hook(fail)

        model.register_forward_hook(on_logits)
    elif phase == "optimizer":
        torch.optim.optimizer.register_optimizer_step_pre_hook(fail)
    else:
        raise LmbenchError(f"{OOM_ENV}={spec}: the phase must be forward, backward or optimizer")


# A profiler around one rank's steps: given the rank and its device, a context manager yielding the harness's on_step
AroundSteps = Callable[[int, torch.device], ContextManager[Callable[[int, dict], None]]]


def run_rank(config: BenchConfig, backend: str, timeout_s: float, run_dir: Path, around: AroundSteps | None = None,
             profiler: str | None = None) -> None:
    """One rank's part of the job: measure (under `around`, the profiler named `profiler`, when given), send the
    samples to rank 0, which stores the job's record."""
    with process_group(backend, config.device, timeout_s) as (rank, device):
        job = distributed_environment(rank, backend)
        with around(rank.rank, device) if around else contextlib.nullcontext(None) as on_step:
            start = time.perf_counter()
            measurement = measure(config, on_step=on_step, rank=DataParallelRank(config, rank.rank, device),
                                  profiler=profiler)
            wall_s = time.perf_counter() - start
        if measurement.status == "oom":
            # One short line in one write: ranks that run out together share the pipe. It carries no samples: the
            # job's record needs every rank's, and the others are ended before they can send theirs.
            oom = {"rank": rank.rank, "phase": measurement.oom_phase, "message": measurement.oom_message,
                   "build_s": measurement.build_s}
            sys.stderr.write(f"{LINE_PREFIX}{OOM_LINE}{json.dumps(oom)}\n")
            sys.stderr.flush()
            sys.exit(3)  # torchrun ends the other ranks; the lmbench process stores the OOM record
        mine = {"rank": rank.rank, "host": socket.gethostname(), "device_name": device_name(device),
                "memory": measurement.memory, "samples": measurement.samples}
        gathered: list[Any] | None = [None] * rank.world_size if rank.leader else None
        dist.gather_object(mine, gathered, dst=0)
        if gathered is None:
            return
        job.update(parallel=config.parallel, ranks=[{k: v for k, v in r.items() if k != "samples"} for r in gathered])
        if config.parallel == "fsdp":
            policy = mixed_precision(config)
            job["mixed_precision"] = {name: str(getattr(policy, name)).removeprefix("torch.")
                                      for name in ("param_dtype", "reduce_dtype")}
        record = build_record(config, measurement, wall_s, distributed=job, per_rank=[r["samples"] for r in gathered])
        ResultsStore(run_dir).append(record)
        say(rank, f"{config.label} {config.mode} {config.parallel} on {rank.world_size} ranks: "
                  f"{record.mean_ms():.2f} ms per step (the slowest rank's, step by step)")


def worker_parser(module: str, command: str) -> argparse.ArgumentParser:
    """The arguments run_data_parallel gives every rank of a job started by `command` in `module`."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}",
                                     description=f"one rank of a data-parallel lmbench {command} (started by torchrun)")
    parser.add_argument("--config", required=True, help="BenchConfig as JSON, the batch per rank")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = worker_parser(WORKER, "bench").parse_args(argv)
    worker_main(lambda: run_rank(BenchConfig(**json.loads(args.config)), args.backend, args.timeout, args.run_dir))


if __name__ == "__main__":
    main()
    # The record is stored and the group left: skip the interpreter's teardown with torch loaded, about a second per
    # rank that torchrun (and every configuration of a sweep) would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
