"""The range primitive: names and nesting through a recording sink, the real nvtx module and torch
profiler, the capture range around the measured steps, and the options' validation."""

from __future__ import annotations

import pytest
import torch

import lmbench.measure.ranges as annotate_module
from helpers import run_main, tiny
from lmbench.measure.ranges import NvtxSink, RangeRecorder, annotate, annotation_level, annotations, color_of
from lmbench.errors import LmbenchError
from lmbench.measure.harness import measure


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RangeRecorder:
    """Route every range the harness emits into one recorder (in place of NVTX and record_function)."""
    recording = RangeRecorder()
    monkeypatch.setattr(annotate_module, "default_sinks", lambda emit_nvtx=False: [recording])
    return recording


def test_off_emits_nothing_and_restores_state(recorder: RangeRecorder) -> None:
    result = measure(tiny(mode="train-step"))
    assert result.status == "ok"
    assert recorder.events == []
    assert annotation_level() == "off"


def test_phase_ranges_name_steps_and_phases(recorder: RangeRecorder) -> None:
    measure(tiny(mode="train-step", warmup=2, steps=3, annotate="phases"))
    paths = recorder.paths()
    steps = [p for p in paths if "/" not in p]
    assert steps == ["warmup_0", "warmup_1", "measured_0", "measured_1", "measured_2", "memory"]
    assert [p for p in paths if p.startswith("measured_1/")] == [
        "measured_1/forward", "measured_1/backward", "measured_1/optimizer"]
    assert not any("layer_" in p for p in paths)  # detail ranges stay off at "phases"
    assert annotation_level() == "off"


def test_forward_mode_has_only_forward_ranges(recorder: RangeRecorder) -> None:
    measure(tiny(mode="forward", annotate="phases"))
    assert {p.split("/", 1)[1] for p in recorder.paths() if "/" in p} == {"forward"}


def test_detail_ranges_nest_layers_and_naive_attention_parts(recorder: RangeRecorder) -> None:
    measure(tiny(mode="forward-backward", attention="naive", annotate="detail", n_layers=2))
    paths = set(recorder.paths())
    for layer in ("layer_0", "layer_1"):
        assert f"measured_0/forward/{layer}/attention" in paths
        assert f"measured_0/forward/{layer}/ffn" in paths
        for part in ("scores", "softmax", "value"):
            assert f"measured_0/forward/{layer}/attention/{part}" in paths
    assert "measured_0/forward/layer_2" not in paths
    pushes = [e for e in recorder.events if e[0] == "push"]
    pops = [e for e in recorder.events if e[0] == "pop"]
    assert len(pushes) == len(pops)


def test_sdpa_has_no_attention_parts(recorder: RangeRecorder) -> None:
    measure(tiny(attention="sdpa", annotate="detail"))
    paths = recorder.paths()
    assert "measured_0/forward/layer_0/attention" in paths
    assert not any(p.endswith(("/scores", "/softmax", "/value")) for p in paths)


def test_capture_range_brackets_exactly_the_measured_steps(recorder: RangeRecorder) -> None:
    measure(tiny(warmup=2, steps=3, annotate="phases"))
    order = [name for kind, name in recorder.events
             if kind == "capture" or (kind == "push" and name.startswith(("warmup", "measured", "memory")))]
    assert order == ["warmup_0", "warmup_1", "start", "measured_0", "measured_1", "measured_2", "stop", "memory"]


def test_capture_range_calls_cuda_profiler_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda.profiler, "start", lambda: calls.append("start"))
    monkeypatch.setattr(torch.cuda.profiler, "stop", lambda: calls.append("stop"))
    with annotate_module.capture_range(torch.device("cpu")):
        pass
    assert calls == []
    if torch.cuda.is_available():
        with annotate_module.capture_range(torch.device("cuda")):
            calls.append("inside")
        assert calls == ["start", "inside", "stop"]


def test_decorator_opens_a_fresh_range_per_call_at_call_time_level() -> None:
    recording = RangeRecorder()

    @annotate("sample")
    def sample(x: int) -> int:
        with annotate("inner", "detail"):
            return x + 1

    assert sample(1) == 2  # off: nothing recorded, nothing fails
    with annotations("phases", sinks=[recording]):
        assert sample(2) == 3
        assert sample(3) == 4
    with annotations("detail", sinks=[recording]):
        sample(4)
    assert recording.paths() == ["sample", "sample", "sample", "sample/inner"]


def test_levels_nest_and_restore() -> None:
    with annotations("detail", sinks=[]):
        with annotations("phases", sinks=[]):
            assert annotation_level() == "phases"
        assert annotation_level() == "detail"
    assert annotation_level() == "off"
    with pytest.raises(ValueError, match="unknown annotation level"):
        with annotations("everything"):
            pass


def test_real_nvtx_module_and_torch_profiler_receive_ranges() -> None:
    """The default sinks: nvtx's domain (a no-op without a profiler, and it must not fail) and
    record_function, which shows up in a torch.profiler trace under the same names."""
    sink = NvtxSink()
    sink.push("forward")
    sink.push("layer_3")
    sink.pop()
    sink.pop()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        measure(tiny(mode="forward-backward", annotate="detail", warmup=0, steps=1))
    names = {event.name for event in prof.events()}
    assert {"measured_0", "forward", "backward", "layer_0", "attention", "ffn"} <= names


def test_colors_follow_the_phase_not_the_index() -> None:
    assert color_of("layer_0") == color_of("layer_11") != color_of("forward")
    assert color_of("measured_3") == annotate_module.COLORS["measured"]
    assert color_of("something_else") == annotate_module._OTHER_COLOR


def test_bad_annotation_options_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(LmbenchError, match="unknown annotate 'loud'"):
        tiny(annotate="loud")
    proc = run_main(["bench", "--size", "tiny", "--device", "cpu", "--emit-nvtx"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lmbench: error: --emit-nvtx needs CUDA (autograd's NVTX mode); this run is on cpu"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (emit_nvtx, cudaProfilerStart)")
def test_emit_nvtx_and_capture_run_on_cuda(recorder: RangeRecorder) -> None:
    result = measure(tiny(device="cuda", mode="train-step", annotate="detail", emit_nvtx=True))
    assert result.status == "ok"
    assert ("capture", "start") in recorder.events and "measured_0/optimizer" in recorder.paths()


def test_reports_keep_annotated_runs_apart_and_read_old_records(tmp_path) -> None:
    from lmbench.analysis.groups import group_key, group_records
    from lmbench.render.timing_report import render
    from lmbench.results.store import ResultsStore
    from lmbench.studies.sweep import run_sweep

    store = ResultsStore(tmp_path)
    run_sweep([tiny(), tiny(annotate="phases")], store)
    markdown, _ = render(tmp_path)
    assert "## Results: annotate off" in markdown and "## Results: annotate phases" in markdown
    assert "- Ranges (--annotate): off, phases; op-level NVTX (--emit-nvtx): off" in markdown
    old = store.records()[0]
    for key in ("annotate", "emit_nvtx"):  # a record stored before these options existed
        del old.data["config"][key]
    assert group_key(old) == group_key(store.records()[0])
    assert len(group_records(store.records())) == 2
