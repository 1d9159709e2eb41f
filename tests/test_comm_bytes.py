"""The bytes a data-parallel step moves (results/comm_bytes.py), checked against what real gloo jobs trace: `lmbench
profile --record-shapes` of a 2-rank DDP job (conftest's ddp_profile_job, shared with test_distributed_profile.py:
naive attention, so bool masks are broadcast beside RoPE's fp32 caches) and of a 2-rank FSDP2 job whose odd
vocabulary (257 rows) does not split in two (the embedding's and the head's shards are padded). Each c10d operator's
message size (nccl-tests' S: the larger buffer) is summed per measured step and phase and must equal the analytic
bytes exactly. Then the nsys kernel report of a DDP job sets those bytes, labelled analytic, beside its NCCL kernel
times with their bus bandwidth (the job's record, and SYNTHETIC NCCL kernel rows on the real H200 capture)."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import PROFILED_JOB, CliRun, read_lines, run_main, tiny
from lmbench.analysis.groups import capture_name
from lmbench.kernels import torch_trace
from lmbench.kernels.attribution import place_in_ranges
from lmbench.kernels.communication import ANALYTIC
from lmbench.kernels.report import write_kernel_report
from lmbench.model import build_model
from lmbench.results.comm_bytes import phase_bytes, step_collectives
from lmbench.results.record import Record
from test_nsys_ranks import rank_stats

ELEMENT_BYTES = {"float": 4, "c10::BFloat16": 2}  # the trace's Input type of a tensor
# c10d's operators: which of their (output, input) tensors is nccl-tests' S.
SIZE_ARG = {"c10d::allreduce_": 0, "c10d::broadcast_": 0, "c10d::_allgather_base_": 0, "c10d::_reduce_scatter_base_": 1}


def job_traces(run_dir: Path) -> tuple[Record, list[Path]]:
    """A profiled gloo job's record and its ranks' traces."""
    [record] = read_lines(run_dir / "results.jsonl")
    [capture] = run_dir.glob(capture_name(Record(record).config, Record(record).world_size))
    return Record(record), sorted(capture.glob("rank*.pt.trace.json.gz"))


def traced_messages(path: Path) -> pd.DataFrame:
    """Every c10d collective the trace's measured phases hold: step, phase, op, elements (of S) and bytes (where the
    trace names the dtype; a TensorList argument does not)."""
    rows = []
    for event in json.load(gzip.open(path))["traceEvents"]:
        if event.get("name") in SIZE_ARG:
            tensor = SIZE_ARG[event["name"]]
            dims, types = event["args"]["Input Dims"], event["args"]["Input type"]
            shapes = dims[0] if types[0] == "TensorList" else [dims[tensor]]
            elements = sum(math.prod(shape) for shape in shapes)
            rows.append({"start": round(event["ts"] * 1000), "op": event["name"], "elements": elements,
                         "bytes": elements * ELEMENT_BYTES[types[tensor]] if types[0] != "TensorList" else None})
    messages = pd.DataFrame(rows)
    placed = place_in_ranges(messages["start"].to_numpy(), torch_trace.lmbench_ranges(torch_trace.read_trace(path)))
    return messages.iloc[placed.index].assign(step=placed["step"].to_numpy(), phase=placed["phase"].to_numpy())


@pytest.fixture
def ddp_job(ddp_profile_job: CliRun) -> tuple[Record, list[Path]]:
    return job_traces(ddp_profile_job.run_dir)


@pytest.mark.slow  # a real 2-rank gloo job
def test_ddp_moves_every_gradient_and_the_buffers_each_step(ddp_job) -> None:
    record, traces = ddp_job
    expected = phase_bytes(step_collectives(record.config, 2), 2)
    assert set(expected) == {"forward", "backward", "step"}
    model = build_model(record.config.model_config(), "cpu")
    [gradient_bytes] = {p.element_size() for p in model.parameters()}  # the gradients' dtype is the parameters'
    # DDP broadcasts its buffers coalesced, one message per dtype: here fp32 cos and sin, the blocks' bool masks.
    buffers = dict(model.named_buffers()).values()  # DDP's modules_buffers: the shared RoPE caches once
    per_dtype = {dtype: [b for b in buffers if b.dtype == dtype] for dtype in {b.dtype for b in buffers}}
    element_bytes = {sum(b.numel() for b in same): same[0].element_size() for same in per_dtype.values()}
    assert len(element_bytes) == len(per_dtype) == 2  # the messages tell the dtypes apart by their size
    for trace in traces:
        messages = traced_messages(trace)  # the trace gives elements: c10d takes a TensorList of unnamed dtype
        assert sorted(messages["step"].unique()) == [0, 1]
        for _, step in messages.groupby("step"):
            forward, backward = (step[step["phase"] == phase] for phase in ("forward", "backward"))
            assert set(step["phase"]) == {"forward", "backward"}  # the optimizer moves nothing
            assert set(forward["op"]) == {"c10d::broadcast_"} and set(backward["op"]) == {"c10d::allreduce_"}
            assert sorted(forward["elements"]) == sorted(element_bytes)
            assert sum(n * element_bytes[n] for n in forward["elements"]) == expected["forward"][0]
            assert backward["elements"].sum() * gradient_bytes == expected["backward"][0]


C10D = {"all_reduce": "c10d::allreduce_", "broadcast": "c10d::broadcast_",
        "all_gather_into_tensor": "c10d::_allgather_base_", "reduce_scatter_tensor": "c10d::_reduce_scatter_base_"}


@pytest.mark.slow  # a real 2-rank gloo job
def test_fsdp_gathers_padded_units_twice_and_reduce_scatters_them(tmp_path: Path) -> None:
    proc = run_main(["profile", *PROFILED_JOB, "--vocab-size", "257", "--parallel", "fsdp", "--nproc-per-node", "2",
                     "--trace-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record, traces = job_traces(tmp_path / "run")
    assert len(traces) == 2
    collectives = step_collectives(record.config, 2)
    expected = {(c.phase, C10D[c.op]): c.bytes for c in collectives}
    assert list(expected) == [("forward", "c10d::_allgather_base_"), ("backward", "c10d::_allgather_base_"),
                              ("backward", "c10d::_reduce_scatter_base_")]
    gathered = expected["forward", "c10d::_allgather_base_"]
    assert gathered > 2 * record.params  # bf16, padded: the 257 rows of the embedding and the head in 2 shards of 129
    assert expected["backward", "c10d::_reduce_scatter_base_"] == 2 * gathered  # fp32 gradients
    for trace in traces:
        messages = traced_messages(trace)
        assert sorted(messages["step"].unique()) == [0, 1] and messages["bytes"].notna().all()
        for step, found in messages.groupby("step"):
            assert found.groupby(["phase", "op"])["bytes"].sum().to_dict() == expected, step
            assert (found["op"] == "c10d::_reduce_scatter_base_").sum() == record.config.model_config().n_layers + 1


@pytest.mark.slow  # the DDP job's record
def test_nsys_report_of_a_ddp_job_gives_analytic_bytes_and_bus_bandwidth(ddp_job, tmp_path: Path) -> None:
    record, traces = ddp_job
    shutil.copy(traces[0].parent.parent / "results.jsonl", tmp_path / "results.jsonl")
    name = capture_name(record.config, record.world_size)
    for rank in (0, 1):  # as `lmbench nsys` leaves the job's captures before the reports
        rank_stats(tmp_path / f"{name}.rank{rank}", rank)
    expected = phase_bytes(step_collectives(record.config, 2), 2)
    for rank in (0, 1):
        report = write_kernel_report(tmp_path / f"{name}.rank{rank}").read_text()
        assert "Bytes/step (analytic)" in report and "| Bytes/step |" not in report
        assert "so Bytes/step (analytic) is not measured" in report and "stay empty" not in report
        table = pd.read_csv(tmp_path / f"{name}.rank{rank}" / "kernels_communication.csv").set_index("phase")
        assert list(table.index) == ["backward", "step"]  # the synthetic NCCL kernels run in backward only
        assert table["bytes_per_step"].isna().all()  # nothing measured
        for phase in ("backward", "step"):  # the step's bytes include the forward's broadcast, without a kernel here
            row = table.loc[phase]
            assert row[ANALYTIC] == expected[phase][0]
            assert row["busbw_gbps"] == pytest.approx(expected[phase][1] / (row["comm_ms"] * 1e6))
        assert expected["backward"][1] == expected["backward"][0]  # all_reduce on 2 ranks: bus factor 2(n-1)/n = 1
    summary = (tmp_path / "kernels.md").read_text()
    assert "Bytes/step (analytic)" in summary and "so Bytes/step (analytic) is not measured" in summary
    before = (tmp_path / f"{name}.rank1" / "kernels.md").read_text()
    proc = run_main(["kernels", str(tmp_path / f"{name}.rank1")], cwd=tmp_path)  # re-rendered from the files alone
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{name}.rank1" / "kernels.md").read_text() == before


def test_one_process_moves_nothing_and_a_custom_model_is_not_guessed() -> None:
    assert step_collectives(tiny(), 1) == [] and phase_bytes([], 1) == {}
    assert step_collectives(tiny(model="tests.custom_model:build", parallel="ddp"), 2) is None
