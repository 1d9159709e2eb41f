"""How fast `lmbench --help` and `lmbench --version` answer (target: ≤ 0.3 s), beside a bare interpreter start
measured in the same loop, so a loaded machine shows as a slow baseline rather than a slow CLI. Also reports
whether answering loaded torch or pandas (it must not: the CLI imports what a command runs inside it).

usage: python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
COMMANDS = {"python -c pass": [sys.executable, "-c", "pass"],
            "lmbench --help": [sys.executable, "-m", "lmbench", "--help"],
            "lmbench --version": [sys.executable, "-m", "lmbench", "--version"]}
HEAVY = "import sys, runpy; sys.argv = ['lmbench', '--help']\ntry:\n    runpy.run_module('lmbench', run_name='__main__')\n" \
        "except SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'pandas', 'numpy') if m in sys.modules), file=sys.stderr)"


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so drift in the machine's load falls on every command alike
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    print(f"{'command':<20} {'median (s)':>10} {'min (s)':>8} {'max (s)':>8}   target")
    for name, values in times.items():
        median = statistics.median(values)
        verdict = "" if name.startswith("python") else ("met" if median <= TARGET_S else "MISSED")
        print(f"{name:<20} {median:>10.3f} {min(values):>8.3f} {max(values):>8.3f}   {verdict}")
    loaded = subprocess.run([sys.executable, "-c", HEAVY], capture_output=True, text=True, check=True).stderr.strip()
    print(f"heavy modules loaded by `lmbench --help`: {loaded}")


if __name__ == "__main__":
    main()
