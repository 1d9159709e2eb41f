"""A run directory belongs to one measuring process: it is created, checked and locked before anything is
measured, a second process is refused with the holder's PID, and the holder's own children are let in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TINY, run_main
from lmbench.results.store import HELD_ENV, RESULTS_FILE, ResultsStore

HOLD = ("import sys, time\nfrom lmbench.results.store import ResultsStore\n"
        "with ResultsStore(sys.argv[1]).claim():\n    print('held', flush=True)\n    time.sleep(60)\n")
BENCH = ["bench", "--size", "tiny", "--device", "cpu", "--ctx", "16", "--batch", "1", "--warmup", "0", "--steps", "1",
         "--vocab-size", str(TINY["vocab_size"]), "--no-report"]


@pytest.fixture
def held(tmp_path: Path):
    """A run directory held by another process (the env of this one must not claim it already)."""
    env = {k: v for k, v in os.environ.items() if k != HELD_ENV}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True,
                              env=env)
    assert holder.stdout.readline().strip() == "held"
    yield tmp_path / "run", holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("command", [BENCH, ["sweep", *BENCH[1:-1]], ["warmup", *BENCH[1:7], "--counts", "0"]])
def test_a_second_process_is_refused_before_measuring(held, tmp_path: Path, command: list[str]) -> None:
    run_dir, pid = held
    proc = run_main([*command, "--run-dir", str(run_dir)], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"lmbench: error: run directory {run_dir} in use by PID {pid}"
    assert not (run_dir / RESULTS_FILE).exists()  # nothing was measured


def test_unusable_run_directories_are_one_line_before_measuring(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "odd" / RESULTS_FILE).mkdir(parents=True)
    for run_dir, problem in ((tmp_path / "file" / "run", "Not a directory"),
                             (tmp_path / "odd", f"{tmp_path / 'odd' / RESULTS_FILE} is not a file")):
        proc = run_main([*BENCH, "--run-dir", str(run_dir)], cwd=tmp_path)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert last.startswith("lmbench: error: ") and problem in last


def test_the_holder_and_its_children_pass_and_no_one_else(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "run")
    code = "import sys\nfrom lmbench.results.store import ResultsStore\nwith ResultsStore(sys.argv[1]).claim(): pass"
    with store.claim():
        assert str(store.run_dir.resolve()) in os.environ[HELD_ENV]
        with store.claim():  # the same process again (the API inside a CLI command): no second lock
            pass
        child = subprocess.run([sys.executable, "-c", code, str(store.run_dir)], env=dict(os.environ))
        assert child.returncode == 0  # a child inherits the claim and may store into the directory
        stranger = subprocess.run([sys.executable, "-c", code, str(store.run_dir)], capture_output=True, text=True,
                                  env={k: v for k, v in os.environ.items() if k != HELD_ENV})
        assert stranger.returncode != 0 and f"in use by PID {os.getpid()}" in stranger.stderr
    assert str(store.run_dir.resolve()) not in os.environ.get(HELD_ENV, "")
    store_again = subprocess.run([sys.executable, "-c", code, str(store.run_dir)],
                                 env={k: v for k, v in os.environ.items() if k != HELD_ENV})
    assert store_again.returncode == 0  # released when the holder is done
