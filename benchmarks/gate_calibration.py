"""Calibrate `lmbench compare --fail-on-regression` on real runs: how often it fires on no change (A/A) and
how often it catches a real one (A/B), with one process per side (R = 1) and with three (R = 3).

Measuring (`measure POOL_DIR`, on the GPU): fresh `lmbench bench` processes, exactly what `bench` and
`--repeats` start (processes.child_command), of bf16 forward-backward, batch 4, default steps, for small,
xl and 2.7B at ctx 512 (the A/A pools) and 2.7B at ctx 576 (12.5% more tokens: the A/B change). The pools are
filled round-robin, one process of each configuration per round, so slow drift of the machine falls on all
of them alike; a call cut short by --budget-s keeps every finished process and the next call resumes.

Analysing (`analyse POOL_DIR --out DIR`, anywhere): pairs are formed from the pools the way a user would get
them from two runs. R = 1: two distinct processes, compared step against step; R = 3: six distinct processes,
three merged per side as `--repeats 3` merges them (processes.merge_processes), compared process against
process. Every pair goes through decision.compare_records and compare.regressions, the code behind the CLI's
gate. Printed per R: the gate's false-alarm rate on A/A pairs of each size and its detection rate on the
2.7B A/B pairs, over the disjoint pairs (each process used once: independent pairs) and over many pairs
resampled from the pool (pairs share processes, so they are not independent: a smoother estimate of the
same rates for processes like these).

usage: python benchmarks/gate_calibration.py measure POOL_DIR [--processes 20] [--budget-s 540] [--pools NAME...]
       python benchmarks/gate_calibration.py analyse POOL_DIR --out DIR [--threshold 5] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lmbench.analysis.decision import compare_records
from lmbench.studies.compare import regressions
from lmbench.config import BenchConfig
from lmbench.measure.processes import merge_processes, run_child
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore, atomic_write
from lmbench.measure.sampling import Sampling

BASE = dict(precision="bf16", mode="forward-backward", batch=4)
POOLS = {"small": dict(size="small", ctx=512), "xl": dict(size="xl", ctx=512), "2.7B": dict(size="2.7B", ctx=512),
         "2.7B-ctx576": dict(size="2.7B", ctx=576)}
AA = ("small", "xl", "2.7B")
AB = ("2.7B", "2.7B-ctx576")
RESAMPLED = 400  # resampled pairs per (pool, R)
REPEATS = (1, 3, 5, 8)  # processes per side; 1 and 3 as users run them, 5 and 8 show what more buys


def pool_records(pool_dir: Path, name: str) -> list[Record]:
    path = pool_dir / name
    return ResultsStore(path).records() if (path / "results.jsonl").exists() else []


def measure(pool_dir: Path, processes: int, budget_s: float, names: list[str]) -> None:
    start = time.perf_counter()
    per_process = 0.0
    while True:
        counts = {name: len(pool_records(pool_dir, name)) for name in names}
        todo = [name for name in names if counts[name] < processes]
        if not todo:
            break
        for name in todo:
            elapsed = time.perf_counter() - start
            if elapsed + 1.5 * per_process > budget_s:
                print(f"budget: stopping after {elapsed:.0f} s with {counts}", flush=True)
                return
            begun = time.perf_counter()
            run_child(BenchConfig(**BASE, **POOLS[name]), pool_dir / name, f"{name} process")
            per_process = max(per_process, time.perf_counter() - begun)
            counts[name] += 1
        print(f"{time.perf_counter() - start:.0f} s: {counts}", flush=True)


def as_side(records: list[Record]) -> Record:
    """One process as it stands, or several merged as --repeats merges them."""
    return records[0] if len(records) == 1 else merge_processes(records, Sampling(repeats=len(records)), "count")


def decide(a: list[Record], b: list[Record], threshold: float, alpha: float) -> dict[str, Any]:
    result = compare_records(as_side(a), as_side(b), alpha)
    table = pd.DataFrame([{"model": a[0].label, **result}])
    return {**result, "gate_fires": bool(len(regressions(table, threshold)))}


def pairs(pool_a: list, pool_b: list | None, r: int, rng: random.Random, resampled: bool) -> list[tuple[list, list]]:
    """Sides of r processes each: from one pool (A/A, 2r distinct processes per pair) or two (A/B)."""
    if pool_b is None:
        if not resampled:
            usable = len(pool_a) // (2 * r) * 2 * r
            return [(pool_a[i:i + r], pool_a[i + r:i + 2 * r]) for i in range(0, usable, 2 * r)]
        out = []
        for _ in range(RESAMPLED):
            chosen = rng.sample(pool_a, 2 * r)
            out.append((chosen[:r], chosen[r:]))
        return out
    if not resampled:
        n = min(len(pool_a), len(pool_b)) // r * r
        return [(pool_a[i:i + r], pool_b[i:i + r]) for i in range(0, n, r)]
    return [(rng.sample(pool_a, r), rng.sample(pool_b, r)) for _ in range(RESAMPLED)]


def analyse(pool_dir: Path, out: Path, threshold: float, alpha: float) -> pd.DataFrame:
    rng = random.Random(0)
    pools = {name: pool_records(pool_dir, name) for name in POOLS}
    rows = []
    for r, resampled in itertools.product(REPEATS, (False, True)):
        for kind, name, pool_b in [("A/A", n, None) for n in AA] + [("A/B", f"{AB[0]} ctx 512 vs 576", AB[1])]:
            pool_a = pools[name if kind == "A/A" else AB[0]]
            chosen = pairs(pool_a, pools[pool_b] if pool_b else None, r, rng, resampled)
            if not chosen:
                continue
            decisions = [decide(a, b, threshold, alpha) for a, b in chosen]
            deltas = pd.Series([d.get("delta_pct") for d in decisions], dtype=float)
            rows.append({"kind": kind, "configuration": name, "R": r,
                         "pairs": "resampled" if resampled else "disjoint", "n_pairs": len(decisions),
                         "gate_rate_pct": 100 * sum(d["gate_fires"] for d in decisions) / len(decisions),
                         "significant_pct": 100 * sum(d["verdict"] in ("slower", "faster") for d in decisions)
                         / len(decisions),
                         "median_delta_pct": deltas.median(), "max_abs_delta_pct": deltas.abs().max(),
                         "processes_in_pool": len(pool_a) + (len(pools[pool_b]) if pool_b else 0)})
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "calibration.csv", table.to_csv(index=False).encode())
    environment = next(iter(pools.values()))[0].environment
    summary = {"threshold_pct": threshold, "alpha": alpha, "device": environment["device_name"],
               "torch": environment["torch"], "commit": environment["git_commit"],
               "processes": {name: len(records) for name, records in pools.items()},
               "between_process_cv_pct": {name: as_side(records).process_stats["total"]["cv_pct"]
                                          for name, records in pools.items() if len(records) > 1}}
    atomic_write(out / "calibration.json", json.dumps({**summary, "rows": rows}, indent=2).encode())
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("pool_dir", type=Path)
    m.add_argument("--processes", type=int, default=20)
    m.add_argument("--budget-s", type=float, default=540)
    m.add_argument("--pools", nargs="+", choices=list(POOLS), default=list(POOLS),
                   help="fill only these pools (e.g. the A/B pair, to calibrate detection at larger R)")
    a = sub.add_parser("analyse")
    a.add_argument("pool_dir", type=Path)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--threshold", type=float, default=5.0, help="--fail-on-regression, in %")
    a.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.pool_dir, args.processes, args.budget_s, args.pools)
        return
    table = analyse(args.pool_dir, args.out, args.threshold, args.alpha)
    print(f"gate: --fail-on-regression {args.threshold:g}% at alpha {args.alpha:g}; rate = share of pairs on which "
          "it fires (A/A: false alarms; A/B: detections)\n")
    print(table.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
