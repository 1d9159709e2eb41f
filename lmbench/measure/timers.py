"""Phase timers: CUDA events on the GPU (one synchronize per step), perf_counter on the CPU.

A step is timed as a chain of marks: `start()`, then `mark(phase)` at the end of each phase, then
`finish()`, which returns each phase's milliseconds and the step's host wall-clock milliseconds.
With `start(memory=True)` each mark also reads the phase's memory peak and resets the counter for the
next phase. Reading the CUDA allocator's stats costs host time (on the H200 it made a launch-bound
small-model step ~2% slower), so the harness asks for memory only on an extra step that is not timed.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Protocol

import torch


class PhaseTimer(Protocol):
    def start(self, memory: bool = False) -> None: ...
    def mark(self, phase: str) -> None: ...
    def finish(self) -> tuple[dict[str, float], float, dict[str, dict[str, float]]]: ...


class CudaPhaseTimer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        # Events are created once and re-recorded every step (finish() synchronises before reuse), so
        # no event is created inside a timed step.
        self._pool: list[torch.cuda.Event] = []
        self._names: list[str] = []
        self._memory: dict[str, dict[str, float]] = {}

    def _record(self, name: str) -> None:
        if len(self._names) == len(self._pool):
            self._pool.append(torch.cuda.Event(enable_timing=True))
        self._pool[len(self._names)].record()
        self._names.append(name)

    def start(self, memory: bool = False) -> None:
        self._track = memory
        if memory:
            torch.cuda.reset_peak_memory_stats(self.device)
        self._memory = {}
        self._names = []
        self._record("")
        self._t0 = time.perf_counter()

    def mark(self, phase: str) -> None:
        self._record(phase)
        if self._track:
            self._memory[phase] = _cuda_peaks_mb(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def finish(self) -> tuple[dict[str, float], float, dict[str, dict[str, float]]]:
        events = self._pool[: len(self._names)]
        events[-1].synchronize()  # the one synchronisation of the step
        wall_ms = (time.perf_counter() - self._t0) * 1e3
        phases = {name: before.elapsed_time(after) for name, before, after in zip(self._names[1:], events, events[1:])}
        return phases, wall_ms, self._memory


class CpuPhaseTimer:
    """perf_counter marks; peak RSS per phase when the kernel lets us reset the high-water mark."""

    def __init__(self) -> None:
        self._can_reset_rss = _reset_peak_rss()

    def start(self, memory: bool = False) -> None:
        self._track = memory
        self._memory: dict[str, dict[str, float]] = {}
        if memory:
            _reset_peak_rss()
        self._marks = [("", time.perf_counter())]

    def mark(self, phase: str) -> None:
        self._marks.append((phase, time.perf_counter()))
        if self._track:
            self._memory[phase] = {"peak_rss_mb": _peak_rss_mb()}
            if self._can_reset_rss:
                _reset_peak_rss()

    def finish(self) -> tuple[dict[str, float], float, dict[str, dict[str, float]]]:
        end = time.perf_counter()
        phases = {name: (t1 - t0) * 1e3 for (_, t0), (name, t1) in zip(self._marks, self._marks[1:])}
        return phases, (end - self._marks[0][1]) * 1e3, self._memory


def make_timer(device: torch.device) -> PhaseTimer:
    return CudaPhaseTimer(device) if device.type == "cuda" else CpuPhaseTimer()


def _cuda_peaks_mb(device: torch.device) -> dict[str, float]:
    # torch.cuda.max_memory_allocated() flattens the allocator's whole nested stats dict in Python on
    # every call; inside a timed step read the two peaks from the nested dict directly.
    stats = torch._C._cuda_memoryStats(device.index if device.index is not None else torch.cuda.current_device())
    return {
        "peak_allocated_mb": stats["allocated_bytes"]["all"]["peak"] / 2**20,
        "peak_reserved_mb": stats["reserved_bytes"]["all"]["peak"] / 2**20,
    }


def _reset_peak_rss() -> bool:
    """Reset this process's peak-RSS high-water mark (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            match = re.search(r"VmHWM:\s+(\d+)\s+kB", f.read())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    import resource  # not Linux /proc: the lifetime peak is the best there is

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
