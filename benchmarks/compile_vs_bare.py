"""Issue 14's targets for compiled modes, measured side by side in one process on the GPU.

For each size and compile mode (bf16, batch 4, ctx 512, forward+backward), the harness's step and a bare CUDA-event
loop call the same (compiled) model alternately, step by step in ABBA order (benchmarks/interleaved_steps.py).
Printed per mode: both means, the paired per-step difference with its 95% CI, the model TFLOP/s of lmbench's figure
(results/flops.py: forward + backward matmul FLOPs, attention's recompute excluded), the first call's seconds
(tracing and compiling, cold unless the inductor cache already held the graphs) and graphs compiled during the pairs.
Targets:
1. lmbench's timing of each compiled mode is within 2% of the bare loop over the same compiled model;
2. lmbench's best mode reaches >= 520 TFLOP/s on the 2.7B forward+backward (model FLOPs).

usage: python benchmarks/compile_vs_bare.py [--sizes small,2.7B] [--modes off,default,max-autotune]
           [--pairs 100,30] [--param-dtype fp32|bf16] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from interleaved_steps import interleaved, pairs_per_size, within_target  # benchmarks/, next to this script
from lmbench.config import PARAM_DTYPES, BenchConfig
from lmbench.results.flops import phase_flops
from lmbench.results.store import atomic_write

DIFF_TARGET_PCT = 2.0
TFLOPS_TARGET = 520.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,2.7B")
    parser.add_argument("--modes", default="off,default,max-autotune")
    parser.add_argument("--pairs", default="100,30", help="ABBA pairs per size (one number for all, or one per size)")
    parser.add_argument("--param-dtype", default="fp32", choices=PARAM_DTYPES,
                        help="the parameters' dtype (bf16: no autocast casts of fp32 parameters)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    rows = []
    for size, count in zip(sizes, pairs_per_size(sizes, args.pairs)):
        for mode in args.modes.split(","):
            config = BenchConfig(size=size, mode="forward-backward", precision="bf16", batch=4, ctx=512,
                                 compile=mode, device="cuda", param_dtype=args.param_dtype)
            flops = sum(phase_flops(config.model_config(), config.batch, config.ctx, config.mode).values())
            row = {"size": size, "compile": mode, "param_dtype": args.param_dtype, **interleaved(config, count)}
            row["tflops"] = flops / (row["harness_ms"] * 1e-3) / 1e12
            rows.append(row)
            low, high = row["pair_diff_ci_pct"]
            params = "" if args.param_dtype == "fp32" else f" params {args.param_dtype}"
            print(f"{size} {mode}{params}: lmbench {row['harness_ms']:.2f} ms ({row['tflops']:.0f} TFLOP/s), bare "
                  f"{row['bare_ms']:.2f} ms ({row['diff_pct']:+.2f}%; paired CI {low:+.2f}% to {high:+.2f}%, "
                  f"{count} pairs); first call {row['first_call_s']:.1f} s; graphs compiled in the pairs "
                  f"{row['recompiles_in_pairs']}", flush=True)
            if args.out:  # after every row, so a call cut at its time limit keeps the rows it measured
                atomic_write(args.out, (json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                                    "rows": rows}, indent=2) + "\n").encode())
    compiled = [r for r in rows if r["compile"] != "off"]
    if compiled:
        worst = max(compiled, key=lambda r: abs(r["diff_pct"]))
        print(f"target 1: each compiled mode within {DIFF_TARGET_PCT:g}% of a bare loop, by the paired CIs: "
              f"{within_target(compiled, DIFF_TARGET_PCT)} (largest mean difference {worst['diff_pct']:+.2f}%, "
              f"{worst['size']} {worst['compile']})")
    big = [r for r in rows if r["size"] == "2.7B"]
    if big:
        best = max(big, key=lambda r: r["tflops"])
        params = "" if best["param_dtype"] == "fp32" else f", parameters in {best['param_dtype']}"
        print(f"target 2: best mode on 2.7B >= {TFLOPS_TARGET:g} TFLOP/s, by lmbench's mean step: "
              f"{'met' if best['tflops'] >= TFLOPS_TARGET else 'MISSED'} ({best['compile']}{params}: "
              f"{best['tflops']:.0f})")


if __name__ == "__main__":
    main()
