"""The timing harness on the CPU with the tiny model: samples, phases, timing consistency, records."""

from __future__ import annotations

import math

import pytest
import torch

import lmbench.measure.model_factory as model_factory
from helpers import tiny
from lmbench.results.flops import phase_flops
from lmbench.measure.harness import measure
from lmbench.measure.recording import build_record
from lmbench.results.record import SCHEMA, phase_names
from lmbench.results.stats import summarize

PHASES = {
    "forward": ["forward"],
    "forward-backward": ["forward", "backward"],
    "train-step": ["forward", "backward", "optimizer"],
}


@pytest.fixture(scope="module")
def measured() -> dict:
    """One measurement per mode (2 warm-up + 4 measured steps), made once for the module."""
    out = {}
    for mode in PHASES:
        config = tiny(mode=mode, warmup=2, steps=4)
        out[mode] = (config, measure(config))
    return out


@pytest.mark.parametrize("mode", list(PHASES))
def test_samples_are_warmup_then_measured(measured, mode):
    config, m = measured[mode]
    assert m.status == "ok" and m.oom_phase is None
    assert m.device == torch.device("cpu")
    assert len(m.samples) == config.warmup + config.steps == 6
    assert [s["step"] for s in m.samples] == list(range(6))
    assert [s["warmup"] for s in m.samples] == [True, True, False, False, False, False]


@pytest.mark.parametrize("mode", list(PHASES))
def test_each_mode_runs_its_phases(measured, mode):
    _, m = measured[mode]
    expected = PHASES[mode]
    for sample in m.samples:
        assert set(sample) == {"step", "warmup", "step_ms", *(f"{p}_ms" for p in expected)}
        assert all(sample[f"{p}_ms"] > 0 for p in expected)
    assert phase_names(m.samples) == expected
    assert list(m.memory) == expected  # per-phase memory peaks (peak RSS on the CPU)
    assert all(peaks["peak_rss_mb"] > 0 for peaks in m.memory.values())


@pytest.mark.parametrize("mode", list(PHASES))
def test_phase_times_add_up_to_the_step_time(measured, mode):
    _, m = measured[mode]
    for sample in m.samples:
        phase_sum = sum(sample[f"{p}_ms"] for p in PHASES[mode])
        # phases are consecutive sub-intervals of the step: never more, and the gap is timer bookkeeping
        assert phase_sum <= sample["step_ms"] + 1e-6
        assert sample["step_ms"] - phase_sum <= max(0.05 * sample["step_ms"], 2.0)


@pytest.mark.parametrize("mode", list(PHASES))
def test_record_statistics_are_summaries_of_measured_samples(measured, mode):
    config, m = measured[mode]
    record = build_record(config, m, wall_s=1.5)
    assert record.data["lmbench"] == SCHEMA and record.data["status"] == "ok" and record.data["key"] == config.key()
    measured_samples = [s for s in m.samples if not s["warmup"]]
    assert record.data["samples"] == m.samples  # warm-up samples kept in the record, labelled
    phases = PHASES[mode]
    assert set(record.data["stats"]) == {*phases, "total", "step"}
    for phase in phases:
        assert record.data["stats"][phase] == summarize([s[f"{phase}_ms"] for s in measured_samples]).as_dict()
        assert record.data["stats"][phase]["n"] == config.steps
    totals = [sum(s[f"{p}_ms"] for p in phases) for s in measured_samples]
    assert record.data["stats"]["total"] == summarize(totals).as_dict()
    assert record.data["stats"]["step"] == summarize([s["step_ms"] for s in measured_samples]).as_dict()
    # the mean is over the 4 measured steps only (warm-up excluded)
    assert record.data["stats"]["forward"]["n"] == 4
    assert record.data["stats"]["forward"]["mean"] == pytest.approx(
        sum(s["forward_ms"] for s in measured_samples) / 4)


@pytest.mark.parametrize("mode", list(PHASES))
def test_record_throughput_is_derived_from_stats(measured, mode):
    config, m = measured[mode]
    record = build_record(config, m, wall_s=1.0)
    tp, stats = record.data["throughput"], record.data["stats"]
    expected_flops = phase_flops(config.model_config(), config.batch, config.ctx, mode)
    assert tp["flops"] == {**expected_flops, "total": sum(expected_flops.values())}
    assert tp["tokens_per_s"] == pytest.approx(config.batch * config.ctx / (stats["total"]["mean"] / 1e3))
    assert tp["tflops"]["forward"] == pytest.approx(expected_flops["forward"] / (stats["forward"]["mean"] / 1e3) / 1e12)
    assert "optimizer" not in tp["tflops"]  # 0 FLOPs: no throughput to speak of
    assert tp["peak_tflops"] is None and tp["mfu"] == {}  # no datasheet peak for a CPU
    assert record.data["model"]["params"] == m.params
    assert record.data["model"]["label"] == "tiny"
    assert record.data["config"]["mode"] == mode and record.data["numerics"]["precision"] == "fp32"
    assert record.data["numerics"]["float32_matmul_precision"] in ("highest", "high", "medium")


class _BuildSpy:
    """Wraps the real build_model and remembers the model (and its initial weights) it built."""

    def __init__(self) -> None:
        self.model = None
        self.initial: dict[str, torch.Tensor] = {}

    def __call__(self, cfg, device):
        self.model = harness_build_model(cfg, device)
        self.initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return self.model

    def changed(self) -> set[str]:
        return {k for k, v in self.model.state_dict().items() if not torch.equal(v, self.initial[k])}


harness_build_model = model_factory.build_model


@pytest.mark.parametrize(("mode", "updates"), [("train-step", True), ("forward-backward", False), ("forward", False)])
def test_only_train_step_changes_parameters(monkeypatch, mode, updates):
    spy = _BuildSpy()
    monkeypatch.setattr(model_factory, "build_model", spy)
    m = measure(tiny(mode=mode, warmup=0, steps=2))
    assert m.status == "ok" and spy.model is not None
    names = {n for n, _ in spy.model.named_parameters()}
    if updates:
        assert spy.changed() == names  # AdamW moves every parameter
    else:
        assert spy.changed() == set()
    if mode == "forward-backward":
        assert all(p.grad is not None for p in spy.model.parameters())
    if mode == "forward":
        assert all(p.grad is None for p in spy.model.parameters())


def test_same_seed_gives_same_initial_weights_and_tokens(monkeypatch):
    spies = [_BuildSpy(), _BuildSpy()]
    for spy in spies:
        monkeypatch.setattr(model_factory, "build_model", spy)
        measure(tiny(mode="forward", warmup=0, steps=1, seed=7))
    a, b = (s.initial for s in spies)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_runs_on_cpu():
    config = tiny(mode="train-step", precision="bf16", warmup=1, steps=2)
    m = measure(config)
    assert m.status == "ok"
    assert len(m.samples) == 3
    record = build_record(config, m, wall_s=1.0)
    assert record.data["numerics"]["autocast"] is True and record.data["numerics"]["precision"] == "bf16"
    assert all(math.isfinite(record.data["stats"][p]["mean"]) for p in ("forward", "backward", "optimizer"))


def test_on_step_sees_every_sample():
    seen = []
    m = measure(tiny(mode="forward", warmup=1, steps=2), on_step=lambda i, s: seen.append((i, s)))
    assert [i for i, _ in seen] == [0, 1, 2]
    assert [s for _, s in seen] == m.samples


def test_matmul_precision_restored_after_measure():
    before = torch.get_float32_matmul_precision()
    measure(tiny(mode="forward", warmup=0, steps=1))
    assert torch.get_float32_matmul_precision() == before


def test_single_measured_step_record():
    config = tiny(mode="forward", warmup=0, steps=1)
    record = build_record(config, measure(config), wall_s=0.1)
    s = record.data["stats"]["forward"]
    assert s["n"] == 1 and s["std"] == 0.0 and math.isnan(s["ci_low"])
    assert record.data["samples"][0]["warmup"] is False


def test_timer_reads_memory_only_when_asked():
    from lmbench.measure.timers import CpuPhaseTimer

    timer = CpuPhaseTimer()
    timer.start()
    timer.mark("forward")
    times, wall_ms, memory = timer.finish()
    assert list(times) == ["forward"] and memory == {}  # timed steps carry no memory bookkeeping
    timer.start(memory=True)
    _ = bytearray(64 * 2**20)  # touch 64 MiB inside the phase
    timer.mark("forward")
    _, _, memory = timer.finish()
    assert memory["forward"]["peak_rss_mb"] >= 64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA event timer)")
def test_cuda_timer_reuses_its_events_across_steps():
    from lmbench.measure.timers import CudaPhaseTimer

    timer = CudaPhaseTimer(torch.device("cuda"))
    x = torch.randn(2048, 2048, device="cuda")
    x @ x  # cuBLAS initialises on its first matmul; keep that out of the timed steps
    torch.cuda.synchronize()
    for _ in range(3):
        timer.start()
        x @ x
        timer.mark("forward")
        x @ x
        x @ x
        timer.mark("backward")
        times, wall_ms, memory = timer.finish()
        assert list(times) == ["forward", "backward"] and memory == {}
        assert times["forward"] > 0 and times["backward"] > times["forward"]  # one matmul, then two
        assert sum(times.values()) <= wall_ms + 0.05
    assert len(timer._pool) == 3  # created once, then re-recorded
