"""Shared helpers: tiny CPU configurations, a CLI runner, results-file reading.

Everything runs on the CPU with the "tiny" model (d_model 64 or smaller), a small vocabulary, short
contexts and a handful of steps, so the whole suite stays well inside a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def tiny(**overrides: Any) -> BenchConfig:
    return BenchConfig(**{**TINY, **overrides})


def cli_env() -> dict[str, str]:
    """The environment for `python -m lmbench`: the package importable from any cwd."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmbench", *args], cwd=cwd, env=cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


def render_copied_capture(fixture: Path, capture: str, tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess, str]:
    """Copy a committed capture fixture (run dir with results.jsonl), run `lmbench kernels` on the copy;
    returns (the copied capture dir, the process, the kernels.md it wrote)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    proc = run_cli(["kernels", str(run / capture)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return run / capture, proc, (run / capture / "kernels.md").read_text()


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class CliRun:
    """A finished `python -m lmbench` run and the run directory it wrote."""

    run_dir: Path
    returncode: int
    stdout: str
    stderr: str
