"""Out-of-memory handling: recorded with its phase, the sweep goes on, memory is released, the report says so."""

from __future__ import annotations

import pytest
import torch

from helpers import tiny
from lmbench.config import BenchConfig
from lmbench.measure.harness import measure
from lmbench.measure.recording import build_record
from lmbench.render.timing_report import render
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import run_sweep

# What torch raises (its allocator's advice shortened), and what the record keeps: the first two sentences.
OOM_ERROR = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.81 GiB of "
             "which 3.12 GiB is free. Of the allocated memory 130.02 GiB is allocated by PyTorch.\n"
             "If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments")
OOM_MESSAGE = "CUDA out of memory. Tried to allocate 20.00 GiB."
# Two sizes with the same small override dimensions: one report group, two rows.
DIMS = dict(d_model=32, d_ff=64, n_layers=1, n_heads=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to run out of its memory")
def test_cuda_oom_is_recorded_and_memory_is_released():
    # cuBLAS takes its workspace from the caching allocator at the first matmul and keeps it: take it before the
    # baseline, or a run where this is the first CUDA test counts that 64 MiB as left behind
    torch.ones(8, 8, device="cuda") @ torch.ones(8, 8, device="cuda")
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated()
    # 10B in fp32: ~51 GB of weights, as much again of gradients and twice that of AdamW state
    too_big = BenchConfig(size="10B", mode="train-step", ctx=512, batch=4, steps=1, warmup=0, device="cuda")
    m = measure(too_big)
    assert m.status == "oom"
    assert m.oom_phase in ("build", "forward", "backward", "optimizer")
    assert "out of memory" in m.oom_message.lower()
    record = build_record(too_big, m, wall_s=1.0)
    assert record.data["oom"] == {"phase": m.oom_phase, "message": m.oom_message}
    assert "stats" not in record.data
    # everything the failed configuration allocated is gone
    assert torch.cuda.memory_allocated() - baseline < 64 * 2**20
    small = BenchConfig(size="tiny", mode="train-step", ctx=64, batch=2, steps=2, warmup=1, device="cuda")
    ok = measure(small)
    assert ok.status == "ok" and len(ok.samples) == 3
    assert torch.cuda.memory_allocated() - baseline < 64 * 2**20


def _oom_backward_for(monkeypatch, size: str):
    """While a configuration of `size` runs, its backward raises torch.OutOfMemoryError; others are untouched."""
    real_backward = torch.Tensor.backward
    current: dict[str, BenchConfig] = {}

    def backward(self, *args, **kwargs):
        if current["config"].size == size:
            raise torch.OutOfMemoryError(OOM_ERROR)
        return real_backward(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    return lambda event, config: current.update(config=config)


def test_injected_oom_is_recorded_and_the_sweep_continues(tmp_path, monkeypatch):
    configs = [tiny(size="small", **DIMS), tiny(size="tiny", **DIMS)]
    on_event = _oom_backward_for(monkeypatch, "small")
    records = run_sweep(configs, ResultsStore(tmp_path), on_event=on_event)

    assert [r.data["status"] for r in records] == ["oom", "ok"]
    oom = records[0]
    assert oom.data["oom"] == {"phase": "backward", "message": OOM_MESSAGE}
    assert "stats" not in oom.data and "throughput" not in oom.data
    assert oom.data["model"]["params"] > 0  # the model was built before the step failed
    assert oom.data["samples"] == []  # the very first (warm-up) step failed
    assert records[1].data["stats"]["backward"]["n"] == 3
    assert ResultsStore(tmp_path).records() == records

    text, tables = render(tmp_path)
    oom_label, ok_label = (r.data["model"]["label"] for r in records)
    results = tables["results"].set_index("Model Size")
    assert results.loc[oom_label, "Backward (ms)"] == "OOM"
    assert results.loc[oom_label, "Total (ms)"] == "OOM"
    assert results.loc[oom_label, "Forward (ms)"] == "—"  # no complete step: no forward time either
    assert results.loc[ok_label, "Backward (ms)"] != "OOM"
    assert tables["cv"].set_index("Model").loc[oom_label].tolist() == ["OOM", "OOM"]
    assert tables["ratio"].set_index("Model").loc[oom_label, "Ratio"] == "OOM"
    oom_row = next(line for line in text.splitlines() if line.startswith(f"| {oom_label} ") and "OOM" in line)
    assert oom_row.split("|")[3].strip() == "OOM"  # Model Size | Forward | Backward | Total
    assert f"**oom** — {oom_label} ran out of memory in the backward phase." in text
    assert OOM_MESSAGE in text  # the finding's basis is the error message


def test_oom_in_a_measured_step_keeps_earlier_samples(tmp_path, monkeypatch):
    real_backward = torch.Tensor.backward
    calls = {"n": 0}

    def backward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # warm-up step, measured step 1, then measured step 2 fails
            raise torch.OutOfMemoryError(OOM_ERROR)
        return real_backward(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    config = tiny(mode="train-step", warmup=1, steps=3)
    m = measure(config)
    assert (m.status, m.oom_phase, m.oom_message) == ("oom", "backward", OOM_MESSAGE)
    assert [s["warmup"] for s in m.samples] == [True, False]


def test_host_memory_error_is_an_oom_too(monkeypatch):
    import lmbench.measure.model_factory as model_factory

    def no_memory(cfg, device):
        raise MemoryError()

    monkeypatch.setattr(model_factory, "build_model", no_memory)
    m = measure(tiny())
    assert (m.status, m.oom_phase, m.oom_message) == ("oom", "build", "MemoryError")
    assert m.params is None and m.samples == []


def test_the_cpu_allocator_running_out_is_an_oom_too(monkeypatch):
    """A real failure, not a stand-in: an embedding of 2**40 x 64 floats (256 TiB) cannot be allocated. The machine
    is made to look big enough, so the check that refuses such a configuration before building lets it through."""
    monkeypatch.setattr("lmbench.measure.environment.physical_memory", lambda: 2**62)
    m = measure(tiny(vocab_size=2**40))
    assert (m.status, m.oom_phase) == ("oom", "build")
    assert m.oom_message.startswith("DefaultCPUAllocator: can't allocate memory: you tried to allocate")


def test_report_of_a_group_with_only_oom_records(tmp_path, monkeypatch):
    """A configuration whose group has no successful record (e.g. a single `bench` that ran out of memory)."""
    on_event = _oom_backward_for(monkeypatch, "tiny")
    records = run_sweep([tiny(mode="forward-backward")], ResultsStore(tmp_path), on_event=on_event)
    assert records[0].data["status"] == "oom"
    text, tables = render(tmp_path)
    assert tables["results"].loc[0, "Total (ms)"] == "OOM"
    assert "ran out of memory in the backward phase" in text
