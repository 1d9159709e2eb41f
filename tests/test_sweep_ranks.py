"""`lmbench sweep --nproc-per-node 1,2`: each data-parallel configuration at each rank count in one run directory
(weak scaling from one command), a configuration in one process once, and the weak-scaling finding from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_main, tiny
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.sampling import Sampling
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import plan_sweep


def test_each_data_parallel_configuration_runs_at_each_rank_count() -> None:
    configs = [tiny(parallel="ddp"), tiny(parallel="ddp", ctx=32), tiny()]
    launches = [LaunchOptions(nproc_per_node=1), LaunchOptions(nproc_per_node=2)]
    pairs = plan_sweep(configs, Sampling(), launches, resume=False)
    assert [(config.ctx, config.parallel, job.world_size) for config, job in pairs] == [
        (16, "ddp", 1), (16, "ddp", 2), (32, "ddp", 1), (32, "ddp", 2), (16, "none", 1)]  # one process: once
    assert len({job.key for _, job in pairs}) == 5


@pytest.mark.slow  # two torchrun jobs on the CPU (gloo), one rank and then two
def test_sweep_over_rank_counts_end_to_end(tmp_path: Path) -> None:
    args = ["sweep", "--size", "tiny", "--mode", "train-step", "--ctx", "16", "--batch", "2", "--warmup", "1",
            "--steps", "3", "--vocab-size", "64", "--device", "cpu", "--parallel", "ddp", "--nproc-per-node", "1,2",
            "--run-dir", "run"]
    proc = run_main(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = ResultsStore(tmp_path / "run").records()
    assert [r.world_size for r in records] == [1, 2]
    assert "**weak scaling** — Weak-scaling efficiency" in (tmp_path / "run" / "report.md").read_text()
    bad = run_main([*args[:-2], "--nproc-per-node", "1,x", "--run-dir", "bad"], cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--nproc-per-node: 'x' is not a valid int" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_a_configuration_in_one_process_beside_data_parallel_ones_runs_without_their_launch(monkeypatch,
                                                                                          tmp_path: Path) -> None:
    from lmbench.studies import sweep
    jobs = []
    monkeypatch.setattr(sweep, "run_data_parallel", lambda job, store, on_line: jobs.append(job.world_size))
    records = sweep.run_sweep([tiny(), tiny(parallel="ddp")], ResultsStore(tmp_path),
                              launch=[LaunchOptions(nproc_per_node=1), LaunchOptions(nproc_per_node=2)])
    assert [r.config.parallel for r in records] == ["none"] and jobs == [1, 2]  # the jobs stored nothing here
