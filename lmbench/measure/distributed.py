"""One rank of a torchrun job (measure/launch.py starts it): who it is, its device, its process group, and how it
fails.

- `check_launch`, in the parent before anything starts: the backend for the device (nccl on CUDA, gloo on the
  CPU; nccl without CUDA is an error) and at most one rank per GPU, each as one line.
- `Rank.from_env`: rank, world size and local rank as torchrun sets them (RANK, WORLD_SIZE, LOCAL_RANK,
  LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE).
- `process_group`: binds the rank to its GPU (cuda:LOCAL_RANK), joins the group with a timeout (every collective
  then fails after it rather than hanging) and leaves it when the body succeeded (a failing rank leaves by exiting).
- `worker_main`: a worker's body, its failure printed as one "lmbench: error: rank R: ..." line (launch.py shows
  the first such line of the job) and a non-zero exit, on which torchrun ends the other ranks.

FAIL_RANK_ENV lets tests make one rank fail after joining the group, as a crashed rank would.
"""

from __future__ import annotations

import datetime
import gc
import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from lmbench.errors import LmbenchError
from lmbench.measure.environment import resolve_device
from lmbench.measure.launch import ERROR_PREFIX, LINE_PREFIX, LaunchOptions

FAIL_RANK_ENV = "LMBENCH_TEST_FAIL_RANK"  # tests: this rank exits with an error right after joining the group
CPU_RANKS = 2  # ranks per node on the CPU when --nproc-per-node is not given


def backend_for(requested: str, device: torch.device) -> str:
    """The process-group backend: nccl on CUDA and gloo on the CPU unless asked otherwise; nccl needs CUDA."""
    backend = requested if requested != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise LmbenchError("backend nccl needs CUDA devices; this run is on the cpu (use --backend gloo or auto)")
    if backend == "nccl" and not dist.is_nccl_available():
        raise LmbenchError(f"backend nccl is not available in this torch build ({torch.__version__})")
    if backend == "gloo" and not dist.is_gloo_available():
        raise LmbenchError(f"backend gloo is not available in this torch build ({torch.__version__})")
    return backend


def ranks_per_node(launch: LaunchOptions, device: torch.device) -> int:
    """--nproc-per-node, else every GPU of this node on CUDA and CPU_RANKS on the CPU."""
    if launch.nproc_per_node is not None:
        return launch.nproc_per_node
    return torch.cuda.device_count() if device.type == "cuda" else CPU_RANKS


def check_launch(launch: LaunchOptions, device_request: str) -> tuple[torch.device, str, int]:
    """(device type, backend, ranks on this node) of a job, refusing one this node cannot run before it starts."""
    device = resolve_device(device_request)
    backend = backend_for(launch.backend, device)
    nproc = ranks_per_node(launch, device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise LmbenchError(f"{nproc} processes per node but this node has {torch.cuda.device_count()} CUDA device(s); "
                           "one rank per GPU")
    return device, backend, nproc


@dataclass(frozen=True)
class Rank:
    """This process's place in the job, as torchrun set it."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    nodes: int

    @classmethod
    def from_env(cls) -> Rank:
        names = {"rank": "RANK", "world_size": "WORLD_SIZE", "local_rank": "LOCAL_RANK",
                 "local_world_size": "LOCAL_WORLD_SIZE", "node_rank": "GROUP_RANK", "nodes": "GROUP_WORLD_SIZE"}
        missing = [env for env in names.values() if env not in os.environ]
        if missing:
            raise LmbenchError(f"not started by torchrun ({', '.join(missing)} unset): run it through lmbench's "
                               "commands, which launch torchrun")
        return cls(**{field: int(os.environ[env]) for field, env in names.items()})

    @property
    def leader(self) -> bool:
        """Rank 0: the one that stores results and prints progress."""
        return self.rank == 0


@contextmanager
def process_group(backend: str, device_request: str, timeout_s: float) -> Iterator[tuple[Rank, torch.device]]:
    """Join the job's process group on this rank's device (cuda:LOCAL_RANK, or the CPU) and leave it on exit."""
    rank = Rank.from_env()
    device = resolve_device(device_request)
    if device.type == "cuda":
        if rank.local_rank >= torch.cuda.device_count():
            raise LmbenchError(f"local rank {rank.local_rank} has no GPU: this node has {torch.cuda.device_count()}")
        device = torch.device("cuda", rank.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s),
                            device_id=device if device.type == "cuda" else None)
    if os.environ.get(FAIL_RANK_ENV) == str(rank.rank):
        raise LmbenchError(f"failing on purpose ({FAIL_RANK_ENV}={rank.rank})")
    yield rank, device
    # Only a rank that succeeded leaves the group here. A failing one keeps its connections until it exits, after
    # worker_main has printed its error: its peers then fail on the closed connection after that line, not before.
    dist.destroy_process_group()


def distributed_environment(rank: Rank, backend: str) -> dict[str, Any]:
    """What the job adds to a record's environment: backend and its version, ranks and nodes, every rank's host
    (a collective over the group: every rank calls it)."""
    hosts: list[str] = [""] * rank.world_size
    dist.all_gather_object(hosts, socket.gethostname())
    nccl = torch.cuda.nccl.version() if backend == "nccl" else None
    return {"backend": backend, "nccl": ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl,
            "world_size": rank.world_size, "ranks_per_node": rank.local_world_size,
            "nodes": rank.nodes, "hosts": sorted(set(hosts))}


def say(rank: Rank, message: str) -> None:
    """A progress line from rank 0, shown by the lmbench process that launched the job."""
    if rank.leader:
        print(f"{LINE_PREFIX}{message}", file=sys.stderr, flush=True)


def worker_main(body: Callable[[], None]) -> None:
    """Run a worker's `body`; its failure becomes one error line naming the rank, and exit status 2 (bad input,
    an unusable environment) or 1 (anything else), on which torchrun ends the other ranks."""
    where = f"rank {os.environ.get('RANK', '?')}"
    # A rank is a process running one job: what its imports made (torch, this package) lives as long as it does, so
    # it is frozen out of the cyclic garbage collector, whose full collections (the harness's after the steps,
    # Python's own as AdamW's first step imports torch._dynamo) then walk only the job's objects. Garbage is
    # collected first (a worker called in a test process), so only live objects are frozen, none of them the job's.
    gc.collect()
    gc.freeze()
    try:
        body()
    except LmbenchError as e:
        print(f"{ERROR_PREFIX}{where}: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001  (a peer gone, a backend error: its first line is the message)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{ERROR_PREFIX}{where}: {type(e).__name__}: {first}"[:1000], file=sys.stderr, flush=True)
        sys.exit(1)
