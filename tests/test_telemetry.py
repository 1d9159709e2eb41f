"""The telemetry sampler: real psutil readings on this machine, and the NVML reader's wiring through a
stand-in module (the real NVML path runs on the GPU machine)."""

from __future__ import annotations

import sys
import time
import types

import psutil
import pytest
import torch

from helpers import tiny
from lmbench.measure.harness import measure
from lmbench.measure.telemetry import Sampler


def test_host_samples_during_a_busy_loop() -> None:
    # Busy until three samples are in (a read can take tens of ms on a many-core VM), at most 10 s.
    with Sampler(torch.device("cpu"), interval_s=0.05) as sampler:
        end = time.perf_counter() + 10
        while len(sampler.samples) < 3 and time.perf_counter() < end:
            sum(range(1000))
    result = sampler.result()
    assert result["sources"] == ["psutil"] and len(result["samples"]) >= 3
    assert all(s["read_ms"] > 0 for s in result["samples"])
    summary = result["summary"]
    assert summary["cpu_load_pct"]["max"] > 50 / psutil.cpu_count()  # this loop kept one core (of all) busy
    assert summary["rss_mb"]["min"] > 10 and "swap_used_mb" in summary


def test_measure_stores_telemetry_of_the_measured_steps() -> None:
    result = measure(tiny(steps=3))
    assert result.telemetry["sources"] == ["psutil"] and result.telemetry["interval_s"] > 0


def test_nvml_reader_survives_an_unsupported_query(monkeypatch: pytest.MonkeyPatch) -> None:
    class NVMLError(Exception):
        pass

    def unsupported(handle: object) -> int:
        raise NVMLError("not supported")

    fake = types.SimpleNamespace(
        NVMLError=NVMLError, NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1, NVML_TEMPERATURE_GPU=0, nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: "gpu0",
        nvmlDeviceGetClockInfo=lambda handle, kind: 1980 if kind == 0 else 3201,
        nvmlDeviceGetPowerUsage=lambda handle: 250_000, nvmlDeviceGetTemperature=lambda handle, kind: 41,
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(gpu=90),
        nvmlDeviceGetCurrentClocksThrottleReasons=unsupported)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with Sampler(torch.device("cuda", 0), interval_s=0.02) as sampler:
        time.sleep(0.1)
    summary = sampler.result()["summary"]
    assert sampler.sources == ["psutil", "nvml"]
    assert summary["sm_clock_mhz"]["max"] == 1980 and summary["power_w"]["mean"] == 250
    assert summary["temperature_c"]["min"] == 41 and "throttle_reasons" not in summary
