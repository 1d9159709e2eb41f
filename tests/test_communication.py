"""Communication explained (issue 13 item 3): collective kernel time, exposed time and overlap, bytes and bus
bandwidth (kernels/communication.py), the weak-scaling decomposition (kernels/weak_scaling.py), the kernel report's
Communication section from per-rank traces, and Holistic Trace Analysis's overlap on the same traces."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbench.kernels import communication, torch_trace, weak_scaling
from lmbench.kernels.report import write_kernel_report
from tests.helpers import run_main

NCCL_AR = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
NCCL_AG = "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32"
ADD = "void at::native::vectorized_elementwise_kernel<4, AddFunctor<float>>()"


def exposed(comm: list[tuple[int, int]], compute: list[tuple[int, int]]) -> tuple[int, int]:
    arrays = [(np.array([s for s, _ in x], dtype=np.int64), np.array([e for _, e in x], dtype=np.int64))
              for x in (comm, compute)]
    return communication.exposed_ns(*arrays)


@pytest.mark.parametrize("comm, compute, wall, hidden_not", [
    ([(0, 100)], [(50, 200)], 100, 50),  # half covered by compute on another stream: half exposed
    ([(0, 100)], [(10, 20), (15, 30), (40, 50)], 100, 70),  # nested and overlapping compute: 20 + 10 covered
    ([(0, 100)], [(100, 200), (-50, 0)], 100, 100),  # adjacent compute, [start, end): nothing covered
    ([(0, 100), (50, 150), (300, 400)], [(120, 320)], 250, 200),  # comm overlapping comm, counted once
    ([(0, 100)], [], 100, 100),  # no compute at all
    ([], [(0, 100)], 0, 0),  # no communication
])
def test_exposed_arithmetic(comm, compute, wall, hidden_not):
    assert exposed(comm, compute) == (wall, hidden_not)


def test_kinds_match_hta():
    names = pd.Series([NCCL_AR, "ncclKernel_AllReduce_RING_LL_Sum_float", GEMM, "Memcpy DtoD (Device -> Device)",
                       "Memset (Device)", "[CUDA memcpy Device-to-Device]", "cudaStreamSync"])
    assert list(communication.kind(names)) == ["communication", "communication", "computation", "memory", "memory",
                                               "memory", "other"]


def test_bus_bandwidth_sizes():
    comms = pd.DataFrame({"collective": ["allreduce", "_allgather_base", "reduce_scatter_tensor_coalesced", "send",
                                         "allreduce"],
                          "in_nelems": [1024, 1000, 4000, 10, 5], "out_nelems": [1024, 2000, 2000, 10, 5],
                          "dtype": ["BFloat16", "Float", "Float", "Float", "NewType"], "group_size": [4, 2, 2, 2, None]})
    sized = communication.collective_sizes(comms)
    assert list(sized["size_bytes"].iloc[:4]) == [2048, 8000, 16000, 40] and np.isnan(sized["size_bytes"].iloc[4])
    assert list(sized["factor"].iloc[:3]) == [1.5, 0.5, 0.5]  # nccl-tests: 2(n-1)/n, (n-1)/n, (n-1)/n
    assert np.isnan(sized["factor"].iloc[3]) and np.isnan(sized["factor"].iloc[4])  # no factor, no group size


# A synthetic per-rank trace (µs): per step, forward [0, 300) and optimizer [700, 900) compute only; backward
# [300, 700) computes on stream 7 at [310, 410) [420, 520) [530, 630) while the all-reduce runs on stream 20 at
# [460, 600) (10 µs exposed, in the gap 520-530) and an all-gather at [640, 640 + tail) (all exposed).
STEP_US, STEPS = 1000, 2


def trace_events(rank: int, tail: int) -> dict:
    events, corr = [], 0

    def annotation(name: str, ts: float, dur: float) -> None:
        events.append({"ph": "X", "cat": "user_annotation", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur})

    def kernel(name: str, ts: float, dur: float, stream: int, extra: dict | None = None) -> None:
        nonlocal corr
        corr += 1
        events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": ts - 5,
                       "dur": 2, "args": {"correlation": corr, "External id": corr}})
        events.append({"ph": "X", "cat": "cpu_op", "name": "aten::op", "pid": 1, "tid": 1, "ts": ts - 6, "dur": 4,
                       "args": {"External id": corr}})
        events.append({"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": stream, "ts": ts, "dur": dur,
                       "args": {"device": 0, "stream": stream, "correlation": corr, "External id": corr,
                                **(extra or {})}})

    for step in range(STEPS):
        t = 100 + step * STEP_US
        annotation(f"ProfilerStep#{step + 3}", t - 50, 990)
        annotation(f"measured_{step}", t, 900)
        for name, start, end in (("forward", 0, 300), ("backward", 300, 700), ("optimizer", 700, 900)):
            annotation(name, t + start, end - start)
        kernel(GEMM, t + 10, 100, 7)
        kernel(ADD, t + 120, 100, 7)
        for start in (310, 420, 530):
            kernel(GEMM, t + start, 100, 7)
        kernel(NCCL_AR, t + 460, 140, 20)
        events[-2]["name"] = "record_param_comms"  # the operator NCCL's all-reduce records its message in
        events[-2]["args"].update({"Collective name": "allreduce", "In msg nelems": 1048576,
                                   "Out msg nelems": 1048576, "dtype": "BFloat16", "Group size": 2})
        kernel(NCCL_AG, t + 640, tail, 20, {"Collective name": "_allgather_base", "In msg nelems": 1000,
                                             "Out msg nelems": 2000, "dtype": "Float", "Group size": 2})
        kernel("Memcpy DtoD (Device -> Device)", t + 700, 20, 7)
        kernel(ADD, t + 730, 70, 7)
    return {"schemaVersion": 1, "deviceProperties": [],
            "distributedInfo": {"backend": "nccl", "rank": rank, "world_size": 2}, "traceEvents": events}


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    """Two ranks' traces in one capture directory, as `lmbench profile` on a distributed run writes them, plus an
    older rank-0 trace that the newest replaces."""
    directory = tmp_path_factory.mktemp("run") / "capture"
    directory.mkdir()
    for name, rank, tail in (("old_rank0", 0, 999), ("host_rank0", 0, 50), ("host_rank1", 1, 40)):
        path = directory / f"{name}.pt.trace.json.gz"
        with gzip.open(path, "wt") as f:
            json.dump(trace_events(rank, tail), f)
        os.utime(path, (1e9 + len(name) + rank, 1e9 + (0 if name.startswith("old") else 10 + rank)))
    return directory


def test_newest_trace_per_rank(capture):
    files = torch_trace.trace_files(capture)
    assert [p.name for p in torch_trace.newest_per_rank(files)] == ["host_rank0.pt.trace.json.gz",
                                                                   "host_rank1.pt.trace.json.gz"]
    assert torch_trace.newest_per_rank(files[:1]) == files[:1]


def test_communication_table(capture):
    traces = [torch_trace.read_trace(p) for p in torch_trace.newest_per_rank(torch_trace.trace_files(capture))]
    table = communication.trace_summary(traces).set_index(["rank", "phase"])
    assert set(table.index) == {(0, "backward"), (0, "step"), (1, "backward"), (1, "step")}
    row = table.loc[(0, "backward")]
    assert row["comm_kernels_per_step"] == 2 and row["comm_ms"] == pytest.approx(0.190)
    assert row["exposed_ms"] == pytest.approx(0.060) and row["overlap_pct"] == pytest.approx(100 * 130 / 190)
    assert row["bytes_per_step"] == 2 * 1048576 + 4 * 2000
    assert row["busbw_gbps"] == pytest.approx((2 * 1048576 * 1.0 + 8000 * 0.5) / 190e-6 / 1e9)
    rank1 = table.loc[(1, "step")]
    assert rank1["exposed_ms"] == pytest.approx(0.050) and rank1["overlap_pct"] == pytest.approx(100 * 130 / 180)


def test_kernel_report_section(capture, tmp_path):
    result = run_main(["kernels", str(capture), "--out", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "kernels.md").read_text()
    assert "## Communication (per measured step)" in report and "on each of 2 ranks" in report
    csv = pd.read_csv(tmp_path / "kernels_communication.csv")
    assert list(csv["rank"]) == [0, 0, 1, 1] and list(csv["phase"]) == ["backward", "step"] * 2


def test_report_without_collectives_has_no_section(capture, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    trace = trace_events(0, 50)
    trace["traceEvents"] = [e for e in trace["traceEvents"] if "nccl" not in e["name"]]
    (single / "a.pt.trace.json").write_text(json.dumps(trace))
    write_kernel_report(single)
    assert "Communication" not in (single / "kernels.md").read_text()
    assert not (single / "kernels_communication.csv").exists()


def test_hta_overlap_agrees(capture, tmp_path, monkeypatch):
    pytest.importorskip("hta")
    from benchmarks.hta_overlap import hta_overlap, lmbench_overlap, newest_per_rank
    monkeypatch.setenv("HTA_DISABLE_NS_ROUNDING", "1")
    files = newest_per_rank(capture)
    ours, theirs = lmbench_overlap(files), hta_overlap(capture, files)
    assert ours == pytest.approx({0: 100 * 130 / 190, 1: 100 * 130 / 180})
    assert set(theirs) == {0, 1} and all(abs(theirs[r] - ours[r]) <= 2.0 for r in ours), (ours, theirs)


class _Record:  # the two things from_records reads of a Record: its mean step over the measured steps, its ranks
    def __init__(self, totals: list[float], world_size: int) -> None:
        self._totals, self.world_size = totals, world_size

    def mean_ms(self) -> float:
        return sum(self._totals) / len(self._totals)


def test_weak_scaling_adds_up():
    # The 2.7B figures: 160.5 ms on one GPU, 229 ms per step on two.
    row = weak_scaling.decomposition(160.5, 229.0, 41.25, 2).iloc[0]
    assert row["efficiency_pct"] == pytest.approx(100 * 160.5 / 229.0)
    assert row["lost_ms"] == 229.0 - 160.5 and row["exposed_comm_ms"] + row["other_ms"] == row["lost_ms"]
    # The least exposed rank splits the loss (rank 1 here): the others' collectives also ran alone while they waited.
    table = pd.DataFrame({"rank": [0, 0, 1], "phase": ["backward", "step", "step"], "exposed_ms": [1.0, 9.0, 1.5]})
    row = weak_scaling.from_records(_Record([10.0, 12.0], 1), _Record([14.0, 16.0], 2), table).iloc[0]
    assert (row["one_gpu_ms"], row["n_gpu_ms"], row["lost_ms"], row["exposed_comm_ms"], row["other_ms"], row["rank"],
            row["most_exposed_ms"]) == (11.0, 15.0, 4.0, 1.5, 2.5, 1, 9.0)
    found = weak_scaling.finding(row)
    assert "73.3% weak-scaling efficiency" in found.claim and "1.50 ms is communication" in found.claim
    assert "(rank 1's trace)" in found.claim and "another rank's ran alone 9.00 ms" in found.claim
    assert weak_scaling.from_records(_Record([10.0], 1), _Record([14.0], 2), table, rank=0).iloc[0]["exposed_comm_ms"] == 9.0
    assert "no time is lost" in weak_scaling.finding(weak_scaling.decomposition(10, 9, 0.5, 2).iloc[0]).claim
