"""Findings on memory: why a data-parallel job fitted, with how much to spare, or why it ran out; and what the
measured peak of a compile mode that replays CUDA graphs leaves out.

Every number is one rank's: its measured peak (distributed.ranks, the allocator's peak over the step's phases) and
its analytic sizes (results/sizes.py via analysis/memory.py: sharded over the ranks under fsdp, a full replica
plus DDP's gradient buckets under ddp), set against the GPU's total memory as the record's environment recorded
it. The analytic state is a lower bound of what a rank needs (activations and transient buffers come on top), so
a state beyond the GPU says the job cannot fit on that many ranks whatever the batch.
"""

from __future__ import annotations

import math

from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.memory import analytic_sizes_mb, memory_peak_reserved_mb, peak_mb, rank_peaks_mb
from lmbench.config import GRAPH_COMPILE_MODES
from lmbench.results.record import Record

MAX_RANKS = 1024  # how far the search for the ranks that would hold an FSDP job's state looks


def capacity_mb(record: Record) -> float | None:
    """The GPU's total memory in MB as the record's environment recorded it (GiB to 0.1); None on a CPU."""
    gb = record.environment.get("gpu_memory_gb") if record.on_cuda else None
    return gb * 1024 if gb else None


def _ranks(n: int) -> str:
    return f"{n} rank{'s' if n > 1 else ''}"


def _gathered_mb(sizes: dict[str, float]) -> float:
    """FSDP's gathered units in MB; unknown (NaN: a custom model's) counts 0, for what is at least needed."""
    return 0.0 if math.isnan(sizes["gathered_mb"]) else sizes["gathered_mb"]


def _job(record: Record) -> str:
    return f"{record.label} {record.config.mode} {record.config.parallel} on {_ranks(record.world_size)}"


STATE_HELD = {"fsdp": "fp32 parameters, gradients and AdamW moments sharded over the ranks",
              "ddp": "a full fp32 replica of the parameters, gradients and AdamW moments, and DDP's gradient buckets"}


def ranks_to_fit(record: Record, capacity: float) -> int | None:
    """The fewest ranks over which an FSDP job's per-rank state and gathered units fit `capacity` MB (activations
    aside: they depend on the batch, not on the ranks); None beyond MAX_RANKS."""
    for n in range(1, MAX_RANKS + 1):
        sizes = analytic_sizes_mb(record.config, record.params, n)
        if sizes["state_mb"] + _gathered_mb(sizes) <= capacity:
            return n
    return None


def fitted(records: list[Record]) -> Finding | None:
    """Per finished data-parallel job: each rank's peak against its analytic state and the GPU's memory."""
    jobs = [r for r in records if r.ok and r.config.parallel != "none" and rank_peaks_mb(r)]
    if not jobs:
        return None
    parts, numbers = [], {}
    for record in jobs:
        peaks = {rank: peak for rank, peak in rank_peaks_mb(record).items() if peak is not None}
        sizes = analytic_sizes_mb(record.config, record.params, record.world_size)
        top = max(peaks, key=peaks.__getitem__)
        low, high = min(peaks.values()), peaks[top]
        spread = f"{low:,.0f}–{high:,.0f} MB (highest on rank {top})" if len(peaks) > 1 else f"{high:,.0f} MB"
        part = (f"{_job(record)}: peak {spread}, state {sizes['state_mb']:,.0f} MB, "
                f"{high - sizes['state_mb']:,.0f} MB beyond it")
        if not record.on_cuda:
            part += " (a process's resident set: the libraries' memory included)"
        elif _gathered_mb(sizes):
            part += f" (activations, and at least {_gathered_mb(sizes):,.0f} MB of gathered units)"
        capacity = capacity_mb(record)
        if capacity:
            part += (f"; {capacity - high:,.0f} MB ({100 * (capacity - high) / capacity:.0f}%) of the GPU's "
                     f"{capacity:,.0f} MB to spare")
            if record.config.parallel == "fsdp" and record.world_size > 1:
                whole = analytic_sizes_mb(record.config, record.params, 1)
                part += (f"; unsharded, the state alone would be {whole['state_mb']:,.0f} MB, "
                         f"{whole['state_mb'] / capacity:.2f}× the GPU's memory")
        parts.append(part)
        numbers[record.label] = {"parallel": record.config.parallel, "n": len(peaks), "peak_mb": peaks,
                                 "state_mb": sizes["state_mb"], "gathered_mb": _gathered_mb(sizes),
                                 "capacity_mb": capacity}
    held = "; ".join(f"{parallel}: {STATE_HELD[parallel]}" for parallel in sorted({r.config.parallel for r in jobs}))
    return Finding("memory", f"Per-rank memory (each rank's persistent state — {held}): " + ". ".join(parts) + ".",
                   numbers,
                   "each rank's peak over the step's phases (allocated on CUDA, resident set on a CPU; n = ranks) "
                   "against its analytic persistent state (results/sizes.py, a lower bound) and the GPU memory "
                   "recorded with the run")


def ran_out(record: Record) -> Finding:
    """Why a data-parallel job ran out of memory: one rank's analytic needs against the GPU's memory."""
    sizes = analytic_sizes_mb(record.config, record.params, record.world_size)
    need = sizes["state_mb"] + _gathered_mb(sizes)
    capacity = capacity_mb(record)
    gathered = f" + {_gathered_mb(sizes):,.0f} MB of units FSDP gathers" if _gathered_mb(sizes) else ""
    claim = (f"{_job(record)} ran out of memory (rank {record.oom_rank}, {record.oom_phase} phase): each rank needs "
             f"at least {sizes['state_mb']:,.0f} MB of persistent state ({STATE_HELD[record.config.parallel]})"
             + gathered)
    numbers = {"label": record.label, "parallel": record.config.parallel, "world_size": record.world_size,
               "state_mb": sizes["state_mb"], "gathered_mb": _gathered_mb(sizes), "need_mb": need,
               "capacity_mb": capacity}
    if capacity is None:
        claim += "; the machine's memory was not recorded, so nothing more can be said."
    elif need <= capacity:
        claim += (f", {100 * need / capacity:.0f}% of the GPU's {capacity:,.0f} MB: the {capacity - need:,.0f} MB "
                  f"left were too few for what the {record.oom_phase} phase allocates on top (activations, transient "
                  "buffers: a job that ran out leaves no measured peak).")
    else:
        claim += f", more than the GPU's {capacity:,.0f} MB: it cannot fit on {_ranks(record.world_size)} at any batch"
        if record.config.parallel == "ddp":
            claim += ": DDP keeps a full replica on every rank, and only sharding (--parallel fsdp) divides it."
        else:
            fits_on = numbers["ranks_to_fit"] = ranks_to_fit(record, capacity)
            claim += (f"; the state and gathered units would fit on {_ranks(fits_on)}." if fits_on
                      else f"; it would not on {MAX_RANKS} either.")
    return Finding("memory", claim, numbers, "the rank's analytic per-rank sizes (results/sizes.py, a lower bound) "
                   f"against the GPU memory recorded with the run; the allocator said: {record.oom_message}")


def graph_pool(records: list[Record]) -> Finding | None:
    """The allocated peak of a step replayed as CUDA graph trees (compile max-autotune, reduce-overhead): the tensors
    the graphs made live in the graphs' private memory pool, which the allocated peak does not show during replay.
    Where that peak is below the parameters and gradients the step ends its backward with, the records show it."""
    candidates = [r for r in records if r.ok and r.on_cuda and r.config.compile in GRAPH_COMPILE_MODES
                  and r.config.mode != "forward"]
    graphed = [(r, peak) for r in candidates if (peak := peak_mb(r)) is not None]
    if not graphed:
        return None
    sizes = {r.label: analytic_sizes_mb(r.config, r.params) for r, _ in graphed}
    held = {label: mb["params_mb"] + mb["grads_mb"] for label, mb in sizes.items()}  # after backward
    below = [(r, peak) for r, peak in graphed if peak < held[r.label]]
    reserved = {r.label: memory_peak_reserved_mb(r.memory) for r, _ in graphed}
    modes = "/".join(dict.fromkeys(r.config.compile for r, _ in graphed))
    shown = ("; ".join(f"{r.label} {peak:,.0f} MB allocated < {held[r.label]:,.0f} MB" for r, peak in below)
             if below else "no record here peaked below its parameters and gradients, so this rests on how CUDA "
             "graph trees allocate, not on these numbers")
    claim = (f"compile {modes} replays the step as CUDA graphs, and its allocated peak leaves out what the graphs' "
             f"private pool holds: {len(below)} of {len(graphed)} records peaked below the parameters and gradients "
             f"the step holds after backward ({shown}). Their Peak − state is left out; the reserved peak, pool "
             "included, bounds the step's memory from above: "
             + ", ".join(f"{label} {mb:,.0f} MB" for label, mb in reserved.items() if mb is not None) + ".")
    return Finding("memory", claim, {"allocated_mb": {r.label: peak for r, peak in graphed}, "reserved_mb": reserved,
                                     "below_params_and_grads": [r.label for r, _ in below]},
                   "the allocator's allocated and reserved peaks over the measured steps' phases against the analytic "
                   "parameter and gradient sizes (results/sizes.py)")


def memory_findings(records: list[Record]) -> list[Finding]:
    """The per-rank memory of the group's finished data-parallel jobs, why each that ran out did, and what a CUDA
    graph mode's peak leaves out."""
    # A custom model's job that ran out before storing its parameter count has no sizes to reason from.
    ooms = [ran_out(r) for r in records if r.status == "oom" and r.config.parallel != "none"
            and (r.config.model is None or r.params is not None)]
    found = [f for f in (fitted(records), graph_pool(records)) if f]
    return found + ooms
