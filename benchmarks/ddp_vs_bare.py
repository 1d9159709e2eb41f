"""lmbench's DDP train-step time beside a bare DDP loop on the same model, in the same processes.

Issue 13's target: lmbench's step time of a DDP job is within 2% of a bare DDP loop's. Both sides run in every
rank of one torchrun job, alternating round by round, each building its model afresh (two 2.7B models with AdamW
state would not fit one GPU together):
- lmbench: harness.measure with the rank's DataParallelRank, exactly what `lmbench bench --parallel ddp` runs on
  each rank; its job step is the slowest rank's per step (results/ranks.py), and the figure is the mean of the
  measured steps' phase sums, as the report's Total;
- bare: what a user would write: the same model (model.build_model), DistributedDataParallel with the same bucket
  size, AdamW(lr=1e-4, weight_decay=0.1), autocast, cross entropy, backward, step, zero_grad; two CUDA events
  around each step, the slowest rank per step (an all_reduce of MAX over the step times), the same warm-up and
  measured steps.
The printed ratio is the median over rounds of lmbench / bare.

usage (launches itself under torchrun when not already inside it):
    python benchmarks/ddp_vs_bare.py [--sizes small,2.7B] [--precision bf16] [--batch 4] [--ctx 512]
        [--rounds 3] [--nproc-per-node 2] [--device cuda] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_PCT = 2.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,2.7B")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nproc-per-node", type=int, default=2)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def _bare_ms(config, device, rank: int) -> float:
    """Mean over the measured steps of the slowest rank's step time, in ms, for a plain DDP loop."""
    import time

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from lmbench.measure.harness import make_inputs
    from lmbench.model import build_model

    torch.manual_seed(config.seed)
    model = torch.nn.parallel.DistributedDataParallel(
        build_model(config.model_config(), device), device_ids=[device.index] if device.type == "cuda" else None,
        bucket_cap_mb=config.bucket_cap_mb)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    tokens, targets = make_inputs(config, device, rank)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    times = []
    for _ in range(config.warmup + config.steps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        else:
            begin = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(tokens)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            times.append((time.perf_counter() - begin) * 1e3)
    slowest = torch.tensor(times, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.mean(slowest.tolist()[config.warmup:])


def _lmbench_ms(config, device, rank: int, world_size: int) -> float:
    """lmbench's figure: harness.measure on this rank, the job's step the slowest rank's (results/ranks.py)."""
    import torch.distributed as dist

    from lmbench.measure.data_parallel import DataParallelRank
    from lmbench.measure.harness import measure
    from lmbench.results.ranks import job_samples
    from lmbench.results.record import phase_names

    measurement = measure(config, rank=DataParallelRank(config, rank, device))
    gathered = [None] * world_size
    dist.all_gather_object(gathered, measurement.samples)
    job = [s for s in job_samples(gathered)[0] if not s["warmup"]]
    return statistics.mean(sum(s[f"{p}_ms"] for p in phase_names(job)) for s in job)


def _rank_main(args: argparse.Namespace) -> None:
    from lmbench.config import BenchConfig
    from lmbench.measure.distributed import backend_for, process_group

    import torch
    backend = backend_for("auto", torch.device(args.device))
    rows = []
    with process_group(backend, args.device, 900.0) as (rank, device):
        for size in args.sizes.split(","):
            config = BenchConfig(size=size, mode="train-step", precision=args.precision, batch=args.batch,
                                 ctx=args.ctx, warmup=args.warmup, steps=args.steps, vocab_size=args.vocab_size,
                                 device=args.device, parallel="ddp")
            pairs = [(_lmbench_ms(config, device, rank.rank, rank.world_size), _bare_ms(config, device, rank.rank))
                     for _ in range(args.rounds)]
            ratios = [a / b for a, b in pairs]
            rows.append({"size": size, "lmbench_ms": statistics.median(a for a, _ in pairs),
                         "bare_ms": statistics.median(b for _, b in pairs), "median_ratio": statistics.median(ratios),
                         "ratios": ratios, "rounds": args.rounds, "world_size": rank.world_size, "backend": backend,
                         "precision": args.precision, "batch_per_rank": args.batch, "ctx": args.ctx})
            if rank.leader:
                print(f"{size}: lmbench {rows[-1]['lmbench_ms']:.2f} ms, bare {rows[-1]['bare_ms']:.2f} ms, "
                      f"ratios {' '.join(f'{r:.4f}' for r in ratios)}", flush=True)
        if rank.leader:
            worst = max(abs(r["median_ratio"] - 1) * 100 for r in rows)
            print(f"target: lmbench's DDP step time within {TARGET_PCT:g}% of a bare DDP loop: "
                  f"{'met' if worst <= TARGET_PCT else 'MISSED'} (largest difference {worst:.2f}%, "
                  f"{rows[0]['world_size']} ranks, {backend}, {args.precision})")
            if args.out:
                args.out.write_text(json.dumps(rows, indent=2) + "\n")


def main() -> None:
    args = _arguments()
    if "LOCAL_RANK" in os.environ:
        _rank_main(args)
        return
    from lmbench.measure.launch import LaunchOptions, torchrun_command
    sys.exit(subprocess.call(torchrun_command(LaunchOptions(), args.nproc_per_node, [sys.executable, __file__,
                                                                                    *sys.argv[1:]])))


if __name__ == "__main__":
    main()
