"""One rank's memory in a data-parallel job (issue 13 item 5): analytic sizes sharded by FSDP or replicated by DDP
(by hand, for a tiny model), the memory table's row per rank and the memory findings on synthetic records with a
GPU's memory, and check_fits counting one rank's sizes (and the ranks sharing a CPU's RAM). The memory table of a
real 2-rank gloo FSDP job is checked in test_distributed.py's test_fsdp_on_two_nodes_of_one_host."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from helpers import tiny
from lmbench.analysis.findings.memory import memory_findings
from lmbench.analysis.memory import MB, memory_table
from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.measure import environment
from lmbench.measure.data_parallel import Job, oom_record
from lmbench.measure.harness import Measurement
from lmbench.measure.environment import check_fits
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.recording import build_record
from lmbench.render.timing_report import render_records
from lmbench.results.flops import param_count
from lmbench.results.record import Record
from lmbench.results.sizes import fsdp_shard_numel, shard_numel, tensor_bytes, unit_shapes

# tiny: d 64, d_ff 256, 2 layers; vocabulary 65, odd, so FSDP pads the embedding's and head's dim 0 to 33 rows.
V = 65
BLOCK = 64 + 3 * 64 * 64 + 64 * 64 + 64 + 3 * 256 * 64  # norm, qkv, out, norm, w1, w2, w3: 65,664
ROOT = 2 * V * 64 + 64  # embedding, head, final norm: 8,384
PARAMS = 2 * BLOCK + ROOT  # 139,712
BLOCK_SHARD = 32 + 96 * 64 + 32 * 64 + 32 + 3 * 128 * 64  # half of every tensor's dim 0: 32,832
ROOT_SHARD = 2 * 33 * 64 + 32  # 33 rows (padded) of each 65-row matrix: 4,256
SHARD = 2 * BLOCK_SHARD + ROOT_SHARD  # 69,920
GPU_GB = 139.8  # an H200 as torch reports it (environment.capture rounds to 0.1 GiB)


def test_the_units_add_up_to_the_parameter_count() -> None:
    cfg = tiny(vocab_size=V).model_config()
    block, root = unit_shapes(cfg)
    assert param_count(cfg) == PARAMS == 2 * shard_numel(block, 1) + shard_numel(root, 1)
    assert (shard_numel(block, 2), shard_numel(root, 2)) == (BLOCK_SHARD, ROOT_SHARD)
    assert (fsdp_shard_numel(cfg, 2), fsdp_shard_numel(cfg, 2, blocks=1)) == (SHARD, BLOCK_SHARD + ROOT_SHARD)


def test_fsdp_on_two_ranks_by_hand() -> None:
    sizes = tensor_bytes(tiny(vocab_size=V, mode="train-step", precision="bf16", parallel="fsdp"), world_size=2)
    assert (sizes["params"], sizes["grads"], sizes["optimizer"]) == (4 * SHARD, 4 * SHARD, 8 * SHARD)
    # Gathered in bf16 (2 bytes), padded to 2 shards each: the root unit and one block at a time.
    assert sizes["gathered"] == 2 * 2 * (ROOT_SHARD + BLOCK_SHARD) == 148_352
    assert sizes["unsharded_params"] == 4 * PARAMS and sizes["buckets"] == 0  # building: the whole model
    kept = tensor_bytes(tiny(vocab_size=V, precision="bf16", parallel="fsdp", reshard_after_forward=False),
                        world_size=2)
    assert kept["gathered"] == 2 * 2 * SHARD and kept["optimizer"] == 0  # every unit kept; forward-backward
    assert tensor_bytes(tiny(vocab_size=V, parallel="fsdp"), world_size=2)["gathered"] == 4 * 2 * (ROOT_SHARD + BLOCK_SHARD)


def test_ddp_is_a_replica_with_its_buckets_and_one_process_is_unchanged() -> None:
    ddp = tensor_bytes(tiny(vocab_size=V, mode="train-step", parallel="ddp"), world_size=2)
    assert (ddp["params"], ddp["grads"], ddp["optimizer"], ddp["buckets"]) == (4 * PARAMS, 4 * PARAMS, 8 * PARAMS,
                                                                              4 * PARAMS)
    one = tensor_bytes(tiny(vocab_size=V, mode="train-step", precision="bf16"))
    assert one == {"params": 4 * PARAMS, "grads": 4 * PARAMS, "optimizer": 8 * PARAMS, "inputs": 2 * 2 * 16 * 8,
                   "residual": 2 * 16 * 64 * 4, "scores": 2 * 4 * 16 * 16 * 2, "logits": 2 * 16 * V * 2,
                   "buckets": 0, "gathered": 0, "unsharded_params": 4 * PARAMS}


def _job_record(parallel: str, world_size: int, peaks: list[float] | None, **config: object) -> Record:
    """A train-step record of tiny (vocabulary V) as a `parallel` job on `world_size` ranks of GPUs of GPU_GB:
    finished, with these per-rank peaks (MB), or out of memory on rank 1 in the optimizer phase (peaks None)."""
    cfg = tiny(**{"vocab_size": V, "mode": "train-step", "parallel": parallel, **config})
    job = Job(cfg, world_size, LaunchOptions(nproc_per_node=world_size), "gloo", "cpu", world_size)
    if peaks is None:
        record = oom_record(job, {"rank": 1, "phase": "optimizer", "message": "CUDA out of memory.", "build_s": 1.0},
                            wall_s=2.0)
    else:
        samples = [{"step": i, "warmup": i == 0, "forward_ms": 1.0, "backward_ms": 2.0, "optimizer_ms": 0.5,
                    "step_ms": 3.5} for i in range(3)]
        measurement = Measurement(device=torch.device("cpu"), params=PARAMS, build_s=0.1, samples=samples)
        ranks = [{"rank": r, "memory": {"forward": {"peak_allocated_mb": p / 2}, "optimizer": {"peak_allocated_mb": p}}}
                 for r, p in enumerate(peaks)]
        record = build_record(cfg, measurement, wall_s=1.0, per_rank=[samples] * world_size,
                              distributed={"backend": "nccl", "world_size": world_size, "parallel": parallel,
                                           "ranks": ranks})
    data = copy.deepcopy(record.data)
    data["environment"].update(device_type="cuda", device_name="NVIDIA H200", gpu_memory_gb=GPU_GB)
    return Record(data)


def test_the_memory_table_has_a_row_per_rank_against_its_own_state() -> None:
    record = _job_record("fsdp", 2, [3.0, 3.5])
    table = memory_table([record])
    assert list(table["rank"]) == [0, 1] and list(table["peak_mb"]) == [3.0, 3.5]
    assert table["state_mb"][1] == pytest.approx(16 * SHARD / MB)
    assert table["beyond_state_mb"][1] == pytest.approx(3.5 - 16 * SHARD / MB)
    _, shown = render_records([record], "job")
    assert list(shown["memory"].columns[:3]) == ["Model", "Rank", "Peak alloc (MB)"]
    assert "FSDP gathered" in shown["memory"] and "DDP buckets" not in shown["memory"]
    [oom_row] = memory_table([_job_record("ddp", 2, None)]).itertuples()
    assert (oom_row.rank, oom_row.status, oom_row.buckets_mb) == (1, "oom", pytest.approx(4 * PARAMS / MB))


def test_a_finished_job_states_its_headroom() -> None:
    [found] = memory_findings([_job_record("fsdp", 2, [3.0, 3.5])])
    capacity = GPU_GB * 1024
    assert found.numbers["tiny"]["peak_mb"] == {0: 3.0, 1: 3.5} and found.numbers["tiny"]["n"] == 2
    assert (f"tiny train-step fsdp on 2 ranks: peak 3–4 MB (highest on rank 1), state 1 MB, "
            f"{3.5 - 16 * SHARD / MB:,.0f} MB beyond it") in found.claim
    assert f"{capacity - 3.5:,.0f} MB (100%) of the GPU's {capacity:,.0f} MB to spare" in found.claim
    assert f"unsharded, the state alone would be {16 * PARAMS / MB:,.0f} MB" in found.claim


def test_an_out_of_memory_job_says_why_from_its_sizes() -> None:
    """The 10B train step of issue 13 item 5, as records of jobs that ran out on an H200 (141 GB): DDP cannot hold
    it on any number of ranks; FSDP's state fits two, so running out there is the activations' doing."""
    capacity = GPU_GB * 1024
    state = 16 * param_count(BenchConfig(size="10B").model_config()) / MB  # every dimension divides by 2: no padding
    records = {}
    for parallel, ranks in (("ddp", 2), ("fsdp", 1), ("fsdp", 2)):
        record = _job_record(parallel, ranks, None, size="10B", vocab_size=10_000, precision="bf16")
        [records[parallel, ranks]] = memory_findings([record])
    ddp = records["ddp", 2]
    assert ddp.numbers["state_mb"] == pytest.approx(state * 5 / 4)  # + the buckets: a gradient's size again
    assert "more than the GPU's 143,155 MB: it cannot fit on 2 ranks at any batch: DDP keeps a full replica" in ddp.claim
    one = records["fsdp", 1]
    assert one.numbers["state_mb"] == pytest.approx(state) and one.numbers["ranks_to_fit"] == 2
    assert one.claim.endswith("it cannot fit on 1 rank at any batch; the state and gathered units would fit on 2 ranks.")
    two = records["fsdp", 2]
    assert two.numbers["state_mb"] == pytest.approx(state / 2) and two.numbers["need_mb"] < capacity
    assert (f"10B train-step fsdp on 2 ranks ran out of memory (rank 1, optimizer phase): each rank needs at least "
            f"{state / 2:,.0f} MB of persistent state") in two.claim
    assert f"{100 * two.numbers['need_mb'] / capacity:.0f}% of the GPU's 143,155 MB" in two.claim
    assert "CUDA out of memory." in two.basis


def _gpu(monkeypatch: pytest.MonkeyPatch, total: int) -> torch.device:
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=total))
    return torch.device("cuda")


def test_check_fits_counts_one_ranks_build_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    config = BenchConfig(size="10B", mode="train-step", precision="bf16")
    params = 4 * param_count(config.model_config())  # 51 GB: one GPU builds it, DDP's buckets double it
    gpu = _gpu(monkeypatch, int(1.5 * params))
    check_fits(config, gpu)
    check_fits(BenchConfig(size="10B", parallel="fsdp", precision="bf16"), gpu, world_size=2)
    with pytest.raises(LmbenchError, match=r"building it on each of 2 ddp ranks needs at least .*buckets 47.8 GiB"):
        check_fits(BenchConfig(size="10B", parallel="ddp"), gpu, world_size=2)
    # Each FSDP rank builds the whole model before fully_shard shards it: sharding does not shrink the build.
    with pytest.raises(LmbenchError, match=r"on each of 8 fsdp ranks \(each builds the whole model before sharding "
                                           r"it\) needs at least 47.8 GiB \(params 47.8 GiB\)"):
        check_fits(BenchConfig(size="10B", parallel="fsdp"), _gpu(monkeypatch, params // 2), world_size=8)


def test_check_fits_counts_the_ranks_sharing_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny(vocab_size=V, mode="train-step", parallel="fsdp")
    one_rank = sum(tensor_bytes(config, world_size=2)[name] for name in
                   ("params", "inputs", "grads", "optimizer", "buckets", "gathered", "logits"))
    whole = sum(tensor_bytes(tiny(vocab_size=V, mode="train-step"))[name] for name in
                ("params", "inputs", "grads", "optimizer", "logits"))
    assert one_rank < whole < 2 * one_rank
    monkeypatch.setattr(environment, "physical_memory", lambda: whole - 1)
    cpu = torch.device("cpu")
    with pytest.raises(LmbenchError, match="one step needs at least"):
        check_fits(tiny(vocab_size=V, mode="train-step"), cpu)  # one process: the whole state
    check_fits(config, cpu, world_size=2, ranks_per_node=1)  # one rank per node: its shard fits
    with pytest.raises(LmbenchError, match=r"one step on each of 2 fsdp ranks needs at least 2 ranks x .* = "):
        check_fits(config, cpu, world_size=2, ranks_per_node=2)  # both ranks in this machine's RAM
