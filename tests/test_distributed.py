"""Data-parallel bench and sweep (issue 13): one torchrun job with gloo on the CPU end to end, `lmbench bench` of a
tiny FSDP train step with a global batch on two "nodes" of one host (its record, report and node 1's output checked
by the tests that share it; DDP's ranks run on torchrun in test_distributed_profile.py and test_nsys_ranks.py); and
without torchrun: keys, the global batch, refused combinations, the job's samples, the straggler finding, the
report, a rank out of memory as the lmbench process stores it (torchrun played by a script), and the worker itself as
a one-rank gloo job in this process (a failing rank, a rank out of memory). A failing rank ending a torchrun job is
test_collectives.py's (the same launcher); a rendezvous that cannot form (node 0 of two, no node 1) ends in one line
after --timeout."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import cli_env, free_port, read_lines, run_main, tiny

from lmbench.analysis.findings.ranks import straggler, weak_scaling
from lmbench.analysis.findings.timing import out_of_memory
from lmbench.analysis.memory import MB, memory_peak_mb, memory_table
from lmbench.config import DEFAULT_BATCH, BenchConfig
from lmbench.errors import LmbenchError
from lmbench.measure.data_parallel import Job, oom_record, plan_jobs
from lmbench.measure.harness import Measurement, measure
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.processes import merge_processes
from lmbench.measure.recording import build_record
from lmbench.measure.sampling import Sampling
from lmbench.render.timing_report import render_records
from lmbench.results.record import read_record
from lmbench.results.sizes import tensor_bytes

TINY = ["--size", "tiny", "--ctx", "16", "--vocab-size", "64", "--warmup", "1", "--steps", "3", "--device", "cpu",
        "--timeout", "60", "--job-timeout", "150"]  # the batch (2 per rank) is given by each test


def _phase_total(sample: dict) -> float:
    return sum(v for k, v in sample.items() if k.endswith("_ms") and k != "step_ms")


def job_record(rank_totals: list[list[float]], warmup: int = 1, **fields):
    """A ddp forward-backward record of tiny (with `fields`) on len(rank_totals) gloo ranks whose steps have these
    totals."""
    per_rank = [[{"step": i, "warmup": i < warmup, "forward_ms": t / 3, "backward_ms": 2 * t / 3, "step_ms": t}
                 for i, t in enumerate(totals)] for totals in rank_totals]
    config = tiny(parallel="ddp", warmup=warmup, steps=len(rank_totals[0]) - warmup, **fields)
    # A global batch divides into the per-rank one (tiny's own batch set back to the default it may replace).
    config = dataclasses.replace(config, batch=DEFAULT_BATCH) if config.global_batch is not None else config
    if config.global_batch is not None:
        config = config.for_ranks(len(rank_totals))
    job = {"backend": "gloo", "world_size": len(rank_totals), "ranks_per_node": len(rank_totals), "nodes": 1,
           "parallel": "ddp"}
    measurement = Measurement(device=torch.device("cpu"), params=1000, build_s=0.1, samples=per_rank[0])
    return build_record(config, measurement, wall_s=1.0, distributed=job, per_rank=per_rank)


# -- end to end, through torchrun ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_node_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess, tuple[str, str]]:
    """One FSDP train-step configuration with a global batch on two "nodes" of this host, one rank each, measured
    as two torchrun jobs (--repeats 2): two torchrun agents a job and two lmbench processes (node 1's a real
    `python -m lmbench`, node 0's in this process), which must launch the same jobs in turn. Its merged record,
    report and node 1's output serve every end-to-end test below, so the suite starts one job of training ranks here (DDP
    runs on torchrun in test_distributed_profile.py and test_nsys_ranks.py). Returns (the directory, node 0's run,
    node 1's (stdout, stderr)); tests must not modify the directory."""
    cwd = tmp_path_factory.mktemp("two_nodes")
    nodes = [*TINY, "--global-batch", "4", "--mode", "train-step", "--parallel", "fsdp", "--nproc-per-node", "1",
             "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--repeats", "2"]
    node_1 = subprocess.Popen([sys.executable, "-m", "lmbench", "bench", *nodes, "--node-rank", "1", "--run-dir",
                               "node1"], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        node_0 = run_main(["bench", *nodes, "--node-rank", "0", "--run-dir", "node0"], cwd=cwd)
        out_1, err_1 = node_1.communicate(timeout=120)
    finally:
        if node_1.poll() is None:
            node_1.kill()
            node_1.communicate()
    assert node_0.returncode == 0 and node_1.returncode == 0, (node_0.stderr, err_1)
    return cwd, node_0, (out_1, err_1)


@pytest.mark.slow  # the two-node job: two torchrun agents, two lmbench processes, one rank each
def test_bench_job_through_torchrun(two_node_job) -> None:
    """The merged record of two jobs: the global batch divided per rank, every rank's samples labelled with their
    job, the job's step its slowest rank's step by step, the process (job) as the unit of the statistics,
    throughput of the whole job, the per-rank table and report."""
    cwd, proc, _ = two_node_job
    assert "fsdp on 2 ranks (1 per node x 2 nodes, gloo on cpu), batch 2 per rank" in proc.stderr
    [data] = read_lines(cwd / "node0" / "results.jsonl")
    record = read_record(data)
    assert record.world_size == 2 and record.config.batch == 2 and record.config.global_batch == 4
    assert [r["rank"] for r in record.distributed["ranks"]] == [0, 1] and record.distributed["backend"] == "gloo"
    by_rank = {rank: [s for s in record.rank_samples if s["rank"] == rank] for rank in (0, 1)}
    assert [len(samples) for samples in by_rank.values()] == [8, 8]  # 1 warm-up and 3 measured steps a job
    assert [s["process"] for s in by_rank[1]] == [0] * 4 + [1] * 4
    assert [p["process"] for p in record.data["processes"]] == [0, 1] and record.sampling["unit"] == "process"
    for i, sample in enumerate(record.samples):  # the job's step is its slowest rank's, exactly
        totals = [_phase_total(by_rank[rank][i]) for rank in (0, 1)]
        assert by_rank[0][i]["process"] == sample["process"] and by_rank[0][i]["step"] == sample["step"]
        assert _phase_total(sample) == max(totals) and totals[sample["slowest_rank"]] == max(totals)
    measured = [_phase_total(s) for s in record.samples if not s["warmup"]]
    assert record.mean_ms() == pytest.approx(sum(measured) / 6, rel=1e-12)
    assert len(record.process_stats["total"]["means"]) == 2
    [jobs] = (cwd / "node0" / "processes").iterdir()  # each job's own record, kept
    assert [read_record(d).world_size for d in read_lines(jobs / "results.jsonl")] == [2, 2]
    assert record.throughput["tokens_per_s"] == pytest.approx(4 * 16 / (record.mean_ms() * 1e-3))  # the whole job's
    ranks_csv = (cwd / "node0" / "ranks.csv").read_text().splitlines()
    total_row = dict(zip(ranks_csv[0].split(","), next(r for r in ranks_csv if ",total," in r).split(",")))
    rank_1 = [_phase_total(s) for s in by_rank[1] if not s["warmup"]]
    assert float(total_row["rank_1_mean_ms"]) == pytest.approx(sum(rank_1) / 6, rel=1e-12)
    assert "### Per-Rank Means" in proc.stdout and "fsdp on 2 ranks (2 nodes, gloo), global batch 4" in proc.stdout


@pytest.mark.slow  # the two-node job (above)
def test_fsdp_on_two_nodes_of_one_host(two_node_job) -> None:
    """Node 1 leaves the record and the report to node 0; the memory table sets each rank's own peak (its own
    process's RSS) beside one rank's sharded sizes."""
    cwd, node_0, (out_1, err_1) = two_node_job
    assert "node 1 done; the record and the report are on node 0" in err_1 and out_1 == ""
    assert not (cwd / "node1" / "results.jsonl").exists() and not (cwd / "node1" / "processes").exists()
    [record] = (read_record(d) for d in read_lines(cwd / "node0" / "results.jsonl"))
    assert (record.world_size, record.distributed["nodes"], record.config.parallel) == (2, 2, "fsdp")
    assert sorted({s["rank"] for s in record.rank_samples}) == [0, 1] and record.ok
    table = memory_table([record])
    assert list(table["rank"]) == [0, 1]
    assert list(table["peak_mb"]) == [memory_peak_mb(r["memory"]) for r in record.distributed["ranks"]]
    assert table["params_mb"][0] * MB == tensor_bytes(record.config, world_size=2)["params"] < record.params * 4
    assert "| Rank " in node_0.stdout and "FSDP gathered" in node_0.stdout and "Per-rank memory" in node_0.stdout


# -- configurations and their checks ------------------------------------------------------------------------

@pytest.mark.slow  # torchrun's rendezvous waits out --timeout 1 (about 7 s in all)
def test_a_rendezvous_that_cannot_form_ends_in_one_line(tmp_path: Path) -> None:
    alone = [*TINY, "--mode", "train-step", "--parallel", "ddp", "--nproc-per-node", "1", "--nnodes", "2",
             "--node-rank", "0", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--timeout", "1", "--run-dir", "r"]
    started = time.monotonic()
    proc = run_main(["bench", *alone], cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert proc.returncode == 2 and proc.stderr.endswith("\n") and proc.stderr.count("lmbench: error:") == 1
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("lmbench: error:")]
    assert error.startswith("lmbench: error: tiny train-step ddp on 2 ranks failed: ") and "1/2" in error, error
    assert not (tmp_path / "r" / "results.jsonl").exists() or not read_lines(tmp_path / "r" / "results.jsonl")


def test_keys_of_records_stored_before_data_parallel_stand() -> None:
    stored = read_lines(Path(__file__).parent / "fixtures" / "trace-cpu-tiny" / "results.jsonl")[0]
    assert BenchConfig.from_dict(stored["config"]).key() == stored["key"]
    config = tiny(parallel="ddp", batch=4, global_batch=8)  # batch 4, the default: not given
    keys = {config.key(), config.key(2), tiny().key(), tiny(parallel="fsdp", batch=4, global_batch=8).key(2)}
    assert len(keys) == 4  # parallel, world size and strategy each make a configuration of their own
    assert config.for_ranks(2).key(2) == config.key(2)  # a global batch resolved per rank keeps its key


def test_global_batch_divides_across_ranks() -> None:
    assert BenchConfig(global_batch=8).for_ranks(2).batch == 4 and tiny(global_batch=8).for_ranks(4).batch == 2
    with pytest.raises(LmbenchError, match="--global-batch 8 does not divide evenly across 3 ranks"):
        BenchConfig(global_batch=8).for_ranks(3)
    with pytest.raises(LmbenchError, match="--batch 3 is per rank and --global-batch 8 on 2 ranks makes it 4"):
        BenchConfig(batch=3, global_batch=8).for_ranks(2)


@pytest.mark.parametrize("args, message", [
    (["bench", "--nproc-per-node", "2"], "launch options run data-parallel jobs: give --parallel ddp or fsdp"),
    (["bench", "--parallel", "ddp", "--backend", "nccl"], "backend nccl needs CUDA devices"),
    (["bench", "--bucket-cap-mb", "50"], "--bucket-cap-mb applies to --parallel ddp, not none"),
    (["bench", "--parallel", "ddp", "--no-reshard-after-forward"], "applies to --parallel fsdp, not ddp"),
    (["bench", "--parallel", "fsdp", "--precision", "fp16"], "--parallel fsdp runs fp32 or bf16"),
    (["bench", "--parallel", "ddp", "--target-ci", "2"], "--target-ci does not apply to it"),
    (["bench", "--parallel", "ddp", "--global-batch", "5"], "--global-batch 5 does not divide evenly across 2 ranks"),
    (["bench", "--parallel", "ddp", "--batch", "2", "--global-batch", "4"], "give one of the two"),
    (["sweep", "--parallel", "none,ddp", "--nnodes", "2", "--rdzv-endpoint", "h:1"], "runs data-parallel jobs only"),
    (["sweep", "--parallel", "ddp", "--nnodes", "2", "--rdzv-endpoint", "h:1", "--resume"], "only node 0 holds"),
    (["warmup", "--parallel", "fsdp"], "lmbench warmup measures one process"),
])
def test_bad_combinations_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_main([*args, "--size", "tiny", "--device", "cpu", "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("lmbench: error: ") and message in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_more_ranks_than_gpus_and_one_process_measures_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LmbenchError, match="--parallel ddp runs on the ranks of a torchrun job"):
        measure(tiny(parallel="ddp"))  # in this process, without a rank
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    with pytest.raises(LmbenchError, match="2 processes per node but this node has 1 CUDA device"):
        plan_jobs([BenchConfig(parallel="ddp", device="cuda")], Sampling(), LaunchOptions(nproc_per_node=2))


# -- the job's samples, findings and report -----------------------------------------------------------------

def test_the_job_step_is_the_slowest_rank_per_step() -> None:
    record = job_record([[30.0, 10.0, 12.0, 9.0], [20.0, 11.0, 10.0, 9.0]])
    assert [s["slowest_rank"] for s in record.samples] == [0, 1, 0, 0]  # a tie goes to the lower rank
    assert record.totals() == pytest.approx([11.0, 12.0, 9.0]) and record.mean_ms() == pytest.approx(32 / 3)
    assert len(record.rank_samples) == 8 and {s["rank"] for s in record.rank_samples} == {0, 1}
    damaged = json.loads(json.dumps(record.data))
    damaged["rank_samples"][5]["rank"] = 2
    with pytest.raises(ValueError, match="rank sample 5: rank 2 is not one of the job's 2 ranks"):
        read_record(damaged)


def test_a_rank_slowest_in_every_step_is_a_straggler() -> None:
    steps = [10.0 + 0.1 * k for k in range(8)]
    found = straggler(job_record([[9.0, *steps], [9.0, *(t + 2.0 for t in steps)]]))
    assert found is not None and found.numbers["rank"] == 1 and found.numbers["slowest_steps"] == 8
    assert found.numbers["mean_margin_ms"] == pytest.approx(2.0) and found.numbers["p_value"] == pytest.approx(1 / 256)
    assert "rank 1 of 2 was the slowest in 8 of 8 measured steps, by 2.00 ms" in found.claim
    # Slowest in 4 of 5 steps: 80%, but with two ranks chance gives that 3 times in 16 (p = 0.19): no claim.
    assert straggler(job_record([[9.0, 10, 10, 10, 10, 12], [9.0, 11, 11, 11, 11, 10]])) is None
    assert straggler(job_record([[9.0, 10, 12] * 3, [9.0, 12, 10] * 3])) is None  # they take turns


def test_a_job_is_held_against_one_gpu_of_its_per_rank_configuration() -> None:
    one = job_record([[9.0, 10.0, 10.2, 9.8, 10.0]])
    two = job_record([[9.0, 12.0, 12.2, 11.8, 12.0], [9.0, 11.0, 11.0, 11.0, 11.0]])
    found = weak_scaling([one, two])
    name = f"{two.label} on 2 ranks"
    assert found.numbers["efficiency_pct"] == {name: pytest.approx(100 * 10 / 12)}
    assert found.numbers["lost_ms"][name] == pytest.approx(2.0) and found.numbers["pairs"][name]["unit"] == "step"
    assert f"{name} 83.3% (" in found.claim and "CI below 100%), 2.00 ms lost per step (10.00 → 12.00 ms)" in found.claim
    assert weak_scaling([two]) is None  # no one-GPU record to hold it against
    assert weak_scaling([job_record([[9.0, 10.0, 10.2, 9.8, 10.0]], warmup=2), two]) is None  # another configuration
    # One rank doing a global batch that two ranks split is strong scaling: no weak-scaling pair.
    assert weak_scaling([job_record([[9.0, 20.0, 20.0]], global_batch=4),
                         job_record([[9.0, 12.0, 12.0], [9.0, 11.0, 11.0]], global_batch=4)]) is None
    # Two configurations of one size and rank count are named apart, not merged into one entry.
    wider = [job_record([[9.0, 20.0, 20.2, 19.8]], ctx=32), job_record([[9.0, 22.0, 22.0, 22.0], [9.0, 21.0, 21.0, 21.0]], ctx=32)]
    assert sorted(weak_scaling([one, two, *wider]).numbers["lost_ms"]) == ["tiny ctx 16 on 2 ranks",
                                                                             "tiny ctx 32 on 2 ranks"]
    markdown, _ = render_records([one, two], "job")
    assert "## Findings across groups" in markdown and "**weak scaling** — Weak-scaling efficiency" in markdown
    # Each side measured in two jobs (--repeats 2): the job is the unit, and the CI says so.
    ones = merge_processes([job_record([[9.0, 10.0, 10.2, 9.8]]), job_record([[9.0, 10.4, 10.6, 10.2]])],
                           Sampling(repeats=2), "count")
    twos = merge_processes([job_record([[9.0, 12.0, 12.2, 11.8], [9.0, 11.0, 11.0, 11.0]]),
                            job_record([[9.0, 12.6, 12.8, 12.4], [9.0, 11.0, 11.0, 11.0]])], Sampling(repeats=2), "count")
    found = weak_scaling([ones, twos])
    assert found.numbers["pairs"][name]["unit"] == "process" and "95% CI with processes as the unit" in found.claim
    assert found.numbers["efficiency_pct"][name] == pytest.approx(100 * 10.2 / 12.3)


def test_the_report_shows_each_rank() -> None:
    record = job_record([[9.0, 10.0, 10.0, 10.0], [9.0, 12.0, 12.0, 12.0]])
    markdown, tables = render_records([record], "job")
    assert "- Data parallel (torchrun; batch sizes above are per rank): ddp on 2 ranks (1 node, gloo)" in markdown
    row = tables["ranks"].set_index("Phase").loc["total"]
    assert (row["Rank 0 (ms)"], row["Rank 1 (ms)"], row["Spread (ms)"], row["Spread (% of mean)"]) == (
        "10.00", "12.00", "2.00", "18.2%")
    assert "straggler" not in markdown  # slowest in 3 of 3 steps: chance gives that once in 8
    # A job of one rank has no spread across ranks to show.
    markdown, tables = render_records([job_record([[9.0, 10.0, 10.0, 10.0]])], "job")
    assert "ranks" not in tables and "Per-Rank Means" not in markdown


def test_a_rank_out_of_memory_becomes_the_jobs_oom_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the lmbench process does with a job whose rank 1 ran out of memory, torchrun played by a script: the
    rank's line (beside a garbled one and the other rank's error) becomes an OOM record naming it, stored; a job that
    fails without one is its one-line error."""
    from lmbench.measure import data_parallel
    from lmbench.results.store import ResultsStore
    lines = ['lmbench: oom: {"rank": 1, "phase": "backward", "message": "CUDA out of memory.", "build_s": 0.5}',
             "lmbench: oom: {garbled", "lmbench: error: rank 0: DistBackendError: connection closed by peer"]
    torchrun = [sys.executable, "-c", f"import sys; print({chr(10).join(lines)!r}, file=sys.stderr); sys.exit(1)"]
    monkeypatch.setattr(data_parallel, "torchrun_command", lambda launch, nproc, child: torchrun)
    config = tiny(parallel="ddp")
    job, store, shown = Job(config, 2, LaunchOptions(nproc_per_node=2), "gloo", "cpu", 2), ResultsStore(tmp_path), []
    record = data_parallel.run_data_parallel(job, store, on_line=shown.append)
    assert store.records() == [record] and shown == ["oom: {garbled"]
    assert (record.status, record.oom_phase, record.oom_rank, record.oom_message) == ("oom", "backward", 1,
                                                                                     "CUDA out of memory.")
    assert (record.key, record.world_size, record.samples) == (config.key(2), 2, [])
    [found] = out_of_memory([record])
    assert found.claim == "tiny ran out of memory in the backward phase on rank 1 of 2."
    torchrun[-1] = f"import sys; print({lines[-1]!r}, file=sys.stderr); sys.exit(1)"
    with pytest.raises(LmbenchError, match="^tiny forward-backward ddp on 2 ranks failed: rank 0: DistBackendError"):
        data_parallel.run_data_parallel(job, store)


# -- the worker, as a one-rank gloo job in this process -------------------------------------------------------

def test_a_failing_or_out_of_memory_rank_says_so_in_one_line(tmp_path: Path, one_rank: None,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    from lmbench.measure import data_parallel
    config = tiny(parallel="ddp", vocab_size=64, steps=1)
    argv = ["--config", json.dumps(dataclasses.asdict(config)), "--backend", "gloo", "--timeout", "30",
            "--run-dir", str(tmp_path)]
    monkeypatch.setenv("LMBENCH_TEST_FAIL_RANK", "0")
    with pytest.raises(SystemExit) as failed:
        data_parallel.main(argv)
    assert failed.value.code == 2
    assert capsys.readouterr().err == "lmbench: error: rank 0: failing on purpose (LMBENCH_TEST_FAIL_RANK=0)\n"
    torch.distributed.destroy_process_group()

    monkeypatch.delenv("LMBENCH_TEST_FAIL_RANK")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("LMBENCH_TEST_OOM", "0:forward")
    with pytest.raises(SystemExit) as ran_out:
        data_parallel.main(argv)
    [line] = capsys.readouterr().err.splitlines()
    assert ran_out.value.code == 3 and line.startswith("lmbench: oom: ")
    oom = json.loads(line.removeprefix("lmbench: oom: "))
    assert (oom["rank"], oom["phase"]) == (0, "forward") and oom["message"].startswith("out of memory on purpose")
    job = Job(config, 2, LaunchOptions(nproc_per_node=2), "gloo", "cpu", 2)
    record = read_record(oom_record(job, oom, wall_s=1.0).data)  # what the lmbench process stores from the line
    assert (record.status, record.oom_rank, record.world_size, record.key) == ("oom", 0, 2, config.key(2))


def test_repeated_jobs_merge_up_to_the_one_that_ran_out_of_memory() -> None:
    """--repeats on a job whose second run ran out of memory: one OOM record holding the first job's samples, each
    labelled with its job, and a report that renders."""
    done = job_record([[9.0, 10.0, 10.0], [9.0, 11.0, 11.0]])
    job = Job(done.config, 2, LaunchOptions(nproc_per_node=2), "gloo", "cpu", 2)
    oom = oom_record(job, {"rank": 1, "phase": "backward", "message": "out of memory", "build_s": 0.1}, wall_s=1.0)
    merged = read_record(merge_processes([done, oom], Sampling(repeats=3), "oom").data)
    assert (merged.status, merged.oom_rank, merged.sampling["ended_by"], merged.key) == ("oom", 1, "oom", done.key)
    assert {s["process"] for s in merged.rank_samples} == {0} and len(merged.rank_samples) == 6
    markdown, _ = render_records([merged], "job")
    assert "ran out of memory in the backward phase on rank 1 of 2" in markdown


def test_a_job_is_never_told_to_rerun_with_cuda_graph() -> None:
    """The host-bound finding's deciding command: a CUDA graph captures one process's step, so a data-parallel record
    is sent to `lmbench profile` on as many ranks (the H200 run of a DDP sweep failed rendering its report on the
    --cuda-graph suggestion; nsys refuses data-parallel jobs)."""
    from types import SimpleNamespace

    from lmbench.analysis.findings.scaling import deciding_command
    config = BenchConfig(size="small", mode="train-step", precision="bf16", parallel="ddp")
    command, measures = deciding_command(SimpleNamespace(config=config, graph={}, world_size=2))
    assert command.startswith("lmbench profile ") and command.endswith("--parallel ddp --nproc-per-node 2")
    assert "cuda-graph" not in command and "busy share" in measures
