"""Bad input through the CLI's entry point: exit code 2, exactly one stderr line `lmbench: error: ...`, no
traceback, nothing on stdout, nothing stored.

Each case runs `lmbench ...` through lmbench.cli.main in this process (helpers.run_main), from a working
directory of its own; each command's real `python -m lmbench` entry point has its subprocess smoke test elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import run_main

TINY = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "0", "--steps", "1", "--vocab-size", "64",
        "--device", "cpu"]

# id: (arguments, text the one error line must contain); "{dir}" is the case's working directory.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "unknown-size": (["bench", "--size", "huge"], ["unknown size 'huge'"]),
    "d-model-not-divisible-by-heads": (["bench", "--size", "tiny", "--d-model", "66"],
                                       ["d_model 66 is not divisible by n_heads 4"]),
    "odd-head-dimension": (["bench", "--size", "tiny", "--d-model", "36", "--n-heads", "4"],
                           ["head dimension 9", "odd"]),
    "batch-zero": (["bench", "--size", "tiny", "--batch", "0"], ["batch must be a positive integer, got 0"]),
    "ctx-negative": (["bench", "--size", "tiny", "--ctx", "-1"], ["ctx must be a positive integer, got -1"]),
    "steps-zero": (["bench", "--size", "tiny", "--steps", "0"], ["steps must be a positive integer, got 0"]),
    "warmup-negative": (["bench", "--size", "tiny", "--warmup", "-1"], ["warmup", "-1"]),
    "batch-not-an-integer": (["bench", "--size", "tiny", "--batch", "two"], ["--batch", "two"]),
    "precision-fp8": (["bench", "--size", "tiny", "--precision", "fp8"], ["unknown precision 'fp8'"]),
    "fp16-on-cpu-bench": (["bench", *TINY, "--precision", "fp16"], ["fp16", "cpu"]),
    "tf32-on-cpu-bench": (["bench", *TINY, "--tf32"], ["tf32", "cpu"]),
    "fp16-on-cpu-sweep": (["sweep", *TINY, "--precision", "fp16"], ["fp16", "cpu"]),
    "tf32-on-cpu-sweep": (["sweep", *TINY, "--tf32"], ["tf32", "cpu"]),
    "tf32-with-bf16": (["bench", "--size", "tiny", "--tf32", "--precision", "bf16"], ["--tf32", "bf16"]),
    "sweep-unknown-mode": (["sweep", *TINY, "--mode", "forward,sideways"], ["unknown mode 'sideways'"]),
    "sweep-list-item-not-an-integer": (["sweep", *TINY, "--ctx", "16,abc"], ["--ctx", "'abc'"]),
    "sweep-resume-without-run-dir": (["sweep", *TINY, "--resume"], ["--resume", "--run-dir"]),
    "run-dir-empty": (["bench", *TINY, "--run-dir", ""], ["--run-dir", "empty name"]),
    "run-dir-a-results-file": (["sweep", *TINY, "--run-dir", "x.jsonl"], ["x.jsonl names a results file"]),
    "trace-dir-empty": (["profile", *TINY, "--trace-dir", ""], ["--trace-dir", "empty name"]),
    "unknown-option": (["bench", "--size", "tiny", "--bogus", "1"], ["--bogus"]),
    "report-garbage-results-file": (["report", "{dir}/garbage"],
                                    ["{dir}/garbage/results.jsonl", "not an lmbench results file"]),
    "report-csv-file": (["report", "{dir}/table.csv"], ["{dir}/table.csv"]),
    "report-no-results": (["report", "{dir}/empty"], ["no lmbench results", "{dir}/empty"]),
    "report-empty-results-file": (["report", "{dir}/blank"], ["{dir}/blank"]),
    # an override of 0 must be refused like any other non-positive dimension, not silently ignored
    "d-model-zero": (["bench", *TINY, "--d-model", "0"], ["d_model"]),
}
if not torch.cuda.is_available():
    CASES["cuda-without-a-gpu"] = (["bench", "--size", "tiny", "--device", "cuda"], ["cuda"])


def _prepare(cwd: Path) -> None:
    """Files the `report` cases point at (made in every case directory; cheap)."""
    (cwd / "garbage").mkdir()
    (cwd / "garbage" / "results.jsonl").write_bytes(b"\x00\x13 not json at all \xff\nline two\n")
    (cwd / "table.csv").write_text("Model Size,Forward (ms)\ntiny,1.00 ± 0.10\n")
    (cwd / "empty").mkdir()
    (cwd / "blank").mkdir()
    (cwd / "blank" / "results.jsonl").write_text("")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line(tmp_path, case):
    cwd = tmp_path
    _prepare(cwd)
    args, needles = CASES[case]
    proc = run_main([a.replace("{dir}", str(cwd)) for a in args], cwd)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {lines}"
    assert lines[0].startswith("lmbench: error: ")
    for needle in needles:
        assert needle.replace("{dir}", str(cwd)) in lines[0]
    assert proc.stdout == ""
    assert not (cwd / "runs").exists()  # nothing measured, nothing stored


@pytest.mark.parametrize("options", [{"warmup": 1.5}, {"seed": "abc"}, {"tf32": "no"}, {"batch": True},
                                     {"d_model": "32"}, {"size": 3}])
def test_the_python_api_refuses_wrong_types_in_one_line(options: dict) -> None:
    from lmbench import BenchConfig, LmbenchError

    field = next(iter(options))
    with pytest.raises(LmbenchError, match=f"^{field} must be a") as info:
        BenchConfig(**options)
    assert "\n" not in str(info.value)


def test_sampling_and_profiler_options_check_their_types_too() -> None:
    from lmbench import LmbenchError, Sampling
    from lmbench.config import ProfileOptions

    with pytest.raises(LmbenchError, match="^repeats must be an int"):
        Sampling(repeats="3")
    with pytest.raises(LmbenchError, match="^record_shapes must be a bool"):
        ProfileOptions(record_shapes="yes")
    assert Sampling(target_ci=1, max_time=5).max_time == 5  # an int is a fine float


@pytest.mark.parametrize("args", [["bench", "--size", "x" * 100_000], ["bench", "--batch", "9" * 5000 + "x"]])
def test_a_huge_value_is_echoed_cut_to_200_characters(tmp_path: Path, args: list[str]) -> None:
    proc = run_main(args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("lmbench: error: ") and len(proc.stderr) < 400 and "…'" in proc.stderr
