"""Session fixtures: run directories made once (by the CLI and by the Python API) and shared by tests, also across
the pytest-xdist workers; and how the tests are spread over those workers (pyproject.toml's addopts: two).

One intra-op thread per test process, set before torch loads and inherited by every child process: two workers of
two OpenMP threads each on two cores spin against each other and make a tiny model's matmul a hundred times
slower. The repository root goes on PYTHONPATH for the children that commands run in this process start
(`python -m lmbench bench` of --repeats, the warm-up study and nsys), as helpers.cli_env does for run_cli.

Without CUDA, before each test the objects the worker already holds (torch, dynamo, pandas, matplotlib, earlier
fixtures) are frozen out of the cyclic garbage collector: the harness's gc.collect() after every configuration, and
Python's own full collections, then walk only what the test made (a few ms instead of about 0.3 s each with dynamo
loaded). Objects are still freed by reference counting; only cycles among frozen objects are never collected,
which a CPU test process can afford (its peak memory is the same) but not a GPU's, whose tests measure the memory
that configurations leave.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from helpers import DDP_JOB, REPO_ROOT, SWEEP_ARGS, CliRun, free_port, run_main, tiny  # noqa: E402

os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)


# Modules whose tests share an expensive module fixture (a profiled run, a browser, a measured sweep, measurements, a
# torchrun job): each runs whole on one worker, so the fixture is made once. Every other test is scheduled on its own.
ONE_WORKER_MODULES = ("tests/test_browser.py", "tests/test_distributed.py", "tests/test_harness.py",
                      "tests/test_json_output.py", "tests/test_plots.py", "tests/test_trace.py")
# Modules sharing a session fixture that runs a job (ddp_profile_job): together on one worker, so no worker waits on
# the lock for a job another worker is running.
SHARED_SCOPES = {"tests/test_comm_bytes.py": "ddp_profile_job", "tests/test_distributed_profile.py": "ddp_profile_job"}


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown where xdist is not installed (`-o addopts=""`)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's scope scheduler with a scope per test, per module for ONE_WORKER_MODULES, or per group of
    SHARED_SCOPES. (The same as `--dist loadgroup` with xdist_group marks, which pytest 9.2 silently stopped
    honouring: pytest-xdist#1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SHARED_SCOPES.get(module) or (module if module in ONE_WORKER_MODULES else nodeid)

    return Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (a stable sort): the long ones start early, the short ones even out the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _frozen_heap() -> Iterator[None]:
    """What earlier tests left as cyclic garbage collected, then everything still alive frozen (the docstring above)."""
    import torch

    if not torch.cuda.is_available():
        gc.collect()
        gc.freeze()
    yield


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, Path]:
    """A directory every xdist worker of this session sees (the workers' common base temp), and its lock."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name, base / f"{name}.lock"


def _shared_run(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str], run_dir: str) -> CliRun:
    """`lmbench ARGS` run once per session, through the CLI's entry point in this process, in a directory `name` that
    every xdist worker sees: the first worker to ask runs it, the others wait for it and read its directory."""
    cwd, lock_path = _shared_dir(tmp_path_factory, name)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = cwd / "process.json"
        if not done.is_file():
            cwd.mkdir()
            proc = run_main(args, cwd=cwd)
            assert proc.returncode == 0, proc.stderr
            done.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))
        proc = json.loads(done.read_text())
    return CliRun(cwd / run_dir, proc["returncode"], proc["stdout"], proc["stderr"])


@pytest.fixture(scope="session")
def cli_sweep(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """`lmbench sweep` over 2 sizes x 2 modes (helpers.SWEEP_ARGS), shared by the CLI and report tests (sweep's own
    processes are tests/test_cli.py's interrupted and resumed sweeps). Tests must not modify its run directory; they
    copy it first when they need to."""
    return _shared_run(tmp_path_factory, "cli_sweep", ["sweep", *SWEEP_ARGS, "--run-dir", "run"], "run")


@pytest.fixture(scope="session")
def ddp_profile_job(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """`lmbench profile --record-shapes` of a 2-rank DDP train-step job (gloo on the CPU, torchrun; helpers.DDP_JOB),
    the one such job of the suite: its traces and record serve test_distributed_profile.py (a trace per rank) and
    test_comm_bytes.py (the bytes its collectives move). Tests must not modify its run directory."""
    return _shared_run(tmp_path_factory, "ddp_profile_job", ["profile", *DDP_JOB, "--trace-dir", "run"], "run")


@pytest.fixture(scope="session")
def api_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory written through the Python API: forward and forward-backward, tiny, CPU."""
    from lmbench.results.store import ResultsStore
    from lmbench.studies.sweep import run_sweep

    run_dir = tmp_path_factory.mktemp("api_run")
    configs = [tiny(mode="forward"), tiny(mode="forward-backward", warmup=2)]
    run_sweep(configs, ResultsStore(run_dir))
    return run_dir


@pytest.fixture
def one_rank(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """torchrun's environment for a one-rank job on this host, so a worker runs as that rank in this process; the
    process group is left after the test (a failing rank keeps its group until its process exits)."""
    import torch.distributed

    for name, value in {"RANK": 0, "WORLD_SIZE": 1, "LOCAL_RANK": 0, "LOCAL_WORLD_SIZE": 1, "GROUP_RANK": 0,
                        "GROUP_WORLD_SIZE": 1, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": free_port()}.items():
        monkeypatch.setenv(name, str(value))
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
