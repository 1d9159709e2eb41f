"""Run Nsight Compute over the kernels of one phase of an lmbench run, then turn its raw page into a kernel table.

`lmbench ncu` profiles a child `lmbench bench` of the configuration with one measured step:

    ncu --clock-control none --profile-from-start off --nvtx --nvtx-include "lmbench@measured_0/forward/"
        --filter-mode per-launch-config --launch-count 1 --section SpeedOfLight --section Occupancy
        --section SpeedOfLight_RooflineChart --section SpeedOfLight_HierarchicalTensorRooflineChart
        --export traces/<run>/<name> --force-overwrite python -m lmbench bench ... --steps 1 --run-dir traces/<run>
    ncu --import traces/<run>/<name>.ncu-rep --csv --page raw  >  traces/<run>/<name>/ncu_raw.csv

The harness opens the CUDA profiler range at the measured steps, so warm-up is never profiled
(`--profile-from-start off`); the NVTX filter keeps the phase's kernels. Clocks stay as the GPU runs them
(`--clock-control none`). Autograd launches backward kernels from its own thread, which carries none of lmbench's
ranges, so `--phase backward` keeps what the step launches outside its forward and optimizer ranges.

Cost: ncu replays each profiled launch once per metric pass and saves and restores the process's GPU memory around
the replays, so a launch of a large model costs seconds. `--filter-mode per-launch-config --launch-count N` profiles
N launches of each distinct kernel (name, grid, block): a model's layers repeat the same launches, so the count of
profiled launches stays that of one layer plus the embedding, head and loss, whatever the depth. On the H200 the 7
sections of the fixtures took about 0.6 s a launch for `tiny` (60 launches in a 37.7 s forward phase) and 13 s a
launch for 2.7B in a train step (15 launches in a 200 s call, start-up included); the default 4 sections collect
fewer passes.

Layout of a trace run directory:

    traces/<run>/results.jsonl, report.md      the child's record (its timings are ncu's, not the GPU's)
    traces/<run>/<name>.ncu-rep                the capture (open it in Nsight Compute)
    traces/<run>/<name>/ncu_raw.csv, ncu.json  the raw page and what was profiled
    traces/<run>/<name>/kernels.md, *.csv      the kernel table (kernels/ncu_report.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from lmbench.analysis.groups import capture_name
from lmbench.config import RANGE_DOMAIN, STEP_RANGES, BenchConfig, indexed_range
from lmbench.errors import LmbenchError
from lmbench.kernels.ncu_csv import RAW_FILE
from lmbench.kernels.ncu_report import META_FILE
from lmbench.kernels.report import write_kernel_report
from lmbench.measure.data_parallel import one_process
from lmbench.measure.environment import PROFILER_ENV, check_runnable
from lmbench.measure.processes import child_command
from lmbench.profilers.ncu_options import NCU_ENV, SECTIONS, NcuOptions
from lmbench.profilers.tool_capture import ToolCapture, find_tool, run_tool
from lmbench.results.store import ResultsStore


@dataclass(frozen=True)
class Capture(ToolCapture):
    """Where one phase's Nsight Compute capture, its raw page, ncu.json and its kernel table live."""

    SUFFIX = ".ncu-rep"

    @classmethod
    def of(cls, run_dir: Path, config: BenchConfig, options: NcuOptions) -> "Capture":
        return cls(run_dir, f"{capture_name(config)}-ncu-{options.phase}")


@dataclass(frozen=True)
class NcuRun:
    """What `lmbench ncu` wrote: the capture and its kernel table."""

    capture: Capture
    report: Path  # kernels.md in the capture's directory


def profile_phase(config: BenchConfig, options: NcuOptions, trace_dir: Path, ncu: str | None = None) -> NcuRun:
    """Profile the kernels of `options.phase` in measured step 0 of `config` (one process) under Nsight Compute into
    `trace_dir` and write their kernel table. `ncu` is the executable (default: $LMBENCH_NCU, then PATH); without
    one, the error lists the commands to run where Nsight Compute is installed."""
    one_process(config, "ncu")
    options.check(config)
    capture = Capture.of(trace_dir, config, options)
    executable = find_ncu(ncu)
    if executable is None:
        raise LmbenchError(missing_ncu_message(config, options, capture))
    with ResultsStore(capture.run_dir).claim():
        check_runnable(config)
        run_capture(config, options, capture, executable)
        return NcuRun(capture, write_kernel_report(capture.dir))


def find_ncu(explicit: str | None = None) -> str | None:
    """ncu from --ncu, then $LMBENCH_NCU, then PATH; None when there is none."""
    return find_tool("ncu", explicit, NCU_ENV)


def child_config(config: BenchConfig) -> BenchConfig:
    """The profiled configuration: one measured step (the filter names measured_0; more steps only cost time)."""
    return dataclasses.replace(config, steps=1)


def nvtx_filter(phase: str) -> list[str]:
    """ncu's NVTX filter for one phase of measured step 0: the phase's range, or for backward everything outside
    the forward and optimizer ranges (autograd's thread carries no lmbench range)."""
    step = f"{RANGE_DOMAIN}@{indexed_range(STEP_RANGES[1], 0)}"
    if phase == "backward":
        return ["--nvtx-exclude", f"{step}/forward/", "--nvtx-exclude", f"{step}/optimizer/"]
    return ["--nvtx-include", f"{step}/{phase}/"]


def profile_command(ncu: str, config: BenchConfig, options: NcuOptions, capture: Capture,
                    python: str = sys.executable) -> list[str]:
    sections = [arg for section in SECTIONS[options.sections] for arg in ("--section", section)]
    return [ncu, "--clock-control", "none", "--profile-from-start", "off", "--nvtx", *nvtx_filter(options.phase),
            "--filter-mode", "per-launch-config", "--launch-count", str(options.kernels), *sections,
            "--export", str(capture.base), "--force-overwrite",
            *child_command(child_config(config), capture.run_dir, report=True, python=python)]


def import_command(ncu: str, capture: Capture) -> list[str]:
    """The raw page of the capture as CSV, on stdout."""
    return [ncu, "--import", str(capture.rep), "--csv", "--page", "raw"]


def write_meta(config: BenchConfig, options: NcuOptions, capture: Capture, command: list[str]) -> None:
    """ncu.json: what the capture profiled, so its report can say so and find the run's record."""
    capture.dir.mkdir(parents=True, exist_ok=True)
    meta = {"phase": options.phase, "key": child_config(config).key(), "kernels": options.kernels,
            "sections": list(SECTIONS[options.sections]), "command": shlex.join(command)}
    (capture.dir / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def run_capture(config: BenchConfig, options: NcuOptions, capture: Capture, ncu: str) -> None:
    """Profile the phase and export the raw page; ncu's own output goes to stderr."""
    command = profile_command(ncu, config, options, capture)
    write_meta(config, options, capture, command)
    run_tool(command, "ncu", env={**os.environ, PROFILER_ENV: "ncu"})
    if not capture.rep.exists():
        raise LmbenchError(f"ncu wrote no {capture.rep}: no kernel matched (is this a CUDA run with the phase's ranges?)")
    with open(capture.dir / RAW_FILE, "wb") as raw:
        run_tool(import_command(ncu, capture), "ncu --import", stdout=raw)


def missing_ncu_message(config: BenchConfig, options: NcuOptions, capture: Capture) -> str:
    """What to run where Nsight Compute is installed, when it is not here."""
    return "\n".join([
        f"ncu not found (tried --ncu, ${NCU_ENV}, PATH). Run these where Nsight Compute is installed:",
        "  " + shlex.join(profile_command("ncu", config, options, capture, python="python3")),
        f"  mkdir -p {shlex.quote(str(capture.dir))} && " + shlex.join(import_command("ncu", capture))
        + " > " + shlex.quote(str(capture.dir / RAW_FILE)),
        f"then render the kernel table there or here: lmbench kernels {capture.dir}",
    ])
