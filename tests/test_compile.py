"""--compile, --optimizer and --sdpa-backend (issue 14 items 1 and 2) on the CPU with the tiny model: the compile
step timed apart from the samples and dynamo's counters stored, a recompilation inside the measured steps as a
finding, each AdamW implementation and SDPA backend seen running in the operators it launches, torch's "no kernel"
as one line, and the backend that ran read from the H200's committed kernel names.

torch.compile runs with dynamo's "eager" backend here (measure/compile.py's BACKEND): the same tracing, guards and
counters as inductor without its C++ compile, which takes half a minute per configuration on two cores."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import REPO_ROOT, read_lines, run_main, tiny
from lmbench.analysis.findings.compile import compile_cost, recompiles
from lmbench.errors import LmbenchError
from lmbench.kernels.attention_backend import attention_backends, backend_lines, backend_of
from lmbench.measure import compile as compile_module
from lmbench.measure import harness
from lmbench.measure.recording import build_record
from lmbench.model import build_model
from lmbench.results.record import Record, read_record


@pytest.fixture
def eager_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_module, "BACKEND", "eager")


def test_compiled_train_step_end_to_end(tmp_path: Path, eager_backend: None) -> None:
    args = ["bench", "--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "1", "--steps", "2", "--device",
            "cpu", "--vocab-size", "64", "--mode", "train-step", "--compile", "default", "--optimizer",
            "adamw-fused", "--sdpa-backend", "math", "--run-dir", str(tmp_path / "run")]
    proc = run_main(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    [data] = read_lines(tmp_path / "run" / "results.jsonl")
    record = read_record(data)
    compiled = record.compile
    assert (compiled["mode"], compiled["backend"], compiled["frames"]) == ("default", "eager", 1)
    assert compiled["first_step_s"] > 0 and compiled["recompiles_warmup"] == compiled["recompiles_measured"] == 0
    assert compiled["fx_cache_hits"] == compiled["fx_cache_misses"] == compiled["cudagraph_skips"] == 0  # no inductor
    assert len(record.samples) == 3  # the compile step is not a sample
    numerics = record.numerics
    assert (numerics["compile"], numerics["sdpa_backend"]) == ("default", "math")
    assert numerics["optimizer"] == {"name": "AdamW", "foreach": False, "fused": True}
    assert record.key != tiny(ctx=16, vocab_size=64, mode="train-step").key()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "**compile** — torch.compile's first step" in report and "compile: default" in report
    assert "SDPA backend: math; compile: default" in report and "optimizer: adamw-fused" in report


def test_keys_of_records_stored_before_these_fields_stand() -> None:
    """Records stored before --compile/--optimizer/--sdpa-backend/--param-dtype keep their keys, so --resume still
    skips them."""
    stored = REPO_ROOT / "tests" / "fixtures" / "trace-cpu-tiny" / "results.jsonl"
    data = json.loads(stored.read_text().splitlines()[0])
    assert not {"compile", "optimizer", "sdpa_backend", "param_dtype"} & set(data["config"])
    record = read_record(data)
    assert record.config.key() == data["key"] and record.config_value("compile") == "off"


def test_a_recompilation_inside_the_measured_steps_is_a_finding(eager_backend: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The input batch shrinks after the first measured step: dynamo's shape guard fails and it compiles again."""
    steps: list[harness.Step] = []

    class Watched(harness.Step):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            steps.append(self)

    def shrink(index: int, sample: dict) -> None:
        if index == 1:  # warm-up is step 0
            for tensor in (steps[0].tokens, steps[0].targets):
                tensor.resize_(1, tensor.shape[1])  # in place: the phases hold these tensors

    monkeypatch.setattr(harness, "Step", Watched)
    config = tiny(compile="default", warmup=1, steps=3, vocab_size=64)
    measurement = harness.measure(config, on_step=shrink)
    assert measurement.compile["recompiles_warmup"] == 0 and measurement.compile["recompiles_measured"] == 1
    finding = recompiles([build_record(config, measurement, wall_s=1.0)])
    assert finding and finding.numbers == {"recompiles_measured": {"tiny": 1}}
    assert "recompiled during the measured steps of tiny (1 graph(s))" in finding.claim
    steady = harness.measure(config)
    assert recompiles([build_record(config, steady, wall_s=1.0)]) is None
    assert steady.compile["frames"] == 1  # dynamo was reset between the two: the second compiled afresh
    # records of one size in two modes stay apart in the findings (they were keyed by the size's label alone)
    both = [build_record(config, measurement, wall_s=1.0),
            build_record(dataclasses.replace(config, mode="train-step"), steady, wall_s=1.0)]
    assert set(compile_cost(both).numbers["compiled"]) == {"tiny forward-backward", "tiny train-step"}
    assert recompiles(both).numbers == {"recompiles_measured": {"tiny forward-backward": 1}}


def _operators(config_overrides: dict, device: str = "cpu") -> set[str]:
    """The operators (and, on CUDA, the kernels) a tiny step launches, from torch.profiler."""
    config = tiny(vocab_size=64, device=device, **config_overrides)
    model = build_model(config.model_config(), torch.device(device))
    step = harness.Step(config, model, torch.device(device))
    from lmbench.measure.sdpa import backend_in_force

    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device == "cuda"
                                                          else [])
    with backend_in_force(config), torch.profiler.profile(activities=activities) as prof:
        step.run()
        if device == "cuda":
            torch.cuda.synchronize()
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
@pytest.mark.parametrize("optimizer, present, absent", [
    ("adamw", "aten::addcdiv_", "aten::_foreach_addcdiv_"),
    ("adamw-foreach", "aten::_foreach_addcdiv_", "aten::_fused_adamw_"),
    ("adamw-fused", "aten::_fused_adamw_", "aten::_foreach_addcdiv_"),
])
def test_each_optimizer_runs_its_own_implementation(optimizer: str, present: str, absent: str, device: str) -> None:
    ops = _operators({"mode": "train-step", "optimizer": optimizer}, device)
    assert present in ops and absent not in ops


@pytest.mark.parametrize("backend, operator", [
    ("math", "aten::_scaled_dot_product_attention_math"),
    ("flash", "aten::_scaled_dot_product_flash_attention_for_cpu"),
])
def test_the_sdpa_backend_asked_for_is_the_one_that_runs(backend: str, operator: str) -> None:
    ops = _operators({"mode": "forward", "sdpa_backend": backend})
    others = {"aten::_scaled_dot_product_attention_math", "aten::_scaled_dot_product_flash_attention_for_cpu"}
    assert operator in ops and not (others - {operator}) & ops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (fused SDPA kernels)")
@pytest.mark.parametrize("backend", ["flash", "efficient", "cudnn"])
def test_the_backend_asked_for_is_the_one_read_from_cuda_kernel_names(backend: str) -> None:
    """On the GPU, the kernels a bf16 forward-backward launches under --sdpa-backend name that backend."""
    names = _operators({"mode": "forward-backward", "precision": "bf16", "sdpa_backend": backend}, device="cuda")
    kernels = pd.DataFrame({"name": sorted(names), "step": 0, "duration_ns": 1.0})
    assert list(attention_backends(kernels)["backend"]) == [backend], sorted(n for n in names if backend_of(n))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (inductor's Triton kernels)")
def test_inductor_compiles_the_step_on_cuda(tmp_path: Path) -> None:
    """The real backend: inductor's first step timed apart, no recompilation in the measured steps, and the same
    configuration compiled again served from inductor's FX graph cache (counted as hits)."""
    args = ["bench", "--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "2", "--steps", "3", "--device",
            "cuda", "--vocab-size", "64", "--mode", "train-step", "--compile", "default"]
    proc = run_main([*args, "--run-dir", str(tmp_path / "run")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = read_record(read_lines(tmp_path / "run" / "results.jsonl")[0])
    assert (record.compile["mode"], record.compile["backend"]) == ("default", "inductor")
    assert record.compile["first_step_s"] > max(record.totals(include_warmup=True)) / 1e3
    assert record.compile["recompiles_measured"] == 0 and len(record.samples) == 5
    assert record.compile["fx_cache_hits"] + record.compile["fx_cache_misses"] >= 1
    again = run_main([*args, "--run-dir", str(tmp_path / "again")], tmp_path)  # after dynamo.reset(): the same graphs
    assert again.returncode == 0, again.stderr
    warm = read_record(read_lines(tmp_path / "again" / "results.jsonl")[0]).compile
    assert warm["fx_cache_hits"] >= 1, warm  # from inductor's FX graph cache


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA graph trees)")
@pytest.mark.parametrize("mode,step", [("reduce-overhead", "train-step"), ("max-autotune", "train-step"),
                                       ("reduce-overhead", "forward")])  # a forward-only step too: no backward graph
def test_the_modes_that_replay_cuda_graphs_replay_every_graph(tmp_path: Path, mode: str, step: str) -> None:
    proc = run_main(["bench", "--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "2", "--steps", "3",
                     "--device", "cuda", "--vocab-size", "64", "--mode", step, "--compile", mode,
                     "--run-dir", str(tmp_path / "run")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    compiled = read_record(read_lines(tmp_path / "run" / "results.jsonl")[0]).compile
    assert compiled["mode"] == mode and compiled["cudagraph_skips"] == 0 and compiled["recompiles_measured"] == 0


def test_a_warm_cache_and_a_cuda_graph_skip_are_said(eager_backend: None) -> None:
    config = tiny(mode="forward-backward", compile="default", vocab_size=64)
    record = build_record(config, harness.measure(config), wall_s=1.0)
    record.data["compile"].update(fx_cache_hits=2, fx_cache_misses=0, cudagraph_skips=1)
    text = compile_cost([record]).claim
    assert "(2 of 2 graphs from inductor's cache)" in text and "a warm-cache time, not what a first compile costs" in text
    assert "1 graph(s) left out of CUDA graphs" in text


def test_torch_finding_no_kernel_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the checks made before building (here skipped), torch's own refusal becomes one LmbenchError line."""
    monkeypatch.setattr(harness, "check_runnable", lambda config: torch.device("cpu"))
    with pytest.raises(LmbenchError) as refused:
        harness.measure(tiny(sdpa_backend="efficient", vocab_size=64))
    message = str(refused.value)
    assert message.startswith("--sdpa-backend efficient has no kernel for tiny fp32 batch 2 ctx 16 on cpu (torch: ")
    assert "\n" not in message


def _committed_kernels(capture: str) -> pd.DataFrame:
    """A kernel frame of one step from a committed H200 capture's top-kernels table (real kernel names)."""
    path = REPO_ROOT / "reports" / "h200-nsys" / capture / "kernels_top.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["phase"] == "step"]
    return pd.DataFrame({"name": [r["name"] for r in rows], "step": 0,
                         "duration_ns": [float(r["ms_per_step"]) * 1e6 for r in rows]})


@pytest.mark.parametrize("capture, backend", [
    ("small-train-step-bf16-sdpa-b4-ctx512-detail", "cudnn"),  # torch's pick in bf16 on the H200
    ("2.7B-forward-bf16-sdpa-b4-ctx512-detail", "cudnn"),
    ("small-train-step-fp32-sdpa-b4-ctx512-detail", "efficient"),  # fp32: CUTLASS memory-efficient
    ("2.7B-train-step-fp32-sdpa-b4-ctx512-detail", "efficient"),
])
def test_the_backend_that_ran_is_read_from_h200_kernel_names(capture: str, backend: str) -> None:
    found = attention_backends(_committed_kernels(capture))
    assert list(found["backend"]) == [backend]
    record = Record({"config": dataclasses.asdict(tiny(sdpa_backend="flash"))})
    [line, _] = backend_lines(found, record)
    assert line.startswith(f"SDPA backend that ran, read from the kernel names: {backend} (")
    assert line.endswith("Asked for: flash. The kernels are not flash's.")


def test_flash_and_math_by_name() -> None:
    assert backend_of("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 64>>(Flash_fwd_params)") \
        == "flash"
    assert backend_of("ampere_bf16_s16816gemm_bf16_128x64_ldg8_f2f_tn") is None
    math = pd.DataFrame({"name": ["ampere_sgemm_128x64_nn", "void at::native::cunn_SoftMaxForward<4, float>()"],
                         "step": 0, "duration_ns": [2e3, 1e3]})
    assert list(attention_backends(math)["backend"]) == ["math"]


@pytest.mark.slow  # one gloo rank in this process, about 10 s on 2 cores
def test_a_compiled_ddp_model_runs_on_a_gloo_rank(tmp_path: Path, eager_backend: None, one_rank: None) -> None:
    """torch.compile of the DDP-wrapped model (DDP's graph splitting at its buckets): allowed because it runs."""
    from lmbench.measure import data_parallel

    config = tiny(parallel="ddp", mode="train-step", compile="default", vocab_size=64, steps=2)
    data_parallel.main(["--config", json.dumps(dataclasses.asdict(config)), "--backend", "gloo", "--timeout", "60",
                        "--run-dir", str(tmp_path)])
    record = read_record(read_lines(tmp_path / "results.jsonl")[-1])
    assert record.ok and record.compile["graphs"] >= 1 and record.compile["recompiles_measured"] == 0
