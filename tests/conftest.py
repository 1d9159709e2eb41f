"""Session fixtures: run directories made once (by the CLI and by the Python API) and shared by tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SWEEP_ARGS, CliRun, run_cli, tiny
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import run_sweep


@pytest.fixture(scope="session")
def cli_sweep(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """`lmbench sweep` over 2 sizes x 2 modes (helpers.SWEEP_ARGS), shared by the CLI and report tests.

    Tests must not modify its run directory; they copy it first when they need to.
    """
    cwd = tmp_path_factory.mktemp("cli_sweep")
    proc = run_cli(["sweep", *SWEEP_ARGS, "--run-dir", "run"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return CliRun(cwd / "run", proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def api_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory written through the Python API: forward and forward-backward, tiny, CPU."""
    run_dir = tmp_path_factory.mktemp("api_run")
    configs = [tiny(mode="forward"), tiny(mode="forward-backward", warmup=2)]
    run_sweep(configs, ResultsStore(run_dir))
    return run_dir
