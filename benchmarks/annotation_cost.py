"""What annotation costs: step time with ranges off, at "phases" and at "detail", side by side.

One model instance and input, the harness's own Step; the levels are interleaved step by step, each
round in a rotated order (off, phases, detail / phases, detail, off / ...), because eager steps on a
busy host drift by several percent from block to block and only adjacent steps compare fairly. For
each level the paired difference to "off" in the same round is summarised (mean, 95% CI).

Without a profiler attached the NVTX domain is a no-op and record_function stays closed, which is what
a user pays for leaving annotation on; run the script under `nsys profile --trace=nvtx,cuda` to price
live NVTX injection too. Target (issue 3): |difference| <= 1% on the small model, eager.

usage: python benchmarks/annotation_cost.py [--size small] [--precision bf16] [--mode forward-backward]
                                            [--ctx 512] [--rounds 100] [--out result.json]
       python benchmarks/annotation_cost.py --table RESULT.json ...   (Markdown table of stored results)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lmbench.measure.ranges import RangeRecorder, annotate, annotations, default_sinks
from lmbench.config import BenchConfig
from lmbench.measure.environment import capture, check_runnable
from lmbench.measure.harness import Step, matmul_precision
from lmbench.model import build_model
from lmbench.results.store import atomic_write
from lmbench.results.stats import cost_verdict, paired_difference_pct, summarize

LEVELS = ("off", "phases", "detail")


def measure(config: BenchConfig, rounds: int, warmup: int = 10) -> dict:
    device = check_runnable(config)
    torch.manual_seed(config.seed)
    model = build_model(config.model_config(), device)
    step = Step(config, model, device)
    sinks = default_sinks()  # one set for the whole run, as in the harness (NVTX attributes are built once per name)

    def run(level: str) -> float:
        with annotations(level, sinks=sinks):
            return sum(step.run(label="measured_0")[0].values())

    for i in range(warmup):
        run(LEVELS[i % len(LEVELS)])
    times: dict[str, list[float]] = {level: [] for level in LEVELS}
    for r in range(rounds):
        order = LEVELS[r % len(LEVELS):] + LEVELS[: r % len(LEVELS)]
        for level in order:
            times[level].append(run(level))
    result = {"config": {k: getattr(config, k) for k in ("size", "mode", "precision", "attention", "batch", "ctx")},
              "rounds": rounds, "profiler_attached": _nvtx_live(),
              "environment": capture(device), "levels": {}}
    summaries = {level: summarize(samples) for level, samples in times.items()}
    off_ms = summaries["off"].median
    for level in LEVELS:
        step_ms = summaries[level]
        ranges = ranges_per_step(step, level)
        host_us = range_cost_us(level, sinks)
        entry = {"mean_ms": step_ms.mean, "median_ms": step_ms.median, "cv_pct": step_ms.cv_pct,
                 "ranges_per_step": ranges, "host_us_per_range": host_us,
                 "host_cost_pct": 100 * ranges * host_us / 1e3 / off_ms}
        if level != "off":
            diff = paired_difference_pct(times[level], times["off"])
            entry.update(diff_pct=diff.mean, diff_ci_pct=[diff.ci_low, diff.ci_high], diff_median_pct=diff.median)
        result["levels"][level] = entry
    # With annotation off the model's annotate() calls still run; what they cost at detail's range count:
    result["levels"]["off"]["hook_cost_pct"] = (100 * result["levels"]["detail"]["ranges_per_step"]
                                                * result["levels"]["off"]["host_us_per_range"] / 1e3 / off_ms)
    return result


def ranges_per_step(step: Step, level: str) -> int:
    """How many ranges one step opens at `level` (counted by a recording sink on one extra step)."""
    recorder = RangeRecorder()
    with annotations(level, sinks=[recorder]):
        step.run(label="measured_0")
    return sum(kind == "push" for kind, _ in recorder.events)


def range_cost_us(level: str, sinks: list, n: int = 20_000) -> float:
    """Host microseconds to open and close one model range at `level` with the given sinks: the
    deterministic part of the cost, which a launch-bound step pays once per range."""
    emitted_at = "phases" if level == "phases" else "detail"  # at "off" nothing is emitted either way
    with annotations(level, sinks=sinks):
        start = time.perf_counter()
        for _ in range(n):
            with annotate("layer_0", emitted_at):
                pass
        return (time.perf_counter() - start) / n * 1e6


def _nvtx_live() -> bool:
    """True when a profiler injected NVTX (nsys), so ranges are really recorded."""
    import nvtx

    return type(nvtx.get_domain("lmbench")).__name__ != "DummyDomain"


def table(paths: list[str]) -> str:
    """One Markdown row per (result file, level): the stored numbers, nothing re-measured."""
    rows = ["| Precision | Profiler | Rounds | Off (ms) | CV off (%) | Level | Level (ms) | Δ vs off (%) | 95% CI (%) | Verdict "
            "| Ranges/step | Host µs/range | Host cost (%) |",
            "|---|---|---:|---:|---:|---|---:|---:|---|---|---:|---:|---:|"]
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        off = result["levels"]["off"]
        for level in LEVELS[1:]:
            e = result["levels"][level]
            low, high = e["diff_ci_pct"]
            rows.append(f"| {result['config']['precision']} | {'nsys (live NVTX)' if result['profiler_attached'] else 'none'} "
                        f"| {result['rounds']} | {off['mean_ms']:.2f} | {off['cv_pct']:.1f} | {level} | {e['mean_ms']:.2f} "
                        f"| {e['diff_pct']:+.2f} | {low:+.2f} to {high:+.2f} | {cost_verdict(low, high)} "
                        + (f"| {e['ranges_per_step']} | {e['host_us_per_range']:.2f} | {e['host_cost_pct']:.3f} |"
                           if "host_cost_pct" in e else "| — | — | — |"))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--mode", default="forward-backward")
    parser.add_argument("--attention", default="sdpa")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--out", default=None)
    parser.add_argument("--table", nargs="+", metavar="RESULT.json", help="print stored results as Markdown and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    config = BenchConfig(size=args.size, precision=args.precision, mode=args.mode, attention=args.attention,
                         ctx=args.ctx, batch=4)
    with matmul_precision(False):
        result = measure(config, args.rounds)
    off = result["levels"]["off"]
    print(f"{args.size} {args.mode} {args.precision} {args.attention} ctx {args.ctx}, {args.rounds} rounds, "
          f"profiler attached: {result['profiler_attached']}")
    print(f"  off     {off['mean_ms']:8.3f} ms (median {off['median_ms']:.3f}, CV {off['cv_pct']:.1f}%)")
    print(f"  hook cost with annotation off: {off['host_us_per_range']:.2f} µs per range = {off['hook_cost_pct']:.3f}% "
          f"of the step at detail's {result['levels']['detail']['ranges_per_step']} ranges")
    for level in LEVELS[1:]:
        e = result["levels"][level]
        print(f"  {level:7s} {e['mean_ms']:8.3f} ms  vs off: {e['diff_pct']:+.2f}% "
              f"(95% CI {e['diff_ci_pct'][0]:+.2f}% to {e['diff_ci_pct'][1]:+.2f}%; median {e['diff_median_pct']:+.2f}%)"
              f"  {cost_verdict(*e['diff_ci_pct'])}")
        print(f"          host cost: {e['ranges_per_step']} ranges x {e['host_us_per_range']:.2f} µs = "
              f"{e['host_cost_pct']:.3f}% of the step")
    if args.out:
        atomic_write(Path(args.out), json.dumps(result, indent=2).encode())


if __name__ == "__main__":
    main()
