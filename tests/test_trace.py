"""`lmbench profile` and the torch.profiler trace path: schedule and handler wiring on the CPU, scalars
and hparams, and the trace analysis on a real H200 trace (tests/fixtures/trace-h200-tiny: tiny model,
naive attention, detail ranges, train-step, bf16, 1 warm-up + 2 measured steps), checked against the
Nsight Systems capture of the same configuration."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from helpers import REPO_ROOT, render_copied_capture, run_cli, run_main, tiny
from lmbench.kernels.frame import categorize, category_table
from lmbench.kernels.nsys_csv import kernel_frame as nsys_kernel_frame
from lmbench.kernels.nsys_csv import read_stats
from lmbench.kernels.torch_trace import kernel_frame, lmbench_ranges, read_trace, top_operators
from lmbench.errors import LmbenchError
from lmbench.kernels.torch_trace import trace_files
from lmbench.profilers.torch_profiler import ProfileOptions, profiling

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "trace-h200-tiny"
CAPTURE = FIXTURE / "tiny-train-step-bf16-naive-b4-ctx128-detail"
NSYS_CAPTURE = REPO_ROOT / "tests" / "fixtures" / "nsys-h200-tiny" / CAPTURE.name
CPU_ARGS = ["--size", "tiny", "--ctx", "32", "--batch", "2", "--vocab-size", "256", "--mode", "train-step",
            "--warmup", "2", "--steps", "3", "--device", "cpu"]
CPU_CAPTURE = "tiny-train-step-fp32-sdpa-b2-ctx32"


@pytest.fixture(scope="module")
def cpu_profile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`lmbench profile` on the CPU, in a subprocess: also profile's smoke test of the real entry point. Returns
    the run directory and what the command printed."""
    cwd = tmp_path_factory.mktemp("profile")
    proc = run_cli(["profile", *CPU_ARGS, "--trace-dir", "run"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd / "run", proc.stdout


@pytest.fixture(scope="module")
def cpu_profile(cpu_profile_run: tuple[Path, str]) -> Path:
    return cpu_profile_run[0]


@pytest.fixture(scope="module")
def h200_trace():
    return read_trace(trace_files(CAPTURE)[-1])


def test_schedule_defaults_trace_exactly_the_measured_steps() -> None:
    options = ProfileOptions()
    assert options.schedule(tiny(warmup=5, steps=10)) == (4, 1, 10, 1)
    assert options.schedule(tiny(warmup=0, steps=4)) == (0, 0, 4, 1)
    assert ProfileOptions(schedule_active=2, schedule_repeat=2).schedule(tiny(warmup=1, steps=5)) == (0, 1, 2, 2)
    with pytest.raises(LmbenchError, match="needs 25 steps .* but the run has 15"):
        ProfileOptions(schedule_active=20).schedule(tiny(warmup=5, steps=10))
    with pytest.raises(LmbenchError, match="schedule_active must be a positive integer"):
        ProfileOptions(schedule_active=0)


def test_profiling_off_is_a_no_op(tmp_path: Path) -> None:
    with profiling(None, tiny(), tmp_path / "x", torch.device("cpu")) as on_step:
        assert on_step(0, {}) is None
    assert not (tmp_path / "x").exists()


def test_profile_writes_gzip_traces_with_the_measured_steps_and_ranges(cpu_profile: Path) -> None:
    capture = cpu_profile / CPU_CAPTURE
    files = trace_files(capture)
    assert len(files) == 1 and files[0].name.endswith(".pt.trace.json.gz")
    with gzip.open(files[0]) as f:
        assert f.read(64).lstrip().startswith(b"{")  # gzip Chrome trace, as Perfetto and TensorBoard read it
    with gzip.open(files[0]) as f:  # the job metadata Holistic Trace Analysis looks for
        assert json.load(f)["distributedInfo"] == {"backend": "none", "rank": 0, "world_size": 1}
    trace = read_trace(files[0])
    names = lmbench_ranges(trace)
    assert [n for n in names["name"] if n.startswith(("measured", "warmup"))] == ["measured_0", "measured_1", "measured_2"]
    assert names.groupby("level")["name"].apply(set).to_dict() == {
        0: {"measured_0", "measured_1", "measured_2"}, 1: {"forward", "backward", "optimizer"}}
    assert trace.gpu.empty and not trace.ops.empty  # a CPU run: operators, no kernels
    assert (cpu_profile / "results.jsonl").exists() and (cpu_profile / "report.md").exists()


def test_profile_on_the_cpu_prints_and_writes_the_cpu_operator_report(cpu_profile_run: tuple[Path, str]) -> None:
    run, stdout = cpu_profile_run
    report = (run / CPU_CAPTURE / "kernels.md").read_text()
    assert report.startswith("# CPU operator report") and report.strip() in stdout
    for section in ("## Top operators by self CPU time — backward", "## Captured steps", "**slow steps**"):
        assert section in report
    phases = pd.read_csv(run / CPU_CAPTURE / "kernels_phases.csv")
    assert phases["phase"].tolist() == ["forward", "backward", "optimizer"] and phases["lmbench_ms"].notna().all()
    assert (run / "kernels.md").exists()  # the run summary, as for a GPU capture


def test_profile_logs_scalars_and_hparams(cpu_profile: Path) -> None:
    events = EventAccumulator(str(cpu_profile / CPU_CAPTURE))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"time_ms/forward", "time_ms/backward", "time_ms/optimizer", "time_ms/step"} <= tags
    assert [e.step for e in events.Scalars("time_ms/forward")] == [0, 1, 2, 3, 4]  # warm-up steps included
    assert any(tag.startswith("memory_mb/forward/") for tag in tags)
    content = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert {"size", "mode", "precision", "batch", "ctx", "annotate"} <= set(session.hparams)
    assert session.hparams["size"].string_value == "tiny" and session.hparams["ctx"].number_value == 32
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "hparam/forward_ms" in {m.name.tag for m in experiment.metric_infos}


def test_profile_errors_are_one_line(tmp_path: Path) -> None:
    proc = run_main(["profile", "--size", "tiny", "--device", "cpu", "--memory-snapshot"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lmbench: error: --memory-snapshot records the CUDA allocator; this run is on cpu"
    proc = run_main(["profile", "--size", "tiny", "--device", "cpu", "--schedule-active", "30"], cwd=tmp_path)
    assert proc.returncode == 2 and "the profiler schedule needs" in proc.stderr
    assert not list(tmp_path.rglob("*.pt.trace.json*"))


def test_h200_trace_attribution_matches_the_nsys_capture(h200_trace) -> None:
    """The same configuration captured by torch.profiler and by nsys: the same GPU activities land in
    the same phases, and the categories agree."""
    trace_kernels = kernel_frame(h200_trace)
    nsys_kernels = nsys_kernel_frame(read_stats(NSYS_CAPTURE / "stats"))
    assert len(trace_kernels) == len(h200_trace.gpu)  # everything traced was in a measured phase
    assert trace_kernels.groupby("phase").size().to_dict() == nsys_kernels.groupby("phase").size().to_dict()
    assert set(category_table(trace_kernels)["category"]) == set(category_table(nsys_kernels)["category"])
    assert set(trace_kernels["path"]) == set(nsys_kernels["path"])
    assert {categorize(n) for n in trace_kernels["name"]} == {categorize(n) for n in nsys_kernels["name"]}


def test_compiled_h200_trace_leaves_no_kernel_uncategorized() -> None:
    """2.7B under max-autotune on the H200 (reports/h200-issue14/explain-2.7B): a quarter of its GPU time ran in
    torch.compile's Triton kernels, which read as "other" before they had rules. Every kernel now has a category,
    and autocast's fp32-to-bf16 casts of the parameters (pointwise `_to_copy` kernels) count as copies."""
    run = REPO_ROOT / "reports" / "h200-issue14" / "explain-2.7B"
    (path,) = trace_files(run / "2.7B-forward-backward-bf16-sdpa-b4-ctx512-compile-max-autotune")
    kernels = kernel_frame(read_trace(path))
    categories = category_table(kernels).set_index("category")
    assert "other" not in categories.index
    triton = kernels["name"][kernels["name"].str.startswith("triton_")].unique()
    assert {categorize(name) for name in triton} == {"gemm", "copy/memset", "elementwise", "reduction/norm"}
    casts = [name for name in triton if re.fullmatch(r"triton_poi_fused__to_copy(_t)?_\d+", name)]
    assert len(casts) == 7 and {categorize(name) for name in casts} == {"copy/memset"}
    assert categories.loc["gemm", "step_pct"] == pytest.approx(71.0, abs=0.1)


def test_h200_trace_ranges_and_operators(h200_trace) -> None:
    ranges = lmbench_ranges(h200_trace)
    assert set(ranges[ranges["level"] == 0]["name"]) == {"measured_0", "measured_1"}
    assert set(ranges[ranges["level"] == 4]["name"]) == {"scores", "softmax", "value"}
    operators = top_operators(h200_trace, n=50)
    assert operators["device_ms_per_step"].is_monotonic_decreasing
    assert operators["share_pct"].sum() == pytest.approx(100, abs=0.5)
    assert "aten::mm" in set(operators["operator"])


def test_lmbench_kernels_renders_a_trace_capture(tmp_path: Path) -> None:
    capture, _, report = render_copied_capture(FIXTURE, CAPTURE.name, tmp_path)
    for section in ("## Phases (per measured step)", "Verdict: forward launch-bound", "## GPU time by kernel category",
                    "## Inside attention (forward)", "## Top operators by self device time"):
        assert section in report
    assert pd.read_csv(capture / "kernels_operators.csv")["operator"].iloc[0].startswith("aten::")


@pytest.mark.parametrize("damage", ["truncated", "not json", "empty"])
def test_damaged_traces_are_one_line_errors_naming_the_file(tmp_path: Path, damage: str) -> None:
    capture = tmp_path / "run" / "capture"
    capture.mkdir(parents=True)
    source = trace_files(CAPTURE)[-1]
    target = capture / source.name
    if damage == "truncated":
        target.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 2])
    elif damage == "not json":
        target.write_bytes(gzip.compress(b"this is not a trace"))
    else:
        target.write_bytes(gzip.compress(b'{"traceEvents": []}'))
    with pytest.raises(LmbenchError, match=str(target)):
        read_trace(target)
    proc = run_main(["kernels", str(capture)], cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and str(target) in proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (allocator history)")
def test_memory_snapshot_and_timeline_on_cuda(tmp_path: Path) -> None:
    proc = run_main(["profile", "--size", "tiny", "--mode", "train-step", "--warmup", "1", "--steps", "2",
                    "--memory-snapshot", "--profile-memory", "--trace-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    capture = next((tmp_path / "run").glob("tiny-*"))
    snapshot = capture / "memory_snapshot.pickle"
    assert snapshot.stat().st_size > 1000 and (capture / "memory_timeline.html").stat().st_size > 1000
    assert (capture / "kernels.md").exists()
