"""Kernel categories, `nsys stats` CSV parsing and per-phase attribution, kernel tables and the kernel
report, on real output captured on the H200 (tiny model, naive attention, detail ranges, train-step,
bf16, 1 warm-up + 2 measured steps: tests/fixtures/nsys-h200-tiny)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO_ROOT, render_copied_capture, run_main
from lmbench.kernels.frame import (CATEGORIES, attention_part_flops, attention_parts, categorize, category_table,
                                      phase_table, short_name, top_kernels)
from lmbench.kernels.nsys_csv import (kernel_frame, lmbench_ranges, nsys_range_kernel_ms, read_stats, report_path,
                                         snake)
from lmbench.errors import LmbenchError
from lmbench.kernels.report import NsysStats
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "nsys-h200-tiny"
CAPTURE = FIXTURE / "tiny-train-step-bf16-naive-b4-ctx128-detail"


@pytest.fixture(scope="module")
def stats() -> dict[str, pd.DataFrame]:
    return read_stats(CAPTURE / "stats")


@pytest.fixture(scope="module")
def kernels(stats: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return kernel_frame(stats)


@pytest.fixture(scope="module")
def record() -> Record:
    return ResultsStore(FIXTURE).records()[-1]


@pytest.mark.parametrize("name, category", [
    ("nvjet_sm90_tst_128x256_64x4_2x1_v_bz_coopA_TNN", "gemm"),
    ("void cublasLt::splitKreduce_kernel<(int)32, (int)16, int, float>(T1)", "gemm"),
    ("sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32", "gemm"),
    ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x64", "attention"),
    ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64>>(Params)", "attention"),
    ("void cudnn::fusion::compute_dot_do_o_specialized<(bool)1, (int)64>(const void *)", "attention"),
    ("void <unnamed>::softmax_warp_forward<float, float, float, (int)9, (bool)0, (bool)0>(T2 *)", "softmax"),
    ("void at::native::<unnamed>::cunn_SoftMaxForwardSmem<(int)8, c10::BFloat16>(T2 *)", "softmax"),
    ("void at::native::<unnamed>::multi_tensor_apply_kernel<at::native::<unnamed>::TensorListMetadata<(int)2>>()",
     "optimizer"),
    ("[CUDA memcpy Device-to-Device]", "copy/memset"),
    ("[CUDA memset]", "copy/memset"),
    ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase &)>()",
     "copy/memset"),
    ("void at::native::reduce_kernel<(int)512, (int)1, at::native::ReduceOp<float, at::native::MeanOps<float>>>(T3)",
     "reduction/norm"),
    ("void at::native::elementwise_kernel<(int)128, (int)4, void at::native::gpu_kernel_impl_nocast<"
     "at::native::masked_fill_kernel(at::TensorIterator &, const c10::Scalar &)>(int, T3)", "elementwise"),
    ("void at::native::vectorized_elementwise_kernel<(int)8, at::native::<unnamed>::silu_kernel()>()", "elementwise"),
    ("my_custom_kernel", "other"),
    # torch.compile's Triton kernels, named by what they fused (H200 trace of 2.7B under max-autotune)
    ("triton_poi_fused__to_copy_t_6", "copy/memset"),
    ("triton_poi_fused__unsafe_view_cat_clone_transpose_view_7", "copy/memset"),
    ("triton_poi_fused__unsafe_view_mul_silu_silu_backward_view_3", "elementwise"),
    ("triton_poi_fused__to_copy__unsafe_view_add_mul_slice_split_stack_sub_transpose_view_2", "elementwise"),
    ("triton_red_fused__to_copy__unsafe_view_add_mean_mul_pow_rsqrt_9", "reduction/norm"),
    ("triton_per_fused__to_copy_mul_sum_view_1", "reduction/norm"),
    ("triton_tem_fused__to_copy_mm_t_11", "gemm"),
    # ...and names of the same pattern that capture lacks: a compiled loss, flex attention, a compiled optimizer
    ("triton_per_fused__log_softmax_0", "softmax"),
    ("triton_tem_fused_flex_attention_0", "attention"),
    ("triton_for_fused__foreach_mul_0", "optimizer"),
    ("triton_poi_fused_zeros_2", "copy/memset"),  # a fill, as eager's fill_kernel is
    ("triton_poi_fused__to_copy_0d1d2de", "copy/memset"),  # an older Triton's signature suffix
    ("triton_poi_fused_0", "elementwise"),  # descriptive names off: no ops named, so not known to be a copy
    # NCCL's kernels say Reduce and Sum, yet they are a collective's (H200 DDP trace)
    ("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "communication"),
    ("ncclDevKernel_ReduceScatter_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "communication"),
])
def test_categorize(name: str, category: str) -> None:
    assert categorize(name) == category


def test_every_fixture_kernel_gets_a_known_category(stats: dict[str, pd.DataFrame]) -> None:
    found = {categorize(name) for name in stats["cuda_gpu_trace"]["name"]}
    assert found <= set(CATEGORIES) and "other" not in found
    assert {"gemm", "softmax", "optimizer", "elementwise", "copy/memset", "reduction/norm"} <= found


def test_short_names_keep_the_operation() -> None:
    assert short_name("void at::native::vectorized_elementwise_kernel<(int)4, at::native::BinaryFunctor<float, float, "
                      "float, at::native::binary_internal::MulFunctor<float>>, std::array<char *, (unsigned long)3>>"
                      "(int, T2, T3)") == "vectorized_elementwise_kernel<4>[MulFunctor<float>]"
    assert short_name("nvjet_sm90_tst_96x128_64x6_2x1_v_bz_NNN") == "nvjet_sm90_tst_96x128_64x6_2x1_v_bz_NNN"
    assert len(short_name("x" * 200, width=50)) == 50


def test_snake_case_columns() -> None:
    assert snake("Total Time (ns)") == "total_time" and snake("Time (%)") == "time_pct" and snake("CorrID") == "corrid"


def test_ranges_are_lmbench_main_thread_ranges(stats: dict[str, pd.DataFrame]) -> None:
    ranges = lmbench_ranges(stats["nvtx_pushpop_trace"])
    steps = ranges[ranges["level"] == 0]["name"].tolist()
    assert steps == ["measured_0", "measured_1"]  # warm-up was outside the capture range
    assert set(ranges[ranges["level"] == 1]["name"]) == {"forward", "backward", "optimizer"}
    assert set(ranges[ranges["level"] == 4]["name"]) == {"scores", "softmax", "value"}
    assert ranges["tid"].nunique() == 1


def test_every_captured_gpu_activity_lands_in_a_measured_phase(stats, kernels) -> None:
    gpu = stats["cuda_gpu_trace"]
    assert len(kernels) == len(gpu)
    assert kernels["duration_ns"].sum() == gpu["duration"].sum()
    only_kernels = kernels[~kernels["name"].str.startswith("[CUDA")]
    assert only_kernels["duration_ns"].sum() == stats["cuda_gpu_kern_sum"]["total_time"].sum()
    assert sorted(kernels["step"].unique()) == [0, 1]
    assert set(kernels["phase"]) == {"forward", "backward", "optimizer"}
    assert (kernels["end_ns"] - kernels["start_ns"] == kernels["duration_ns"]).all()


def test_backward_kernels_are_attributed_by_launch_time_not_thread(stats, kernels) -> None:
    """nsys's thread-based grouping sees almost no backward kernels (autograd launches them from its
    own thread); lmbench's launch-time attribution finds them all."""
    backward_ms = kernels[kernels["phase"] == "backward"]["duration_ns"].sum() / 2 / 1e6
    by_thread = nsys_range_kernel_ms(stats["nvtx_kern_sum"], steps=2)
    assert backward_ms > 0.2
    assert by_thread["backward"] < 0.05 * backward_ms
    forward_ms = kernels[kernels["phase"] == "forward"]["duration_ns"].sum() / 2 / 1e6
    assert by_thread["forward"] == pytest.approx(forward_ms, rel=0.02)


def test_detail_paths_reach_the_attention_parts(kernels) -> None:
    paths = set(kernels["path"])
    for part in ("scores", "softmax", "value"):
        assert f"forward/layer_1/attention/{part}" in paths
    assert "forward/layer_0/ffn" in paths
    softmax = set(kernels[kernels["path"].str.endswith("/softmax")]["name"].map(categorize))
    assert "softmax" in softmax and "gemm" not in softmax  # autocast adds a cast to fp32 around it
    scores = set(kernels[kernels["path"].str.endswith("/scores")]["name"].map(categorize))
    assert "gemm" in scores


def test_phase_table(kernels) -> None:
    table = phase_table(kernels).set_index("phase")
    assert list(table.index) == ["forward", "backward", "optimizer"]
    assert (table["span_ms"] >= table["kernel_ms"]).all()
    assert ((table["busy_pct"] > 0) & (table["busy_pct"] <= 100)).all()
    per_step = kernels.groupby(["phase", "step"]).size().groupby("phase").mean()
    assert table.loc["forward", "kernels_per_step"] == per_step["forward"]


def test_category_and_top_tables(kernels) -> None:
    categories = category_table(kernels)
    for phase in ("forward", "backward", "optimizer", "step"):
        assert categories[f"{phase}_pct"].sum() == pytest.approx(100)
    step_ms = kernels["duration_ns"].sum() / 2 / 1e6
    assert categories["step_ms"].sum() == pytest.approx(step_ms)
    optimizer = categories.set_index("category")["optimizer_pct"]
    assert optimizer["optimizer"] > 90
    top = top_kernels(kernels, "forward", n=5)
    assert len(top) == 5 and top["ms_per_step"].is_monotonic_decreasing
    assert top["share_pct"].sum() <= 100
    assert top_kernels(kernels, n=1000)["share_pct"].sum() == pytest.approx(100)


def test_attention_parts_set_time_against_flops(kernels, record) -> None:
    config = record.config
    parts = attention_parts(kernels, config.model_config(), config.batch, config.ctx).set_index("part")
    assert list(parts.index) == ["scores", "softmax", "value"]
    assert parts["time_pct"].sum() == pytest.approx(100)
    hd = config.model_config().head_dim
    assert parts.at["softmax", "flop_pct"] == pytest.approx(100 * 5 / (4 * hd + 7))
    flops = attention_part_flops(config.model_config(), config.batch, config.ctx)
    assert parts.at["value", "gflop"] == pytest.approx(flops["value"] / 1e9)
    assert parts.at["softmax", "time_pct"] > parts.at["softmax", "flop_pct"]  # memory-bound, as expected
    assert parts.at["softmax", "gemm_ms_per_step"] == 0
    assert 0 < parts.at["scores", "gemm_ms_per_step"] < parts.at["scores", "ms_per_step"]  # + scale and mask


def test_kernel_tables_join_lmbench_timings(record) -> None:
    tables = NsysStats(CAPTURE).tables(record)
    phases = tables["phases"].set_index("phase")
    assert phases.at["forward", "lmbench_ms"] == record.mean_ms("forward")
    assert phases.at["forward", "kernel_vs_lmbench_pct"] == pytest.approx(
        100 * phases.at["forward", "kernel_ms"] / record.mean_ms("forward"))
    assert set(tables) == {"phases", "categories", "top", "steps", "api", "ranges", "attention"}
    assert tables["api"]["api"].iloc[0] == "cudaLaunchKernel"


def test_lmbench_kernels_renders_a_copied_capture(tmp_path: Path) -> None:
    """kernels' subprocess smoke test."""
    capture, proc, report = render_copied_capture(FIXTURE, CAPTURE.name, tmp_path, in_subprocess=True)
    run = capture.parent
    assert proc.stdout.strip() == report.strip()
    for section in ("## Phases (per measured step)", "## GPU time by kernel category", "## Top kernels — forward",
                    "## Top kernels — backward", "## Inside attention (forward)", "## Host side"):
        assert section in report
    assert "NVIDIA H200" in report and "Softmax takes" in report
    categories = pd.read_csv(capture / "kernels_categories.csv")
    assert categories["step_pct"].sum() == pytest.approx(100)
    assert (run / "kernels.md").exists() and (run / "kernels_summary.csv").exists()


def test_lmbench_kernels_out_leaves_the_capture_as_it_is(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "run")
    capture = tmp_path / "run" / CAPTURE.name
    before = sorted(p.name for p in (tmp_path / "run").rglob("*"))
    proc = run_main(["kernels", str(capture), "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == before  # nothing written into the capture
    assert (tmp_path / "out" / "kernels.md").read_text().strip() == proc.stdout.strip()
    assert (tmp_path / "out" / "kernels_phases.csv").exists()


def test_kernels_cli_errors_are_one_line(tmp_path: Path) -> None:
    proc = run_main(["kernels", str(tmp_path / "missing")], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"lmbench: error: no capture directory at {tmp_path / 'missing'}"
    capture = tmp_path / "run" / CAPTURE.name
    shutil.copytree(CAPTURE, capture)
    report_path(capture / "stats", "cuda_api_trace").unlink()
    proc = run_main(["kernels", str(capture)], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"lmbench: error: missing nsys stats output: {capture / 'stats_cuda_api_trace.csv'}"


@pytest.mark.parametrize("damage, message", [
    (lambda text: text + "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25\n", "line"),
    (lambda text: b"\xff\xfe" + text.encode(), "line 1 is not UTF-8 text"),
    (lambda text: "\n".join(("\xff" if n == 3 else "") + line for n, line in enumerate(text.split("\n")))
     .encode("latin-1"), "line 4 is not UTF-8 text"),
    (lambda text: text.replace("CorrId", "Other"), "lacks the column(s) corrid"),
    (lambda text: "\n".join(line if n != 2 else "abc" + line[line.index(","):]
                            for n, line in enumerate(text.split("\n"))), "line 3: start holds 'abc', not a number"),
])
def test_damaged_nsys_csvs_name_the_file_and_the_problem(tmp_path: Path, damage, message: str) -> None:
    capture = tmp_path / "run" / CAPTURE.name
    shutil.copytree(CAPTURE, capture)
    csv = report_path(capture / "stats", "cuda_gpu_trace")
    damaged = damage(csv.read_text())
    csv.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    proc = run_main(["kernels", str(capture)], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"lmbench: error: {csv}") and message in proc.stderr


def test_capture_without_gpu_activity_is_refused(tmp_path: Path) -> None:
    capture = tmp_path / CAPTURE.name
    shutil.copytree(CAPTURE, capture)
    trace = report_path(capture / "stats", "cuda_gpu_trace")
    trace.write_text(trace.read_text().splitlines()[0] + "\n")  # header only: nothing ran on the GPU
    with pytest.raises(LmbenchError, match="no GPU activity"):
        NsysStats(capture).tables(None)


def test_unannotated_capture_is_refused(stats: dict[str, pd.DataFrame]) -> None:
    foreign = stats["nvtx_pushpop_trace"].assign(name="other:range")
    with pytest.raises(LmbenchError, match="no measured-step ranges"):
        lmbench_ranges(foreign)
    with pytest.raises(LmbenchError, match="no NVTX ranges"):
        lmbench_ranges(foreign.iloc[0:0])


def test_step_table_on_the_capture(kernels) -> None:
    from lmbench.kernels.frame import step_table

    steps = step_table(kernels).set_index("step")
    assert list(steps.index) == [0, 1]
    per_step = kernels.groupby("step")["duration_ns"].sum() / 1e6
    assert steps["kernel_ms"].to_dict() == pytest.approx(per_step.to_dict())
    # one stream: activities do not overlap, so the span is kernel time plus idle time
    assert (steps["span_ms"] - steps["kernel_ms"] - steps["idle_ms"]).abs().max() < 1e-6
    assert (steps["largest_gap_ms"] <= steps["idle_ms"]).all()


def test_slow_steps_are_matched_against_gpu_idle_time() -> None:
    from lmbench.analysis.findings.variance import slow_steps_in_trace
    from lmbench.kernels.report import slow_step_lines

    steps = pd.DataFrame({"step": [0, 1, 2, 3], "kernel_ms": [10.0, 10.0, 10.1, 16.0],
                          "span_ms": [20.0, 20.0, 30.0, 26.0], "idle_ms": [10.0, 10.0, 19.9, 10.0],
                          "largest_gap_ms": [1.0, 1.0, 8.0, 1.0], "lmbench_ms": [20.0, 20.0, 30.0, 26.0]})
    found = slow_steps_in_trace(steps)  # medians: 23 ms per step, 10 ms idle, 10.05 ms of kernels
    assert [(r["step"], r["side"]) for r in found.numbers["slow"]] == [(2, "host"), (3, "device")]
    assert found.numbers["slow"][0]["idle_ms"] == pytest.approx(9.9)
    assert "step 2 +7.00 ms: GPU idle +9.90 ms, kernels +0.05 ms" in found.claim and "mostly host side" in found.claim
    assert "step 3 +3.00 ms: GPU idle +0.00 ms, kernels +5.95 ms" in found.claim and "mostly device side" in found.claim
    assert found.claim in " ".join(slow_step_lines(steps))  # the kernel report renders the finding
    calm = steps.assign(lmbench_ms=[20.0, 20.5, 20.2, 20.1])
    assert slow_steps_in_trace(calm).numbers["slow"] == []
    assert slow_steps_in_trace(calm).claim.startswith("No traced step is more than 10% slower")
    assert slow_steps_in_trace(steps.drop(columns="lmbench_ms")) is None  # no lmbench times to match against


def test_a_run_summary_lists_captures_smallest_size_first(tmp_path: Path) -> None:
    from lmbench.kernels.communication import capture_files
    names = ["xl-train-step.rank0", "2.7B-train-step.rank0", "small-train-step-2ranks.rank1",
             "small-train-step-2ranks.rank0", "mymodel-forward", "medium-train-step.rank0"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "kernels_phases.csv").write_text("phase\n")
    assert [p.parent.name for p in capture_files(tmp_path, "kernels_phases.csv")] == [
        "small-train-step-2ranks.rank0", "small-train-step-2ranks.rank1", "medium-train-step.rank0",
        "xl-train-step.rank0", "2.7B-train-step.rank0", "mymodel-forward"]
