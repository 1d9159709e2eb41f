"""What the telemetry sampler costs: measured steps with the sampler running and without, side by side.

The harness samples psutil and NVML on a background thread while the measured steps run (telemetry.py).
On a launch-bound GPU step the host is the bottleneck, so a thread taking the GIL every INTERVAL_S
could show up in the step time. One model instance and input, the harness's own Step; blocks of
`--block` steps alternate sampler on / off (in rotated order each round, because eager steps drift
from block to block), and the paired difference of block medians is summarised (mean, 95% CI).
Target: |difference| <= 1% on the small model, bf16, eager (the most host-bound configuration).

usage: python benchmarks/telemetry_cost.py [--size small] [--precision bf16] [--ctx 512]
                                           [--rounds 20] [--block 10] [--out result.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
from pathlib import Path

import torch

from lmbench.config import BenchConfig
from lmbench.measure.environment import capture, check_runnable
from lmbench.measure.harness import Step, matmul_precision
from lmbench.model import build_model
from lmbench.results.store import atomic_write
from lmbench.results.stats import cost_verdict, paired_difference_pct, summarize
from lmbench.measure.telemetry import Sampler


def measure(config: BenchConfig, rounds: int, block: int, warmup: int = 10) -> dict:
    device = check_runnable(config)
    torch.manual_seed(config.seed)
    model = build_model(config.model_config(), device)
    step = Step(config, model, device)

    def run_block(sampled: bool) -> tuple[float, int]:
        sampler = Sampler(device)
        with sampler if sampled else contextlib.nullcontext():
            times = [sum(step.run()[0].values()) for _ in range(block)]
        return statistics.median(times), len(sampler.samples)

    for _ in range(warmup):
        step.run()
    on, off, samples = [], [], 0
    for r in range(rounds):
        for sampled in ((True, False) if r % 2 else (False, True)):
            median_ms, n = run_block(sampled)
            (on if sampled else off).append(median_ms)
            samples += n
    diff = paired_difference_pct(on, off)
    return {"config": {k: getattr(config, k) for k in ("size", "mode", "precision", "attention", "batch", "ctx")},
            "rounds": rounds, "block": block, "sources": Sampler(device).sources, "samples_taken": samples,
            "environment": capture(device),
            "off": summarize(off).as_dict(), "on": summarize(on).as_dict(),
            "diff_pct": diff.mean, "diff_ci_pct": [diff.ci_low, diff.ci_high], "diff_median_pct": diff.median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--mode", default="forward-backward")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = BenchConfig(size=args.size, precision=args.precision, mode=args.mode, ctx=args.ctx, batch=4)
    with matmul_precision(False):
        result = measure(config, args.rounds, args.block)
    low, high = result["diff_ci_pct"]
    print(f"{args.size} {args.mode} {args.precision} ctx {args.ctx}: {args.rounds} rounds x 2 blocks of {args.block} "
          f"steps; sampler sources {result['sources']}, {result['samples_taken']} samples taken")
    print(f"  sampler off  median of block medians {result['off']['median']:.3f} ms")
    print(f"  sampler on   median of block medians {result['on']['median']:.3f} ms")
    print(f"  on vs off: {result['diff_pct']:+.2f}% (95% CI {low:+.2f}% to {high:+.2f}%; "
          f"median {result['diff_median_pct']:+.2f}%)  {cost_verdict(low, high)}")
    if args.out:
        atomic_write(Path(args.out), json.dumps(result, indent=2).encode())


if __name__ == "__main__":
    main()
