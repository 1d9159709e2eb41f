"""Shared helpers: tiny CPU configurations, the CLI run in this process (run_main) or in a subprocess (run_cli),
results-file reading.

Everything runs on the CPU with the "tiny" model (d_model 64 or smaller), a small vocabulary, short
contexts and a handful of steps, so the whole suite stays within two minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbench.config import BenchConfig

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tiny defaults shared by the Python-API tests: a vocabulary of 256 keeps the LM head cheap.
TINY = dict(size="tiny", ctx=16, batch=2, warmup=1, steps=3, device="cpu", vocab_size=256)

# The CLI sweep every CLI/report test reads: 2 sizes x 2 modes. Only "tiny" is cheap on a CPU, so both
# sizes get the same small override dimensions; they stay distinct configurations (different keys and
# labels) and land in the same report group as two rows.
SWEEP_ARGS = [
    "--size", "tiny,small", "--d-model", "32", "--d-ff", "64", "--n-layers", "1", "--n-heads", "2",
    "--mode", "forward,forward-backward", "--ctx", "16", "--batch", "2", "--warmup", "1", "--steps", "3",
    "--vocab-size", "128", "--device", "cpu",
]

# `lmbench profile --record-shapes` of a tiny bf16 train step on a gloo job (torchrun on the CPU): 2 warm-up steps and
# 2 measured ones, each rank's traced. test_comm_bytes.py adds FSDP to it; DDP_JOB is conftest's ddp_profile_job, its
# naive attention making DDP broadcast the blocks' bool masks beside RoPE's fp32 caches.
PROFILED_JOB = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "2", "--steps", "2", "--device", "cpu",
                "--mode", "train-step", "--precision", "bf16", "--record-shapes", "--timeout", "60",
                "--job-timeout", "150"]
DDP_JOB = [*PROFILED_JOB, "--vocab-size", "64", "--parallel", "ddp", "--nproc-per-node", "2", "--attention", "naive"]


def free_port() -> int:
    """A TCP port on this host no one listens on now (torchrun's and c10d's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny(**overrides: Any) -> BenchConfig:
    return BenchConfig(**{**TINY, **overrides})


def cli_env() -> dict[str, str]:
    """The environment for `python -m lmbench`: the package importable from any cwd."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m lmbench ARGS` in a subprocess: for the one smoke test per command that checks the real
    entry point, and for tests about a process's own behaviour (signals, resume). Everything else: run_main."""
    return subprocess.run(
        [sys.executable, "-m", "lmbench", *args], cwd=cwd, env=cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


# What a fresh interpreter shows of the warnings a command raises (Python's default filters, no -W options):
# run_main prints these on its stderr, so "exactly one stderr line" means the same in-process as in a subprocess.
_DEFAULT_WARNING_FILTERS = [("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, None),
                            ("ignore", PendingDeprecationWarning, None), ("ignore", ImportWarning, None),
                            ("ignore", ResourceWarning, None)]


def run_main(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`lmbench ARGS` run in this process through the CLI's entry point, lmbench.cli.main, from `cwd`; returns
    what run_cli returns (exit status, stdout, stderr) without starting Python and importing torch again.

    As in a process of its own: exit status 0 on return, else SystemExit's code; an uncaught exception prints
    its traceback on stderr and exits 1; warnings print on stderr under Python's default filters. stdout and
    stderr are files (append mode), so what a command's own children write to them lands in order."""
    from lmbench.cli import main

    with tempfile.TemporaryDirectory(prefix="lmbench-main-") as scratch:
        paths = Path(scratch) / "stdout", Path(scratch) / "stderr"
        with open(paths[0], "a", encoding="utf-8", buffering=1) as out, \
                open(paths[1], "a", encoding="utf-8", buffering=1) as err:
            previous = Path.cwd()
            os.chdir(cwd)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                        warnings.catch_warnings():
                    warnings.resetwarnings()
                    for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
                        warnings.filterwarnings(action, category=category, module=module or "")
                    warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: \
                        err.write(warnings.formatwarning(message, category, filename, lineno, line))
                    try:
                        main(list(args))
                        returncode = 0
                    except SystemExit as e:
                        if e.code is None or isinstance(e.code, int):
                            returncode = e.code or 0
                        else:  # sys.exit("message"): printed, status 1
                            print(e.code, file=err)
                            returncode = 1
                    except Exception:  # noqa: BLE001  (what the interpreter does with an uncaught exception)
                        traceback.print_exc(file=err)
                        returncode = 1
            finally:
                os.chdir(previous)
        stdout, stderr = (p.read_text(encoding="utf-8") for p in paths)
    return subprocess.CompletedProcess(["lmbench", *args], returncode, stdout, stderr)


def render_copied_capture(fixture: Path, capture: str, tmp_path: Path,
                          in_subprocess: bool = False) -> tuple[Path, subprocess.CompletedProcess, str]:
    """Copy a committed capture fixture (run dir with results.jsonl), run `lmbench kernels` on the copy (in this
    process, or with `in_subprocess` through run_cli); returns (the copied capture dir, the run, the kernels.md
    it wrote)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    proc = (run_cli if in_subprocess else run_main)(["kernels", str(run / capture)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return run / capture, proc, (run / capture / "kernels.md").read_text()


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class CliRun:
    """A finished `lmbench` run and the run directory it wrote."""

    run_dir: Path
    returncode: int
    stdout: str
    stderr: str
