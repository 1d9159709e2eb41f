"""Everything outside the configuration that changes a number: hardware, software, numerics, commit."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from lmbench import __version__
from lmbench.config import BenchConfig, size_text
from lmbench.errors import LmbenchError
from lmbench.measure.model_factory import load_factory
from lmbench.measure.sdpa import check_backend
from lmbench.results.sizes import BUILD_TENSORS, STEP_TENSORS, tensor_bytes

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_device(requested: str) -> torch.device:
    """'auto' means CUDA when present; asking for CUDA without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise LmbenchError("device cuda requested but torch sees no CUDA device")
    return torch.device(requested)


def check_precision(device: torch.device, precision: str, tf32: bool) -> None:
    """Refuse number formats the device cannot run, before any model is built."""
    if device.type == "cpu" and precision == "fp16":
        raise LmbenchError("precision fp16 is not supported on cpu (fp16 autocast needs a CUDA device); use fp32 or bf16")
    if device.type == "cpu" and tf32:
        raise LmbenchError("--tf32 is a CUDA tensor-core mode; it does not apply on cpu")
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise LmbenchError(f"precision bf16 is not supported on {torch.cuda.get_device_name(device)}")


def check_runnable(config: BenchConfig, world_size: int = 1, ranks_per_node: int = 1) -> torch.device:
    """The device a configuration runs on; refuses one this machine cannot run (no such device,
    unsupported number format, tensors that cannot fit: check_fits, here for one of `world_size` ranks of a
    data-parallel job with `ranks_per_node` on this machine) before anything is built."""
    device = resolve_device(config.device)
    check_precision(device, config.precision, config.tf32)
    if config.cuda_graph and device.type != "cuda":
        raise LmbenchError(f"--cuda-graph needs CUDA (CUDA graphs replay GPU work); this run is on {device.type}")
    if config.emit_nvtx and device.type != "cuda":
        raise LmbenchError(f"--emit-nvtx needs CUDA (autograd's NVTX mode); this run is on {device.type}")
    check_backend(config, device)
    if config.model is not None:  # an import error or a missing factory said before anything runs
        load_factory(config.model)
    check_fits(config, device, world_size, ranks_per_node)
    return device


def check_fits(config: BenchConfig, device: torch.device, world_size: int = 1, ranks_per_node: int = 1) -> None:
    """Refuse, before building, a configuration whose tensors cannot fit the device at all (results/sizes.py), for
    one process or for each of `world_size` ranks of a data-parallel job (sharded under fsdp).

    On CUDA only building counts (the model, before any sharding, DDP's buckets and the input batch): a step that
    then runs out of memory fails cleanly in the allocator and is stored as an OOM record that says in which phase.
    On a CPU the whole step counts (or building, where that is larger: an FSDP rank builds the whole model before
    sharding it), because there memory beyond RAM is not refused by the allocator but paged or killed by the
    kernel; and the `ranks_per_node` ranks of a job share that RAM, where on CUDA each has a GPU of its own. A custom
    model's sizes are not known before it is built: only its inputs and logits count."""
    sizes = {name: size or 0 for name, size in tensor_bytes(config, world_size=world_size).items()}
    names, what = BUILD_TENSORS, "building it"
    if device.type == "cuda":
        capacity, sharing = torch.cuda.get_device_properties(device).total_memory, 1
    else:
        capacity, sharing = physical_memory(), ranks_per_node
        if sum(sizes[name] for name in STEP_TENSORS) >= sum(sizes[name] for name in BUILD_TENSORS):
            names, what = STEP_TENSORS, "one step"
    per_rank = sum(sizes[name] for name in names)
    need = sharing * per_rank
    if capacity and need > capacity:
        parts = ", ".join(f"{name.removeprefix('unsharded_')} {size_text(sizes[name])}"
                          for name in sorted(names, key=sizes.get, reverse=True) if sizes[name] > capacity / 100)
        if config.parallel != "none":
            what += f" on each of {world_size} {config.parallel} rank{'s' if world_size > 1 else ''}"
            if config.parallel == "fsdp" and names == BUILD_TENSORS:
                what += " (each builds the whole model before sharding it)"
        total = size_text(need) if sharing == 1 else f"{sharing} ranks x {size_text(per_rank)} = {size_text(need)}"
        raise LmbenchError(f"{config.label} batch {config.batch} ctx {config.ctx} vocab {config.vocab_size} "
                           f"{config.mode} {config.precision}: {what} needs at least {total} ({parts}), more "
                           f"than the {device.type} has ({size_text(capacity)}); refused before building")


def physical_memory() -> int | None:
    """Bytes of RAM this process may use: the machine's, or its cgroup's limit when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """The project's commit (with '-dirty' for uncommitted changes); LMBENCH_GIT_COMMIT overrides it,
    for copies of the tree that travel without their .git folder."""
    if os.environ.get("LMBENCH_GIT_COMMIT"):
        return os.environ["LMBENCH_GIT_COMMIT"]
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML, or no driver: try nvidia-smi below
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def capture(device: torch.device) -> dict[str, Any]:
    """Static facts about this process's machine and software (numerics are recorded per run)."""
    env: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "lmbench": __version__,
        "git_commit": git_commit(),
        "device_type": device.type,
        "device_name": device_name(device),
        "gpu": None,
        "driver": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            gpu_sm_count=props.multi_processor_count,
            gpu_capability=f"{props.major}.{props.minor}",
            driver=_driver_version(),
        )
    return env


def numerics(device: torch.device, autocast_dtype: torch.dtype | None) -> dict[str, Any]:
    """The numeric modes in force right now (read back, not assumed): call it inside the run's own
    settings (harness.measure does), since they are restored when the run ends."""
    state: dict[str, Any] = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        # TF32 only exists on CUDA tensor cores; a CPU run does fp32 matmuls in fp32 whatever the flag says.
        "tf32_matmul": device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32,
        "autocast_dtype": str(autocast_dtype).removeprefix("torch.") if autocast_dtype else None,
    }
    if device.type == "cuda":
        state["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        state["sdpa_backends"] = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
            "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
        }
    return state


PROFILER_ENV = "LMBENCH_PROFILER"  # set by lmbench's own profiler runners for their child process
# Nsight tools inject their library into the CUDA driver through this variable; its path names the tool.
INJECTION_ENV = "CUDA_INJECTION64_PATH"
INJECTED_TOOLS = {"nsys": ("nsys", "nsight-systems", "ToolsInjection"), "ncu": ("ncu", "nsight-compute", "Compute")}


def external_profiler() -> str | None:
    """The profiler this process runs under, if another process started it there: lmbench's runners say so
    in LMBENCH_PROFILER; Nsight Systems and Compute started by hand show in CUDA_INJECTION64_PATH."""
    if os.environ.get(PROFILER_ENV):
        return os.environ[PROFILER_ENV]
    injected = os.environ.get(INJECTION_ENV, "")
    if not injected:
        return None
    lowered = injected.lower()
    return next((tool for tool, marks in INJECTED_TOOLS.items() if any(m.lower() in lowered for m in marks)),
                f"a CUDA injection library ({injected})")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
