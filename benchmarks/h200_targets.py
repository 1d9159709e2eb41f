"""Issue targets measured side by side in one GPU session (run on the H200 through the device tool).

1. The seed sweep (5 sizes, ctx 512, batch 4, 5 + 10 steps, forward-backward and train-step), one
   `lmbench sweep` process per precision, timed by wall clock including interpreter start, imports
   and model construction. Target: <= 90 s per precision.
2. The harness's step against a bare loop over the same model instance and input, interleaved step by step in
   ABBA order (benchmarks/interleaved_steps.py). Target: mean step times within 2%.
3. 2.7B bf16 eager SDPA forward+backward mean, from the sweep's stored record. Target: <= 180 ms.

usage: python benchmarks/h200_targets.py RUN_DIR   (writes RUN_DIR/results.jsonl and RUN_DIR/targets.json)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from interleaved_steps import interleaved  # benchmarks/, next to this script
from lmbench.config import BenchConfig
from lmbench.results.store import ResultsStore, atomic_write

SEED_SIZES = "small,medium,large,xl,2.7B"


def timed_sweep(run_dir: Path, precision: str) -> float:
    cmd = [sys.executable, "-m", "lmbench", "sweep", "--size", SEED_SIZES, "--ctx", "512", "--batch", "4",
           "--warmup", "5", "--steps", "10", "--mode", "forward-backward,train-step", "--precision", precision,
           "--run-dir", str(run_dir)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(run_dir: Path) -> None:
    out: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    out["sweep_s"] = {p: timed_sweep(run_dir, p) for p in ("fp32", "bf16")}
    out["overhead"] = {
        size: interleaved(BenchConfig(size=size, ctx=512, batch=4, precision="bf16"), pairs)
        for size, pairs in (("small", 200), ("2.7B", 60))
    }
    big = next(r for r in ResultsStore(run_dir).records() if r.config.size == "2.7B"
               and r.config.precision == "bf16" and r.config.mode == "forward-backward")
    out["2.7B_bf16_fwd_bwd_ms"] = big.mean_ms()
    atomic_write(run_dir / "targets.json", json.dumps(out, indent=2).encode())

    print("\n| target | measured | goal | met |\n|---|---|---|---|")
    for p, s in out["sweep_s"].items():
        print(f"| seed sweep {p} wall clock | {s:.1f} s | <= 90 s | {'yes' if s <= 90 else 'NO'} |")
    for size, o in out["overhead"].items():
        print(f"| harness vs bare loop, {size} bf16 fwd+bwd | {o['harness_ms']:.2f} vs {o['bare_ms']:.2f} ms "
              f"({o['diff_pct']:+.2f}%; 95% CI of the paired difference {o['pair_diff_ci_pct'][0]:+.2f}% to "
              f"{o['pair_diff_ci_pct'][1]:+.2f}%, {o['pairs']} ABBA pairs) | within 2% | "
              f"{'yes' if abs(o['diff_pct']) <= 2 else 'NO'} |")
    ms = out["2.7B_bf16_fwd_bwd_ms"]
    print(f"| 2.7B bf16 eager SDPA fwd+bwd (sweep record) | {ms:.1f} ms | <= 180 ms | {'yes' if ms <= 180 else 'NO'} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
