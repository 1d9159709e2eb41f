"""Kill a sweep at random moments and resume it, again and again; then count what was lost.

Each round starts `lmbench sweep ... --resume --run-dir RUN` (tiny CPU configurations), kills it after a random
delay (SIGKILL mostly, some SIGINT), and looks at RUN/results.jsonl: a line that is not a whole record may only be
the last one, torn by the kill, and the next round must set it aside. After the rounds a last resume runs to the
end, and the script prints: kills, configurations lost, duplicated and corrupt over every completed sweep (all
must be 0), orphan temporary files (0), and torn lines set aside (kills that landed inside an append). A sweep
that completes between kills is checked and started over, so the kills keep landing in live sweeps. Exit status 1 when any must-be-0 is not.

A second phase aims the kills at the store itself: a process appends records (copies of the sweep's first record
under new keys) as fast as it can and is SIGKILLed after a random few milliseconds, so most kills land inside an
append; the file must then hold whole records only, each appended key at most once, with any torn last line set
aside by the next use.

usage: python benchmarks/durability.py RUN_DIR [--kills 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from lmbench.config import BenchConfig
from lmbench.studies.sweep import Sweep

SWEEP = ["--size", "tiny", "--device", "cpu", "--batch", "1", "--warmup", "1", "--steps", "20", "--vocab-size", "256",
         "--ctx", "16,24,32,48", "--mode", "forward,forward-backward"]
BASE = BenchConfig(size="tiny", device="cpu", batch=1, warmup=1, steps=20, vocab_size=256)
EXPECTED = {c.key() for c in Sweep(BASE, {"ctx": (16, 24, 32, 48), "mode": ("forward", "forward-backward")}).configs()}


def lines(results: Path) -> tuple[list[dict], int]:
    """(whole records, corrupt lines other than a torn last one)."""
    if not results.exists():
        return [], 0
    raw = results.read_bytes().split(b"\n")
    whole, corrupt = [], 0
    for i, line in enumerate(raw):
        if not line.strip():
            continue
        try:
            whole.append(json.loads(line))
        except json.JSONDecodeError:
            corrupt += i != len(raw) - 1  # only the unterminated last line may be torn
    return whole, corrupt


def sweep(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lmbench", "sweep", *SWEEP, "--resume", "--run-dir", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


APPENDER = """import copy, itertools, sys
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore
store, template = ResultsStore(sys.argv[1]), ResultsStore(sys.argv[2]).records()[0]
for n in itertools.count(int(sys.argv[3])):
    data = copy.deepcopy(template.data)
    data["key"] = f"append-{n}"
    store.append(Record(data))
    print(n, flush=True)
"""


def kill_appends(run_dir: Path, template_dir: Path, kills: int, rng: random.Random) -> dict[str, int]:
    """Kill an appending process `kills` times; each round resumes numbering after the last acknowledged append."""
    store_dir, next_key, acknowledged = run_dir / "appends", 0, set()
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(store_dir), str(template_dir), str(next_key)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc.stdout.readline()  # the first append is through: the process is in its loop
        time.sleep(rng.uniform(0.001, 0.05))
        proc.kill()
        out, _ = proc.communicate()
        done = [int(n) for n in out.split()]
        acknowledged |= set(done)
        next_key = max([next_key, *done]) + 2  # a key that was being appended when killed is not reused
    subprocess.run([sys.executable, "-c", "import sys\nfrom lmbench.results.store import ResultsStore\n"
                    "ResultsStore(sys.argv[1]).records()", str(store_dir)], check=True, stderr=subprocess.DEVNULL)
    records, corrupt = lines(store_dir / "results.jsonl")
    keys = [r["key"] for r in records]
    stored = {int(k.split("-")[1]) for k in keys}
    return {"append_kills": kills, "appends_stored": len(keys), "append_lines_corrupt": corrupt,
            "append_keys_duplicated": len(keys) - len(set(keys)),
            "acknowledged_appends_lost": len(acknowledged - stored),
            "append_torn_lines_set_aside": len(list(store_dir.glob("results.jsonl.torn-*"))),
            "append_orphan_temporary_files": len([p for p in store_dir.iterdir() if p.name.endswith(".tmp")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng, results = random.Random(args.seed), args.run_dir / "results.jsonl"
    corrupt_seen, kills, signals, finished = 0, 0, {"SIGKILL": 0, "SIGINT": 0}, []
    start = time.perf_counter()
    while kills < args.kills:
        proc = sweep(args.run_dir)
        time.sleep(rng.uniform(1.0, 6.0))  # start-up takes ~1.5 s here: most kills land while measuring or storing
        if proc.poll() is None:
            sig = signal.SIGINT if rng.random() < 0.2 else signal.SIGKILL
            proc.send_signal(sig)
            signals[sig.name] += 1
            kills += 1
        proc.wait()
        records, corrupt = lines(results)
        corrupt_seen += corrupt
        if len({r["key"] for r in records}) == len(EXPECTED):  # done: start over so kills keep landing
            finished.append(records)
            results.unlink()
    final = sweep(args.run_dir)
    final.wait()
    records, corrupt = lines(results)
    finished.append(records)
    keysets = [[r["key"] for r in done] for done in finished]
    report = {
        "kills": kills, **signals, "seconds": round(time.perf_counter() - start), "sweeps_completed": len(finished),
        "configurations_lost": sum(len(EXPECTED - set(keys)) for keys in keysets),
        "configurations_duplicated": sum(len(keys) - len(set(keys)) for keys in keysets),
        "corrupt_lines": corrupt + corrupt_seen,
        "orphan_temporary_files": len([p for p in args.run_dir.iterdir() if p.name.endswith(".tmp")]),
        "torn_lines_set_aside": len(list(args.run_dir.glob("results.jsonl.torn-*"))),
        "final_exit_status": final.returncode,
    }
    report |= kill_appends(args.run_dir, args.run_dir, args.kills, rng)
    print(json.dumps(report, indent=2))
    must_be_zero = ("configurations_lost", "configurations_duplicated", "corrupt_lines", "orphan_temporary_files",
                    "final_exit_status", "append_lines_corrupt", "append_keys_duplicated", "acknowledged_appends_lost",
                    "append_orphan_temporary_files")
    sys.exit(1 if any(report[k] for k in must_be_zero) else 0)


if __name__ == "__main__":
    main()
