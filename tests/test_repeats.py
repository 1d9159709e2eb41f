"""Repeats in fresh processes, the stopping rule, and what a record says about how it was measured: every
process's samples labelled, statistics whose unit is the process, --target-ci ending by target or by time,
the numerics read while in force, and the profiler a record was measured under."""

from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch

from helpers import run_main, tiny
from lmbench.measure import processes
from lmbench.measure.environment import INJECTION_ENV, PROFILER_ENV, external_profiler
from lmbench.errors import LmbenchError
from lmbench.measure.harness import Measurement, measure
from lmbench.measure.processes import PROCESSES_DIR, merge_processes, run_repeats
from lmbench.measure.recording import build_record
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore
from lmbench.measure.sampling import Sampling
from lmbench.render.timing_report import render_records

TINY_ARGS = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "1", "--steps", "3", "--vocab-size", "128",
             "--device", "cpu"]


def synthetic(totals: list[float], warmup: int = 1) -> dict:
    """A real record (build_record) whose forward-only steps have the given totals."""
    config = tiny(mode="forward", warmup=warmup, steps=len(totals) - warmup)
    samples = [{"step": i, "warmup": i < warmup, "forward_ms": t, "step_ms": t} for i, t in enumerate(totals)]
    return build_record(config, Measurement(device=torch.device("cpu"), params=1, build_s=0.1, samples=samples),
                        wall_s=1.0)


@pytest.mark.slow  # two real child processes, `python -m lmbench bench`, each importing torch
def test_bench_repeats_runs_fresh_processes_and_labels_their_samples(tmp_path) -> None:
    proc = run_main(["bench", *TINY_ARGS, "--repeats", "2", "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [record] = ResultsStore(tmp_path / "run").records()
    assert [s["process"] for s in record.data["samples"]] == [0] * 4 + [1] * 4
    assert record.data["sampling"]["unit"] == "process" and record.data["sampling"]["count"] == 2
    assert record.data["stats"]["total"]["n"] == 6  # the step-level statistics pool both processes' measured steps
    between = record.data["process_stats"]["total"]
    per_process = [statistics.fmean(sum(v for k, v in s.items() if k.endswith("_ms") and k != "step_ms")
                                    for s in record.data["samples"] if s["process"] == p and not s["warmup"])
                   for p in (0, 1)]
    assert between["n"] == 2 and between["means"] == pytest.approx(per_process)
    assert between["cv_pct"] == pytest.approx(100 * statistics.stdev(per_process) / statistics.fmean(per_process))
    children = list((tmp_path / "run" / PROCESSES_DIR).glob("*/results.jsonl"))
    assert len(children) == 1 and len(ResultsStore(children[0]).records()) == 2  # each process's own record kept
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Total CV between processes" in report and "(2 processes)" in report
    assert "95% CI of mean, processes (ms)" in report


def test_process_statistics_use_the_process_as_unit() -> None:
    noise = [0.0, 0.2, -0.2, 0.1, -0.1]
    records = [synthetic([500.0] + [mean + e for e in noise]) for mean in (100.0, 110.0, 105.0)]
    merged = merge_processes(records, Sampling(repeats=3), "count")
    between = merged.data["process_stats"]["total"]
    assert between["means"] == pytest.approx([100.0, 110.0, 105.0])
    assert between["n"] == 3 and between["cv_pct"] == pytest.approx(100 * 5 / 105)
    half = 4.302652729911275 * 5 / math.sqrt(3)  # t(0.975, 2 dof) · s / √R
    assert (between["ci_low"], between["ci_high"]) == pytest.approx((105 - half, 105 + half))
    assert between["within_cv_pct"] == pytest.approx(100 * statistics.stdev(noise) / 105)
    assert between["p_anova"] < 1e-6  # the offsets are far beyond the step noise
    assert merged.data["stats"]["total"]["n"] == 15 and merged.data["sampling"]["unit"] == "process"
    assert "process_stats" not in records[0].data  # one process: no between-process statistics


def test_a_child_that_runs_out_of_memory_ends_the_repeats(monkeypatch, tmp_path) -> None:
    oom = Record(copy.deepcopy(synthetic([10.0, 10.0, 10.0]).data))
    oom.data.update(status="oom", oom={"phase": "forward", "message": "out of memory."})
    for derived in ("stats", "throughput"):  # an OOM record has no statistics
        oom.data.pop(derived)
    given = iter([synthetic([10.0, 10.0, 10.0]), oom])
    monkeypatch.setattr(processes, "run_child", lambda config, run_dir, what: next(given))
    merged = run_repeats(tiny(), Sampling(repeats=3), tmp_path)
    assert merged.data["status"] == "oom" and merged.data["sampling"]["ended_by"] == "oom" and "stats" not in merged.data


@pytest.mark.parametrize("target, budget, ended_by", [(50.0, None, "target"), (1e-6, 1.0, "max-time")])
def test_target_ci_ends_by_target_or_by_time(target: float, budget: float | None, ended_by: str) -> None:
    result = measure(tiny(steps=3), sampling=Sampling(target_ci=target, max_time=budget))
    measured = [s for s in result.samples if not s["warmup"]]
    assert result.stopping["ended_by"] == ended_by and result.stopping["count"] == len(measured) >= 3
    if ended_by == "target":
        assert result.stopping["ci_half_width_pct"] <= target
    else:
        assert result.stopping["ci_half_width_pct"] > target


def test_target_ci_adds_processes_until_the_process_ci_is_tight(monkeypatch, tmp_path) -> None:
    means = iter([100.0, 120.0, 110.0, 110.5, 109.5, 110.2, 109.8, 110.1, 110.0, 109.9])
    monkeypatch.setattr(processes, "run_child", lambda config, run_dir, what: synthetic([1.0] + [next(means)] * 3))
    merged = run_repeats(tiny(), Sampling(repeats=2, target_ci=5.0), tmp_path)
    assert merged.data["sampling"]["ended_by"] == "target" and merged.data["sampling"]["ci_half_width_pct"] <= 5.0
    assert 2 < merged.data["sampling"]["count"] == merged.data["process_stats"]["total"]["n"]


def test_sampling_options_are_validated() -> None:
    for bad, message in [(dict(repeats=0), "repeats must be a positive integer"),
                         (dict(target_ci=float("nan")), "--target-ci must be a percentage"),
                         (dict(max_time=10.0), "--max-time bounds a --target-ci run")]:
        with pytest.raises(LmbenchError, match=message):
            Sampling(**bad)


def test_target_ci_on_the_command_line_accepts_a_percent_sign(tmp_path) -> None:
    proc = run_main(["bench", *TINY_ARGS, "--target-ci", "40%", "--no-report", "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [record] = ResultsStore(tmp_path / "run").records()
    assert record.data["sampling"]["target_ci_pct"] == 40.0 and record.data["sampling"]["ended_by"] in ("target", "max-time")
    assert not (tmp_path / "run" / "report.md").exists()  # --no-report stores the record only
    bad = run_main(["bench", *TINY_ARGS, "--target-ci", "inf%"], cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "finite" in bad.stderr


def test_numerics_are_read_while_the_run_holds_them(monkeypatch) -> None:
    """The old record read the matmul precision after the run had restored the process default."""
    torch.set_float32_matmul_precision("high")
    try:
        plain = measure(tiny(steps=1))
        assert plain.numerics["float32_matmul_precision"] == "highest"  # the run's, not the process default
        # --tf32 is refused on a CPU; let the check pass to see what a TF32 run records while it runs.
        monkeypatch.setattr("lmbench.measure.harness.check_runnable", lambda config: torch.device("cpu"))
        tf32 = measure(tiny(steps=1, tf32=True))
        assert tf32.numerics["float32_matmul_precision"] == "high"
        assert torch.get_float32_matmul_precision() == "high"  # restored afterwards
    finally:
        torch.set_float32_matmul_precision("highest")
    bf16 = build_record(tiny(steps=1, precision="bf16"), measure(tiny(steps=1, precision="bf16")), wall_s=0.0)
    assert bf16.data["numerics"]["autocast_dtype"] == "bfloat16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (TF32 tensor cores)")
def test_a_tf32_run_is_recorded_as_tf32_on_cuda() -> None:
    config = tiny(device="cuda", steps=1, tf32=True)
    record = build_record(config, measure(config), wall_s=0.0)
    assert record.data["numerics"]["tf32_matmul"] is True and record.data["numerics"]["float32_matmul_precision"] == "high"
    off = build_record(tiny(device="cuda", steps=1), measure(tiny(device="cuda", steps=1)), wall_s=0.0)
    assert off.data["numerics"]["tf32_matmul"] is False


def test_the_profiler_a_record_ran_under_is_recorded(monkeypatch) -> None:
    monkeypatch.delenv(PROFILER_ENV, raising=False)
    monkeypatch.delenv(INJECTION_ENV, raising=False)
    assert external_profiler() is None
    monkeypatch.setenv(INJECTION_ENV, "/opt/nvidia/nsight-systems/2025.1/target-linux-x64/libToolsInjection64.so")
    assert external_profiler() == "nsys"
    monkeypatch.setenv(PROFILER_ENV, "ncu")
    assert external_profiler() == "ncu"
    record = build_record(tiny(steps=1), measure(tiny(steps=1)), wall_s=0.0)
    assert record.data["profiler"] == "ncu"
    markdown, _ = render_records([record], "run")
    assert "**Measured under a profiler** (ncu)" in markdown
    monkeypatch.delenv(PROFILER_ENV)
    monkeypatch.delenv(INJECTION_ENV)
    plain = build_record(tiny(steps=1), measure(tiny(steps=1)), wall_s=0.0)
    assert plain.data["profiler"] is None
    assert "covers step-to-step noise within one process" in render_records([plain], "run")[0]


@pytest.mark.slow  # four real child processes
def test_sweep_interleave_end_to_end(tmp_path) -> None:
    args = [a for a in TINY_ARGS]
    args[args.index("--ctx") + 1] = "16,32"
    proc = run_main(["sweep", *args, "--repeats", "2", "--interleave", "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = ResultsStore(tmp_path / "run").records()
    assert [r.config.ctx for r in records] == [32, 16]  # round 2 ran 32 then 16: each stored as its last ends
    assert all(r.data["sampling"]["interleaved"] and r.data["process_stats"]["total"]["n"] == 2 for r in records)
    assert "2 of 2 records measured interleaved (--interleave)" in (tmp_path / "run" / "report.md").read_text()


def _fake_children(monkeypatch, oom_at: tuple[int, int] | None = None) -> list[int]:
    """run_child played by synthetic records: returns the ctx of each child started, in order; the child numbered
    oom_at[1] (from 0) of ctx oom_at[0] runs out of memory."""
    started: list[int] = []

    def child(config, run_dir, what):
        started.append(config.ctx)
        record = Record(copy.deepcopy(synthetic([10.0, 10.0 + len(started), 10.0]).data))
        record.data["config"]["ctx"], record.data["key"] = config.ctx, config.key()  # each configuration's own
        if oom_at and (config.ctx, started.count(config.ctx) - 1) == oom_at:
            record.data.update(status="oom", oom={"phase": "forward", "message": "out of memory."})
            for derived in ("stats", "throughput"):
                record.data.pop(derived)
        return record
    monkeypatch.setattr(processes, "run_child", child)
    return started


def test_interleave_runs_the_processes_in_rounds_reversed_every_other_one(monkeypatch, tmp_path) -> None:
    from lmbench.studies.sweep import run_sweep
    started = _fake_children(monkeypatch)
    store = ResultsStore(tmp_path / "run")
    records = run_sweep([tiny(ctx=16), tiny(ctx=32)], store, sampling=Sampling(repeats=3, interleave=True))
    assert started == [16, 32, 32, 16, 16, 32]  # A B, B A, A B: each position in the round alike
    assert [r.config.ctx for r in records] == [16, 32]  # in sweep order (stored as each one's last process ends)
    assert all(r.data["sampling"]["interleaved"] and r.data["sampling"]["count"] == 3 for r in records)
    assert len({r.key for r in store.records()}) == 2
    markdown, _ = render_records(store.records(), "run")
    assert "2 of 2 records measured interleaved (--interleave)" in markdown


def test_interleave_drops_a_configuration_that_ran_out_of_memory(monkeypatch, tmp_path) -> None:
    from lmbench.studies.sweep import run_sweep
    started = _fake_children(monkeypatch, oom_at=(16, 1))
    records = run_sweep([tiny(ctx=16), tiny(ctx=32)], ResultsStore(tmp_path), sampling=Sampling(repeats=3, interleave=True))
    assert started == [16, 32, 32, 16, 32]  # ctx 16's second process ran out of memory: no third
    oom, ok = records
    assert (oom.config.ctx, oom.data["status"], oom.data["sampling"]["ended_by"]) == (16, "oom", "oom")
    assert (ok.config.ctx, ok.data["sampling"]["count"]) == (32, 3)


def test_interleave_needs_repeats_and_several_configurations(tmp_path) -> None:
    for bad, message in [(dict(interleave=True), "--interleave orders the fresh processes of --repeats 2"),
                         (dict(repeats=2, interleave=True, target_ci=5.0), "--target-ci would stop each")]:
        with pytest.raises(LmbenchError, match=message):
            Sampling(**bad)
    proc = run_main(["bench", *TINY_ARGS, "--repeats", "2", "--interleave"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--interleave orders the processes of several configurations: use it with lmbench sweep" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("node_zero", [True, False])
def test_interleave_runs_torchrun_jobs_in_rounds_too(monkeypatch, tmp_path, node_zero: bool) -> None:
    from lmbench.measure.launch import LaunchOptions
    from lmbench.studies.sweep import run_sweep
    started = []

    def job(job, store, on_line):  # a node other than node 0 launches its ranks and gets no record
        started.append(job.config.ctx)
        record = Record(copy.deepcopy(synthetic([10.0, 11.0, 12.0]).data))
        record.data["key"] = job.key
        return record if node_zero else None
    monkeypatch.setattr(processes, "run_data_parallel", job)
    configs = [tiny(parallel="ddp", ctx=16), tiny(parallel="ddp", ctx=32)]
    records = run_sweep(configs, ResultsStore(tmp_path), sampling=Sampling(repeats=2, interleave=True),
                        launch=LaunchOptions(nproc_per_node=2))
    assert started == [16, 32, 32, 16]
    assert len(records) == (2 if node_zero else 0)


def test_an_interleaved_sweep_stopped_early_stores_the_processes_so_far(monkeypatch, tmp_path) -> None:
    from lmbench.studies.sweep import run_sweep
    started = _fake_children(monkeypatch)
    fake = processes.run_child

    def child(config, run_dir, what):  # the fourth child fails: round 2 has run ctx 32, not yet ctx 16
        if len(started) == 3:
            raise LmbenchError(f"{what} failed: boom")
        return fake(config, run_dir, what)
    monkeypatch.setattr(processes, "run_child", child)
    events = []
    store = ResultsStore(tmp_path)
    with pytest.raises(LmbenchError, match="boom"):
        run_sweep([tiny(ctx=16), tiny(ctx=32)], store, sampling=Sampling(repeats=3, interleave=True),
                  on_event=lambda event, config: events.append((event, config.ctx)))
    assert {r.config.ctx: (r.data["sampling"]["ended_by"], r.data["sampling"]["count"]) for r in store.records()} == {
        16: ("interrupted", 1), 32: ("interrupted", 2)}
    assert events.count(("process", 32)) == 2 and events[-2:] == [("done", 16), ("done", 32)]


@pytest.mark.parametrize("events", [["start", "done"], ["start", "process", "start", "process", "done"]])
def test_sweep_progress_counts_each_step_once(events: list[str]) -> None:
    """Without --interleave a configuration's steps count when it is done; with it, as each process ends."""
    from lmbench.render.progress import SweepProgress
    config = tiny()
    with SweepProgress([config], 2) as progress:
        for event in events:
            progress.on_event(event, config)
    assert progress.steps == progress.steps_total == 2 * (config.warmup + config.steps) and progress.done == 1


def test_an_interleaved_sweep_resumed_runs_only_what_is_not_stored(monkeypatch, tmp_path) -> None:
    from lmbench.studies.sweep import run_sweep
    started = _fake_children(monkeypatch)
    store, sampling = ResultsStore(tmp_path), Sampling(repeats=2, interleave=True)
    run_sweep([tiny(ctx=32)], store, sampling=sampling)
    events = []
    records = run_sweep([tiny(ctx=16), tiny(ctx=32), tiny(ctx=64)], store, resume=True, sampling=sampling,
                        on_event=lambda event, config: events.append((event, config.ctx)))
    assert started == [32, 32, 16, 64, 64, 16] and [r.config.ctx for r in records] == [16, 64]
    assert events[0] == ("skip", 32) and ("start", 32) not in events


@pytest.mark.parametrize("node_zero", [True, False])
def test_repeated_torchrun_jobs_launch_as_many_on_every_node(monkeypatch, tmp_path, node_zero: bool) -> None:
    from lmbench.measure.data_parallel import plan_jobs
    from lmbench.measure.launch import LaunchOptions
    launched = []
    monkeypatch.setattr(processes, "run_data_parallel",
                        lambda job, store, on_line: launched.append(job.key) or (synthetic([9.0, 10.0, 10.0])
                                                                                  if node_zero else None))
    config = tiny(parallel="ddp")
    [job] = plan_jobs([config], Sampling(repeats=3), LaunchOptions(nproc_per_node=2))
    merged = run_repeats(config, Sampling(repeats=3), tmp_path, job)
    assert len(launched) == 3
    assert (merged.data["sampling"]["count"] == 3) if node_zero else merged is None
