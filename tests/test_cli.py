"""The CLI end to end, as a user runs it: `lmbench bench | sweep | report`.

bench and report run once each in a subprocess, `python -m lmbench` (their smoke tests of the real entry point), and
so do the interrupted sweeps and their resumes (marked slow); the other calls, conftest's cli_sweep among them, go
through lmbench.cli.main in this process (helpers.run_main)."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli_env, read_lines, run_cli, run_main, tiny
from lmbench.config import BenchConfig
from lmbench.results.store import RESULTS_FILE, ResultsStore
from lmbench.studies.sweep import Sweep, run_sweep

REPORT_FILES = ("report.md", "report.tex", "results.csv", "cv.csv", "throughput.csv", "statistics.csv")


def sweep_configs(sizes, modes, **common) -> list[BenchConfig]:
    return [BenchConfig(size=s, mode=m, **common) for s, m in itertools.product(sizes, modes)]


def test_bench_end_to_end(tmp_path):
    """bench's subprocess smoke test."""
    args = ["bench", "--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "1", "--steps", "3",
            "--vocab-size", "128", "--device", "cpu"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # no --run-dir: a fresh runs/<timestamp>-bench under the working directory
    run_dirs = list((tmp_path / "runs").glob("*-bench"))
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert "### Results Table" in proc.stdout
    assert "| Model Size" in proc.stdout and "| tiny " in proc.stdout
    for name in (RESULTS_FILE, *REPORT_FILES, "ratio.csv"):
        assert (run_dir / name).is_file(), name
    # what was printed is the report that was written
    assert proc.stdout == (run_dir / "report.md").read_text() + "\n"
    records = read_lines(run_dir / RESULTS_FILE)
    assert len(records) == 1
    expected = BenchConfig(size="tiny", ctx=16, batch=2, warmup=1, steps=3, vocab_size=128, device="cpu")
    assert records[0]["key"] == expected.key()
    assert records[0]["status"] == "ok"
    assert len(records[0]["samples"]) == 4
    assert "\\begin{tabular}" in (run_dir / "report.tex").read_text()


def test_sweep_two_sizes_by_two_modes(cli_sweep):
    records = read_lines(cli_sweep.run_dir / RESULTS_FILE)
    expected = sweep_configs(("tiny", "small"), ("forward", "forward-backward"), d_model=32, d_ff=64,
                             n_layers=1, n_heads=2, ctx=16, batch=2, warmup=1, steps=3, vocab_size=128,
                             device="cpu")
    # the CLI measured exactly these configurations, in sweep order, each once
    assert [r["key"] for r in records] == [c.key() for c in expected]
    assert all(r["status"] == "ok" for r in records)
    assert [r["model"]["label"] for r in records] == ["tiny(d_model=32,d_ff=64,n_layers=1,n_heads=2)"] * 2 + [
        "small(d_model=32,d_ff=64,n_layers=1,n_heads=2)"] * 2
    assert "## Results: mode forward\n" in cli_sweep.stdout
    assert "## Results: mode forward-backward\n" in cli_sweep.stdout
    assert cli_sweep.stdout.count("### Results Table") == 2
    for name in REPORT_FILES:
        assert (cli_sweep.run_dir / name).is_file(), name
    assert cli_sweep.stdout == (cli_sweep.run_dir / "report.md").read_text() + "\n"
    # stderr is a file here: a plain progress line per configuration, and status lines never wrapped
    progress = [line for line in cli_sweep.stderr.splitlines() if line.startswith("sweep: ")]
    assert [line.split()[1] for line in progress] == ["1/4", "2/4", "3/4", "4/4"]
    assert "results: run/results.jsonl; report: run/report.md" in cli_sweep.stderr


def test_report_reproduces_the_same_report(cli_sweep, tmp_path):
    run_dir = tmp_path / cli_sweep.run_dir.name  # same name: the report's title names the directory
    shutil.copytree(cli_sweep.run_dir, run_dir)
    originals = {name: (cli_sweep.run_dir / name).read_text() for name in REPORT_FILES}
    for name in REPORT_FILES:
        (run_dir / name).unlink()
    proc = run_cli(["report", str(run_dir)], cwd=tmp_path)  # report's subprocess smoke test
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == originals["report.md"] + "\n"
    for name, text in originals.items():
        assert (run_dir / name).read_text() == text, name
    assert (run_dir / RESULTS_FILE).read_bytes() == (cli_sweep.run_dir / RESULTS_FILE).read_bytes()  # untouched
    # --out writes elsewhere and leaves the run directory alone
    out = tmp_path / "out"
    proc = run_main(["report", str(cli_sweep.run_dir), "--out", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name, text in originals.items():
        assert (out / name).read_text() == text, name
    assert not (out / RESULTS_FILE).exists()


def _poll_lines(path: Path, at_least: int, proc: subprocess.Popen, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            records = read_lines(path)  # every line parses at any moment: appends are atomic
            if len(records) >= at_least:
                return records
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {at_least} record(s); sweep exited with {proc.poll()}")


@pytest.mark.slow  # a real process, interrupted part-way, then a fresh one resuming its run directory
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_sweep_interrupted_then_resumed(tmp_path, sig):
    # No train-step here: AdamW's constructor lazily imports torch._dynamo (about a second). A SIGINT that
    # lands inside that import (inside the exec() of a generated dataclass method, say) makes CPython 3.11
    # run as `python -m` end by SIGINT (-2) after the CLI printed its message and called sys.exit(2). That is
    # the interpreter, not lmbench; this test is about the interruption and the resume.
    # 2 x 2 configurations of 40 steps: the first record lands well before the last configuration is done.
    ctxs, modes = (16, 32), ("forward-backward", "forward")
    args = ["sweep", "--size", "tiny", "--ctx", ",".join(map(str, ctxs)), "--mode", ",".join(modes),
            "--batch", "2", "--warmup", "1", "--steps", "40", "--vocab-size", "1000", "--device", "cpu",
            "--run-dir", "run"]
    expected = [BenchConfig(size="tiny", ctx=c, mode=m, batch=2, warmup=1, steps=40, vocab_size=1000, device="cpu")
                for c, m in itertools.product(ctxs, modes)]
    results = tmp_path / "run" / RESULTS_FILE
    proc = subprocess.Popen([sys.executable, "-m", "lmbench", *args], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _poll_lines(results, 1, proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = read_lines(results)
    assert 1 <= len(kept) < len(expected), "the sweep was not interrupted part-way"
    assert [r["key"] for r in kept] == [c.key() for c in expected[: len(kept)]]
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            f"lmbench: interrupted; {len(kept)} records kept in run; continue with --resume --run-dir run")
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]

    resumed = run_main([*args, "--resume"], cwd=tmp_path)  # in this process: the fresh one was the interrupted
    assert resumed.returncode == 0, resumed.stderr
    final = read_lines(results)
    keys = [r["key"] for r in final]
    assert len(keys) == len(set(keys)) == len(expected)  # one record per configuration, no duplicates
    assert set(keys) == {c.key() for c in expected}
    assert final[: len(kept)] == kept  # stored records untouched: not re-measured, timestamps and samples equal


def test_run_sweep_resume_skips_stored_keys(tmp_path):
    """Python API: resume=True skips stored keys; resume=False measures again (the report keeps the latest)."""
    store = ResultsStore(tmp_path)
    configs = Sweep(tiny(mode="forward", steps=2), {"ctx": (16, 24), "attention": ("sdpa", "naive")}).configs()
    assert len(configs) == 4 and len({c.key() for c in configs}) == 4
    first = run_sweep(configs[::2], store)  # the first and the third: the skips are not a prefix of the sweep
    assert [r.key for r in first] == [c.key() for c in configs[::2]]

    events = []
    second = run_sweep(configs, store, resume=True, on_event=lambda e, c: events.append((e, c.key())))
    assert [r.key for r in second] == [c.key() for c in configs[1::2]]
    assert events == [("skip", configs[0].key()), ("start", configs[1].key()), ("done", configs[1].key()),
                      ("skip", configs[2].key()), ("start", configs[3].key()), ("done", configs[3].key())]
    stored = store.records()
    assert [r.key for r in stored] == [c.key() for c in (*configs[::2], *configs[1::2])]
    assert stored[:2] == first

    again = run_sweep(configs[:1], store, resume=False)
    assert len(again) == 1 and len(store.records()) == 5


def test_sweep_configs_are_the_cartesian_product():
    base = tiny()
    configs = Sweep(base, {"ctx": (16, 32), "mode": ("forward", "train-step"), "size": ("tiny",)}).configs()
    assert [(c.ctx, c.mode) for c in configs] == [(16, "forward"), (16, "train-step"), (32, "forward"),
                                                  (32, "train-step")]
    assert all(c.batch == base.batch and c.device == "cpu" for c in configs)


def test_sweep_help_lists_every_config_field(tmp_path):
    proc = run_main(["sweep", "--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for field in dataclasses.fields(BenchConfig):
        assert "--" + field.name.replace("_", "-") in proc.stdout, field.name
    assert "--resume" in proc.stdout and "--run-dir" in proc.stdout
    assert "comma-separated list to sweep" in proc.stdout
