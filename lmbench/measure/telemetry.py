"""What the machine was doing while the measured steps ran: a background sampler.

Every INTERVAL_S a daemon thread reads, through psutil, the CPU frequency, the machine's CPU load and
how much of it came from other processes, this process's RSS and the swap in use; and on a GPU, through
NVML (nvidia-ml-py), the SM and memory clocks, power draw, temperature, utilisation and the active
clock-throttle reasons. The samples go into the record, so findings can say whether clocks moved,
the GPU throttled, or another process competed for the host while a noisy phase ran.

Each sample records how long its own reading took (`read_ms`), since the thread competes with the timed
one for the GIL; benchmarks/telemetry_cost.py measures what it does to step time. With neither library
present the sampler records nothing and says so.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import torch

INTERVAL_S = 0.2
_MB = 2**20


class Sampler:
    """Context manager: samples from __enter__ to __exit__; `result()` gives samples and a summary."""

    def __init__(self, device: torch.device, interval_s: float = INTERVAL_S) -> None:
        self.device, self.interval_s = device, interval_s
        self.samples: list[dict[str, float]] = []
        self.sources: list[str] = []
        self._stop = threading.Event()
        self._readers = self._make_readers()

    def _make_readers(self) -> list:
        readers = []
        try:
            import psutil

            process = psutil.Process(os.getpid())
            cores = psutil.cpu_count() or 1

            def host() -> dict[str, float]:
                total = psutil.cpu_percent(None)  # machine-wide, % of all cores since the last call
                own = process.cpu_percent(None) / cores  # this process, same scale
                freq = psutil.cpu_freq()
                return {"cpu_load_pct": total, "other_load_pct": max(total - own, 0.0),
                        "cpu_freq_mhz": freq.current if freq else float("nan"),
                        "rss_mb": process.memory_info().rss / _MB, "swap_used_mb": psutil.swap_memory().used / _MB}

            readers.append(host)
            self.sources.append("psutil")
        except ImportError:
            pass
        if self.device.type == "cuda":
            try:
                import pynvml

                pynvml.nvmlInit()
                index = self.device.index if self.device.index is not None else torch.cuda.current_device()
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)

                # Newer NVML calls throttling "clock events"; older bindings only know the first name.
                reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                    pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
                fields = {
                    "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                    "mem_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
                    "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000,
                    "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                    "gpu_util_pct": lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                    "throttle_reasons": lambda: reasons(handle),
                }

                def gpu() -> dict[str, float]:
                    values = {}
                    for name, read in fields.items():  # one unsupported query must not hide the others
                        try:
                            values[name] = read()
                        except pynvml.NVMLError:
                            pass
                    return values

                readers.append(gpu)
                self.sources.append("nvml")
            except Exception:  # no NVML library or no permission: GPU telemetry is simply absent
                pass
        return readers

    def _read(self, start: float) -> dict[str, float]:
        began = time.perf_counter()
        sample: dict[str, float] = {"t_s": began - start}
        for read in self._readers:
            try:
                sample.update(read())
            except Exception:  # a reading that fails once (driver hiccup) must not end the run
                continue
        # The sampler's own cost: a slow read holds the GIL the timed thread needs to launch work.
        sample["read_ms"] = (time.perf_counter() - began) * 1e3
        return sample

    def _loop(self) -> None:
        start = time.perf_counter()
        self._read(start)  # psutil's CPU percentages count from the previous call in the same thread
        last = start
        while not self._stop.wait(self.interval_s):
            self.samples.append(self._read(start))
            last = time.perf_counter()
        if time.perf_counter() - last > self.interval_s / 4:  # the tail of the run since the last sample
            self.samples.append(self._read(start))

    def __enter__(self) -> Sampler:
        if self._readers:
            self._thread = threading.Thread(target=self._loop, name="lmbench-telemetry", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._readers:
            self._thread.join()

    def result(self) -> dict[str, Any]:
        """{"sources", "interval_s", "samples", "summary": {field: {min, mean, max}}}."""
        summary = {}
        for key in sorted({k for s in self.samples for k in s} - {"t_s", "throttle_reasons"}):
            values = [s[key] for s in self.samples if key in s and s[key] == s[key]]
            if values:
                summary[key] = {"min": min(values), "mean": sum(values) / len(values), "max": max(values)}
        throttles = sorted({int(s["throttle_reasons"]) for s in self.samples if "throttle_reasons" in s})
        if throttles:
            summary["throttle_reasons"] = throttles
        return {"sources": self.sources, "interval_s": self.interval_s, "samples": self.samples, "summary": summary}
