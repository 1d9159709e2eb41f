"""The timing report's Configuration section: what every number below depends on (device, versions, batch, length,
steps, precision, attention, compile, processes, data-parallel ranks, sampling rules), read from the records."""

from __future__ import annotations

from typing import Any

from lmbench.analysis.groups import value_text
from lmbench.results.record import Record, process_indices


def configuration_lines(records: list[Record], groups: list[dict[str, Any]]) -> list[str]:
    """The section's bullet lines, every value the records hold listed (several when a sweep varied it)."""
    env = records[0].environment
    optimizers = sorted({_optimizer(r) for r in records if r.config_value("mode") == "train-step"})
    def values(field: str) -> list[str]:  # numbers in numeric order: ctx 128, 256, 512, 1024
        return [str(value_text(v)) for v in sorted({g[field] for g in groups}, key=lambda v: (isinstance(v, str), v))]

    device = env["device_name"] + (f" (driver {env['driver']})" if env.get("driver") else "")
    lines = [
        f"- Device: {device}; torch {env['torch']}" + (f", CUDA {env['cuda']}" if env.get("cuda") else "")
        + f", Python {env['python']}, host {env['host']}",
        f"- Batch size: {', '.join(values('batch'))}",
        f"- Sequence length: {', '.join(values('ctx'))}",
        f"- Warm-up steps: {', '.join(values('warmup'))}",
        f"- Measurement steps: {', '.join(values('steps'))}",
        f"- Modes: {', '.join(values('mode'))}" + (f"; optimizer: {'/'.join(optimizers)}" if optimizers else ""),
        f"- Precision: {', '.join(values('precision'))}; TF32 {'/'.join(values('tf32'))}"
        + (f"; parameters stored in {', '.join(values('param_dtype'))}" if values("param_dtype") != ["fp32"] else ""),
        f"- Attention: {', '.join(values('attention'))}; SDPA backend: "
        + "/".join(sorted({r.config_value("sdpa_backend") for r in records})) + "; compile: "
        + "/".join(sorted({r.config_value("compile") for r in records})),
        f"- Vocabulary: {', '.join(values('vocab_size'))}",
        f"- Ranges (--annotate): {', '.join(values('annotate'))}; op-level NVTX (--emit-nvtx): "
        + "/".join(values("emit_nvtx")),
        f"- Processes per configuration: {_processes_line(records)}",
        *_ranks_lines(records),
        f"- lmbench {env['lmbench']}, commit {env['git_commit']}; {len(records)} record(s), "
        f"{min(r.timestamp for r in records)} – {max(r.timestamp for r in records)} (UTC)",
    ]
    custom = sorted({r.config_value("model") for r in records if r.config_value("model")})
    if custom:  # measure/model_factory.py
        lines.append(f"- Models of your own (--model): {', '.join(custom)}; their FLOPs counted by torch's "
                     "FlopCounterMode over one forward and backward (the built-in model's: the formula), their "
                     "activation sizes unknown (—)")
    profiled = sorted({r.profiler for r in records if r.profiler})
    if profiled:
        lines.append(f"- **Measured under a profiler** ({', '.join(profiled)}) in {sum(bool(r.profiler) for r in records)} "
                     "of these records: its host overhead is inside their times, which are not comparable with plain runs")
    rules: dict[tuple[float, float], list[str]] = {}  # (target %, budget s) -> how each such record ended
    for record in records:
        sampling = record.sampling or {}
        if sampling.get("target_ci_pct"):
            rules.setdefault((sampling["target_ci_pct"], sampling["max_time_s"]), []).append(sampling["ended_by"])
    for (target, budget), ends in rules.items():
        counted = ", ".join(f"{ends.count(reason)} by {reason}" for reason in dict.fromkeys(ends))
        lines.append(f"- Measured until the 95% CI half-width was ≤ {target:g}% of the mean or {budget:g} s ran out: "
                     f"{counted}")
    return lines


def _optimizer(record: Record) -> str:
    """The AdamW implementation that ran, from the record's numerics (records before --optimizer did not say)."""
    ran = (record.numerics or {}).get("optimizer")
    if not ran:
        return "not recorded"
    return "adamw-fused" if ran.get("fused") else "adamw-foreach" if ran.get("foreach") else "adamw"


def _ranks_lines(records: list[Record]) -> list[str]:
    """'- Data parallel: ddp on 2 ranks (1 node, gloo), ...' when a record is a data-parallel job's; else none."""
    jobs = []
    for record in records:
        if record.config_value("parallel") == "none":
            continue
        job = record.distributed
        nodes = job.get("nodes", 1)
        backend = job.get("backend", "?") + (f" {job['nccl']}" if job.get("nccl") else "")
        batch = f", global batch {record.config_value('global_batch')}" if record.config_value("global_batch") else ""
        jobs.append(f"{record.config_value('parallel')} on {record.world_size} rank{'s' if record.world_size > 1 else ''} "
                    f"({nodes} node{'s' if nodes > 1 else ''}, {backend}){batch}")
    if not jobs:
        return []
    return [f"- Data parallel (torchrun; batch sizes above are per rank): {'; '.join(dict.fromkeys(jobs))}"]


def _processes_line(records: list[Record]) -> str:
    """'1 (statistics cover step-to-step noise only)' or '3 (...)': how many fresh processes measured each."""
    counts = sorted({len(process_indices(r.samples)) for r in records if r.samples})
    if counts == [1]:
        return ("1 — every CI below covers step-to-step noise within one process, not the larger variation "
                "between fresh processes (measure with --repeats 3 to include it)")
    line = (f"{'/'.join(map(str, counts))} — records with 2 or more also give the between-process CV and a CI "
            "whose unit is the process")
    interleaved = sum(bool((r.sampling or {}).get("interleaved")) for r in records)
    if interleaved:  # studies/sweep.py run_interleaved
        line += (f"; {interleaved} of {len(records)} records measured interleaved (--interleave): one process of "
                 "each configuration per round, the order reversed every other round")
    return line
