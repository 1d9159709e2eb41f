"""lmbench's data-parallel train-step time beside a bare DDP loop over the same wrapped model, step by step.

Issue 13's target: lmbench's step time of a DDP job is within 2% of a bare DDP loop's, measured the way the
single-GPU target is (benchmarks/h200_targets.py): both sides run on one model in every rank of one torchrun job,
alternating step by step in ABBA order. Comparing whole blocks of steps on freshly built models does not work: with
one rank on the H200 it found lmbench 0.7-8.2% below the bare loop in all 6 rounds, where step-by-step interleaving
of the same loops found -0.44% (small) and -0.28% (2.7B), both CIs including zero (reports/h200-ddp-one-gpu).
- lmbench: the harness's Step (measure/harness.py) over the model as DataParallelRank wraps it, exactly what
  `lmbench bench --parallel ddp` times on each rank: per-phase CUDA events, its own AdamW;
- bare: what a user would write over the same wrapped model: autocast forward and cross entropy, backward, a second
  AdamW(lr=1e-4, weight_decay=0.1) step, zero_grad; two CUDA events around the step. Like a plain `for` loop it
  keeps logits and loss until the next step rebinds them, so it frees the previous graph inside its timed step.
After the steps, the slowest rank's time per step is taken on both sides (results/ranks.py job_samples for
lmbench, as its record does; an all_reduce of MAX for the bare loop). Printed: the means, the mean and 95% CI of
the paired per-step % difference (results/stats.py), and whether |difference| <= 2%.

usage (launches itself under torchrun when not already inside it):
    python benchmarks/ddp_vs_bare.py [--sizes small,2.7B] [--pairs 200,60] [--precision bf16] [--batch 4]
        [--ctx 512] [--parallel ddp] [--nproc-per-node 2] [--device cuda] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TARGET_PCT = 2.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,2.7B")
    parser.add_argument("--pairs", default="200,60", help="ABBA pairs per size (one number for all, or one per size)")
    parser.add_argument("--warmup", type=int, default=5, help="pairs before the measured ones")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--parallel", default="ddp", choices=("ddp", "fsdp"))
    parser.add_argument("--nproc-per-node", type=int, default=2)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def _steps(config, device, rank: int, pairs: int, warmup: int) -> tuple[list[dict], list[float]]:
    """This rank's samples of both loops over one wrapped model, ABBA step by step: (lmbench's, the bare loop's)."""
    import torch
    import torch.nn.functional as F

    from lmbench.measure.data_parallel import DataParallelRank
    from lmbench.measure.harness import AUTOCAST_DTYPES, Step
    from lmbench.model import build_model

    torch.manual_seed(config.seed)
    model = DataParallelRank(config, rank, device).wrap(build_model(config.model_config(), device))
    step = Step(config, model, device, rank=rank)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    dtype = AUTOCAST_DTYPES.get(config.precision)
    cuda = device.type == "cuda"
    held: dict[str, torch.Tensor] = {}

    def bare() -> float:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        else:
            begin = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            held["logits"] = model(step.tokens)
            held["loss"] = F.cross_entropy(held["logits"].view(-1, held["logits"].size(-1)), step.targets.view(-1))
        held["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not cuda:
            return (time.perf_counter() - begin) * 1e3
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def harness() -> dict:
        return {f"{phase}_ms": ms for phase, ms in step.run()[0].items()}

    mine: list[dict] = []
    bare_ms: list[float] = []
    for index in range(warmup + pairs):
        order = (harness, bare) if index % 2 == 0 else (bare, harness)
        for run in order:
            if run is harness:
                mine.append({"step": index, "warmup": index < warmup, **harness()})
            else:
                bare_ms.append(bare())
    return mine, bare_ms


def _interleaved(config, device, rank: int, world_size: int, pairs: int, warmup: int) -> dict:
    """Both loops' means and paired difference, each step the slowest rank's."""
    import gc

    import torch
    import torch.distributed as dist

    from lmbench.results.ranks import job_samples
    from lmbench.results.stats import paired_difference_pct, summarize

    mine, bare_ms = _steps(config, device, rank, pairs, warmup)
    gc.collect()  # the model and both optimizers, before the next size is built
    if device.type == "cuda":
        torch.cuda.empty_cache()
    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, mine)
    lmbench_ms = [sum(v for k, v in s.items() if k.endswith("_ms")) for s in job_samples(gathered)[0]][warmup:]
    slowest = torch.tensor(bare_ms, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    bare_job = slowest.tolist()[warmup:]
    diffs, a, b = paired_difference_pct(lmbench_ms, bare_job), summarize(lmbench_ms), summarize(bare_job)
    return {"lmbench_ms": a.mean, "bare_ms": b.mean, "diff_pct": 100 * (a.mean / b.mean - 1),
            "pair_diff_mean_pct": diffs.mean, "pair_diff_ci_pct": [diffs.ci_low, diffs.ci_high], "pairs": pairs,
            "lmbench_cv_pct": a.cv_pct, "bare_cv_pct": b.cv_pct}


def _rank_main(args: argparse.Namespace) -> None:
    import torch

    from interleaved_steps import pairs_per_size, within_target  # benchmarks/, next to this script
    from lmbench.config import BenchConfig
    from lmbench.measure.distributed import backend_for, process_group
    from lmbench.results.store import atomic_write

    sizes = args.sizes.split(",")
    pairs = pairs_per_size(sizes, args.pairs)
    backend = backend_for("auto", torch.device(args.device))
    rows = []
    with process_group(backend, args.device, 900.0) as (rank, device):
        for size, count in zip(sizes, pairs):
            config = BenchConfig(size=size, mode="train-step", precision=args.precision, batch=args.batch,
                                 ctx=args.ctx, vocab_size=args.vocab_size, device=args.device, parallel=args.parallel)
            row = {"size": size, **_interleaved(config, device, rank.rank, rank.world_size, count, args.warmup),
                   "world_size": rank.world_size, "backend": backend, "parallel": args.parallel,
                   "precision": args.precision, "batch_per_rank": args.batch, "ctx": args.ctx}
            rows.append(row)
            if rank.leader:
                low, high = row["pair_diff_ci_pct"]
                print(f"{size}: lmbench {row['lmbench_ms']:.2f} ms, bare {row['bare_ms']:.2f} ms "
                      f"({row['diff_pct']:+.2f}%; paired per-step difference 95% CI {low:+.2f}% to {high:+.2f}%, "
                      f"{count} ABBA pairs)", flush=True)
                if args.out:  # after every size, so a job cut at its time limit keeps the sizes it measured
                    atomic_write(args.out, (json.dumps(rows, indent=2) + "\n").encode())
        if rank.leader:
            worst = max(abs(r["diff_pct"]) for r in rows)
            print(f"target: lmbench's {args.parallel} step time within {TARGET_PCT:g}% of a bare loop, by the paired "
                  f"CIs: {within_target(rows, TARGET_PCT)} (largest mean difference {worst:.2f}%, "
                  f"{rows[0]['world_size']} ranks, {backend}, {args.precision})")


def main() -> None:
    args = _arguments()
    from lmbench.measure.launch import script_on_ranks
    script_on_ranks(__file__, args.nproc_per_node, sys.argv[1:], lambda: _rank_main(args))


if __name__ == "__main__":
    main()
