"""`lmbench collectives`: torchrun with gloo on the CPU (2 ranks, tiny sizes) end to end, a rank that fails, bad
options; and, without torchrun, sizes, nccl-tests' factors, the plateau finding, the torchrun command and the
worker's out-of-memory records (one in-process rank)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import read_lines, run_main

from lmbench.analysis.findings.collectives import plateau_from, plateaus
from lmbench.config import size_text
from lmbench.measure.collectives_options import CollectivesOptions, parse_sizes
from lmbench.results.collectives import COLLECTIVE_OPS
from lmbench.errors import LmbenchError
from lmbench.measure.launch import LaunchOptions, torchrun_command
from lmbench.results.collectives import bus_factor, element_count

TINY = ["--sizes", "1K,64K", "--warmup", "1", "--steps", "3", "--device", "cpu", "--nproc-per-node", "2",
        "--timeout", "60", "--job-timeout", "150"]
NCCL_TESTS_FACTORS_2_RANKS = {"all_reduce": 1.0, "all_gather_into_tensor": 0.5, "reduce_scatter_tensor": 0.5,
                              "broadcast": 1.0, "all_to_all_single": 0.5}  # 2(n-1)/n, (n-1)/n, (n-1)/n, 1, (n-1)/n


def _processes_naming(text: str) -> list[str]:
    """Command lines of live processes that contain `text` (what a job left behind)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line and "pytest" not in line:
            found.append(line)
    return found


@pytest.mark.slow  # torchrun and two gloo ranks, each importing torch (about 15 s on 2 cores)
def test_collectives_through_torchrun(tmp_path: Path) -> None:
    proc = run_main(["collectives", *TINY, "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "collectives.csv").open()))
    assert [(r["op"], int(r["requested_bytes"])) for r in rows] == [(op, s) for op in COLLECTIVE_OPS for s in (1024, 65536)]
    for row in rows:
        time_ms, algbw, busbw = (float(row[c]) for c in ("time_ms", "algbw_gbps", "busbw_gbps"))
        assert row["status"] == "ok" and time_ms > 0 and algbw > 0 and busbw > 0
        assert algbw == pytest.approx(int(row["bytes"]) / (time_ms / 1e3) / 1e9, rel=1e-12)
        assert busbw == pytest.approx(algbw * NCCL_TESTS_FACTORS_2_RANKS[row["op"]], rel=1e-12)
        assert row["world_size"] == "2" and row["backend"] == "gloo"
    records = read_lines(run / "collectives.jsonl")
    assert all(len(r["samples_ms"]) == 2 and all(len(steps) == 3 for steps in r["samples_ms"]) for r in records)
    assert max(map(sum, records[0]["samples_ms"])) / 3 == pytest.approx(float(rows[0]["time_ms"]))  # slowest rank
    report = (run / "collectives.md").read_text()
    assert proc.stdout.strip() == report.strip()
    assert (run / "plots" / "busbw-fp32-2ranks-gloo-cpu.png").stat().st_size > 0
    assert (run / "collectives.tex").read_text().count(r"\toprule") == 1
    for op in COLLECTIVE_OPS:  # each collective's finding: a plateau, or that none was reached in 1 KiB–64 KiB
        assert f"**{op}** — " in report and ("plateau of" in report or "no plateau in the measured range" in report)
    assert "lmbench: error" not in proc.stderr and "all_reduce 1 KiB fp32:" in proc.stderr  # progress passed on
    rerendered = run_main(["report", "run"], cwd=tmp_path)  # the report again, from the stored records only
    assert rerendered.returncode == 0 and (run / "collectives.md").read_text() == report


@pytest.mark.slow  # torchrun and two ranks starting, one of which then fails
def test_a_failing_rank_ends_the_job_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMBENCH_TEST_FAIL_RANK", "1")
    start = time.perf_counter()
    proc = run_main(["collectives", *TINY, "--ops", "all_reduce", "--run-dir", "failed"], cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lmbench:")]
    assert errors == ["lmbench: error: lmbench collectives failed: rank 1: failing on purpose (LMBENCH_TEST_FAIL_RANK=1)"]
    assert "Traceback" not in proc.stderr and time.perf_counter() - start < 100
    assert _processes_naming(str(tmp_path / "failed")) == []  # torchrun and both ranks have ended


@pytest.mark.parametrize("args, message", [
    (["--sizes", "4G-1K"], "size range '4G-1K' must run from small to large"),
    (["--sizes", "1K,lots"], "size 'lots' is not a positive number of bytes"),
    (["--ops", "all_reduce,gossip"], "unknown collective 'gossip'"),
    (["--dtype", "fp64"], "unknown dtype 'fp64'"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--nnodes", "2"], "2 nodes need --rdzv-endpoint HOST:PORT of node 0"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "node_rank must be 0 to 1"),
    (["--rdzv-endpoint", "nohost"], "rdzv_endpoint must be HOST:PORT"),
    (["--backend", "nccl", "--device", "cpu"], "backend nccl needs CUDA devices"),
    (["--nproc-per-node", "0"], "nproc_per_node must be a positive integer"),
    (["--resume"], "--resume needs --run-dir"),
])
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run_dir = [] if "--resume" in args else ["--run-dir", "run"]
    proc = run_main(["collectives", *args, *run_dir], cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("lmbench: error: ")
    assert message in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_more_ranks_than_gpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from lmbench.measure.distributed import check_launch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    with pytest.raises(LmbenchError, match="2 processes per node but this node has 1 CUDA device"):
        check_launch(LaunchOptions(nproc_per_node=2), "cuda")
    assert check_launch(LaunchOptions(), "cuda")[1:] == ("nccl", 1)  # by default one rank per GPU, nccl


def test_sizes_and_their_names() -> None:
    assert parse_sizes("1K-4G") == tuple(2**k for k in range(10, 33))
    assert parse_sizes("1K-4G:4") == tuple(4**k * 1024 for k in range(12))
    assert parse_sizes("256M,1K,1KiB,4096") == (1024, 4096, 256 * 2**20)
    assert len(CollectivesOptions().size_list("cuda")) == 23 and CollectivesOptions().size_list("cpu")[-1] == 2**28
    assert [size_text(s) for s in (1000, 1024, 3 * 2**29, 4 * 2**30)] == ["1000 B", "1 KiB", "1.5 GiB", "4 GiB"]


def test_nccl_tests_factors_and_counts() -> None:
    assert [bus_factor(op, 8) for op in COLLECTIVE_OPS] == [2 * 7 / 8, 7 / 8, 7 / 8, 1.0, 7 / 8]
    assert element_count("all_reduce", 1000, 4, 3) == 250  # whole elements
    assert element_count("all_gather_into_tensor", 1000, 4, 3) == 249  # a multiple of the ranks, as nccl-tests
    assert element_count("all_to_all_single", 4, 4, 3) == 3  # at least one element per rank


def _table(op: str, busbw: list[float], factor: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"op": op, "requested_bytes": [2**(10 + i) for i in range(len(busbw))], "status": "ok",
                         "busbw_gbps": busbw, "bus_factor": factor, "steps": 20})


def test_plateau_finding() -> None:
    assert plateau_from([1, 50, 91, 100, 95]) == 2
    [found] = plateaus(_table("all_reduce", [1, 50, 91, 100, 95]))
    assert found.numbers["plateau_from"] == 4096 and found.numbers["peak_gbps"] == 100
    assert found.claim.startswith("from 4 KiB on, bus bandwidth stays within 10% of its plateau of 100 GB/s at 8 KiB")
    [rising] = plateaus(_table("broadcast", [1, 10, 50, 100]))
    assert rising.numbers["plateau_from"] is None and "still rising at the largest size, 100 GB/s at 8 KiB" in rising.claim
    [fell] = plateaus(_table("all_to_all_single", [1, 100, 50]))
    assert fell.numbers["plateau_from"] is None and "peaks at 100 GB/s at 2 KiB and falls to 50 GB/s" in fell.claim
    [alone] = plateaus(_table("all_reduce", [0.0, 0.0], factor=0.0))  # one rank: (n-1)/n = 0
    assert "with one rank nothing crosses between ranks" in alone.claim and "plateau of" not in alone.claim


def test_torchrun_command() -> None:
    child = ["python", "-m", "lmbench.measure.collectives", "--run-dir", "r"]
    one = torchrun_command(LaunchOptions(timeout=30), 2, child)
    assert one == ["python", "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "0",
                   "--standalone", "--rdzv-conf", "join_timeout=30", "-m", "lmbench.measure.collectives", "--run-dir", "r"]
    nodes = torchrun_command(LaunchOptions(nnodes=2, node_rank=1, rdzv_endpoint="node0:29500"), 4, child)
    assert nodes[3:15] == ["--nproc-per-node", "4", "--max-restarts", "0", "--nnodes", "2", "--node-rank", "1",
                           "--rdzv-endpoint", "node0:29500", "--rdzv-conf", "timeout=300"]


def test_buffers_that_do_not_fit_are_oom_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 one_rank: None) -> None:
    """The worker itself, as a one-rank gloo job in this process: sizes beyond the (pretended) host memory are
    stored as OOM and the sweep goes on to the next collective."""
    from lmbench.measure import collectives
    monkeypatch.setattr(collectives, "_mem_available", lambda: 3 * 2**20)
    options = CollectivesOptions(ops="all_reduce,all_to_all_single", sizes="1K,2M", warmup=0, steps=2, device="cpu")
    collectives.measure(options, "gloo", 30.0, tmp_path, resume=False)
    records = read_lines(tmp_path / "collectives.jsonl")
    assert [(r["op"], r["requested_bytes"], r["status"]) for r in records] == [
        ("all_reduce", 1024, "ok"), ("all_reduce", 2**21, "ok"),
        ("all_to_all_single", 1024, "ok"), ("all_to_all_single", 2**21, "oom")]  # 2 x 2 MiB > 3 MiB
    assert "4 MiB of host memory on this node, 3 MiB is available" in records[-1]["oom"]["message"]
