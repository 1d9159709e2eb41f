"""`lmbench profile` on a data-parallel job (issue 13 item 3): one torchrun job, gloo on the CPU, 2 ranks, each
writing its own torch.profiler trace, carrying its real rank, into the one capture directory. The job is conftest's
ddp_profile_job (helpers.DDP_JOB), whose traces test_comm_bytes.py also reads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from helpers import CliRun, read_lines, run_main

TINY_DDP = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--vocab-size", "64", "--warmup", "1", "--steps", "3",
            "--device", "cpu", "--mode", "train-step", "--parallel", "ddp", "--nproc-per-node", "2",
            "--timeout", "60", "--job-timeout", "150"]


@pytest.mark.slow
def test_profile_of_a_ddp_job_writes_one_trace_per_rank(ddp_profile_job: CliRun) -> None:
    proc, run_dir = ddp_profile_job, ddp_profile_job.run_dir
    assert proc.returncode == 0, proc.stderr
    [capture] = [d for d in run_dir.iterdir() if d.is_dir() and d.name != "plots"]
    traces = sorted(capture.glob("*.pt.trace.json.gz"))
    assert [t.name.split(".")[0] for t in traces] == ["rank0", "rank1"]
    infos = [json.load(gzip.open(t))["distributedInfo"] for t in traces]  # torch.profiler's own, not overwritten
    assert [(i["rank"], i["world_size"], i["backend"]) for i in infos] == [(0, 2, "gloo"), (1, 2, "gloo")]
    [record] = read_lines(run_dir / "results.jsonl")
    assert record["profiler"] == "torch.profiler" and record["distributed"]["world_size"] == 2
    assert sorted(s["rank"] for s in record["rank_samples"]) == [0] * 4 + [1] * 4  # 2 warm-up + 2 steps each
    assert (capture / "kernels.md").read_text() in proc.stdout


def test_profile_takes_the_launch_options(tmp_path: Path) -> None:
    proc = run_main(["profile", "--help"], cwd=tmp_path)
    assert proc.returncode == 0
    for option in ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint", "--backend", "--job-timeout"):
        assert option in proc.stdout


def test_profile_of_a_job_refuses_one_process_profiles(tmp_path: Path) -> None:
    proc = run_main(["profile", *TINY_DDP, "--profile-memory", "--trace-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "lmbench: error: --memory-snapshot and --profile-memory profile one process; this job runs 2 ranks"]
    assert not (tmp_path / "run").exists()  # refused before anything started

