"""Read an Nsight Compute capture's raw page into one row per profiled kernel launch, with its roofline position.

`ncu --import X.ncu-rep --csv --page raw` writes a header row of metric names, a units row ('us', 'Gbyte/s',
'%', ...; one metric's unit can change from kernel file to file, so every value is scaled by its own column's
unit) and then one row per profiled launch, numbers with thousands separators ('80,530,636,800'). The kernel's
place in lmbench's ranges comes from the NVTX column (`--nvtx`): the launching thread's push/pop stack,
`"lmbench:measured_0:..."  "lmbench:forward:..."`.

The roofline follows the metrics of ncu's SpeedOfLight_RooflineChart and
SpeedOfLight_HierarchicalTensorRooflineChart sections (all rates over the kernel's own duration):
    FP32 FLOP/s    (fadd + fmul + 2 ffma) thread instructions per elapsed SMSP cycle, summed, x SMSP clock
    FP64 FLOP/s    the same with dadd, dmul, dfma
    tensor FLOP/s  each floating-point tensor-core path's `sm__ops_path_tensor_*.sum.per_second`; one op is one
                   FLOP (on the H200 a 2.7B QKV GEMM counts exactly 2·M·N·K), integer paths are left out
    DRAM bytes/s   dram__bytes.sum.per_second, its peak dram__bytes.sum.peak_sustained x DRAM clock
    intensity      FLOP/s ÷ DRAM bytes/s
    roof           the peak of the kernel's busiest path: its tensor path's own peak (a dense bf16 HGMMA has half
                   the sparse one's), else FP32 (FP64 when that is busier) at the elapsed SM clock
    ridge          roof ÷ peak DRAM bytes/s: compute-bound when the intensity is above it, memory-bound below
Half-precision FLOPs outside the tensor cores (HADD2/HFMA2) have no metric in these sections and are not counted.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lmbench.config import PHASES, RANGE_DOMAIN, STEP_RANGES
from lmbench.errors import LmbenchError
from lmbench.kernels.frame import categorize, short_name

RAW_FILE = "ncu_raw.csv"  # the raw page of one capture, beside its kernel report
NVTX_COLUMN = "thread Domain:Push/Pop_Range"  # the start of the NVTX stack column's name
IDENTITY = ("ID", "Kernel Name", "Grid Size", "Block Size", "Stream", "Device", "CC")
DURATION = "gpu__time_duration.sum"
SM_PCT = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
MEMORY_PCT = "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
OCCUPANCY_PCT = "sm__warps_active.avg.pct_of_peak_sustained_active"
DRAM = ("dram__bytes.sum.per_second", "dram__bytes.sum.peak_sustained", "dram__cycles_elapsed.avg.per_second")
CLOCKS = ("smsp__cycles_elapsed.avg.per_second", "sm__cycles_elapsed.avg.per_second")
_INST = "smsp__sass_thread_inst_executed_op_{}_pred_on.sum.per_cycle_elapsed"
_INST_PEAK = "sm__sass_thread_inst_executed_op_{}_pred_on.sum.peak_sustained"
SCALAR = {"fp32": ("fadd", "fmul", "ffma"), "fp64": ("dadd", "dmul", "dfma")}  # add, multiply, fused multiply-add
METRICS = (DURATION, SM_PCT, MEMORY_PCT, OCCUPANCY_PCT, *DRAM, *CLOCKS,
           *(_INST.format(op) for ops in SCALAR.values() for op in ops),
           *(_INST_PEAK.format(ops[2]) for ops in SCALAR.values()))
# A tensor path's achieved rate, its peak and its op count: per instruction ('op_hgmma_src_bf16_dst_fp32_sparsity_off')
# or per source type only ('src_fp8_sparsity_off', for types no instruction-level metric covers).
TENSOR = re.compile(r"^sm__ops_path_tensor_(?:op_(?P<op>[a-z0-9]+)_)?src_(?P<src>[a-z0-9_]+)"
                    r"\.sum(?P<what>\.per_second|\.peak_sustained_elapsed\.per_second|)$")
_PREFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_UNIT = re.compile(r"^(?P<prefix>[numKMGTP]?)(?:byte|second|s|hz|cycle|inst|warp)(?:/\w+)?$")
_LMBENCH_RANGE = re.compile(rf'"{RANGE_DOMAIN}:([^:"]+):')
_STEP = re.compile(rf"^{STEP_RANGES[1]}_(\d+)$")


def read_raw(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The raw page as text cells, one row per kernel, and each column's unit. Lines before the header (ncu's own
    messages, when its stdout was captured whole) are skipped."""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise LmbenchError(f"cannot read {path}: {e.strerror or e}") from None
    start = text.find('"ID",')
    if start < 0:
        raise LmbenchError(f"{path} is not an ncu raw page (`ncu --import X.ncu-rep --csv --page raw`): no \"ID\" header")
    rows = list(csv.reader(io.StringIO(text[start:])))
    header, body = rows[0], [r for r in rows[1:] if r]
    if any(len(r) != len(header) for r in body):
        raise LmbenchError(f"{path}: a row has another number of cells than the header (a cut or damaged file)")
    frame = pd.DataFrame(body, columns=header)
    missing = [c for c in ("ID", "Kernel Name", DURATION) if c not in frame.columns]
    if missing:
        raise LmbenchError(f"{path} lacks the column(s) {', '.join(missing)}")
    units = frame.iloc[0] if len(frame) and frame["ID"].iloc[0] == "" else pd.Series("", index=frame.columns)
    return frame.iloc[1:].reset_index(drop=True) if units.any() else frame, units.to_dict()


def si_factor(unit: str, column: str = "") -> float:
    """The factor that takes a value in `unit` to SI (seconds, bytes, hertz); 1 for counts and percentages."""
    if unit in ("", "%"):
        return 1.0
    match = _UNIT.match(unit)
    if not match:
        raise LmbenchError(f"unknown unit {unit!r} of the ncu column {column or '?'}")
    return _PREFIX[match["prefix"]]


def numbers(frame: pd.DataFrame, units: dict[str, str], column: str) -> pd.Series:
    """A column in SI units: thousands separators dropped, 'n/a' or an empty cell as NaN; NaN everywhere when the
    capture did not collect it."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    values = pd.to_numeric(frame[column].str.replace(",", "", regex=False), errors="coerce")
    return values * si_factor(units.get(column, ""), column)


def nvtx_place(stack: str, unplaced: str = "") -> tuple[int | None, str, str]:
    """(measured step, phase, range path below the step) of one NVTX stack cell. A launch without any lmbench range
    (autograd's backward thread) gets the phase `unplaced`; one inside a step but outside its phases gets ''."""
    names = _LMBENCH_RANGE.findall(stack)
    steps = [i for i, n in enumerate(names) if _STEP.match(n)]
    if not steps:
        return None, (unplaced if not names else ""), ""
    below = names[steps[0] + 1:]
    phase = below[0] if below and below[0] in PHASES else ""
    return int(_STEP.match(names[steps[0]])[1]), phase, "/".join(below)


def tensor_paths(frame: pd.DataFrame, units: dict[str, str]) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Floating-point tensor-core paths: label -> (achieved FLOP/s, peak FLOP/s). Instruction-level paths where the
    capture has them; a source type's own total only where no instruction-level path covers it (no double count)."""
    found: dict[tuple[str | None, str], dict[str, str]] = {}
    for column in frame.columns:
        match = TENSOR.match(column)
        if match and not match["src"].startswith("int"):
            found.setdefault((match["op"], match["src"]), {})[match["what"]] = column
    covered = [src for op, src in found if op]
    paths = {}
    for (op, src), columns in sorted(found.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        if ".per_second" not in columns or (op is None and any(c.startswith(src) for c in covered)):
            continue
        kind = src.replace("_dst_", "→").replace("_sparsity_off", "").replace("_sparsity_on", " sparse")
        label = f"tensor {kind}" + (f" ({op})" if op else "")
        peak = columns.get(".peak_sustained_elapsed.per_second")
        paths[label] = (numbers(frame, units, columns[".per_second"]),
                        numbers(frame, units, peak) if peak else pd.Series(np.nan, index=frame.index))
    return paths


def scalar_paths(frame: pd.DataFrame, units: dict[str, str]) -> dict[str, tuple[pd.Series, pd.Series]]:
    """FP32 and FP64 outside the tensor cores: label -> (achieved FLOP/s, peak FLOP/s), as the roofline section
    computes them (an FMA is two FLOPs)."""
    smsp_clock, sm_clock = (numbers(frame, units, c) for c in CLOCKS)
    paths = {}
    for label, (add, mul, fma) in SCALAR.items():
        per_cycle = sum(numbers(frame, units, _INST.format(op)) * k for op, k in ((add, 1), (mul, 1), (fma, 2)))
        paths[label] = (per_cycle * smsp_clock, 2 * numbers(frame, units, _INST_PEAK.format(fma)) * sm_clock)
    return paths


def kernel_table(path: Path, unplaced: str = "") -> pd.DataFrame:
    """One row per profiled launch, in launch order: identity, lmbench place and category, duration (ns), SM and
    memory throughput and achieved occupancy (% of peak), FLOP/s (all paths, and the tensor cores' part), DRAM
    bytes/s, arithmetic intensity, the roof and its ridge point, the bound, and the share of the roofline reached."""
    frame, units = read_raw(path)
    if frame.empty:
        raise LmbenchError(f"{path} holds no profiled kernel")
    nvtx = next((c for c in frame.columns if c.startswith(NVTX_COLUMN)), None)
    places = [nvtx_place(cell, unplaced) for cell in (frame[nvtx] if nvtx else [""] * len(frame))]
    duration = (numbers(frame, units, DURATION) * 1e9).round()  # ncu times whole nanoseconds
    if duration.isna().any():
        raise LmbenchError(f"{path}: a kernel has no {DURATION} value")
    table = pd.DataFrame({
        "id": frame["ID"].astype(int), "name": frame["Kernel Name"],
        "kernel": frame["Kernel Name"].map(short_name), "category": frame["Kernel Name"].map(categorize),
        "step": [p[0] for p in places], "phase": [p[1] for p in places], "path": [p[2] for p in places],
        "grid": frame.get("Grid Size", ""), "block": frame.get("Block Size", ""), "duration_ns": duration,
        "duration_us": duration / 1e3, "sm_pct": numbers(frame, units, SM_PCT),
        "memory_pct": numbers(frame, units, MEMORY_PCT), "occupancy_pct": numbers(frame, units, OCCUPANCY_PCT)})
    return table.join(roofline(frame, units))


def roofline(frame: pd.DataFrame, units: dict[str, str]) -> pd.DataFrame:
    """Per kernel: FLOP/s, tensor FLOP/s, DRAM bytes/s, intensity, roof (label and FLOP/s), ridge, bound and the
    achieved FLOP/s as a share of the roofline at the kernel's intensity."""
    tensor = tensor_paths(frame, units)
    paths = {**tensor, **scalar_paths(frame, units)}
    achieved = pd.DataFrame({label: rate for label, (rate, _) in paths.items()}).fillna(0.0)
    peaks = pd.DataFrame({label: peak for label, (_, peak) in paths.items()})
    flops = achieved.sum(axis=1)
    dram, dram_peak_per_cycle, dram_clock = (numbers(frame, units, c) for c in DRAM)
    dram_peak = dram_peak_per_cycle * dram_clock
    busiest = achieved.idxmax(axis=1).where(flops > 0, "fp32")  # no FLOPs at all: the FP32 roof, as ncu draws it
    roof = pd.Series([peaks.at[i, label] for i, label in busiest.items()], index=frame.index, dtype=float)
    intensity = flops / dram.where(dram > 0)
    ridge = roof / dram_peak
    attainable = np.minimum(roof, intensity.fillna(np.inf) * dram_peak)
    bound = np.where(intensity.isna() | ridge.isna(), np.where(flops > 0, "compute", "memory"),
                     np.where(intensity > ridge, "compute", "memory"))
    return pd.DataFrame({
        "flop_per_s": flops, "tensor_flop_per_s": achieved[list(tensor)].sum(axis=1) if tensor else np.nan,  # NaN: not captured
        "dram_bytes_per_s": dram, "dram_peak_bytes_per_s": dram_peak, "intensity": intensity, "roof": busiest,
        "roof_flop_per_s": roof, "ridge": ridge, "bound": bound,
        "roof_pct": 100 * flops / attainable.where(attainable > 0)}, index=frame.index)

