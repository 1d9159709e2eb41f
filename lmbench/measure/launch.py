"""Running a command on several processes through torchrun (torch.distributed.run), and waiting for it.

lmbench has no launcher of its own: a distributed job is `python -m torch.distributed.run <launch options>
-m <module> <args>`, started by the lmbench process the user runs, which waits for it and turns its failure
into one line. `torchrun_command` wraps any `python -m ...` child command (measure/processes.py builds the
`lmbench bench` one), so every distributed command launches the same way. On one node torchrun picks a free
port itself (`--standalone`); across nodes the same command runs on each node with its `--node-rank`, and
node 0's `--rdzv-endpoint` (torchrun's static rendezvous, so node 0 holds global rank 0, the rank that stores
results). Inside the job, measure/distributed.py reads what torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, ...).

Nothing waits forever: the rendezvous and every collective wait at most `timeout` seconds (torchrun's rendezvous
timeout, the process group's timeout); torchrun ends every rank when one fails; the whole job may be given
`job_timeout`, after which torchrun is asked to stop its ranks (SIGTERM) and then killed.

Workers talk to the user through lines that start "lmbench: " on their stderr: progress lines are passed on,
and the first "lmbench: error: " line of any rank is the job's one-line error. torchrun's own output is kept
back and only its last line is shown, when no rank said what went wrong.

This module loads without torch (the CLI builds its options from LaunchOptions at start-up).
"""

from __future__ import annotations

import collections
import math
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable

from lmbench.options import check_types, option, require_choice, require_positive
from lmbench.errors import Interrupted, LmbenchError

BACKENDS = ("auto", "nccl", "gloo")
LINE_PREFIX = "lmbench: "  # a worker's line meant for the user
ERROR_PREFIX = "lmbench: error: "  # a worker's one-line error
STOP_GRACE_S = 45.0  # after SIGTERM, how long torchrun may take to end its ranks (it waits 30 s before SIGKILL)
TAIL_LINES = 40  # torchrun's own lines kept for the error message


@dataclass(frozen=True)
class LaunchOptions:
    """How a distributed job is launched and connected: torchrun's process and node options, the process-group
    backend and how long anything may wait."""

    nproc_per_node: int | None = option(None, "processes (ranks) on this node, one per GPU on CUDA (torchrun "
                                              "--nproc-per-node); default: every GPU on CUDA, 2 on the CPU",
                                        sweep=True)
    nnodes: int = option(1, "nodes in the job (torchrun --nnodes); run the same command on every node")
    node_rank: int = option(0, "this node's rank, 0 to nnodes-1 (torchrun --node-rank); node 0 holds global rank 0, "
                               "which stores the results")
    rdzv_endpoint: str | None = option(None, "HOST:PORT where node 0 meets the others (torchrun --rdzv-endpoint); "
                                             "needed with --nnodes above 1")
    backend: str = option("auto", "process-group backend: auto is nccl on CUDA, gloo on the CPU", choices=BACKENDS)
    timeout: float = option(300.0, "seconds a rank waits for the others (rendezvous, each collective) before the "
                                   "job fails")
    job_timeout: float | None = option(None, "seconds the whole job may run before all its processes are ended "
                                             "(default: no limit; every wait inside is bounded by --timeout)")

    def __post_init__(self) -> None:
        check_types(self)
        if self.nproc_per_node is not None:
            require_positive("nproc_per_node", self.nproc_per_node)
        require_positive("nnodes", self.nnodes)
        if not 0 <= self.node_rank < self.nnodes:
            raise LmbenchError(f"node_rank must be 0 to {self.nnodes - 1} with {self.nnodes} node(s), got {self.node_rank}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise LmbenchError(f"{self.nnodes} nodes need --rdzv-endpoint HOST:PORT of node 0")
        if self.rdzv_endpoint is not None and not re.fullmatch(r"[^\s:]+:\d+", self.rdzv_endpoint):
            raise LmbenchError(f"rdzv_endpoint must be HOST:PORT, got {self.rdzv_endpoint!r}")
        require_choice("backend", self.backend, BACKENDS)
        for name in ("timeout", "job_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise LmbenchError(f"{name} must be a positive number of seconds, got {value}")


def torchrun_command(launch: LaunchOptions, nproc: int, child: list[str]) -> list[str]:
    """`child`, a `python -m MODULE ARGS` or `python SCRIPT ARGS` command, run by torchrun on `nproc` processes of
    this node."""
    if len(child) < 2 or (child[1] == "-m" and len(child) < 3):
        raise ValueError(f"torchrun runs a module or a script: expected [python, '-m', module, ...] or "
                         f"[python, script, ...], got {child[:3]}")
    timeout = str(math.ceil(launch.timeout))  # torchrun reads whole seconds
    if launch.nnodes == 1 and launch.rdzv_endpoint is None:
        # One node: torchrun's own rendezvous on a free port, so concurrent jobs never collide on 29500.
        where = ["--standalone", "--rdzv-conf", f"join_timeout={timeout}"]
    else:
        where = ["--nnodes", str(launch.nnodes), "--node-rank", str(launch.node_rank),
                 "--rdzv-endpoint", launch.rdzv_endpoint or "", "--rdzv-conf", f"timeout={timeout}"]
    return [child[0], "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--max-restarts", "0",
            *where, *child[1:]]


def script_on_ranks(script: str, nproc: int, argv: list[str], rank_main: Callable[[], None]) -> None:
    """For a script that runs itself on every rank (benchmarks/): inside a torchrun job (LOCAL_RANK set) it goes
    on as its rank (`rank_main`); otherwise it is run with `argv` on `nproc` ranks of this node, and this process
    exits with its torchrun's status."""
    if "LOCAL_RANK" in os.environ:
        rank_main()
        return
    sys.exit(subprocess.call(torchrun_command(LaunchOptions(), nproc, [sys.executable, script, *argv])))


def run_job(command: list[str], what: str, job_timeout: float | None = None,
            on_line: Callable[[str], None] = lambda line: None) -> None:
    """Run a torchrun `command` to its end, passing each worker line meant for the user (without its "lmbench: ")
    to `on_line`. A failure, a job past `job_timeout` seconds or Ctrl-C ends every process and raises one line."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", bufsize=1, start_new_session=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    errors: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            if line.startswith(ERROR_PREFIX):
                errors.append(line.removeprefix(ERROR_PREFIX))
            elif line.startswith(LINE_PREFIX):
                on_line(line.removeprefix(LINE_PREFIX))
            elif line.strip():
                tail.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = process.wait(timeout=job_timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise LmbenchError(f"{what} ran past --job-timeout {job_timeout:g} s; every process was ended") from None
    except KeyboardInterrupt:
        _stop(process)
        raise Interrupted(f"{what} interrupted; every process was ended") from None
    reader.join(timeout=10)
    if returncode:
        cause = errors[0] if errors else (tail[-1] if tail else f"torchrun exited with status {returncode}")
        raise LmbenchError(f"{what} failed: {cause}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to torchrun's process group (torchrun then ends its ranks, which run in sessions of their own),
    and SIGKILL when it has not ended within STOP_GRACE_S."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    print(f"lmbench: warning: torchrun (PID {process.pid}) did not end", file=sys.stderr)
