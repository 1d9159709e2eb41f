"""lmbench collectives' all_reduce bus bandwidth beside a bare torch.distributed loop, in the same processes.

Issue 13's target: at 256 MiB to 4 GiB, the bus bandwidth lmbench reports is within 3% of a bare loop's. Both
sides run in every rank of one torchrun job, alternating round by round (machines drift; interleaving puts the
drift on both sides alike):
- lmbench: the buffers and timing `lmbench collectives` uses (measure/collectives.py `collective`, `time_steps`:
  one CUDA event per call) and its record's arithmetic (results/collectives.py: the slowest rank's mean, nccl-tests'
  bus factor), exactly as the command stores them;
- bare: what a user would write, nccl-tests' way: barrier, one event before and one after `steps` back-to-back
  `dist.all_reduce` calls on the same buffer, time / steps, the slowest rank's value (an all_reduce of MAX).
Each round times both sides once per size; the printed ratio is the median over rounds of lmbench / bare busbw.

usage (launches itself under torchrun when not already inside it):
    python benchmarks/collectives_vs_bare.py [--sizes 256M,1G,4G] [--dtype bf16] [--rounds 5] [--steps 20]
        [--nproc-per-node 2] [--device cuda] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

TARGET_PCT = 3.0


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G,4G")
    parser.add_argument("--dtype", default="bf16", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--nproc-per-node", type=int, default=2)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def _bare(buffer, warmup: int, steps: int, device) -> float:
    """ms per all_reduce of a plain loop on this rank, nccl-tests' way (one timer around `steps` calls)."""
    import torch
    import torch.distributed as dist
    for _ in range(warmup):
        dist.all_reduce(buffer)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        dist.barrier()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            dist.all_reduce(buffer)
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / steps
    dist.barrier()
    begin = time.perf_counter()
    for _ in range(steps):
        dist.all_reduce(buffer)
    return (time.perf_counter() - begin) * 1e3 / steps


def _rank_main(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from lmbench.config import size_text
    from lmbench.measure.collectives_options import CollectivesOptions
    from lmbench.measure.collectives import collective, time_steps
    from lmbench.measure.model_factory import TORCH_DTYPES
    from lmbench.measure.distributed import backend_for, process_group
    from lmbench.results.collectives import bus_factor, element_count, new_record

    device_kind = torch.device(args.device)
    backend = backend_for("auto", device_kind)
    options = CollectivesOptions(ops="all_reduce", sizes=args.sizes, dtype=args.dtype, warmup=args.warmup,
                                 steps=args.steps, device=args.device)
    rows = []
    with process_group(backend, args.device, 600.0) as (rank, device):
        dtype = TORCH_DTYPES[args.dtype]
        for requested in options.size_list(device.type):
            count = element_count("all_reduce", requested, dtype.itemsize, rank.world_size)
            size = count * dtype.itemsize
            run = collective("all_reduce", count, dtype, device, rank.world_size)
            buffer = torch.zeros(count, dtype=dtype, device=device)
            lmbench_bw, bare_bw = [], []
            for _ in range(args.rounds):
                steps = time_steps(run, args.warmup, args.steps, device)
                gathered = [None] * rank.world_size
                dist.all_gather_object(gathered, steps)
                fields = {"op": "all_reduce", "requested_bytes": requested, "dtype": args.dtype,
                          "device_type": device.type, "backend": backend, "world_size": rank.world_size,
                          "warmup": args.warmup, "steps": args.steps, "bytes": size, "count": count,
                          "timestamp": ""}
                lmbench_bw.append(new_record(fields, gathered, {}).busbw_gbps)
                slowest = torch.tensor([_bare(buffer, args.warmup, args.steps, device)], device=device)
                dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
                bare_bw.append(size / (slowest.item() * 1e-3) / 1e9 * bus_factor("all_reduce", rank.world_size))
            del run, buffer
            if device.type == "cuda":
                torch.cuda.empty_cache()
            ratios = [a / b for a, b in zip(lmbench_bw, bare_bw)]
            rows.append({"size": size_text(requested), "bytes": size, "lmbench_busbw_gbps": statistics.median(lmbench_bw),
                         "bare_busbw_gbps": statistics.median(bare_bw), "median_ratio": statistics.median(ratios),
                         "ratios": ratios, "rounds": args.rounds, "world_size": rank.world_size,
                         "backend": backend, "dtype": args.dtype})
        if rank.leader:
            _print(rows, args.out)


def _print(rows: list[dict], out: Path | None) -> None:
    print(f"{'size':>8} {'lmbench busbw GB/s':>19} {'bare busbw GB/s':>16} {'lmbench/bare':>13}  per round")
    for r in rows:
        print(f"{r['size']:>8} {r['lmbench_busbw_gbps']:>19.2f} {r['bare_busbw_gbps']:>16.2f} "
              f"{r['median_ratio']:>13.4f}  {' '.join(f'{x:.3f}' for x in r['ratios'])}")
    worst = max(abs(r["median_ratio"] - 1) * 100 for r in rows)
    print(f"target: lmbench's all_reduce busbw within {TARGET_PCT:g}% of a bare loop: "
          f"{'met' if worst <= TARGET_PCT else 'MISSED'} (largest difference {worst:.2f}%, "
          f"{rows[0]['world_size']} ranks, {rows[0]['backend']}, {rows[0]['dtype']})")
    if out:
        from lmbench.results.store import atomic_write
        atomic_write(out, (json.dumps(rows, indent=2) + "\n").encode())


def main() -> None:
    args = _arguments()
    from lmbench.measure.launch import script_on_ranks
    script_on_ranks(__file__, args.nproc_per_node, sys.argv[1:], lambda: _rank_main(args))


if __name__ == "__main__":
    main()
