"""How fast lmbench analyses a big torch.profiler trace, and how much memory it needs.

Builds a trace of about --size-gb gigabytes (uncompressed JSON) by repeating the events of the H200
fixture trace (tests/fixtures/trace-h200-tiny) with shifted timestamps, correlation and external ids,
so every repeat is a further set of measured steps with their own ranges. Then, in a fresh process
(so peak RSS is the analysis's own), reads it and computes the kernel frame, the kernel tables and the
top operators, and prints wall time and peak RSS. Target (issue 4): a ~1 GB trace in <= 30 s with peak
RSS <= 2 GB on the 2-core CPU machine.

usage: python benchmarks/trace_analysis_speed.py [--size-gb 1.0] [--keep PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "trace-h200-tiny"


def build(path: Path, size_gb: float) -> int:
    """Write the repeated trace; returns the number of events."""
    source = json.load(gzip.open(next(FIXTURE.rglob("*.pt.trace.json.gz"))))
    events = [e for e in source["traceEvents"] if e.get("ph") == "X"]
    span = max(e["ts"] + e.get("dur", 0) for e in events) - min(e["ts"] for e in events) + 1000.0
    ids = 1 + max(max((e.get("args") or {}).get("correlation", 0), (e.get("args") or {}).get("External id", 0))
                  for e in events)
    steps = sum(1 for e in events if str(e.get("name", "")).startswith("measured_"))
    header = {k: v for k, v in source.items() if k != "traceEvents"}
    target, written, count, repeat = size_gb * 1e9, 0, 0, 0
    with open(path, "w") as out:
        out.write(json.dumps(header)[:-1] + ', "traceEvents": [\n')
        while written < target:
            for event in events:
                shifted = dict(event, ts=event["ts"] + repeat * span)
                if event.get("cat") == "user_annotation" and event["name"].startswith("measured_"):
                    shifted["name"] = f"measured_{int(event['name'].split('_')[1]) + repeat * steps}"
                args = event.get("args")
                if args:
                    args = dict(args)
                    for key in ("correlation", "External id"):
                        if key in args:
                            args[key] += repeat * ids
                    shifted["args"] = args
                text = ("" if count == 0 else ",\n") + json.dumps(shifted)
                out.write(text)
                written += len(text)
                count += 1
            repeat += 1
        out.write("\n]}\n")
    return count


def analyse(path: str) -> None:
    """Child process: the analysis only, then its wall time and peak RSS as JSON on stdout."""
    from lmbench.kernels.frame import category_table, phase_table, top_kernels
    from lmbench.kernels.torch_trace import kernel_frame, read_trace, top_operators

    start = time.perf_counter()
    trace = read_trace(Path(path))
    kernels = kernel_frame(trace)
    phase_table(kernels), category_table(kernels), top_kernels(kernels), top_operators(trace)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_mb, "kernels": len(kernels),
                      "steps": int(kernels["step"].nunique())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, default=None, help="write the trace here and keep it")
    parser.add_argument("--analyse", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.analyse:
        analyse(args.analyse)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "big.pt.trace.json"
        t0 = time.perf_counter()
        events = build(path, args.size_gb)
        print(f"built {path.stat().st_size / 1e9:.2f} GB, {events:,} events in {time.perf_counter() - t0:.0f} s")
        child = subprocess.run([sys.executable, __file__, "--analyse", str(path)], capture_output=True, text=True,
                               check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
    ok = result["wall_s"] <= 30 and result["peak_rss_mb"] <= 2048
    print(f"analysed in {result['wall_s']:.1f} s, peak RSS {result['peak_rss_mb']:,.0f} MB, "
          f"{result['kernels']:,} kernels in {result['steps']} measured steps: "
          f"{'meets' if ok else 'misses'} the target (<= 30 s, <= 2048 MB)")


if __name__ == "__main__":
    main()
