"""Communication explained: per rank, phase and measured step, the time of the collective kernels (NCCL), the part
of it no computation overlaps (exposed), the overlap share, the bytes the collectives move and their bus bandwidth.

Definitions (chosen to be Holistic Trace Analysis's, `get_comm_comp_overlap` in hta/analyzers/
communication_analysis.py with hta/utils/utils.py's kernel types, so that the two agree on the same trace):
- a *communication* kernel's name matches `^nccl.*Kernel` (ncclDevKernel_*, ncclKernel_*);
- a *memory* activity is a memcpy or memset (`^Memcpy`, `^Memset`, `^dma` in a torch trace; nsys names them
  `[CUDA memcpy ...]`, `[CUDA memset]`); it is neither communication nor computation;
- a *computation* kernel is every other kernel, except names containing `Sync` (HTA's "other");
- intervals are [start, end) in ns on one GPU (a trace's `device`), every stream together: compute on the NCCL stream
  itself cannot run beside a collective, so counting it changes nothing;
- *comm ms*: the summed durations of the communication kernels; *comm wall*: the time at least one runs (their union;
  equal to comm ms unless collectives run side by side on two streams, as FSDP's all-gather and reduce-scatter may);
- *exposed*: the part of comm wall during which no computation kernel runs on the GPU;
- *overlap* = 1 - exposed / comm wall, HTA's ratio (overlapped communication time over merged communication time).
Communication kernels are placed in phases and steps by launch time (kernels/attribution.py); the computation that
hides them is whatever runs beside them, launched in any phase.

Bytes and bus bandwidth come from the collective's metadata in a torch.profiler trace (`Collective name`, `In msg
nelems`, `Out msg nelems`, `dtype`, `Group size`, on NCCL's `record_param_comms` operator, joined to its kernel by
External id, or on the kernel itself): the size S is nccl-tests' (the larger of the two buffers: in or out elements
times the element size), busbw = sum(S x factor) / sum(kernel time) over the kernels with a known size and a
collective nccl-tests defines a factor for (results/collectives.py). The kernel time includes waiting for the slower
rank to arrive, so it is the bandwidth achieved in the step, not the link's. Where metadata is missing (an nsys
capture, gloo, a kernel no operator names) bytes are left empty, never estimated. An nsys capture of a job whose
record is at hand gets instead the bytes its configuration makes DDP or FSDP2 move per phase (results/comm_bytes.py),
in a column of their own, `analytic_bytes_per_step` ("Bytes/step (analytic)"), and busbw = their bus bytes over the
phase's summed NCCL kernel time (every collective kernel the phase launched).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lmbench.analysis.groups import capture_files
from lmbench.config import PHASES
from lmbench.kernels import torch_trace, weak_scaling
from lmbench.kernels.attribution import STEP_RANGE, place_in_ranges
from lmbench.kernels.frame import COMM_KERNEL, union_ns
from lmbench.render.markdown import titled_table
from lmbench.results.collectives import bus_factor
from lmbench.results.comm_bytes import phase_bytes, step_collectives
from lmbench.results.record import Record

MEMORY = re.compile(r"^Memcpy|^Memset|^dma|^\[CUDA mem", re.IGNORECASE)
NOT_COMPUTE = re.compile(r"Sync|Memcpy")  # HTA's NCCL_COMPUTE_KERNEL_RE beyond the two above: its "other" kernels
# c10d's collective names (Collective name) to the nccl-tests collective whose bus factor applies.
COLLECTIVE_OPS = (("reducescatter", "reduce_scatter_tensor"), ("allreduce", "all_reduce"),
                  ("allgather", "all_gather_into_tensor"), ("alltoall", "all_to_all_single"), ("broadcast", "broadcast"))
ELEMENT_BYTES = {"Float": 4, "BFloat16": 2, "Half": 2, "Double": 8, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                 "Byte": 1, "Bool": 1, "Float8_e4m3fn": 1, "Float8_e5m2": 1, "ComplexFloat": 8, "ComplexDouble": 16}
ACTIVITY_COLUMNS = ("name", "start", "duration", "launch", "device", "size_bytes", "factor")
TABLE_FILE = "kernels_communication.csv"  # the table as a kernel report writes it (kernels_<table>.csv)
COLUMNS = ("rank", "phase", "comm_kernels_per_step", "comm_ms", "comm_wall_ms", "exposed_ms", "overlap_pct",
           "bytes_per_step", "busbw_gbps")
ANALYTIC = "analytic_bytes_per_step"  # an nsys capture's bytes, from the job's configuration, not measured
TITLES = {"rank": "Rank", "phase": "Phase", "comm_kernels_per_step": "Collective kernels/step", "comm_ms": "Comm (ms)",
          "exposed_ms": "Exposed (ms)", "overlap_pct": "Overlapped (%)", "bytes_per_step": "Bytes/step",
          ANALYTIC: "Bytes/step (analytic)", "busbw_gbps": "Bus bandwidth (GB/s)"}


def kind(names: pd.Series) -> pd.Series:
    """'communication', 'memory', 'computation' or 'other' per activity name (HTA's kernel types)."""
    out = pd.Series("computation", index=names.index, dtype=object)
    out[names.str.contains(NOT_COMPUTE)] = "other"
    out[names.str.contains(MEMORY)] = "memory"
    out[names.str.contains(COMM_KERNEL)] = "communication"
    return out


def has_communication(names: pd.Series) -> bool:
    return bool(names.str.contains(COMM_KERNEL).any())


def exposed_ns(comm: tuple[np.ndarray, np.ndarray], compute: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
    """(comm wall, exposed) in ns: |C| and |C minus P| for the unions C of the communication intervals and P of the
    computation ones, exactly, as |C ∪ P'| - |P'| with P' the computation clipped to C's hull (C lies inside it)."""
    cs, ce = comm
    if not len(cs):
        return 0, 0
    lo, hi = cs.min(), ce.max()
    ps, pe = compute
    keep = (pe > lo) & (ps < hi)
    ps, pe = np.clip(ps[keep], lo, hi), np.clip(pe[keep], lo, hi)
    clipped = union_ns(ps, pe)
    return union_ns(cs, ce), union_ns(np.concatenate([cs, ps]), np.concatenate([ce, pe])) - clipped


def collective_sizes(comms: pd.DataFrame) -> pd.DataFrame:
    """Per collective metadata row: size_bytes (nccl-tests' S) and factor (its bus factor), NaN where unknown."""
    element = comms["dtype"].map(ELEMENT_BYTES)
    count = pd.concat([pd.to_numeric(comms["in_nelems"], errors="coerce"),
                       pd.to_numeric(comms["out_nelems"], errors="coerce")], axis=1).max(axis=1, skipna=False)
    group = pd.to_numeric(comms["group_size"], errors="coerce")
    ops = comms["collective"].fillna("").str.lower().str.replace("_", "").map(_op)
    factor = [bus_factor(op, int(n)) if isinstance(op, str) and n >= 1 else np.nan for op, n in zip(ops, group)]
    return comms.assign(size_bytes=count * element, factor=factor)


def _op(name: str) -> str | None:
    return next((op for key, op in COLLECTIVE_OPS if key in name), None)


def trace_activities(gpu: pd.DataFrame, launches: pd.DataFrame, comms: pd.DataFrame | None) -> pd.DataFrame:
    """A torch trace's GPU activities with launch time, device and, for collective kernels whose metadata the trace
    holds, size_bytes and factor (kernel args first, then the operator that launched it by External id)."""
    launch = launches[["correlation", "start"]].rename(columns={"start": "launch"})
    acts = gpu.merge(launch, on="correlation", how="inner")
    acts["size_bytes"], acts["factor"] = np.nan, np.nan
    if comms is not None and not comms.empty:
        sized = collective_sizes(comms)
        for key in ("correlation", "external_id"):  # the kernel's own args win: filled first
            by = sized.dropna(subset=[key]).drop_duplicates(key).set_index(key)
            fill = acts["size_bytes"].isna() & acts[key].isin(by.index)
            acts.loc[fill, "size_bytes"] = acts.loc[fill, key].map(by["size_bytes"])
            acts.loc[fill, "factor"] = acts.loc[fill, key].map(by["factor"])
    acts["device"] = pd.to_numeric(acts["device"], errors="coerce").fillna(0).astype(int)
    return acts[list(ACTIVITY_COLUMNS)]


def nsys_activities(gpu_trace: pd.DataFrame, api_trace: pd.DataFrame) -> pd.DataFrame:
    """An nsys capture's GPU activities (cuda_gpu_trace) with launch time and device ('NVIDIA H200 (1)' -> 1); nsys
    stats hold no collective sizes, so size_bytes and factor stay empty."""
    launch = api_trace[["corrid", "start"]].rename(columns={"start": "launch"})
    acts = gpu_trace.merge(launch, on="corrid", how="inner")
    device = acts["device"].astype(str).str.extract(r"\((\d+)\)\s*$")[0] if "device" in acts else None
    acts["device"] = pd.to_numeric(device, errors="coerce").fillna(0).astype(int) if device is not None else 0
    acts["size_bytes"], acts["factor"] = np.nan, np.nan
    return acts[list(ACTIVITY_COLUMNS)]


def step_table(activities: pd.DataFrame, ranges: pd.DataFrame, rank: int) -> pd.DataFrame:
    """Per device, measured step and phase (and the whole step, phase 'step'): collective kernels, comm ns, comm
    wall ns, exposed ns, bytes, and the kernel ns and bus bytes of the kernels with a known size and factor;
    `traced_steps`, the measured steps in `ranges`."""
    kinds = kind(activities["name"])
    comm = activities[kinds == "communication"]
    if comm.empty or ranges.empty:
        return pd.DataFrame()
    placed = place_in_ranges(comm["launch"].to_numpy(), ranges)
    comm = comm.iloc[placed.index].assign(step=placed["step"].to_numpy(), phase=placed["phase"].to_numpy())
    compute = activities[kinds == "computation"]
    traced = int(ranges["name"].str.match(STEP_RANGE.pattern).sum())  # steps without a collective count too
    rows = []
    for device, on_gpu in comm.groupby("device"):
        busy = compute[compute["device"] == device]
        ps, pe = busy["start"].to_numpy(), (busy["start"] + busy["duration"]).to_numpy()
        groups = [*on_gpu.groupby(["step", "phase"]), *(((s, "step"), g) for s, g in on_gpu.groupby("step"))]
        for (step, phase), group in groups:
            starts = group["start"].to_numpy()
            wall, exposed = exposed_ns((starts, starts + group["duration"].to_numpy()), (ps, pe))
            known = group.dropna(subset=["size_bytes", "factor"])
            rows.append({"rank": rank, "device": int(device), "step": int(step), "phase": phase,
                         "traced_steps": traced, "kernels": len(group), "comm_ns": int(group["duration"].sum()),
                         "wall_ns": wall, "exposed_ns": exposed, "bytes": group["size_bytes"].sum(min_count=len(group)),
                         "sized_ns": known["duration"].sum(), "bus_bytes": (known["size_bytes"] * known["factor"]).sum()})
    return pd.DataFrame(rows)


def summary(steps: pd.DataFrame) -> pd.DataFrame:
    """Per rank and phase (then the whole step), means over the measured steps (a step without a collective in the
    phase counts as zero): the COLUMNS. Bytes are empty unless every collective kernel's size is known; busbw is
    empty without any sized kernel."""
    if steps.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    rows = []
    order = {p: i for i, p in enumerate((*PHASES, "step"))}
    for (rank, phase), group in sorted(steps.groupby(["rank", "phase"]), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        n = group["traced_steps"].iloc[0]
        comm, wall, exposed = group["comm_ns"].sum(), group["wall_ns"].sum(), group["exposed_ns"].sum()
        rows.append({"rank": rank, "phase": phase, "comm_kernels_per_step": group["kernels"].sum() / n,
                     "comm_ms": comm / n / 1e6, "comm_wall_ms": wall / n / 1e6, "exposed_ms": exposed / n / 1e6,
                     "overlap_pct": 100 * (1 - exposed / wall) if wall else np.nan,
                     "bytes_per_step": group["bytes"].sum(min_count=len(group)) / n,
                     "busbw_gbps": group["bus_bytes"].sum() / group["sized_ns"].sum()
                     if group["sized_ns"].sum() else np.nan})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def overlap_pct(steps: pd.DataFrame, rank: int) -> float:
    """A rank's overlap over every measured step's communication (HTA's one number per rank)."""
    whole = steps[(steps["rank"] == rank) & (steps["phase"] == "step")]
    return 100 * (1 - whole["exposed_ns"].sum() / whole["wall_ns"].sum())


def lines(table: pd.DataFrame) -> list[str]:
    """The kernel report's Communication section."""
    ranks = table["rank"].nunique()
    return ["## Communication (per measured step)", "",
            "Collective (NCCL) kernels per phase"
            + (f" on each of {ranks} ranks (one trace per rank; the sections above are rank "
               f"{table['rank'].min()}'s)" if ranks > 1 else "") + ". *Comm* sums their kernel time; *Exposed* is the "
            "time they run while no computation kernel runs on the GPU; *Overlapped* = 1 − exposed / the time any of "
            "them runs (Holistic Trace Analysis's comm/comp overlap). Bytes are nccl-tests' message size of each "
            "collective, bus bandwidth its factor times bytes over kernel time (waiting for the other ranks "
            "included); — where the capture does not record sizes.", "",
            titled_table(table, {k: v for k, v in _titles(table).items() if ranks > 1 or k != "rank"}), "",
            *_sizes_note(table)]


def trace_summary(traces: list[torch_trace.Trace]) -> pd.DataFrame:
    """The Communication table of torch.profiler traces, one per rank (the rank its distributedInfo names, else its
    position); empty when none holds a collective kernel."""
    steps = []
    for position, trace in enumerate(traces):
        if trace.gpu.empty or not has_communication(trace.gpu["name"]):
            continue
        rank = torch_trace.trace_rank(trace.path)
        activities = trace_activities(trace.gpu, trace.launches, trace.comms)
        steps.append(step_table(activities, torch_trace.lmbench_ranges(trace), position if rank is None else rank))
    return summary(pd.concat(steps, ignore_index=True)) if steps else pd.DataFrame(columns=list(COLUMNS))


def nsys_summary(stats: dict[str, pd.DataFrame], ranges: pd.DataFrame, rank: int | None = None,
                 record: Record | None = None) -> pd.DataFrame:
    """The Communication table of an nsys capture: one rank's own capture (`rank`, as `lmbench nsys` writes one per
    rank of a job), or one process driving several GPUs, each GPU standing for a rank; with the job's `record`, its
    analytic bytes and their bus bandwidth (with_analytic)."""
    gpu = stats["cuda_gpu_trace"]
    if gpu.empty or not has_communication(gpu["name"].astype(str)):
        return pd.DataFrame(columns=list(COLUMNS))
    activities = nsys_activities(gpu, stats["cuda_api_trace"])
    # A rank's process drives one GPU, whatever its index on the node; else each GPU stands for a rank.
    ranks = [(rank, activities)] if rank is not None else [(int(d), a) for d, a in activities.groupby("device")]
    steps = [step_table(acts, ranges, r) for r, acts in ranks]
    return with_analytic(summary(pd.concat(steps, ignore_index=True)), record)


def with_analytic(table: pd.DataFrame, record: Record | None) -> pd.DataFrame:
    """`table` (a capture without collective sizes) with the ANALYTIC column: per phase the bytes `record`'s
    configuration moves per step (results/comm_bytes.py), empty where none are expected or no record is known; and
    busbw their bus bytes over the phase's comm time per step (bytes / ns = GB/s)."""
    moved: dict[str, tuple[int, float]] = {}
    if record is not None and (collectives := step_collectives(record.config, record.world_size)):
        moved = phase_bytes(collectives, record.world_size)
    moved_bytes = table["phase"].map({phase: total for phase, (total, _) in moved.items()}).astype(float)
    bus_bytes = table["phase"].map({phase: bus for phase, (_, bus) in moved.items()}).astype(float)
    busbw = table["busbw_gbps"].fillna(bus_bytes / (table["comm_ms"] * 1e6))
    return table.assign(**{ANALYTIC: moved_bytes, "busbw_gbps": busbw})


def report_tables(tables: dict[str, pd.DataFrame], table: pd.DataFrame, record: Record | None, run_dir: Path) -> None:
    """Add the Communication table to a kernel report's `tables`, and the weak-scaling one when the run directory
    holds the one-GPU record to compare with; a capture without collective kernels gains neither."""
    if not table.empty:
        tables["communication"] = table
        scaling = weak_scaling.report_table(run_dir, record, table)
        if not scaling.empty:
            tables["weak_scaling"] = scaling


def report_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The kernel report's Communication and Weak scaling sections, where its tables hold them."""
    found = lines(tables["communication"]) if "communication" in tables else []
    return found + (weak_scaling.lines(tables["weak_scaling"]) if "weak_scaling" in tables else [])


def run_table(run_dir: Path) -> pd.DataFrame:
    """Every capture's Communication table in a run directory (a job's per-rank captures side by side), with the
    capture's name; read back from the captures' kernels_communication.csv."""
    frames = [pd.read_csv(p).assign(capture=p.parent.name) for p in capture_files(run_dir, TABLE_FILE)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["capture", *COLUMNS])


def run_lines(table: pd.DataFrame) -> list[str]:
    """The run summary's Communication section; none when no capture holds a collective kernel."""
    if table.empty:
        return []
    return ["## Communication (per measured step)", "", "Each capture's Communication table (details and definitions "
            "in `<capture>/kernels.md`).", "", titled_table(table, {"capture": "Capture", **_titles(table)}), "",
            *_sizes_note(table)]


def _analytic(table: pd.DataFrame) -> bool:
    return ANALYTIC in table and table[ANALYTIC].notna().any()


def _titles(table: pd.DataFrame) -> dict[str, str]:
    """TITLES with one Bytes/step column: the analytic one where only it is known (an nsys capture of a known job),
    else the measured one (empty in an nsys capture without its record)."""
    dropped = "bytes_per_step" if _analytic(table) and table["bytes_per_step"].isna().all() else ANALYTIC
    return {k: v for k, v in TITLES.items() if k != dropped}


def _sizes_note(table: pd.DataFrame) -> list[str]:
    if table["bytes_per_step"].notna().any():
        return []
    if _analytic(table):
        return ["`nsys stats` lists the NCCL kernels but not their messages, so Bytes/step (analytic) is not measured: "
                "it is what the job's configuration makes DDP (every fp32 gradient all-reduced in backward, the "
                "model's buffers broadcast before forward) or FSDP2 (each unit's padded parameters all-gathered in the "
                "param dtype, in forward and again in backward when resharded; its gradients reduce-scattered in fp32) "
                "move per step, as lmbench/results/comm_bytes.py derives it, checked against a gloo job's traced "
                "message sizes. Bus bandwidth is nccl-tests' bus factor times those bytes over the phase's NCCL kernel "
                "time, every collective kernel of the phase counted.", ""]
    return ["No collective's size is recorded here, so Bytes/step and Bus bandwidth stay empty rather than estimated: "
            "`nsys stats` lists the NCCL kernels but not their messages (a torch.profiler trace from `lmbench profile` "
            "holds them).", ""]
